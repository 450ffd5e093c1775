"""Every lesson of the course run as its page runs it (the lesson's own seed 0 and settings), one
table row each: lesson, effect measured, the bar, holds yes / no (the effect; then "lesson": the effect
and every further check below it), seed, seconds.

    python -m bench.lessons                    # or: python bench/lessons.py
    python -m bench.lessons --seeds 3          # each seeded lesson at seeds 0, 1, 2 (one row per run)
    python -m bench.lessons --only all-eights --only ood-latents
    python -m bench.lessons --notes            # each run's note under its row
    python -m bench.lessons --only ood-latents --set 'params={"rate": 1.0}'   # a setting changed (JSON)

One torch thread (``--threads``), as on a 2-core laptop. Lessons without a runner yet are listed as
"not yet". A run over its 60 s budget is flagged "OVER 60 s". Exit status 1 when any effect that ran
does not hold, or a lesson failed with an error.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):                       # run as a script: bench/ is on the path, the repo is not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import machine  # noqa: E402
from genlib.lessons import LESSONS, LOAD_ERRORS, format_value, lesson  # noqa: E402


def row(cells: list[str], widths: list[int]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(cells, widths))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 for the seeded lessons (default 1)")
    ap.add_argument("--only", action="append", default=[], metavar="SLUG", help="run only this lesson (repeatable)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--notes", action="store_true", help="print each run's note under its row")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="a setting of the chosen lessons, its value as JSON (repeatable)")
    args = ap.parse_args(argv)
    try:
        settings = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    except ValueError as e:
        ap.error(f"--set takes KEY=JSON: {e}")
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    for slug in args.only:
        try:
            lesson(slug)
        except KeyError as e:
            ap.error(str(e.args[0]))
    torch.set_num_threads(args.threads)
    chosen = [x for x in LESSONS if not args.only or x.slug in args.only]
    print(machine("cpu", f"bench/lessons.py --seeds {args.seeds}" + "".join(f" --set {s}" for s in args.set)))
    widths = [30, 72, 8, 5, 6, 4, 7]
    print(row(["lesson", "effect measured", "bar", "holds", "lesson", "seed", "seconds"], widths))
    print("-+-".join("-" * w for w in widths))
    bad = len(LOAD_ERRORS)
    for module, error in LOAD_ERRORS.items():
        print(row([f"genlib.lessons.{module}", f"ERROR on import: {error}"[:200], "", "no", "NO", "", ""], widths),
              flush=True)
    t_all = time.perf_counter()
    for x in chosen:
        label = f"{x.number:>2} {x.slug}"
        if not x.ready:
            print(row([label, f"not yet ({x.effect or 'no runner'})", f"{x.direction} {format_value(x.threshold)}",
                       "-", "-", "-", "-"], widths), flush=True)
            continue
        for seed in range(args.seeds if x.seeded else 1):
            try:
                r = x.run(seed=seed, **settings)
            except Exception as e:        # a failed lesson is a row, not the end of the table
                bad += 1
                print(row([label, f"ERROR {type(e).__name__}: {e}"[:200], "", "no", "NO", str(seed), ""], widths),
                      flush=True)
                traceback.print_exc(file=sys.stderr)
                continue
            bad += not r.holds
            secs = f"{r.seconds:.1f}" + (" OVER 60 s" if r.seconds > x.budget_s else "")
            main_holds = x.judge(r.effect.value)
            print(row([label, str(r.effect), r.bar, "yes" if main_holds else "NO", "yes" if r.holds else "NO",
                       str(seed), secs], widths), flush=True)
            for c in r.checks:
                cells = ["", f"  and {c.name} = {format_value(c.value)}", f"{c.direction} {format_value(c.threshold)}",
                         "yes" if c.holds else "NO", "", "", ""]
                print(row(cells, widths), flush=True)
            if args.notes:
                print(f"    note: {r.note}", flush=True)
    print(f"# {len(chosen)} lessons, {sum(not x.ready for x in chosen)} not yet; "
          f"total {time.perf_counter() - t_all:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
