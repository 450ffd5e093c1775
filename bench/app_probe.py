"""`streamlit run` with one addition, for bench/app_overhead.py: every genlib.Trainer built in this
process gets one more callback, which appends its start (configs, device, threads) and progress
(step, training seconds, the trainer thread's CPU seconds) as JSON lines to the file named by
$GENLIB_BENCH_PROBE.

    GENLIB_BENCH_PROBE=/tmp/probe.jsonl python bench/app_probe.py run dashboard/app.py [streamlit options]

Nothing in genlib or the dashboard changes: the app runs as under `streamlit run`, in this process,
and the callback costs one short file write per progress event (every 25 steps at most). The Train
page's runs train in the server's pool of worker processes (unless GENLIB_DASHBOARD_POOL=0): the
pool's workers start with the probe installed too. The headless runs in bench/app_overhead.py carry
the same callback.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dashboard  # noqa: E402,F401  (before torch, as under `streamlit run`: it sets OMP_WAIT_POLICY)
import torch  # noqa: E402

import genlib.train  # noqa: E402

_LOCK = threading.Lock()


def probe_callback(trainer: genlib.train.Trainer, path: str):
    """A Trainer callback that logs ``trainer``'s start and progress to ``path`` (JSON lines)."""
    tid = f"{os.getpid()}-{id(trainer)}"

    def write(record: dict) -> None:
        with _LOCK, open(path, "a") as f:
            f.write(json.dumps({"trainer": tid, "t": time.monotonic(), **record}) + "\n")

    def callback(ev: genlib.train.Event) -> None:
        if ev.kind == "start":
            write({"kind": "start", "step": ev.step, "family": trainer.model.family,
                   "model_config": trainer.model.config.to_dict(), "train_config": dataclasses.asdict(trainer.config),
                   "device": str(trainer.device), "threads": torch.get_num_threads(),
                   "metric_fn": trainer.metric_fn is not None, "dataset": trainer.data.name,
                   "cpu": time.thread_time()})     # callbacks run on the trainer thread
        elif ev.kind in ("progress", "done", "stopped", "error"):
            write({"kind": ev.kind, "step": ev.step, "elapsed": ev.elapsed, "cpu": time.thread_time()})

    return callback


def install(path: str) -> None:
    init = genlib.train.Trainer.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.callbacks.append(probe_callback(self, path))

    genlib.train.Trainer.__init__ = __init__


def probed_worker(*args) -> None:
    """The pool's worker process (genlib.train.worker) with the probe installed in it: the app's runs
    train there, not in the server process."""
    from genlib.train import worker

    install(os.environ["GENLIB_BENCH_PROBE"])
    worker._worker_main(*args)


if __name__ == "__main__":
    if not os.environ.get("GENLIB_BENCH_PROBE"):
        raise SystemExit("set GENLIB_BENCH_PROBE to the file the probe should write (see this file's docstring)")
    install(os.environ["GENLIB_BENCH_PROBE"])
    import app_probe                      # by name, so a spawned worker can import it (bench/ is on its sys.path)
    from genlib.train import pool

    pool._worker_main = app_probe.probed_worker
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())
