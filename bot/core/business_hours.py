"""Business hours: when a person can answer, and when the next one will.

A customer handed to a person outside business hours should be told when
someone will read them, not "shortly". The ``BUSINESS_HOURS`` setting says
when people work, in the store's timezone (``STORE_TIMEZONE``)::

    Mon-Fri 09:00-18:00
    Mon-Fri 09:00-13:00,14:00-18:00; Sat 10:00-13:00

Ranges are separated by ``;``. Each names its days (``Mon``..``Sun``, a
range ``Mon-Fri``, which may wrap as ``Fri-Mon``, or a list ``Mon,Wed``),
then one or more ``HH:MM-HH:MM`` times (comma or space separated). A time
range ends after it starts on the same day; ``24:00`` ends at midnight.

Times are wall-clock times: on a day the clocks jump forward, an opening
inside the skipped hour opens at the jump; on a day they go back, at the
first of the two moments the clock shows it.

Pure: no settings, no clock of its own; the inbox flow (``rules/inbox.py``)
and the settings' validation both call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
TIME = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
DAY = re.compile(r"^([a-z]+)(?:-([a-z]+))?$")


class BusinessHoursError(ValueError):
    """The setting cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Range:
    """Open on ``days`` (0 = Monday) from minute ``start`` to minute ``end`` of the day."""

    days: frozenset[int]
    start: int
    end: int


@dataclass(frozen=True)
class NextOpening:
    """When a person will next be there, in the store's timezone.

    ``day`` is ``today``, ``tomorrow`` or ``later`` (within the week, by
    ``weekday``, 0 = Monday), so a flow can say "el lunes a las 09:00" in
    the customer's language.
    """

    at: datetime
    day: Literal["today", "tomorrow", "later"]
    weekday: int
    time: str


def _day(name: str, part: str) -> int:
    short = name[:3]
    if short not in DAY_NAMES or not FULL_DAY_NAMES[DAY_NAMES.index(short)].startswith(name):
        raise BusinessHoursError(f"{part!r}: {name!r} is not a day (Mon, Tue, ... Sun)")
    return DAY_NAMES.index(short)


def _days(text: str, part: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.lower().split(","):
        found = DAY.match(item.strip())
        if found is None:
            raise BusinessHoursError(f"{part!r}: {item.strip()!r} is not a day or a day range")
        first = _day(found.group(1), part)
        last = _day(found.group(2), part) if found.group(2) else first
        days.update((first + n) % 7 for n in range((last - first) % 7 + 1))
    return frozenset(days)


def _minutes(hour: str, minute: str, part: str) -> int:
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m):
        raise BusinessHoursError(f"{part!r}: {hour}:{minute} is not a time of day")
    return h * 60 + m


def _times(text: str, part: str) -> tuple[int, int]:
    found = TIME.match(text)
    if found is None:
        raise BusinessHoursError(f"{part!r}: {text!r} is not a time range like 09:00-18:00")
    start = _minutes(found.group(1), found.group(2), part)
    end = _minutes(found.group(3), found.group(4), part)
    if end <= start:
        raise BusinessHoursError(f"{part!r}: {text} ends before it starts")
    return start, end


@lru_cache(maxsize=32)
def parse(spec: str) -> tuple[Range, ...]:
    """The ranges of a ``BUSINESS_HOURS`` value.

    Raises:
        BusinessHoursError: naming the part that cannot be read.
    """
    ranges: list[Range] = []
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        days_text, _, times_text = part.partition(" ")
        times = [t for t in re.split(r"[,\s]+", times_text.strip()) if t]
        if not times:
            raise BusinessHoursError(f"{part!r}: days without times (e.g. Mon-Fri 09:00-18:00)")
        days = _days(days_text, part)
        ranges += [Range(days, *_times(text, part)) for text in times]
    if not ranges:
        raise BusinessHoursError("names no hours (e.g. Mon-Fri 09:00-18:00)")
    return tuple(ranges)


def is_open(ranges: tuple[Range, ...], local: datetime) -> bool:
    """Whether a person works at ``local`` (a wall-clock time in the store's timezone)."""
    minute = local.hour * 60 + local.minute
    return any(local.weekday() in r.days and r.start <= minute < r.end for r in ranges)


def _wall(at: datetime, tz: tzinfo) -> datetime:
    """What the clock in ``tz`` shows at ``at`` (through UTC: a wall time the clocks
    skip is not taken at its word)."""
    return at.astimezone(UTC).astimezone(tz).replace(tzinfo=None)


def first_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The first moment the clock in ``tz`` reads ``wall`` or later.

    A wall time the clocks skip (spring forward) gives the moment of the jump;
    one they show twice (fall back) gives the first.
    """
    earlier = wall.replace(tzinfo=tz, fold=0)
    if _wall(earlier, tz) == wall:
        return earlier
    # Skipped: read before the jump it is later than read after it (PEP 495's folds).
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # still before the jump
    high = earlier.astimezone(UTC)  # already after it
    step = timedelta(minutes=1)
    while high - low > step:  # clocks jump on a whole minute: bisect to it
        middle = low + ((high - low) // step // 2) * step
        if _wall(middle, tz) >= wall:
            high = middle
        else:
            low = middle
    return high.astimezone(tz)


def next_opening(ranges: tuple[Range, ...], now: datetime, tz: tzinfo) -> NextOpening | None:
    """When a person will next be there; None while they are (``now`` is open).

    Args:
        ranges: from :func:`parse`.
        now: an aware time.
        tz: the store's timezone.
    """
    local_now = now.astimezone(tz)
    if is_open(ranges, local_now):
        return None
    today = local_now.date()
    best: datetime | None = None
    for offset in range(8):  # a week on, the same day opens again
        date = today + timedelta(days=offset)
        for r in ranges:
            if date.weekday() not in r.days:
                continue
            wall = datetime(date.year, date.month, date.day) + timedelta(minutes=r.start)
            at = first_instant(wall, tz)
            # Compared in UTC: datetimes sharing a tzinfo compare by wall time, folds ignored.
            if at.astimezone(UTC) > now.astimezone(UTC) and (
                    best is None or at.astimezone(UTC) < best.astimezone(UTC)):
                best = at
        if best is not None:
            break
    assert best is not None, "parse() returns at least one range"
    days_away = (best.date() - today).days
    day: Literal["today", "tomorrow", "later"] = (
        "today" if days_away == 0 else "tomorrow" if days_away == 1 else "later")
    return NextOpening(at=best, day=day, weekday=best.weekday(), time=best.strftime("%H:%M"))
