"""Helpers shared by the bench/ scripts: the machine line every table starts with, a device-wide
sync, a training-rate measurement with an optional emulated UI thread, and a Streamlit server.

Not a test module: nothing here asserts on time. The scripts print what they measure.
"""
from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

import genlib  # noqa: E402
from genlib.device import default_threads, usable_cores  # noqa: E402



def cores() -> int:
    return usable_cores()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device | str | None = None, extra: str = "") -> str:
    """One comment line: host, CPU, cores, load, torch, device, threads. Printed atop every table."""
    device = genlib.pick_device(device)
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    env = os.environ.get("GENLIB_THREADS")
    return (f"# {platform.node()}: {cpu_name()}, {cores()} cores, load average {load:.1f} at start; "
            f"python {platform.python_version()}, torch {torch.__version__}; device {dev}; torch threads "
            f"{torch.get_num_threads()}, genlib default_threads() {default_threads()}"
            + (f", GENLIB_THREADS={env}" if env else "") + (f"; {extra}" if extra else ""))


def sync(device: torch.device) -> None:
    """Wait for queued device work (CUDA is asynchronous) before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# --- the Train page's live fragment, emulated -----------------------------------------------------

class FragmentEmulator:
    """On its own Python thread, every ``every`` seconds, does what the Train page's live fragment
    does per rerun: ``trainer.snapshot()``, the loss figure (``dashboard.figures.loss_figure``, plus the
    metric figure once there are metrics) serialised as Streamlit does (``plotly.io.to_json``), and
    the newest fixed-noise grid upscaled (``images.image_grid``) and encoded to PNG (``images.png_bytes``).
    As on the page (``ui.memo``), the metric figure and the PNG are rebuilt only when their data changed.

    It leaves out the websocket, protobuf and the browser. A frame that overruns the interval is
    followed at once by the next (Streamlit queues the rerun). ``frames``: (start, seconds) each.
    """

    def __init__(self, trainer: genlib.Trainer, every: float = 0.5):
        import plotly.io as pio

        from dashboard import figures, images   # imports streamlit: a second or more, so not inside a frame

        self.trainer, self.every, self._figures, self._images, self._pio = trainer, every, figures, images, pio
        self._memo: dict = {}
        self.frames: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-fragment", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def frame(self) -> None:
        figures, images, pio, model, memo = self._figures, self._images, self._pio, self.trainer.model, self._memo
        snap = self.trainer.snapshot()
        pio.to_json(figures.loss_figure(snap.history, model.family, getattr(model.config, "loss", "")), validate=False)
        if set(snap.metrics) - {"step"}:
            if memo.get("metric", (None,))[0] != len(snap.metrics["step"]):
                memo["metric"] = (len(snap.metrics["step"]), figures.metric_figure(snap.metrics, "Live quality metric"))
            pio.to_json(memo["metric"][1], validate=False)
        if snap.samples and snap.samples[-1][1].dim() == 4 and memo.get("grid") != snap.samples[-1][0]:
            images.png_bytes(images.image_grid(snap.samples[-1][1], nrow=8))
            memo["grid"] = snap.samples[-1][0]

    def _run(self) -> None:
        due = time.perf_counter()
        while not self._stop.wait(max(0.0, due - time.perf_counter())):
            t = time.perf_counter()
            self.frame()
            self.frames.append((t, time.perf_counter() - t))
            due = max(due + self.every, time.perf_counter())   # overran: the next one at once

    def frame_ms(self, t0: float, t1: float) -> list[float]:
        return [1000 * d for s, d in self.frames if t0 <= s <= t1]


@contextlib.contextmanager
def running(trainer: genlib.Trainer, ui: "FragmentEmulator | None" = None):
    """Start ``trainer`` on its thread (and the emulated UI), then stop and join both; a run that
    failed raises its message."""
    trainer.start()
    if ui:
        ui.start()
    try:
        yield trainer
    finally:
        trainer.stop()
        trainer.join()
        if ui:
            ui.stop()
    if trainer.state == "error":
        raise RuntimeError(trainer.message)


def measure_rate(trainer: genlib.Trainer, seconds: float, warmup: float = 1.5,
                 ui_every: float | None = None) -> dict:
    """Run ``trainer`` on its thread (as the app does); after ``warmup`` s (and at least 3 steps),
    count its steps over ``seconds`` of wall time, read from this (sleeping) thread. Returns
    images_per_s, steps, seconds, and with ``ui_every`` the emulated UI frames' times in ms."""
    device = trainer.device
    ui = FragmentEmulator(trainer, ui_every) if ui_every else None
    start = time.perf_counter()
    with running(trainer, ui):
        while trainer.is_alive and (time.perf_counter() - start < warmup or trainer.step < 3):
            time.sleep(0.02)
        sync(device)
        t0, s0 = time.perf_counter(), trainer.step
        while trainer.is_alive and time.perf_counter() - t0 < seconds:
            time.sleep(min(0.05, max(0.0, seconds - (time.perf_counter() - t0))))
        sync(device)
        t1, s1 = time.perf_counter(), trainer.step
    out = {"images_per_s": (s1 - s0) * trainer.config.batch_size / (t1 - t0), "steps": s1 - s0, "seconds": t1 - t0}
    if ui:
        out["ui_ms"] = ui.frame_ms(t0, t1)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes; NaN without Linux's /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if not Path("/proc/self/stat").exists():
                return float("nan")
            continue                                   # the process has ended
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime
    return total


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; [] elsewhere)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# --- a Streamlit server -----------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int, launcher: list[str] | None = None) -> list[str]:
    """``streamlit run dashboard/app.py`` headless on ``port`` (``launcher`` replaces ``-m streamlit``)."""
    return [sys.executable, *(launcher or ["-m", "streamlit"]), "run", str(REPO / "dashboard" / "app.py"),
            "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]


def start_streamlit(port: int, log_path: Path, env: dict | None = None,
                    launcher: list[str] | None = None) -> subprocess.Popen:
    log = open(log_path, "w")
    return subprocess.Popen(streamlit_command(port, launcher), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> float:
    """Poll ``/_stcore/health`` until it answers 'ok'; returns perf_counter() at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                return time.perf_counter()
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
