"""Evaluations into a table file, as ``python -m genlib compare --out`` writes them."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any


def write_table(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """One row per evaluation into .csv (lists as JSON text in their cell) or .json (a list of rows)."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"table must end in .csv or .json, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=2))
        return path
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return path
