"""Helpers the library's optional marketing flows share (welcome, second purchase, ...).

Not a flow (the module name starts with "_"). These flows run for days
between messages, so before each message they ask whether anyone can still
be reached: a customer who opted out everywhere ends the run (``opted_out``)
instead of collecting a skipped message per step. The send policy would
skip those messages anyway; ending the run says so in the statistics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.commands import config, customer, days, hours


def reachable(c: Any) -> bool:
    """Whether marketing consent is granted on some channel (pending or revoked is not)."""
    return any(state == "granted" for state in customer(c)["consents"].values())


def setting_days(c: Any, name: str, default: float) -> float:
    """The setting ``name`` (a number of days) in seconds."""
    return days(float(config(c, name, default)))


def setting_hours(c: Any, name: str, default: float) -> float:
    """The setting ``name`` (a number of hours) in seconds."""
    return hours(float(config(c, name, default)))


def moment(text: Any) -> datetime | None:
    """An ISO time as the facts and events carry it (``""`` or None: no time)."""
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
