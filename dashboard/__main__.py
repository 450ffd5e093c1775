"""``python -m dashboard [streamlit options]``: the same as ``streamlit run dashboard/app.py [options]``,
but torch, genlib and the dashboard's modules are imported on a thread while the server starts and
the browser loads the page, instead of inside the first page's script run (torch's import alone is
1.5 s on an idle core, 4-6 s on this loaded 2-core box: bench/latency.py --breakdown).

``python -m dashboard run dashboard/app.py …`` (what ``streamlit run`` takes) works too.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def preload() -> None:
    """Import what the first page needs and warm torch's lazy paths with one checkpoint load."""
    import torch  # noqa: F401  (dashboard/__init__ has set the OpenMP wait policy before this)

    import genlib
    from dashboard import startup

    startup.skip_dynamo_marking()
    from dashboard import context, figures, images, measure, resources, session, sidebar, ui  # noqa: F401
    from genlib.pretrained import list_pretrained

    entries = list_pretrained(context.default_dataset(), root=resources.PRETRAINED_ROOT)
    if entries:
        genlib.load_checkpoint(entries[0].path)       # the weights-only unpickler, nn init: first-call costs


def _preload_quietly() -> None:
    try:
        preload()
    except Exception as e:                            # the page run will meet (and show) the same problem
        print(f"dashboard preload: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "run":
        args = ["run", str(APP), *args]
    threading.Thread(target=_preload_quietly, name="genlib-preload", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *args]
    cli.main()


if __name__ == "__main__":
    main()
