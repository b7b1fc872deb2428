"""A store whose clock runs ahead: its times count as no later than their arrival.

Unit tests of :mod:`bot.core.store_clock`, then the service end to end
on the virtual clock: signed store webhooks stamped in the service's future,
the customer's STOP over a signed Twilio webhook, and the store repeating
its consent afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from bot.core import keywords, store_clock
from bot.core.inputs import CustomerInfo, StoreEvent
from bot.types import Doc
from server import create_app
from tests.support.app import SHOPIFY_SECRET, Fakes, Service, make_settings
from tests.support.signing import twilio_inbound_form
from tests.support.store_signing import load_fixture, shopify_headers

NO_FLOWS = "se_no_flows"  # no shipped flow: only intake, consent and timers matter here
PHONE = "+5491122334455"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the pure functions -------------------------------------------------------------------


def test_clamp_keeps_past_times_and_brings_future_ones_back_to_the_arrival() -> None:
    assert store_clock.clamp(at(-3600), at(0)) == at(-3600)
    assert store_clock.clamp(at(60), at(0)) == at(0)
    assert store_clock.clamp(at(0.0004567), at(10)) == at(0)  # millisecond precision


def _event(**extra: Any) -> StoreEvent:
    return StoreEvent(id="e", type="customer.updated", occurred_at=at(60),
                      customer=CustomerInfo(id="cus_1"), **extra)


def test_received_time_is_the_intake_stamp_never_later_than_now() -> None:
    stamped = store_clock.stamp_received(_event(), at(5))
    assert store_clock.received_time(stamped, at(30)) == at(5)
    # As the inbox stores it: JSON text.
    stored = StoreEvent.model_validate(stamped.model_dump(mode="json"))
    assert stored.model_extra == {"received_at": "2026-11-24T10:00:05Z"}
    assert store_clock.received_time(stored, at(30)) == at(5)
    assert store_clock.received_time(stored, at(2)) == at(2)
    assert store_clock.received_time(_event(), at(30)) == at(30)  # no stamp: the decision's now
    assert store_clock.received_time(_event(received_at="garbage"), at(30)) == at(30)


def test_a_consent_counts_no_later_than_anything_the_store_stamped_later_arrived() -> None:
    doc: Doc = {}
    # The store's clock runs a minute ahead: "10:01" arrives at 10:00.
    assert store_clock.consent_moment(doc, "generic", at(60), at(0)) == at(0)
    store_clock.observe(doc, "generic", at(60), at(0))
    # The same stamp again at 10:00:20 still counts as of 10:00, and so does an older one.
    assert store_clock.consent_moment(doc, "generic", at(60), at(20)) == at(0)
    assert store_clock.consent_moment(doc, "generic", at(30), at(20)) == at(0)
    # A later stamp is news: it counts as of its arrival.
    assert store_clock.consent_moment(doc, "generic", at(90), at(30)) == at(30)
    # Another store's clock is not this one's.
    assert store_clock.consent_moment(doc, "shopify", at(60), at(20)) == at(20)
    # A store time in the past counts as itself.
    assert store_clock.consent_moment(doc, "generic", at(-600), at(20)) == at(-600)


def test_observe_keeps_only_what_is_not_implied_and_at_most_a_few() -> None:
    doc: Doc = {}
    store_clock.observe(doc, "s", at(60), at(0))
    store_clock.observe(doc, "s", at(30), at(10))  # implied by (60, 0)
    store_clock.observe(doc, "s", at(120), at(50))
    assert doc["store_clock"]["s"] == [[at(60), at(0)], [at(120), at(50)]]
    store_clock.observe(doc, "s", at(200), at(40))  # implies (120, 50)
    assert doc["store_clock"]["s"] == [[at(60), at(0)], [at(200), at(40)]]
    for n in range(100):
        store_clock.observe(doc, "s", at(1000 + n), at(100 + n))
    pairs = doc["store_clock"]["s"]
    assert len(pairs) == store_clock.MAX_OBSERVATIONS
    assert pairs[-1] == [at(1099), at(199)]
    assert [p[0] for p in pairs] == sorted(p[0] for p in pairs)


# --- through the service --------------------------------------------------------------------


@dataclass
class App:
    client: TestClient[web.Request, web.Application]
    service: Service
    db: Any
    fakes: Fakes

    async def customer(self) -> Doc:
        return dict(await self.service.api("GET", "/api/customers/cus_1"))

    async def stop(self) -> None:
        """The customer texts STOP (a signed Twilio webhook)."""
        await self.service.sms(twilio_inbound_form(
            "STOP", from_=PHONE, account_sid=self.fakes.twilio.account_sid))

    def confirmations(self) -> list[str]:
        return [m["body"] for m in self.fakes.twilio.sent.get(PHONE, [])]

    async def shopify(self, payload: Doc, topic: str, webhook_id: str) -> None:
        body = json.dumps(payload).encode()
        response = await self.client.post(
            "/webhooks/shopify", data=body,
            headers=shopify_headers(SHOPIFY_SECRET, body, topic, webhook_id))
        assert response.status == 200, await response.text()


@pytest.fixture
async def app(aiohttp_client: Any, mongo_uri: str, db_name: str,
              fakes: Fakes) -> AsyncIterator[App]:
    settings = make_settings(mongo_uri, db_name, fakes, flows=NO_FLOWS, cart_abandon_after=3600)
    client = await aiohttp_client(create_app(settings))
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield App(client, Service(client), mongo[db_name], fakes)
    finally:
        await mongo.close()


def consent_event(event_id: str, occurred_at: datetime, **consents: bool) -> Doc:
    return {"id": event_id, "type": "customer.updated", "occurred_at": iso(occurred_at),
            "customer": {"id": "cus_1", "phone": PHONE, "consents": consents}, "data": {}}


async def test_a_consent_stamped_ahead_does_not_beat_a_later_sms_stop(app: App) -> None:
    now = when(await app.service.advance(0))
    ahead = now + timedelta(minutes=1)  # the store's clock runs a minute ahead
    await app.service.event(consent_event("c-1", ahead, sms=True))
    stored = await app.db.inbox.find_one({"payload.id": "c-1"})
    assert when(stored["payload"]["occurred_at"]) == ahead  # the store's own time is kept
    assert when(stored["payload"]["received_at"]) == now  # and the service clock at intake
    await app.service.advance(10)
    sms = (await app.customer())["consents"]["sms"]
    assert (sms["state"], when(sms["at"])) == ("granted", now)  # as of its arrival

    await app.stop()
    await app.service.advance(10)
    sms = (await app.customer())["consents"]["sms"]
    assert (sms["state"], sms["source"]) == ("revoked", "keyword:sms")
    assert app.confirmations() == [keywords.STOPPED_TEXT["es"]]

    # The store repeats the same consent (a new event id, the same future stamp).
    await app.service.event(consent_event("c-2", ahead, sms=True))
    await app.service.advance(10)
    customer = await app.customer()
    assert customer["consents"]["sms"]["state"] == "revoked"
    last = customer["consent_ledger"][-1]
    assert (last["state"], last.get("superseded"), when(last["at"])) == ("granted", True, now)

    # A consent the store stamps after the STOP (still a minute ahead) is news, and counts.
    later = when(await app.service.advance(0))
    await app.service.event(consent_event("c-3", later + timedelta(minutes=1), sms=True))
    await app.service.advance(0)
    sms = (await app.customer())["consents"]["sms"]
    assert (sms["state"], when(sms["at"])) == ("granted", later)
    assert app.confirmations() == [keywords.STOPPED_TEXT["es"]]


async def test_shopify_consent_updated_at_ahead_does_not_beat_a_later_stop(app: App) -> None:
    now = when(await app.service.advance(0))
    payload: Doc = json.loads(load_fixture("shopify/customers_marketing_consent_update.json"))
    payload["id"] = "cus_1"
    payload["sms_marketing_consent"]["consent_updated_at"] = iso(now + timedelta(minutes=1))
    topic = "customers_marketing_consent/update"
    await app.shopify(payload, topic, "wh-1")
    await app.service.advance(10)
    await app.stop()
    await app.service.advance(10)
    await app.shopify(payload, topic, "wh-2")  # Shopify delivers it again
    await app.service.advance(10)
    customer = await app.customer()
    assert customer["consents"]["sms"]["state"] == "revoked"
    assert [(e["state"], when(e["at"]), bool(e.get("superseded")))
            for e in customer["consent_ledger"]][::2] == [
        ("granted", now, False), ("granted", now, True)]
    assert app.confirmations() == [keywords.STOPPED_TEXT["es"]]


async def test_a_checkout_stamped_ahead_is_abandoned_counting_from_its_arrival(app: App) -> None:
    now = when(await app.service.advance(0))
    checkout = {
        "id": "k-1", "type": "checkout.started", "occurred_at": iso(now + timedelta(hours=1)),
        "customer": {"id": "cus_1", "phone": PHONE},
        "data": {"checkout_id": "chk_1", "recovery_url": "https://shop.example/r/chk_1",
                 "total": "59.90", "currency": "ARS", "items": []},
    }
    await app.service.event(checkout)
    await app.service.advance(0)
    doc = await app.db.customers.find_one({"keys": "store:cus_1"})
    [wait] = [w for w in doc["waits"] if w["id"] == "cart:chk_1"]
    assert wait["due"] == now + timedelta(seconds=3600)
    assert doc["checkouts"]["chk_1"]["occurred_at"] == now
