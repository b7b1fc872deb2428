"""``python -m stress [--short] [--only PART ...]``: every part, one table.

Parts run one after the other (the machine's cores are the measuring
instrument), each as ``stress.<part>.run(short) -> list[Row]``. A part whose
module is missing, or that fails outright, gets a row saying so instead of
stopping the others. The exit status is 1 when any figure misses its target.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import traceback

from stress.report import Row, failed, print_table

PARTS = ("crash", "faults", "load", "fuzz", "consent", "security")


def run_part(name: str, short: bool) -> list[Row]:
    """One part's rows; a missing module or a crash of the part is a row too."""
    try:
        module = importlib.import_module(f"stress.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"stress.{name}":
            raise
        return [Row(f"{name}: not available", f"module stress/{name}.py missing")]
    started = time.monotonic()
    try:
        rows: list[Row] = module.run(short)
    except Exception as error:  # a broken part must not hide the others' figures
        traceback.print_exc()
        return [Row(f"{name}: the part itself failed", f"{type(error).__name__}: {error}"[:120],
                    "runs", False)]
    print(f"# {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__)
    parser.add_argument("--short", action="store_true",
                        help="the short versions (those inside make test)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="run only these parts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[Row] = []
    for name in args.only:
        print(f"# {name} ...", file=sys.stderr, flush=True)
        rows += run_part(name, args.short)
    print_table(rows)
    return 1 if failed(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
