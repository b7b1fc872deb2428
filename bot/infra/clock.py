"""Time, injected: everything the service schedules reads this clock.

``SystemClock`` is wall time. ``VirtualClock`` starts at the wall time and
moves only when told (``CLOCK=virtual``, ``POST /admin/clock/advance``), so
tests and demos can cross days of waits without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


def to_millis(moment: datetime) -> datetime:
    """``moment`` truncated to the millisecond, as MongoDB stores times.

    Every time the service compares with a stored one must have the same
    precision, or a due time read back from the database can sit a few
    microseconds before the instant it stands for.
    """
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """Wall-clock time, timezone-aware UTC, to the millisecond."""
    return to_millis(datetime.now(UTC))


class Clock(Protocol):
    """Where the service reads the time."""

    virtual: bool

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    virtual = False

    def now(self) -> datetime:
        return utcnow()


class VirtualClock:
    """A clock that moves only when advanced; never goes backwards."""

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = to_millis((start or utcnow()).astimezone(UTC))

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now = to_millis(self._now + timedelta(seconds=seconds))
        return self._now

    def move_to(self, when: datetime) -> datetime:
        """Move forward to ``when``; an earlier time leaves the clock where it is."""
        self._now = max(self._now, to_millis(when.astimezone(UTC)))
        return self._now


def make_clock(kind: str) -> SystemClock | VirtualClock:
    """The clock named by ``CLOCK``."""
    return VirtualClock() if kind == "virtual" else SystemClock()
