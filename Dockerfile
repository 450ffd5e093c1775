# The lab as a server for a class: the Streamlit dashboard (and `python -m genlib`) in one image.
#
# CPU image (the default):
#   docker build -t genlab .
#   docker run -p 8501:8501 -v genlab-state:/data genlab            # then open http://SERVER:8501
#
# CUDA variant: the same file with torch's CUDA wheels, which bundle the CUDA runtime (the host needs
# only the NVIDIA driver and the NVIDIA Container Toolkit). The training pool then runs one worker
# per GPU (genlib.train.pool.default_workers):
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t genlab:cuda .
#   docker run --gpus all -p 8501:8501 -v genlab-state:/data genlab:cuda
#
# Data-parallel training in the container (genlib.train.distributed):
#   docker run --gpus all genlab:cuda torchrun --standalone --nproc_per_node 4 -m genlib train ...
#
# Settings for a class (README, hosting): GENLIB_POOL_WORKERS, GENLIB_POOL_RUNS_PER_SESSION,
# GENLIB_POOL_RUN_MB, as -e NAME=VALUE.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENLIB_DATA_DIR=/data/datasets \
    GENLIB_DASHBOARD_STATE_DIR=/data/sessions

WORKDIR /app

# torch first, from the index of the chosen variant; then the rest of requirements.txt up to its
# '# tests' section (pytest and playwright stay out of the image)
COPY requirements.txt .
RUN pip install --index-url "${TORCH_INDEX}" "torch>=2.15" "torchvision>=0.29" \
    && sed -n '/^# tests/q;p' requirements.txt > /tmp/runtime-requirements.txt \
    && pip install -r /tmp/runtime-requirements.txt

COPY genlib genlib
COPY dashboard dashboard
COPY pretrained pretrained
COPY .streamlit .streamlit
COPY pyproject.toml README.md ./

# fail the build, not the first visitor, when something does not import
RUN python -c "import genlib, genlib.train.pool, genlib.train.distributed, dashboard.session"

RUN useradd --create-home lab && mkdir -p /data && chown lab /data
USER lab
VOLUME /data

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["streamlit", "run", "dashboard/app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
