"""The Streamlit dashboard over genlib: `streamlit run dashboard/app.py`."""
import os

# Idle OpenMP workers (torch's CPU thread pool, libgomp) sleep instead of spinning. libgomp reads
# this once, when torch loads; under `streamlit run` this package is imported before torch
# (dashboard/app.py imports it first). With training on 2 threads beside the server and the
# browser on 2 cores, spinning workers and barriers waiting for a descheduled worker cut a VAE
# run to 7% of headless; passive waiting gave 58% (bench/app_overhead.py --threads 2). An
# OMP_WAIT_POLICY set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
