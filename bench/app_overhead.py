"""App overhead: training images/s of a run started in the real dashboard, against the same run
headless (same model config, TrainConfig, live metric and device; no UI).

    python bench/app_overhead.py [--presets vae,gan,dcgan] [--threads 1,2] [--seconds 7] [--dataset mnist]
                                 [--steps 3000] [--mode auto|browser|emulate]

browser (the default when chromium and playwright are here): `streamlit run dashboard/app.py` through
bench/app_probe.py (the same app, plus a Trainer callback that logs each run's configs and progress
to a file), driven by Playwright in Debian's headless chromium on this machine: pick the dataset in
the sidebar, open Train live, choose the preset, set the steps, Start training, wait --seconds,
Stop. The headless run then rebuilds exactly that model and TrainConfig from the log and trains
on a thread for the same wall time.

emulate (the fallback, said in the output): the headless run against the same run beside
bench/common.py's FragmentEmulator at the Train page's poll interval (snapshot + plotly figure
to JSON + PNG of the sample grid), without Streamlit, the websocket or a browser.

images/s = steps x batch / the Trainer's own training clock, from Start to Stop (live-metric
evaluations and pauses are not on that clock), the same formula for both sides.

--threads: torch threads of the runs, set through $GENLIB_THREADS (a fresh server per value; 0 =
genlib.device.default_threads()). With the app's own threads and a browser on the same cores,
this is the real-app counterpart of bench/threads.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from common import (CHROMIUM, REPO, FragmentEmulator, running, descendants, free_port, machine,
                    process_cpu, start_streamlit, stop_process, wait_healthy)

import genlib
import torch
from app_probe import probe_callback
from dashboard import measure, train_form
from dashboard.ui import LIVE_REFRESH_S as APP_POLL_S     # the Train page's redraw interval


SHOTS = REPO / "artifacts" / "bench"      # git-ignored: a screenshot when driving the app fails


def app_train_config(steps: int, batch: int, metric: bool) -> genlib.TrainConfig:
    """The TrainConfig the Train page builds (dashboard/train_form.py train_settings, app_pages/train.py)."""
    return genlib.TrainConfig(**train_form.run_settings(steps, batch, 0, is_image=True),
                              metric_every=train_form.metric_every(steps) if metric else 0)


def read_probe(path: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        runs.setdefault(rec["trainer"], []).append(rec)
    return runs


def rate_of(records: list[dict], batch: int) -> dict:
    """images/s over a run's last record: all steps / the Trainer's training seconds; and the
    trainer thread's CPU use (CPU seconds / wall seconds, start to last record)."""
    first, last = records[0], [r for r in records if "elapsed" in r][-1]
    return {"images_per_s": last["step"] * batch / last["elapsed"] if last["elapsed"] > 0 else float("nan"),
            "steps": last["step"], "train_s": last["elapsed"], "end": last["kind"],
            "trainer_cores": (last["cpu"] - first["cpu"]) / max(1e-9, last["t"] - first["t"])}


def run_headless(start: dict, seconds: float, log: Path, ui_every: float | None = None) -> dict:
    """The run the app's probe recorded (``start``), rebuilt and trained for ``seconds`` of wall time."""
    data = genlib.load_dataset(start["dataset"], download=False)
    torch.manual_seed(0)
    model = genlib.build_model(start["family"], start["model_config"])
    cfg = genlib.TrainConfig(**start["train_config"])
    factory = measure.live_metric_factory(data) if start["metric_fn"] else None
    metric_fn = factory() if factory is not None else None
    trainer = genlib.Trainer(model, data, cfg, device=start["device"], metric_fn=metric_fn)
    trainer.callbacks.append(probe_callback(trainer, str(log)))
    ui = FragmentEmulator(trainer, ui_every) if ui_every else None
    with running(trainer, ui):
        t0 = time.perf_counter()
        while trainer.is_alive and time.perf_counter() - t0 < seconds:
            time.sleep(0.05)
    return rate_of(list(read_probe(log).values())[-1], cfg.batch_size)


# --- driving the real app ---------------------------------------------------------------------------

