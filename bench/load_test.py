"""A class on one server (issue 18): N simulated students use the dashboard at once, each in its own
session, and start a short run that trains in the server's pool (genlib.train.pool).

    python bench/load_test.py [--students 10,30] [--steps 150] [--preset vae] [--poll 2] [--workers 0]

Each student is a thread driving Streamlit's AppTest (the app's own script, run by Streamlit's
script runner in this process, one session per student, as the server runs them; no browser or
websocket): open the app on digits with its own ?sid, go to Train live, pick the preset, set the
steps, press Start training, then redraw the Train page every --poll s until its run has ended
(the page's live fragment redraws once a second in a browser; a full rerun here costs more).

Reported per N: render times of the live Train page while runs train (each redraw: median / p95 /
max) and of opening the app and starting a run, each with its latency (the render plus its wait for
other sessions' renders: AppTest instances must take turns, see below), each run's wait in the queue
and total time from the click, peak memory (this process plus the pool's workers: anonymous
resident memory, /proc RssAnon; VmRSS adds the shared torch library pages), and errors (an
exception or st.error on any render, a run that did not end 'done').
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import threading
import time

from common import REPO, machine, percentile

os.environ.setdefault("GENLIB_DASHBOARD_STATE_DIR", "/tmp/genlib-load-test-sessions")

from streamlit.testing.v1 import AppTest  # noqa: E402

from genlib.train import pool as gpool  # noqa: E402

APP = str(REPO / "dashboard" / "app.py")

# AppTest is built for one test at a time: concurrent instances share Streamlit's runtime singleton
# ("Runtime hasn't been created!") and CPython 3.11's AST constructor ("recursion depth mismatch").
# So the students' page runs take turns (the runs they start train concurrently in the pool). A real
# server runs sessions' scripts on threads that the GIL serialises much the same way; "latency"
# below is a render plus the wait for the other sessions' renders ahead of it.
_RENDER_LOCK = threading.Lock()


class MemorySampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_anon = self.peak_rss = 0.0
        self.done = False

    def run(self) -> None:
        while not self.done:
            pool = gpool._SHARED
            pids = [None] + ([p for p in pool.status()["pids"] if p] if pool is not None else [])
            anon = sum(gpool._rss_mb(p) or 0.0 for p in pids)
            rss = sum(gpool._rss_mb(p, "VmRSS") or 0.0 for p in pids)
            self.peak_anon, self.peak_rss = max(self.peak_anon, anon), max(self.peak_rss, rss)
            time.sleep(0.2)


def student(i: int, args, out: dict, lock: threading.Lock) -> None:
    renders, latencies, errors = [], [], []

    def render(at: AppTest, action=None, kind: str = "poll") -> AppTest:
        asked = time.perf_counter()
        with _RENDER_LOCK:
            t0 = time.perf_counter()
            (action or at).run()
            t1 = time.perf_counter()
        renders.append((kind, t1 - t0))
        latencies.append((kind, t1 - asked))
        if at.exception:
            errors.append(f"student {i}: exception: {at.exception[0].value[:200]}")
        for e in at.error:
            errors.append(f"student {i}: error: {e.value[:200]}")
        return at

    run = None
    try:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update({"dataset": "digits", "sid": f"loadtest{i:03d}{secrets.token_hex(4)}"})
        render(at, kind="open")
        at.switch_page("app_pages/train.py")
        render(at, kind="open")
        at.selectbox(key="tr_preset").set_value(args.preset)
        render(at, kind="action")
        at.number_input(key="tr_steps").set_value(args.steps)
        at.select_slider(key="tr_batch").set_value(64)
        render(at, at.button(key="tr_start").click(), kind="action")
        runs = at.session_state["genlib_runs"]
        run = list(runs.runs.values())[-1] if runs.runs else None
        while run is not None and run.alive:
            time.sleep(args.poll)
            render(at)
    except Exception as e:   # a student whose session broke is an error, not the end of the test
        errors.append(f"student {i}: {type(e).__name__}: {e}")
    with lock:
        out["renders"].extend(renders)
        out["latencies"].extend(latencies)
        out["errors"].extend(errors)
        if run is not None:
            t = run.trainer
            remote = isinstance(t, gpool.RemoteRun)
            out["runs"].append({"state": t.state,
                                "wait": ((t.started_at or t.ended_at) - t.submitted_at) if remote else 0.0,
                                "total": (t.ended_at - t.submitted_at) if remote and t.ended_at else float("nan"),
                                "remote": remote})
            if t.state != "done":
                out["errors"].append(f"student {i}: run ended {t.state}: {run.snapshot().message}")
        else:
            out["errors"].append(f"student {i}: no run started")


def load(n: int, args) -> None:
    out = {"renders": [], "latencies": [], "errors": [], "runs": []}
    lock = threading.Lock()
    mem = MemorySampler()
    mem.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=student, args=(i, args, out, lock)) for i in range(n)]
    for t in threads:
        t.start()
        time.sleep(args.stagger)
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    mem.done = True
    def stats(key: str, kinds: tuple[str, ...]) -> str:
        v = [1000 * t for k, t in out[key] if k in kinds] or [float("nan")]
        return f"{statistics.median(v):,.0f} / {percentile(v, 0.95):,.0f} / {max(v):,.0f}"

    waits = [r["wait"] for r in out["runs"]] or [float("nan")]
    totals = [r["total"] for r in out["runs"]] or [float("nan")]
    pool = gpool._SHARED
    print(f"\n## {n} students: {args.preset} on digits, {args.steps} steps each, "
          + (f"pool of {pool.size} worker(s)" if pool else "on the app's threads") + f", page redrawn every {args.poll:g} s")
    print("| students | runs done (in the pool) | live-page render ms median / p95 / max | its latency ms | "
          "open + start render ms | its latency ms | wait s median / p95 / max | total s median / max | "
          "all done after s | peak memory MB (anon / VmRSS) | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {n} | {sum(r['state'] == 'done' for r in out['runs'])} / {n} ({sum(r['remote'] for r in out['runs'])}) | "
          f"{stats('renders', ('poll',))} | {stats('latencies', ('poll',))} | "
          f"{stats('renders', ('open', 'action'))} | {stats('latencies', ('open', 'action'))} | "
          f"{statistics.median(waits):.1f} / {percentile(waits, 0.95):.1f} / {max(waits):.1f} | "
          f"{statistics.median(totals):.1f} / {max(totals):.1f} | {wall:.0f} | "
          f"{mem.peak_anon:,.0f} / {mem.peak_rss:,.0f} | {len(out['errors'])} |")
    for e in out["errors"][:8]:
        print(f"  {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", default="10,30")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--preset", default="vae")
    ap.add_argument("--poll", type=float, default=2.0, help="seconds between a student's page redraws")
    ap.add_argument("--stagger", type=float, default=0.2, help="seconds between students arriving")
    ap.add_argument("--workers", type=int, default=0, help="0 = the server's default (GENLIB_POOL_WORKERS)")
    args = ap.parse_args()
    if args.workers:
        os.environ["GENLIB_POOL_WORKERS"] = str(args.workers)
    os.environ.setdefault("GENLIB_POOL_RUNS_PER_SESSION", "1")
    from dashboard import session
    pool = gpool.shared_pool() if getattr(session, "USE_POOL", False) else None   # else: runs on the app's threads
    where = f"pool of {pool.size} worker(s), 1 torch thread each" if pool else "runs on threads of the app"
    print(machine("cpu", extra=f"{where}; GENLIB_THREADS {os.environ.get('GENLIB_THREADS', 'unset')}"))
    for n in [int(v) for v in args.students.split(",") if v]:
        load(n, args)
    if pool is not None:
        pool.close()


if __name__ == "__main__":
    main()
