"""Waits on a message's fate: "if not read in 2 days, send by SMS instead" (``watch``).

Through the whole service: signed store events, signed WhatsApp status
webhooks, the loopback WhatsApp and Twilio fakes and the virtual clock. The
flow is ``tests/support/fate_rules/read_or_sms.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.commands import watch
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.signing import PHONE, whatsapp_status_webhook

DAY = 86400.0
BOTH = {"whatsapp": True, "sms": True}


async def offered(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                  db: Any) -> tuple[Service, dict[str, Any]]:
    """The service with the customer offered the product on WhatsApp; the stored offer."""
    settings = make_settings(mongo_uri, db_name, fakes,
                             flows_package="tests.support.fate_rules", flows="read_or_sms")
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    await service.event(customer_event("evt_c", "customer.created", now, consents=BOTH))
    await service.event(customer_event("evt_v", "product.viewed", now, consents={},
                                       product_id="p1"))
    await service.advance(0)
    [offer] = [m async for m in db.messages.find({"direction": "out"})]
    assert (offer["channel"], offer["status"], offer["watch"]) == ("whatsapp", "sent", "read")
    return service, offer


def sms_texts(fakes: Fakes) -> list[str]:
    return [m["body"] for m in fakes.twilio.sent.get(PHONE, [])]


async def outcome(db: Any) -> str | None:
    runs = [r async for r in db.flow_runs.find({"flow": "read_or_sms"})]
    return runs[-1]["outcome"] if runs else None


async def test_read_in_time_sends_no_sms(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                         fakes: Fakes, db: Any) -> None:
    service, offer = await offered(aiohttp_client, mongo_uri, db_name, fakes, db)
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "delivered"))
    await service.advance(DAY)
    assert await outcome(db) is None  # delivered is not read: still watching
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "read"))
    await service.advance(0)
    assert await outcome(db) == "read"
    await service.advance(3 * DAY)  # past the timeout: it was cancelled
    assert sms_texts(fakes) == []
    doc = await db.customers.find_one({"_id": offer["customer"]})
    assert not [w for w in doc.get("waits", []) if w["id"].startswith("watch:")]


async def test_not_read_sends_one_sms_after_two_days(aiohttp_client: Any, mongo_uri: str,
                                                     db_name: str, fakes: Fakes,
                                                     db: Any) -> None:
    service, offer = await offered(aiohttp_client, mongo_uri, db_name, fakes, db)
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "delivered"))
    await service.advance(2 * DAY - 60)
    assert sms_texts(fakes) == []
    await service.advance(60)
    assert sms_texts(fakes) == ["OFERTA por SMS (offer)"]
    [sms] = [m async for m in db.messages.find({"channel": "sms"})]
    assert (sms["at"] - offer["at"]).total_seconds() == 2 * DAY  # at the timeout, not later
    assert await outcome(db) == "sms"
    # A read after the timeout changes nothing.
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "read"))
    await service.advance(3 * DAY)
    assert sms_texts(fakes) == ["OFERTA por SMS (offer)"]


async def test_a_failed_offer_goes_by_sms_at_once_and_only_once(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service, offer = await offered(aiohttp_client, mongo_uri, db_name, fakes, db)
    # 131000 is a failure with no meaning for the customer: reported as the watch's fate.
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "failed",
                                                   error_code=131000))
    await service.advance(0)
    assert sms_texts(fakes) == ["OFERTA por SMS (offer, fallida)"]
    await service.advance(3 * DAY)
    assert sms_texts(fakes) == ["OFERTA por SMS (offer, fallida)"]
    assert await outcome(db) is None  # still running: the timeout was cancelled, not the run


async def test_a_failure_with_a_meaning_reaches_the_watch_once(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service, offer = await offered(aiohttp_client, mongo_uri, db_name, fakes, db)
    # 131026 (a dead address) is reported as a failure; the timeout must not add a second SMS.
    await service.whatsapp(whatsapp_status_webhook(offer["provider_id"], "failed",
                                                   error_code=131026))
    await service.advance(3 * DAY)
    assert sms_texts(fakes) == ["OFERTA por SMS (offer, fallida)"]


def test_watch_refuses_an_unknown_fate_and_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="until must be one of"):
        watch(None, "offer", until="opened")
    with pytest.raises(ValueError, match="timeout"):
        watch(None, "offer", timeout=0)
