"""``python -m genlib.pretrained build|evaluate|list|table`` (the one place this package prints)."""
from __future__ import annotations

import sys
import time

from ..checkpoint import load_checkpoint
from ..files import PRETRAINED_DIR
from ..train import Event
from .build import build, reevaluate
from .recipes import BY_NAME, RECIPES, Recipe
from .report import report


def _select(only: list[str] | None, dataset: str | None) -> list[Recipe]:
    unknown = [n for n in only or [] if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [r for r in RECIPES if (not only or r.name in only) and (dataset is None or r.dataset == dataset)]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m genlib.pretrained",
                                description="Rebuild, re-measure or list the shipped pretrained models.")
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in ("build", "evaluate", "list", "table"):
        s = sub.add_parser(cmd)
        s.add_argument("--only", action="append", default=None, metavar="NAME", help="this model (repeatable)")
        s.add_argument("--dataset", default=None, help="only this dataset's models")
        s.add_argument("--data-dir", default=None)
        if cmd == "build":
            s.add_argument("--threads", type=int, default=0, help="CPU threads (0 = genlib's default)")
            s.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
            s.add_argument("--out-dir", default=None, help=f"default {PRETRAINED_DIR}")
            s.add_argument("--no-eval", action="store_true", help="skip the metrics on the card")
    args = p.parse_args(argv)
    recipes = _select(args.only, args.dataset)
    if args.command == "table":
        print(report(), end="")
        return 0
    if args.command == "list":
        for r in recipes:
            path = PRETRAINED_DIR / f"{r.name}.pt"
            size = f"{path.stat().st_size / 2**20:6.2f} MB" if path.is_file() else "   (not built)"
            print(f"{r.name:28s} {r.preset:9s} {r.steps:>6} steps  {size}")
        return 0
    for r in recipes:
        if args.command == "evaluate":
            print(json.dumps({r.name: reevaluate(r, root=args.data_dir)}, indent=2))
            continue
        def show(ev: Event, r: Recipe = r, shown: list[int] = [-1]) -> None:
            if ev.kind == "progress" and ev.step * 50 // r.steps != shown[0]:   # about 50 lines per model
                shown[0] = ev.step * 50 // r.steps
                losses = "  ".join(f"{k} {v:.4g}" for k, v in ev.losses.items())
                print(f"{r.name}: step {ev.step}/{r.steps}  {losses}  {ev.images_per_s:,.0f} img/s",
                      file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        path = build(r, out_dir=args.out_dir, root=args.data_dir, device=args.device, threads=args.threads,
                     evaluate=not args.no_eval, callbacks=[show])
        card = load_checkpoint(path).card
        print(json.dumps({"path": str(path), "bytes": path.stat().st_size,
                          "total_s": round(time.perf_counter() - t0, 1), **card}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
