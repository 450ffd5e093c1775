"""The training pool under load (issue 18), without Streamlit: genlib.train.pool as the dashboard's
server uses it.

    python bench/pool_load.py [--students 10,30] [--steps 150] [--preset vae] [--dataset digits]
                              [--workers 0] [--speed-steps 1500] [--poll 1.0]

1. speed: one run trained headless (a Trainer on this process's thread, nothing else running) against
   the same run in a pool worker while this process polls its snapshot at the Train page's interval
   (1 s); images/s from each run's own training clock, both at 1 torch thread, alternating headless
   and pool --tries times (the machine's load drifts), the ratio of the medians.
2. students: N simulated students at once, each a thread that submits one short run (its own owner
   id) and polls its snapshot every --poll s until it ends, like an open Train page. Reported: the
   time of each snapshot() call (what a page render pays to read its run: median / p95 / max), each
   run's wait in the queue and total time, the peak memory of this process plus every worker
   (anonymous resident memory, sampled every 0.2 s: /proc RssAnon; VmRSS adds the shared library
   pages each torch process maps), and errors (refusals, runs that did not end 'done').

This measures the pool and its handles; the page renders of a real Streamlit server with N
sessions are what bench/load_test.py adds once the dashboard trains through the pool.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

from common import machine, percentile

import genlib
import torch
from genlib.train.pool import DataRef, Pool, PoolLimitError, RunSpec, _rss_mb, default_workers


def spec(data, preset: str, steps: int, seed: int = 0, dataset: str = "digits") -> RunSpec:
    torch.manual_seed(seed)
    model = genlib.make_model(preset, data)
    cfg = genlib.TrainConfig(steps=steps, seed=seed, threads=1)
    return RunSpec.new(model, data, cfg, ref=DataRef(dataset))


def headless_rate(data, preset: str, steps: int) -> float:
    torch.manual_seed(0)
    t = genlib.Trainer(genlib.make_model(preset, data), data, genlib.TrainConfig(steps=steps, seed=0, threads=1))
    t.run()
    return t.step * t.batch_size / t.elapsed


def pool_rate(pool: Pool, data, preset: str, steps: int, poll: float, dataset: str) -> float:
    run = pool.submit(spec(data, preset, steps, dataset=dataset), owner="speed")
    while run.is_alive:
        run.snapshot()
        time.sleep(poll)
    snap = run.snapshot()
    assert snap.state == "done", snap.message
    return snap.step * snap.batch_size / snap.elapsed


def speed(pool: Pool, data, args) -> None:
    torch.set_num_threads(1)
    head, pooled = [], []
    for _ in range(args.tries):
        head.append(headless_rate(data, args.preset, args.speed_steps))
        pooled.append(pool_rate(pool, data, args.preset, args.speed_steps, args.poll, args.dataset))
    h, p = statistics.median(head), statistics.median(pooled)
    print(f"\n## one run: {args.preset} on {args.dataset}, {args.speed_steps} steps, 1 torch thread")
    print("| | images/s (each try) | median |")
    print("|---|---|---|")
    print(f"| headless (Trainer, this process) | {', '.join(f'{v:,.0f}' for v in head)} | {h:,.0f} |")
    print(f"| pool worker, snapshot polled every {args.poll:g} s | {', '.join(f'{v:,.0f}' for v in pooled)} | "
          f"{p:,.0f} |")
    print(f"pool / headless (medians): {100 * p / h:.0f} %")


class MemorySampler(threading.Thread):
    def __init__(self, pool: Pool) -> None:
        super().__init__(daemon=True)
        self.pool, self.peak_anon, self.peak_rss, self.done = pool, 0.0, 0.0, False

    def run(self) -> None:
        while not self.done:
            pids = [None] + [p for p in self.pool.status()["pids"] if p]
            anon = sum(_rss_mb(p) or 0.0 for p in pids)
            rss = sum(_rss_mb(p, "VmRSS") or 0.0 for p in pids)
            self.peak_anon, self.peak_rss = max(self.peak_anon, anon), max(self.peak_rss, rss)
            time.sleep(0.2)


def students(pool: Pool, data, n: int, args) -> None:
    reads: list[float] = []
    rows: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()
    specs = [spec(data, args.preset, args.steps, seed=i, dataset=args.dataset) for i in range(n)]

    def student(i: int) -> None:
        try:
            run = pool.submit(specs[i], owner=f"student-{i}", name=f"s{i}")
        except PoolLimitError as e:
            with lock:
                errors.append(f"student {i}: refused: {e}")
            return
        mine, places = [], []
        while True:
            t0 = time.perf_counter()
            snap = run.snapshot()
            mine.append(time.perf_counter() - t0)
            if snap.queue_place is not None:
                places.append(snap.queue_place)
            if not run.is_alive:
                break
            time.sleep(args.poll)
        with lock:
            reads.extend(mine)
            rows.append({"wait": (run.started_at or run.ended_at) - run.submitted_at,
                         "total": run.ended_at - run.submitted_at, "state": run.state,
                         "first_place": places[0] if places else 0})
            if run.state != "done":
                errors.append(f"student {i}: {run.state}: {run.message}")

    mem = MemorySampler(pool)
    mem.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=student, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    mem.done = True
    waits, totals = [r["wait"] for r in rows], [r["total"] for r in rows]
    print(f"\n## {n} students at once: {args.preset} on {args.dataset}, {args.steps} steps each, "
          f"{pool.size} worker(s)")
    print("| students | runs done | snapshot() ms median / p95 / max | wait s median / p95 / max | "
          "total s median / max | all done after s | peak memory MB (anon / VmRSS, this + workers) | errors |")
    print("|---|---|---|---|---|---|---|---|")
    ms = [1000 * v for v in reads]
    print(f"| {n} | {sum(r['state'] == 'done' for r in rows)} / {n} | "
          f"{statistics.median(ms):.2f} / {percentile(ms, 0.95):.2f} / {max(ms):.2f} | "
          f"{statistics.median(waits):.1f} / {percentile(waits, 0.95):.1f} / {max(waits):.1f} | "
          f"{statistics.median(totals):.1f} / {max(totals):.1f} | {wall:.1f} | "
          f"{mem.peak_anon:,.0f} / {mem.peak_rss:,.0f} | {len(errors)} |")
    for e in errors[:5]:
        print(f"  {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", default="10,30")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--preset", default="vae")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--workers", type=int, default=0, help="0 = genlib.train.pool.default_workers()")
    ap.add_argument("--speed-steps", type=int, default=1500, help="0 skips the speed part")
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--tries", type=int, default=3, help="headless / pool pairs of the speed part")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = genlib.load_dataset(args.dataset)
    workers = args.workers or default_workers()
    print(machine("cpu", extra=f"pool of {workers} worker(s), 1 torch thread each"))
    with Pool(workers, max_runs_per_owner=1) as pool:
        warm = pool.submit(spec(data, args.preset, 5, dataset=args.dataset), owner="warm-up")
        warm.wait()                                  # the workers have started and imported torch
        if args.speed_steps:
            speed(pool, data, args)
        for n in [int(v) for v in args.students.split(",") if v]:
            students(pool, data, n, args)


if __name__ == "__main__":
    main()
