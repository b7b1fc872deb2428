"""Send windows (bot/core/send_windows.py) and the policy's use of them: pure tests.

When a marketing message may go out: at a time of day, on some weekdays,
not between dates, outside quiet hours; in the customer's local time,
through daylight-saving changes, layered store -> flow -> step.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.core.policy import SendPolicy, not_before, send_window
from bot.core.send_windows import (
    QUIET_HOURS,
    SendWindow,
    SendWindows,
    WindowError,
    next_allowed,
    parse_days,
    parse_quiet,
    parse_ranges,
    parse_time,
)

BA = ZoneInfo("America/Argentina/Buenos_Aires")
NY = ZoneInfo("America/New_York")
MADRID = ZoneInfo("Europe/Madrid")
QUIET = SendWindow(quiet=QUIET_HOURS)
AT_TEN = SendWindow(at=time(10, 0))
WEEKDAYS = frozenset(range(5))
CHRISTMAS = ((date(2026, 12, 24), date(2026, 12, 26)),)


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    year, month, day, hour, minute = (*parts, 0, 0)[:5]
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold)


# 2026-01-15 is a Thursday; 2026-01-17 a Saturday.
CASES = [
    ("no window: at once", SendWindow(), (2026, 1, 15, 23, 30), (2026, 1, 15, 23, 30)),
    ("quiet hours: day time goes", QUIET, (2026, 1, 15, 12, 0), (2026, 1, 15, 12, 0)),
    ("quiet hours: 09:00 goes", QUIET, (2026, 1, 15, 9, 0), (2026, 1, 15, 9, 0)),
    ("quiet hours: night waits to 09:00", QUIET, (2026, 1, 15, 22, 0), (2026, 1, 16, 9, 0)),
    ("quiet hours: 21:00 is night", QUIET, (2026, 1, 15, 21, 0), (2026, 1, 16, 9, 0)),
    ("quiet hours: early morning", QUIET, (2026, 1, 15, 3, 0), (2026, 1, 15, 9, 0)),
    ("quiet hours inside a day", SendWindow(quiet=(time(12, 0), time(14, 0))),
     (2026, 1, 15, 13, 0), (2026, 1, 15, 14, 0)),
    ("at 10:00: before it, today", AT_TEN, (2026, 1, 15, 8, 15), (2026, 1, 15, 10, 0)),
    ("at 10:00: on the minute", AT_TEN, (2026, 1, 15, 10, 0), (2026, 1, 15, 10, 0)),
    ("at 10:00: after it, tomorrow", AT_TEN, (2026, 1, 15, 10, 1), (2026, 1, 16, 10, 0)),
    ("at wins over quiet hours", SendWindow(at=time(22, 0), quiet=QUIET_HOURS),
     (2026, 1, 15, 20, 0), (2026, 1, 15, 22, 0)),
    ("weekdays: Saturday waits to Monday", SendWindow(days=WEEKDAYS),
     (2026, 1, 17, 12, 0), (2026, 1, 19, 0, 0)),
    ("weekdays and quiet hours", SendWindow(days=WEEKDAYS, quiet=QUIET_HOURS),
     (2026, 1, 17, 12, 0), (2026, 1, 19, 9, 0)),
    ("weekdays at 10: Friday afternoon -> Monday", SendWindow(at=time(10, 0), days=WEEKDAYS),
     (2026, 1, 16, 11, 0), (2026, 1, 19, 10, 0)),
    ("not between: inside the range", SendWindow(not_between=CHRISTMAS),
     (2026, 12, 24, 12, 0), (2026, 12, 27, 0, 0)),
    ("not between: the last day is included", SendWindow(not_between=CHRISTMAS),
     (2026, 12, 26, 23, 0), (2026, 12, 27, 0, 0)),
    ("not between: the day before goes", SendWindow(not_between=CHRISTMAS),
     (2026, 12, 23, 12, 0), (2026, 12, 23, 12, 0)),
    ("not between, then a weekend, at 10", SendWindow(at=time(10, 0), days=WEEKDAYS,
                                                      not_between=CHRISTMAS),
     (2026, 12, 23, 11, 0), (2026, 12, 28, 10, 0)),
    ("overlapping ranges", SendWindow(not_between=((date(2026, 5, 1), date(2026, 5, 3)),
                                                   (date(2026, 5, 3), date(2026, 5, 5)))),
     (2026, 5, 2, 8, 0), (2026, 5, 6, 0, 0)),
    ("Fri-Mon wraps the week", SendWindow(days=parse_days("Fri-Mon")),
     (2026, 1, 14, 12, 0), (2026, 1, 16, 0, 0)),
]


@pytest.mark.parametrize(("window", "at", "expected"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_next_allowed(window: SendWindow, at: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert next_allowed(window, local(BA, *at)) == local(BA, *expected)


def test_quiet_hours_end_at_nine_local_across_the_spring_forward() -> None:
    """New York springs forward on 2026-03-08: 09:00 that day is 13:00 UTC, not 14:00."""
    opened = next_allowed(QUIET, local(NY, 2026, 3, 7, 22, 0))
    assert opened.astimezone(UTC) == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_an_hour_the_clocks_skip_opens_at_the_jump() -> None:
    """Madrid: 2026-03-29 02:00 -> 03:00. "At 02:30" that day is 03:00 CEST (01:00 UTC)."""
    opened = next_allowed(SendWindow(at=time(2, 30)), local(MADRID, 2026, 3, 29, 1, 0))
    assert opened.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_an_hour_shown_twice_opens_at_its_first_time() -> None:
    """New York falls back on 2026-11-01: 01:30 happens at 05:30 and 06:30 UTC."""
    opened = next_allowed(SendWindow(at=time(1, 30)), local(NY, 2026, 11, 1, 0, 10))
    assert opened.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_an_allowed_moment_is_kept_as_it_is() -> None:
    """The second 01:15 of a fall-back night stays the second one."""
    second = local(NY, 2026, 11, 1, 1, 15, fold=1)
    assert next_allowed(SendWindow(), second).astimezone(UTC) == datetime(
        2026, 11, 1, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize(("parse", "value", "message"), [
    (parse_time, "25:00", "'25:00' is not a time of day like 10:00"),
    (parse_time, "10h", "'10h' is not a time of day"),
    (parse_days, "Mon-Fry", "'fry' is not a day (Mon, Tue, ... Sun)"),
    (parse_days, "", "is not a list of days like Mon-Fri"),
    (parse_quiet, "21:00", "'21:00' is not a time range like 21:00-09:00"),
    (parse_quiet, "09:00-09:00", "starts and ends at the same time"),
    (parse_ranges, [["2026-12-26", "2026-12-24"]], "2026-12-26..2026-12-24 ends before it starts"),
    (parse_ranges, [["2026-12-24"]], "is not a [first, last] date pair"),
    (parse_ranges, [["2026-12-24", "2026-13-01"]], "'2026-13-01' is not a date like 2026-12-24"),
    (parse_ranges, "2026-12-24", "must be a list of [first, last] date pairs"),
])
def test_bad_window_parts_say_what_is_wrong(parse: object, value: object, message: str) -> None:
    with pytest.raises(WindowError) as caught:
        parse(value)  # type: ignore[operator]
    assert message in str(caught.value)


def test_days_and_ranges_read_as_written() -> None:
    assert parse_days("Mon-Fri") == WEEKDAYS
    assert parse_days("sat, Sunday") == frozenset({5, 6})
    assert parse_quiet("22:00-08:30") == (time(22, 0), time(8, 30))
    assert parse_ranges([[date(2026, 12, 24), "2026-12-26"]]) == CHRISTMAS


# ----------------------------------------------------------------- in the policy

WINDOWS = SendWindows(
    store={"not_between": CHRISTMAS},
    flows={"promo": {"at": time(10, 0)}},
    steps={("promo", "weekend"): {"days": frozenset({5, 6})},
           ("promo", "any_time"): {"at": None}},
)
CUSTOMER = {"profile": {"timezone": "America/Argentina/Buenos_Aires"}}


def at_utc(*parts: int) -> datetime:
    year, month, day, hour, minute = (*parts, 0, 0)[:5]
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(("flow", "step", "now", "expected"), [
    # Thursday 2026-01-15 12:00 in Buenos Aires (15:00 UTC).
    ("promo", "hello", at_utc(2026, 1, 15, 15, 0), at_utc(2026, 1, 16, 13, 0)),  # the flow's 10:00
    ("promo", "weekend", at_utc(2026, 1, 15, 15, 0), at_utc(2026, 1, 17, 13, 0)),  # Sat 10:00
    ("promo", "any_time", at_utc(2026, 1, 15, 15, 0), at_utc(2026, 1, 15, 15, 0)),
    ("promo", "any_time", at_utc(2026, 1, 16, 1, 0), at_utc(2026, 1, 16, 12, 0)),  # quiet: 09:00
    ("other", "hello", at_utc(2026, 12, 25, 15, 0), at_utc(2026, 12, 27, 12, 0)),  # store dates
    ("other", "hello", at_utc(2026, 1, 15, 15, 0), at_utc(2026, 1, 15, 15, 0)),
])
def test_the_window_comes_from_the_step_then_the_flow_then_the_store(
        flow: str, step: str, now: datetime, expected: datetime) -> None:
    policy = SendPolicy(windows=WINDOWS)
    assert not_before(CUSTOMER, now, policy, {"flow": flow, "step": step}) == expected


def test_quiet_hours_off_leaves_only_the_files_windows() -> None:
    policy = SendPolicy(windows=WINDOWS, quiet_hours=False)
    night = at_utc(2026, 1, 16, 1, 0)  # 22:00 in Buenos Aires
    assert not_before(CUSTOMER, night, policy, {"flow": "other", "step": "x"}) == night
    assert send_window(policy, {"flow": "promo", "step": "weekend"}) == SendWindow(
        at=time(10, 0), days=frozenset({5, 6}), not_between=CHRISTMAS)


def test_without_a_file_the_window_is_quiet_hours() -> None:
    assert send_window(SendPolicy()) == QUIET
    assert send_window(SendPolicy(), {"flow": "promo", "step": "x"}) == QUIET
    assert send_window(SendPolicy(quiet_hours=False)).always
