"""The one figures table every stress part reports into.

Each part (crash, faults, load, fuzz, consent, security) exposes
``run(short: bool) -> list[Row]``; ``python -m stress`` concatenates the rows
and prints them with :func:`print_table`, so the README table is a copy of
one run's output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Row:
    """One figure: what was measured, its value, what it must be, and whether it is.

    ``figure`` and ``target`` are display strings ("0", "12.3 ms", "<= 10 %")
    so parts can report counts, latencies and ratios alike; ``ok`` is the
    verdict the part computed (None: informational, no target).
    """

    name: str
    figure: str
    target: str = ""
    ok: bool | None = None


def verdict(ok: bool | None) -> str:
    """The cell shown in the table's last column."""
    if ok is None:
        return "-"
    return "ok" if ok else "FAIL"


def print_table(rows: Iterable[Row], out: TextIO = sys.stdout) -> None:
    """Print rows as a Markdown table (pasteable into the README as is)."""
    rows = list(rows)
    header = ("Figure", "Value", "Target", "")
    cells = [header] + [(r.name, r.figure, r.target, verdict(r.ok)) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]

    def line(c: tuple[str, str, str, str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |"

    out.write(line(header) + "\n")
    out.write("|" + "|".join("-" * (w + 2) for w in widths) + "|\n")
    for c in cells[1:]:
        out.write(line(c) + "\n")
    out.flush()


def failed(rows: Iterable[Row]) -> list[Row]:
    """Rows whose verdict is a failure (the exit status of ``python -m stress``)."""
    return [r for r in rows if r.ok is False]
