"""The backtest's table: per flow, what was recorded next to what each side would do."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from bot.types import Doc

Column = tuple[str, Doc | None]  # a heading, and a flow's figures (None: not in that side)


def _sent(figures: Doc) -> int:
    return sum(int(step.get("sent", 0)) for step in figures.get("steps", []))


def _ended(outcome: str, figures: Doc) -> int:
    return int(figures["runs"]["ended"].get(outcome, 0))


def _revenue(currency: str, figures: Doc) -> str:
    return str(figures["conversions"]["revenue"].get(currency, "0"))


def _rows(columns: list[Column]) -> list[tuple[str, list[str]]]:
    """Label -> one cell per column, for every figure any column has."""
    def cells(read: Callable[[Doc], object]) -> list[str]:
        return ["" if figures is None else str(read(figures)) for _, figures in columns]

    present = [figures for _, figures in columns if figures is not None]
    rows = [("runs started", cells(lambda f: f["runs"]["started"]))]
    outcomes = sorted({name for f in present for name in f["runs"]["ended"]})
    rows += [(f"  ended {name}", cells(partial(_ended, name))) for name in outcomes]
    rows.append(("messages sent", cells(_sent)))
    steps = list(dict.fromkeys(step["step"] for f in present for step in f["steps"]))
    for name in steps:
        def sent(f: Doc, n: str = name) -> int:
            return next((int(s.get("sent", 0)) for s in f["steps"] if s["step"] == n), 0)

        def skipped(f: Doc, n: str = name) -> int:
            return next((sum(s.get("skipped", {}).values()) for s in f["steps"]
                         if s["step"] == n), 0)

        if any(sent(f) for f in present):
            rows.append((f"  {name}: sent", cells(sent)))
        if any(skipped(f) for f in present):
            rows.append((f"  {name}: skipped", cells(skipped)))
    rows.append(("customers messaged", cells(lambda f: f.get("customers", "-"))))
    rows.append(("marketing messages", cells(lambda f: f.get("marketing", "-"))))
    rows.append(("orders attributed", cells(lambda f: f["conversions"]["orders"])))
    currencies = sorted({c for f in present for c in f["conversions"]["revenue"]})
    rows += [(f"revenue {c}", cells(partial(_revenue, c))) for c in currencies]
    return rows


def table(flow: str, columns: list[Column]) -> str:
    """One flow's figures side by side, as plain aligned text."""
    rows = _rows(columns)
    width = max(len(label) for label, _ in rows) + 2
    widths = [max(len(heading), *(len(cells[i]) for _, cells in rows)) + 2
              for i, (heading, _) in enumerate(columns)]
    lines = [flow.ljust(width) + "".join(h.rjust(w) for (h, _), w in zip(columns, widths,
                                                                         strict=True))]
    lines += [label.ljust(width) + "".join(c.rjust(w) for c, w in zip(cells, widths,
                                                                      strict=True))
              for label, cells in rows]
    return "\n".join(lines)


def samples(columns: list[Column]) -> str:
    """What the replayed sides' steps said, for the steps whose texts differ between them
    (all of them when one side was replayed)."""
    sides = [(heading, figures.get("samples", {})) for heading, figures in columns if figures]
    steps = list(dict.fromkeys(step for _, said in sides for step in said))
    lines = []
    for step in steps:
        texts = [sorted(text[:100] for text in said.get(step, [])) for _, said in sides]
        if len(sides) > 1 and all(one == texts[0] for one in texts):
            continue
        for (heading, _), said in zip(sides, texts, strict=True):
            lines += [f"  {step} ({heading}): {text!r}" for text in said]
    return "\n".join(lines)


def render(answer: Doc) -> str:
    """The whole report: each flow's table and samples, then the assumptions."""
    out = [f"Backtest {answer['from']} .. {answer['to']} (history replayed from "
           f"{answer['since']}; {answer['inputs']} inputs, {answer['customers']} customers)", ""]
    for name, sides in answer["flows"].items():
        columns: list[Column] = [("recorded", sides["recorded"])]
        for side in ("live", "tree"):
            if side in sides:
                figures = sides[side]
                label = "live version" if side == "live" else "working tree"
                version = figures.get("version") if figures else None
                columns.append((f"{label} {version or ''}".strip(), figures))
        out += [table(name, columns), samples(columns[1:]), ""]
    for side, meta in answer["sides"].items():
        if meta["failed"] or meta["stuck_waits"]:
            out.append(f"{side}: {meta['failed']} inputs failed in rules "
                       f"({'; '.join(meta['failures'])}), {meta['stuck_waits']} waits stuck")
    out.append("Assumptions: " + "; ".join(answer["assumptions"]) + ".")
    return "\n".join(line for line in out if line is not None)