def browser_runs(presets: list[str], dataset: str, steps: int, seconds: float, work: Path,
                 env: dict[str, str]) -> list[dict]:
    """Each preset run in the real app for ``seconds``; returns the probe's start record and rate."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    probe = work / "app-probe.jsonl"
    probe.unlink(missing_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_streamlit(port, work / "server.log", env={"GENLIB_BENCH_PROBE": str(probe), **env},
                           launcher=[str(REPO / "bench" / "app_probe.py")])
    out = []
    try:
        wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1600})

            def settle(rerun: bool = True) -> None:
                """Wait for the script run an action started (if it starts within 3 s) to finish."""
                if rerun:
                    try:
                        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=3_000)
                    except PlaywrightTimeout:
                        pass
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)

            try:
                page.goto(url)
                page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=60_000)
                settle(rerun=False)
                if page.get_by_role("combobox", name="Dataset").input_value() != dataset:
                    page.get_by_role("combobox", name="Dataset").click()
                    page.get_by_role("option", name=dataset, exact=True).click()
                    settle()
                page.locator('[data-testid="stSidebarNav"] a', has_text="Train live").first.click()
                page.get_by_role("heading", name="Train live").first.wait_for(timeout=30_000)
                settle()
                main = page.locator('[data-testid="stMain"]')
                for preset in presets:
                    new_run = main.locator('[data-testid="stExpander"]').filter(has_text="New run").first
                    new_run.wait_for(timeout=30_000)
                    for _ in range(20):     # a rerun after Stop collapses the expander: open it until it stays
                        if new_run.locator("details").get_attribute("open") is None:
                            new_run.locator("summary").click()
                        page.wait_for_timeout(500)
                        if main.get_by_role("button", name="Start training").is_visible():
                            break
                    main.get_by_role("combobox", name="Model").click()
                    page.get_by_role("option", name=re.compile(f"^{re.escape(preset)}:")).click()
                    settle()
                    box = main.get_by_role("spinbutton", name="Training steps")
                    box.fill(str(steps))
                    box.press("Enter")
                    settle()
                    before = set(read_probe(probe)) if probe.exists() else set()
                    server = [proc.pid, *descendants(proc.pid)]
                    others = [q for q in descendants(os.getpid()) if q not in server]   # chromium, playwright
                    cpu0 = (time.perf_counter(), process_cpu(server), process_cpu(others))
                    main.get_by_role("button", name="Start training").click()
                    main.locator('[data-testid="stProgress"]', has_text="running").wait_for(timeout=60_000)
                    page.wait_for_timeout(seconds * 1000)
                    main.get_by_role("button", name="Stop", exact=True).click()
                    main.locator('[data-testid="stProgress"]', has_text=re.compile("stopped|done")).wait_for(timeout=60_000)
                    main.get_by_role("button", name="Checkpoint (.pt)").wait_for(timeout=60_000)   # the ended run's page
                    wall = time.perf_counter() - cpu0[0]
                    cpu = {"server_cores": (process_cpu(server) - cpu0[1]) / wall,
                           "browser_cores": (process_cpu(others) - cpu0[2]) / wall}
                    settle()
                    new = [k for k in read_probe(probe) if k not in before]
                    if len(new) != 1:
                        raise RuntimeError(f"expected one new Trainer in the app's probe log, found {len(new)}")
                    records = read_probe(probe)[new[0]]
                    start = records[0]
                    out.append({"preset": preset, "start": start, **cpu,
                                **rate_of(records, start["train_config"]["batch_size"])})
            except Exception:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "app_overhead-failure.png"))
                raise
            browser.close()
    finally:
        stop_process(proc)
    return out


class BrowserFailed(Exception):
    pass


def measure_runs(args, presets: list[str], env: dict[str, str], mode: str) -> list[tuple]:
    """(preset, app result, headless result, the run's start record) per preset, in ``mode``."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="genlib-bench-") as tmp:
        work = Path(tmp)
        if mode == "browser":
            try:
                runs = browser_runs(presets, args.dataset, args.steps, args.seconds, work, env)
            except Exception as e:      # the app changed under us, a timeout...: say so, then emulate
                if args.mode == "browser":
                    raise
                server_log = (work / "server.log").read_text()[-1500:] if (work / "server.log").exists() else ""
                raise BrowserFailed(f"driving the app failed: {type(e).__name__}: {str(e)[:300]}\n{server_log}") from e
            for r in runs:
                head = run_headless(r["start"], args.seconds, work / f"headless-{r['preset']}.jsonl")
                rows.append((r["preset"], r, head, r["start"]))
            return rows
        data = genlib.load_dataset(args.dataset, download=False)
        for preset in presets:
            model = genlib.make_model(preset, data)
            cfg = app_train_config(args.steps, 64, measure.live_metric_factory(data) is not None)
            start = {"family": model.family, "model_config": model.config.to_dict(), "dataset": data.name,
                     "train_config": dataclasses.asdict(cfg), "metric_fn": cfg.metric_every > 0,
                     "device": str(genlib.pick_device("auto")), "threads": genlib.configure_threads()}
            app = run_headless(start, args.seconds, work / f"ui-{preset}.jsonl", ui_every=APP_POLL_S)
            head = run_headless(start, args.seconds, work / f"headless-{preset}.jsonl")
            rows.append((preset, app, head, start))
    return rows


def sweep(args, presets: list[str], mode: str) -> list[tuple]:
    """``measure_runs`` for each --threads value, with $GENLIB_THREADS set for the server and here."""
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        env = {"GENLIB_THREADS": str(threads)} if threads else {}
        saved = os.environ.pop("GENLIB_THREADS", None)
        os.environ.update(env)                  # the headless runs read it too (their TrainConfig.threads is 0)
        try:
            rows += measure_runs(args, presets, env, mode)
        finally:
            os.environ.pop("GENLIB_THREADS", None)
            if saved is not None:
                os.environ["GENLIB_THREADS"] = saved
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="vae,gan,dcgan")
    ap.add_argument("--seconds", type=float, default=7.0, help="wall time of each run, in the app and headless")
    ap.add_argument("--threads", default="1,2", help="torch thread counts (0 = genlib's default), via $GENLIB_THREADS")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--steps", type=int, default=3000, help="the run's 'Training steps' (sets log/sample/metric intervals)")
    ap.add_argument("--mode", choices=("auto", "browser", "emulate"), default="auto")
    args = ap.parse_args()
    presets = args.presets.split(",")
    t_start = time.perf_counter()
    print(machine("auto"))
    mode, why = args.mode, "--mode emulate" if args.mode == "emulate" else ""
    if mode == "auto":
        try:
            import playwright.sync_api  # noqa: F401
            mode = "browser" if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) else "emulate"
            why = "" if mode == "browser" else f"no chromium at {CHROMIUM} (set $CHROMIUM)"
        except ImportError:
            mode, why = "emulate", "the playwright package is missing (pip install playwright)"

    try:
        rows = sweep(args, presets, mode)
    except BrowserFailed as e:
        mode, why = "emulate", str(e)
        rows = sweep(args, presets, mode)

    if not rows:
        raise SystemExit(f"no measurement: {why}")
    print(f"# runs on {rows[0][3]['device']}; {args.dataset}, {args.steps} training steps set per run, "
          f"{args.seconds:g} s of wall time per run; threads = torch threads of the run (the probe reads them)")
    if mode == "browser":
        print("# app = the real dashboard (streamlit run via bench/app_probe.py) in headless chromium on this machine, "
              "driven by Playwright; headless = the same model config and TrainConfig on a Trainer thread, no UI")
    else:
        print(f"# EMULATION, not the real app ({why.strip()}): 'app' = the headless run beside a thread doing the "
              f"Train page's fragment work every {APP_POLL_S} s (snapshot + plotly JSON + PNG); no Streamlit, no browser")
    print("# images/s = steps x batch / the Trainer's training seconds, Start to Stop (live-metric evaluations excluded)")
    print(f"{'model':<7} {'threads':>7} {'batch':>5} {'log/sample/metric every':>24} {'app img/s':>10} {'steps':>6} "
          f"{'headless img/s':>15} {'steps':>6} {'app/headless':>12}")
    for preset, app, head, start in rows:
        tc = start["train_config"]
        every = f"{tc['log_every']}/{tc['sample_every']}/{tc['metric_every'] or '-'}"
        print(f"{preset:<7} {start['threads']:>7} {tc['batch_size']:>5} {every:>24} {app['images_per_s']:>10,.0f} "
              f"{app['steps']:>6} "
              f"{head['images_per_s']:>15,.0f} {head['steps']:>6} {app['images_per_s'] / head['images_per_s']:>11.0%}")
    print("\n# where the CPU went: cores busy = CPU seconds / wall seconds of the run (trainer thread: "
          "time.thread_time(), which leaves out torch's intra-op worker threads when threads > 1; "
          "processes: /proc, Start click to the stopped page)")
    if mode == "browser":
        print(f"{'model':<7} {'threads':>7} {'trainer (app)':>13} {'server process':>14} {'browser+driver':>14} "
              f"{'trainer (headless)':>18}")
        for preset, app, head, start in rows:
            print(f"{preset:<7} {start['threads']:>7} {app['trainer_cores']:>13.2f} {app['server_cores']:>14.2f} {app['browser_cores']:>14.2f} "
                  f"{head['trainer_cores']:>18.2f}")
    else:
        print(f"{'model':<7} {'threads':>7} {'trainer (with UI thread)':>24} {'trainer (headless)':>18}")
        for preset, app, head, start in rows:
            print(f"{preset:<7} {start['threads']:>7} {app['trainer_cores']:>24.2f} {head['trainer_cores']:>18.2f}")
    print(f"# total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
