"""Send windows: when a flow's marketing may reach a customer, in the customer's local time.

A store says, without code (the flow settings file, ``FLOWS_CONFIG``):
"this flow sends at 10:00", "only Monday to Friday", "not between 24 and
26 December". Quiet hours (no marketing 21:00-09:00) are one case of the
same thing: the store-wide default window. A window has four parts:

- ``at``: the one time of day the message goes out (the next 10:00 on an
  allowed day); when set, quiet hours do not apply (the store chose the hour);
- ``days``: the weekdays allowed (0 = Monday); all by default;
- ``not_between``: date ranges (both ends included) when nothing goes out;
- ``quiet``: ``(start, end)`` times of day when nothing goes out, wrapping
  midnight when ``start > end`` (21:00-09:00).

A message's window is built in layers (:class:`SendWindows`): the base
(quiet hours 21:00-09:00, or none when ``QUIET_HOURS=false``), then the
file's store-wide window, the flow's, and the step's; each layer changes
only the parts it names (:data:`WindowRule`), so a step that says
``days = "Mon-Fri"`` keeps its flow's ``at``.

Times are wall-clock times: an opening inside an hour the clocks skip
opens at the jump (``business_hours.first_instant``). Pure: the policy
(``bot.core.policy.not_before``) calls it with the customer's local time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.core.business_hours import DAY_NAMES, FULL_DAY_NAMES, first_instant

ALL_DAYS = frozenset(range(7))
QUIET_HOURS = (time(21, 0), time(9, 0))
TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_DAYS_AHEAD = 3 * 366  # a window that never opens within this sends at its end

# A layer of a window: the parts it sets (``at``, ``days``, ``not_between``,
# ``quiet``), with the types of :class:`SendWindow`; ``at``/``quiet`` None: none.
WindowRule = Mapping[str, Any]


@dataclass(frozen=True)
class SendWindow:
    """When a message may go out; the default allows any moment."""

    at: time | None = None
    days: frozenset[int] = ALL_DAYS
    not_between: tuple[tuple[date, date], ...] = ()
    quiet: tuple[time, time] | None = None

    def with_rule(self, rule: WindowRule) -> SendWindow:
        """This window with the parts ``rule`` sets replaced."""
        return replace(self, **rule) if rule else self

    @property
    def always(self) -> bool:
        """Whether the window never holds a message."""
        return (self.at is None and self.days == ALL_DAYS and not self.not_between
                and self.quiet is None)


def _blocked_until(window: SendWindow, day: date) -> date | None:
    """The last day of a do-not-disturb range holding ``day``, if one does."""
    ends = [end for start, end in window.not_between if start <= day <= end]
    return max(ends) if ends else None


def _in_quiet(quiet: tuple[time, time], moment: time) -> bool:
    start, end = quiet
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def next_allowed(window: SendWindow, local: datetime) -> datetime:
    """The first moment at or after ``local`` (an aware local time) the window allows.

    ``local`` itself when it is allowed; otherwise an aware time in
    ``local``'s timezone.
    """
    zone = local.tzinfo
    assert zone is not None, "next_allowed needs an aware local time"
    wall = local.replace(tzinfo=None, fold=0)
    start = wall
    for _ in range(MAX_DAYS_AHEAD):
        day = wall.date()
        midnight = datetime.combine(day, time(0))
        blocked = _blocked_until(window, day)
        if blocked is not None:
            wall = datetime.combine(blocked + timedelta(days=1), time(0))
            continue
        if day.weekday() not in window.days:
            wall = midnight + timedelta(days=1)
            continue
        if window.at is not None:
            if wall.time() <= window.at:
                wall = datetime.combine(day, window.at)
                break
            wall = midnight + timedelta(days=1)
            continue
        if window.quiet is not None and _in_quiet(window.quiet, wall.time()):
            end = window.quiet[1]
            wall = datetime.combine(day, end) if end > wall.time() else midnight + timedelta(days=1)
            continue
        break
    if wall == start:
        return local
    return first_instant(wall, zone)


@dataclass(frozen=True)
class SendWindows:
    """The file's windows: store-wide, per flow and per (flow, step) layers."""

    store: WindowRule = field(default_factory=dict)
    flows: Mapping[str, WindowRule] = field(default_factory=dict)
    steps: Mapping[tuple[str, str], WindowRule] = field(default_factory=dict)

    def window(self, base: SendWindow, flow: str | None, step: str | None) -> SendWindow:
        """The window of a message of ``flow`` at ``step``, over ``base`` (quiet hours)."""
        window = base.with_rule(self.store)
        if flow:
            window = window.with_rule(self.flows.get(flow, {}))
            if step:
                window = window.with_rule(self.steps.get((flow, step), {}))
        return window


# ------------------------------------------------------------------- parsing


class WindowError(ValueError):
    """A part of a window cannot be read; the message says what and gives an example."""


def parse_time(text: str) -> time:
    """``"10:00"`` -> 10:00."""
    found = TIME.match(text.strip())
    hour, minute = (int(found.group(1)), int(found.group(2))) if found else (99, 99)
    if hour > 23 or minute > 59:
        raise WindowError(f"{text!r} is not a time of day like 10:00")
    return time(hour, minute)


def _day(name: str, text: str) -> int:
    short = name[:3]
    if short not in DAY_NAMES or not FULL_DAY_NAMES[DAY_NAMES.index(short)].startswith(name):
        raise WindowError(f"{text!r}: {name!r} is not a day (Mon, Tue, ... Sun)")
    return DAY_NAMES.index(short)


def parse_days(text: str) -> frozenset[int]:
    """``"Mon-Fri"``, ``"Sat,Sun"``, ``"Fri-Mon"`` (wrapping) -> weekdays (0 = Monday)."""
    days: set[int] = set()
    for item in (part.strip().lower() for part in text.split(",")):
        first, _, last = item.partition("-")
        if not first:
            raise WindowError(f"{text!r} is not a list of days like Mon-Fri or Sat,Sun")
        start = _day(first.strip(), text)
        end = _day(last.strip(), text) if last else start
        days.update((start + n) % 7 for n in range((end - start) % 7 + 1))
    return frozenset(days)


def parse_quiet(text: str) -> tuple[time, time]:
    """``"21:00-09:00"`` -> (21:00, 09:00); it may wrap midnight, not be empty."""
    start, dash, end = text.partition("-")
    if not (dash and TIME.match(start.strip()) and TIME.match(end.strip())):
        raise WindowError(f"{text!r} is not a time range like 21:00-09:00")
    quiet = parse_time(start), parse_time(end)
    if quiet[0] == quiet[1]:
        raise WindowError(f"{text!r} is empty: it starts and ends at the same time")
    return quiet


def parse_date(value: object) -> date:
    """A TOML date (``2026-12-24``) or the same as text."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise WindowError(f"{value!r} is not a date like 2026-12-24")


def parse_ranges(value: object) -> tuple[tuple[date, date], ...]:
    """``[["2026-12-24", "2026-12-26"], ...]`` -> date ranges, each end included."""
    if not isinstance(value, list | tuple):
        raise WindowError("must be a list of [first, last] date pairs, "
                          'e.g. [["2026-12-24", "2026-12-26"]]')
    ranges = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise WindowError(f"{pair!r} is not a [first, last] date pair, "
                              'e.g. ["2026-12-24", "2026-12-26"]')
        first, last = parse_date(pair[0]), parse_date(pair[1])
        if last < first:
            raise WindowError(f"{first}..{last} ends before it starts")
        ranges.append((first, last))
    return tuple(ranges)
