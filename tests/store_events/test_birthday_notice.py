"""``customer.birthday_soon``: the notice wait a week before the birthday, pure.

``schedule_lifecycle`` on a bare customer document, as the decision calls it
after every store event, message and fired wait.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core import waits
from bot.core.lifecycle import TriggerPolicy, parse_birthday, schedule_lifecycle

NOTICE = TriggerPolicy(birthday_notice_days=7)  # Buenos Aires (UTC-3) by default


def doc_with(birthday: str, timezone: str | None = None) -> dict[str, Any]:
    profile = {"birthday": birthday, **({"timezone": timezone} if timezone else {})}
    return {"profile": profile}


def wait(doc: dict[str, Any], wait_id: str) -> dict[str, Any] | None:
    return next((w for w in doc.get("waits", []) if w["id"] == wait_id), None)


def test_the_notice_is_at_ten_local_seven_days_before_with_the_day_it_announces() -> None:
    doc = doc_with("1990-03-10")
    schedule_lifecycle(doc, datetime(2026, 2, 1, 12, 0, tzinfo=UTC), NOTICE)
    notice = wait(doc, "birthday_soon")
    assert notice is not None
    assert notice["due"] == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 10:00 in Buenos Aires
    assert notice["event"] == {"type": "customer.birthday_soon", "on": "2026-03-10"}
    assert doc["next_due"] == notice["due"]  # before the birthday itself


def test_counted_in_the_customers_own_timezone() -> None:
    doc = doc_with("--03-10", "Pacific/Auckland")  # UTC+13 in March
    schedule_lifecycle(doc, datetime(2026, 2, 1, tzinfo=UTC), NOTICE)
    notice = wait(doc, "birthday_soon")
    assert notice is not None
    assert notice["due"] == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 10:00 NZDT, 3 March


def test_a_birthday_closer_than_the_notice_gets_next_years() -> None:
    doc = doc_with("1990-03-10")
    now = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # five days before
    schedule_lifecycle(doc, now, NOTICE)
    notice, birthday = wait(doc, "birthday_soon"), wait(doc, "birthday")
    assert notice is not None and birthday is not None
    assert birthday["due"] == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # the day starts the run
    assert notice["due"] == datetime(2027, 3, 3, 13, 0, tzinfo=UTC)
    assert notice["event"]["on"] == "2027-03-10"


def test_renewed_for_next_year_once_it_fired() -> None:
    doc = doc_with("1990-03-10")
    schedule_lifecycle(doc, datetime(2026, 2, 1, tzinfo=UTC), NOTICE)
    fired_at = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    [fired] = [w for w in waits.take_due(doc, fired_at) if w["id"] == "birthday_soon"]
    schedule_lifecycle(doc, fired_at, NOTICE)  # as the decision does after a fired wait
    renewed = wait(doc, "birthday_soon")
    assert renewed is not None
    assert renewed["due"] == datetime(2027, 3, 3, 13, 0, tzinfo=UTC)
    assert fired["event"]["on"] == "2026-03-10"


def test_the_notice_days_are_a_setting() -> None:
    doc = doc_with("1990-03-10")
    schedule_lifecycle(doc, datetime(2026, 2, 1, tzinfo=UTC), TriggerPolicy(
        birthday_notice_days=3))
    notice = wait(doc, "birthday_soon")
    assert notice is not None and notice["due"] == datetime(2026, 3, 7, 13, 0, tzinfo=UTC)


def test_leap_day_birthdays_are_noticed_before_the_28th_in_common_years() -> None:
    doc = doc_with("2000-02-29")
    schedule_lifecycle(doc, datetime(2026, 1, 1, tzinfo=UTC), NOTICE)
    notice = wait(doc, "birthday_soon")
    assert notice is not None
    assert notice["due"] == datetime(2026, 2, 21, 13, 0, tzinfo=UTC)
    assert notice["event"]["on"] == "2026-02-28"


def test_no_notice_without_a_flow_that_starts_on_it_and_an_old_one_is_dropped() -> None:
    doc = doc_with("1990-03-10")
    now = datetime(2026, 2, 1, tzinfo=UTC)
    schedule_lifecycle(doc, now, TriggerPolicy())  # birthday_notice_days=0: the default
    assert wait(doc, "birthday_soon") is None
    assert wait(doc, "birthday") is not None
    schedule_lifecycle(doc, now, NOTICE)
    assert wait(doc, "birthday_soon") is not None
    schedule_lifecycle(doc, now + timedelta(days=1), TriggerPolicy())  # the store switched off
    assert wait(doc, "birthday_soon") is None


@pytest.mark.parametrize("birthday", ["--13-45", "1990-02-30", "1990-00-10"])
def test_a_day_no_year_has_schedules_nothing_instead_of_failing(birthday: str) -> None:
    assert parse_birthday(birthday) is None
    doc = doc_with(birthday)
    schedule_lifecycle(doc, datetime(2026, 2, 1, tzinfo=UTC), NOTICE)
    assert wait(doc, "birthday") is None and wait(doc, "birthday_soon") is None
