"""The birthday series end to end: a signed ``/events`` customer with a birthday, the
WhatsApp fake receiving the notice, the greeting and the thanks on the virtual clock.

The store names both birthday flows in ``FLOWS``: the series replaces the
one-message greeting, so the day brings one greeting, not two.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, sent_templates

DIGITS = "5491122334455"
ZONE = ZoneInfo("America/Argentina/Buenos_Aires")  # the customer's (customer_event's)


def templates(fakes: Fakes) -> list[tuple[str, list[str]]]:
    return sent_templates(fakes, DIGITS)


def ten_local(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=ZONE)


async def test_notice_greeting_and_thanks_for_an_order(aiohttp_client: Any, mongo_uri: str,
                                                       db_name: str, fakes: Fakes) -> None:
    app = create_app(make_settings(mongo_uri, db_name, fakes,
                                   flows="birthday,birthday_series"))
    service = Service(await aiohttp_client(app))
    now = datetime.fromisoformat(await service.advance(0))
    birthday = now.astimezone(ZONE).date() + timedelta(days=10)
    event = customer_event("evt_1", "customer.created", now.isoformat())
    event["customer"]["birthday"] = f"--{birthday:%m-%d}"
    await service.event(event)
    await service.advance(0)
    notice_in = (ten_local(birthday - timedelta(days=7)) - now).total_seconds()
    await service.advance(notice_in - 60)
    assert templates(fakes) == []
    await service.advance(60)
    assert templates(fakes) == [("birthday_notice", ["Ana"])]
    await service.advance(7 * 86400)  # 10:00 on the birthday
    customer = await service.api("GET", "/api/customers/cus_1")
    code = customer["attrs"]["code_birthday"]
    assert templates(fakes) == [("birthday_notice", ["Ana"]),
                                ("birthday_greeting", ["Ana", code])]
    later = await service.advance(3600)
    await service.event(customer_event("evt_2", "order.placed", later, order_id="o_1",
                                       total="9000", currency="ARS"))
    await service.advance(5 * 86400)
    assert templates(fakes)[2:] == [("birthday_thanks", ["Ana"])]
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["active_flows"] == []
