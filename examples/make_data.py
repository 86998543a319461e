"""Writes the example data sets (CSV) from the same generators the tests use, so the shipped
files can always be made again and a test checks they still match:

    .venv/bin/python examples/make_data.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from helpers import known_rows  # noqa: E402

# file -> (generator kind, rows, seed, classes)
DATASETS = {
    "classes5.csv": ("logistic", 600, 21, 5),
    "linear.csv": ("linear", 600, 22, 2),
    "xor.csv": ("xor", 600, 23, 2),
    "wave.csv": ("wave", 600, 24, 2),
}


def rows_of(name: str) -> list[dict]:
    kind, n, seed, classes = DATASETS[name]
    return known_rows(kind, n, seed=seed, classes=classes)[0]


def write(name: str, folder: Path = HERE) -> Path:
    rows = rows_of(name)
    path = folder / name
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return path


if __name__ == "__main__":
    for name in DATASETS:
        print(write(name))
