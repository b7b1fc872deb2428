"""Business hours (bot/core/business_hours.py): reading the setting, and the next opening.

Times are given as the store's wall clock; the expected opening too, with
the day word the inbox flow turns into "hoy", "mañana" or "el lunes".
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.business_hours import BusinessHoursError, Range, is_open, next_opening, parse

BA = ZoneInfo("America/Argentina/Buenos_Aires")  # no DST
MADRID = ZoneInfo("Europe/Madrid")  # DST: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00
WEEK = "Mon-Fri 09:00-18:00"
SPLIT = "Mon-Fri 09:00-13:00,14:00-18:00; Sat 10:00-13:00"


@pytest.mark.parametrize(("spec", "expected"), [
    ("Mon-Fri 09:00-18:00", (Range(frozenset(range(5)), 540, 1080),)),
    ("sat 10:00-13:00", (Range(frozenset({5}), 600, 780),)),
    ("Mon,Wed 9:00-12:00", (Range(frozenset({0, 2}), 540, 720),)),
    ("Fri-Mon 10:00-24:00", (Range(frozenset({4, 5, 6, 0}), 600, 1440),)),
    ("Monday-Tuesday 08:00-09:30", (Range(frozenset({0, 1}), 480, 570),)),
    ("Mon-Fri 09:00-13:00,14:00-18:00; Sat 10:00-13:00;", (
        Range(frozenset(range(5)), 540, 780), Range(frozenset(range(5)), 840, 1080),
        Range(frozenset({5}), 600, 780))),
])
def test_reads_days_ranges_and_several_times(spec: str, expected: tuple[Range, ...]) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(("spec", "says"), [
    ("", "names no hours"),
    ("Mon-Fri", "days without times"),
    ("Mon-Fry 09:00-18:00", "'fry' is not a day"),
    ("Mo 09:00-18:00", "'mo' is not a day"),
    ("Mon-Fri 9-18", "not a time range"),
    ("Mon-Fri 18:00-09:00", "ends before it starts"),
    ("Mon-Fri 09:00-09:00", "ends before it starts"),
    ("Mon-Fri 09:00-24:30", "not a time of day"),
    ("Mon-Fri 09:61-18:00", "not a time of day"),
    ("Mon-Fri 09:00-18:00; Sun", "days without times"),
])
def test_a_bad_setting_names_the_part(spec: str, says: str) -> None:
    with pytest.raises(BusinessHoursError, match=says):
        parse(spec)


@pytest.mark.parametrize(("spec", "local", "open_"), [
    (WEEK, "2026-01-15 08:59", False),  # Thursday, just before
    (WEEK, "2026-01-15 09:00", True),
    (WEEK, "2026-01-15 17:59", True),
    (WEEK, "2026-01-15 18:00", False),  # just after
    (WEEK, "2026-01-17 12:00", False),  # Saturday
    (SPLIT, "2026-01-15 13:30", False),  # lunch
    (SPLIT, "2026-01-17 12:59", True),
    ("Mon-Sun 00:00-24:00", "2026-01-18 23:59", True),
])
def test_is_open(spec: str, local: str, open_: bool) -> None:
    assert is_open(parse(spec), datetime.fromisoformat(local)) is open_


@pytest.mark.parametrize(("spec", "zone", "now", "opening", "day"), [
    # inside: nobody to wait for
    (WEEK, BA, "2026-01-15 12:00", None, None),
    # just before and just after, same day and next day
    (WEEK, BA, "2026-01-15 08:59", "2026-01-15 09:00", "today"),
    (WEEK, BA, "2026-01-15 18:00", "2026-01-16 09:00", "tomorrow"),
    (WEEK, BA, "2026-01-15 23:59", "2026-01-16 09:00", "tomorrow"),
    (WEEK, BA, "2026-01-16 00:00", "2026-01-16 09:00", "today"),
    # weekends: Friday evening, Saturday, Sunday -> Monday
    (WEEK, BA, "2026-01-16 18:30", "2026-01-19 09:00", "later"),
    (WEEK, BA, "2026-01-17 10:00", "2026-01-19 09:00", "later"),
    (WEEK, BA, "2026-01-18 23:00", "2026-01-19 09:00", "tomorrow"),
    # several ranges: lunch, and a Saturday morning
    (SPLIT, BA, "2026-01-15 13:00", "2026-01-15 14:00", "today"),
    (SPLIT, BA, "2026-01-16 18:00", "2026-01-17 10:00", "tomorrow"),
    (SPLIT, BA, "2026-01-17 13:00", "2026-01-19 09:00", "later"),
    # one day a week, after it: the same weekday next week
    ("Wed 10:00-11:00", BA, "2026-01-14 11:00", "2026-01-21 10:00", "later"),
    # DST in Madrid: the opening keeps its wall time across the change
    (WEEK, MADRID, "2026-03-27 19:00", "2026-03-30 09:00", "later"),
    (WEEK, MADRID, "2026-10-23 19:00", "2026-10-26 09:00", "later"),
    # an opening in the skipped hour opens when the clocks jump (02:00 -> 03:00)
    ("Sun 02:30-05:00", MADRID, "2026-03-29 01:00", "2026-03-29 03:00", "today"),
    # an opening in the repeated hour opens the first time the clock shows it
    ("Sun 02:30-05:00", MADRID, "2026-10-25 01:00", "2026-10-25 02:30", "today"),
])
def test_next_opening(spec: str, zone: ZoneInfo, now: str, opening: str | None,
                      day: str | None) -> None:
    at = datetime.fromisoformat(now).replace(tzinfo=zone)
    found = next_opening(parse(spec), at, zone)
    if opening is None:
        assert found is None
        return
    assert found is not None
    expected = datetime.fromisoformat(opening).replace(tzinfo=zone)
    assert found.at == expected and found.at.utcoffset() == expected.utcoffset()
    assert found.day == day
    assert (found.weekday, found.time) == (expected.weekday(), opening[-5:])


def test_the_repeated_hour_opens_at_its_first_occurrence() -> None:
    """On 2026-10-25 Madrid shows 02:30 twice; the first is 00:30 UTC (CEST, +02:00)."""
    now = datetime.fromisoformat("2026-10-24T22:00:00+00:00")  # 00:00 CEST
    found = next_opening(parse("Sun 02:30-05:00"), now, MADRID)
    assert found is not None
    assert found.at.isoformat() == "2026-10-25T02:30:00+02:00"


def test_the_skipped_hour_opens_at_the_jump_in_utc() -> None:
    now = datetime.fromisoformat("2026-03-28T23:30:00+00:00")  # 00:30 CET
    found = next_opening(parse("Sun 02:30-05:00"), now, MADRID)
    assert found is not None
    assert found.at.isoformat() == "2026-03-29T03:00:00+02:00"  # 01:00 UTC, the jump
