"""Scheduled waits, kept inside the customer's document.

A wait is ``{"id", "due", "flow", "run", "event"}``. Keeping a customer's
waits in their own document means scheduling one costs no extra write (it is
committed with the decision that made it), firing one is part of the same
leased decision (so it fires once), and a wait that belongs to a run that
has ended is simply dropped. ``next_due`` (indexed) is the earliest due time,
so the scheduler finds due customers with one range query and never looks at
the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.types import Doc


def schedule(doc: Doc, wait_id: str, due: datetime, event: dict[str, Any],
             flow: str | None = None, run: str | None = None) -> None:
    """Add a wait, replacing any with the same id."""
    waits = [w for w in doc.get("waits", []) if w["id"] != wait_id]
    waits.append({"id": wait_id, "due": due, "flow": flow, "run": run, "event": event})
    doc["waits"] = waits
    refresh(doc)


def cancel(doc: Doc, wait_id: str) -> None:
    doc["waits"] = [w for w in doc.get("waits", []) if w["id"] != wait_id]
    refresh(doc)


def cancel_run(doc: Doc, run: str) -> None:
    """Drop every wait of a flow run that ended."""
    doc["waits"] = [w for w in doc.get("waits", []) if w.get("run") != run]
    refresh(doc)


def take_due(doc: Doc, now: datetime) -> list[Doc]:
    """Remove and return the waits due at ``now``, earliest first."""
    due = sorted((w for w in doc.get("waits", []) if w["due"] <= now),
                 key=lambda w: (w["due"], w["id"]))
    if due:
        taken = {w["id"] for w in due}
        doc["waits"] = [w for w in doc["waits"] if w["id"] not in taken]
        refresh(doc)
    return due


def refresh(doc: Doc) -> None:
    """Recompute ``next_due`` from the waits."""
    due = min((w["due"] for w in doc.get("waits", [])), default=None)
    if due is None:
        doc.pop("next_due", None)  # absent, not null: the sparse index skips it
    else:
        doc["next_due"] = due
