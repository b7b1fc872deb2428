"""Who a store event is about, through the running service: identity merge and consent.

A customer is found by store id, then by E.164 phone, then by email; consent
is a ledger whose entries count as of the time they were given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from bot.types import Doc
from server import create_app
from tests.support.app import SHOPIFY_SECRET, Fakes, Service, make_settings
from tests.support.signing import twilio_inbound_form
from tests.support.store_signing import load_fixture, shopify_headers

NO_FLOWS = "se_no_flows"  # no shipped flow: only intake, identity and consent matter here
PHONE = "+5491122334455"


@dataclass
class App:
    client: TestClient[web.Request, web.Application]
    service: Service
    db: Any

    async def customer(self, customer_id: str, expect: int = 200) -> Doc:
        return dict(await self.service.api("GET", f"/api/customers/{quote(customer_id, safe='')}",
                                           expect=expect))

    async def shopify(self, payload: Doc, topic: str, webhook_id: str) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        response = await self.client.post(
            "/webhooks/shopify", data=body,
            headers=shopify_headers(SHOPIFY_SECRET, body, topic, webhook_id))
        assert response.status == 200, await response.text()

    async def count(self) -> int:
        return int(await self.db.customers.count_documents({}))


async def _app(aiohttp_client: Any, mongo_uri: str, db_name: str,
               **settings: Any) -> AsyncIterator[App]:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, flows=NO_FLOWS,
                                                           **settings)))
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield App(client, Service(client), mongo[db_name])
    finally:
        await mongo.close()


@pytest.fixture
async def app(aiohttp_client: Any, mongo_uri: str, db_name: str) -> AsyncIterator[App]:
    async for made in _app(aiohttp_client, mongo_uri, db_name):
        yield made


def event(event_id: str, customer: Doc, *, kind: str = "customer.updated",
          at: str = "2026-11-24T10:00:00Z", **data: Any) -> Doc:
    """A generic store event; ``customer`` is given whole (only what the store knows)."""
    return {"id": event_id, "type": kind, "occurred_at": at, "customer": customer, "data": data}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def shopify_fixture(name: str) -> Doc:
    payload: Doc = json.loads(load_fixture(f"shopify/{name}.json"))
    return payload


# --- identity -------------------------------------------------------------------------


async def test_identity_merge_across_a_shopify_customer_and_a_generic_event(app: App) -> None:
    """Shopify knows Martín by phone only; the web shop's backend by email and the same phone."""
    created = shopify_fixture("customers_create")
    created["email"] = None
    await app.shopify(created, "customers/create", "wh-1")
    await app.service.advance(0)
    assert (await app.customer("7165043802335"))["email"] is None

    await app.service.event(event("web-1", {
        "id": "web-77", "phone": "+54 9 11 5566-7788", "email": "Martin.R@Example.com",
        "timezone": "America/Argentina/Cordoba"}))
    await app.service.advance(0)

    assert await app.count() == 1
    by_shopify = await app.customer("7165043802335")
    by_web = await app.customer("web-77")
    assert by_shopify == by_web
    assert by_shopify["id"] == "7165043802335"  # the first store id stays the customer's id
    assert by_shopify["phone"] == "+5491155667788"
    assert by_shopify["email"] == "martin.r@example.com"
    assert by_shopify["first_name"] == "Martín"  # from Shopify
    assert by_shopify["timezone"] == "America/Argentina/Cordoba"  # from the generic event
    doc = await app.db.customers.find_one({})
    assert set(doc["keys"]) == {"store:7165043802335", "store:web-77", "phone:+5491155667788",
                                "email:martin.r@example.com"}


async def test_identity_merge_by_email_then_phone(app: App) -> None:
    """An email-only sign-up, then a Shopify checkout with that email and a phone, then a
    message-like event known only by that phone: one customer throughout."""
    await app.service.event(event("n-1", {"id": "news-5", "email": "ana.gomez@example.com"},
                                  kind="customer.created"))
    await app.service.advance(0)
    await app.shopify(shopify_fixture("checkouts_create"), "checkouts/create", "wh-2")
    await app.service.advance(0)
    await app.service.event(event("n-2", {"id": "crm-9", "phone": "011 15 2233-4455"}))
    await app.service.advance(0)
    assert await app.count() == 1
    ids = {(await app.customer(cid))["internal_id"] for cid in ("news-5", "7165043769567",
                                                                 "crm-9")}
    assert len(ids) == 1
    customer = await app.customer("7165043769567")
    assert (customer["email"], customer["phone"]) == ("ana.gomez@example.com", PHONE)


@pytest.mark.parametrize("written", ["011 15 2233-4455", "(011) 15-2233-4455", "11 15 2233 4455",
                                     "+54 9 11 2233-4455", "5491122334455",
                                     "0054 9 11 2233 4455", "tel:+54-9-11-2233-4455"])
async def test_a_national_or_formatted_phone_is_the_same_customer_as_its_e164_form(
        app: App, written: str) -> None:
    await app.service.event(event("p-1", {"id": "cus_e164", "phone": PHONE, "first_name": "Ana"},
                                  kind="customer.created"))
    await app.service.event(event("p-2", {"id": "cus_typed", "phone": written,
                                          "last_name": "Gómez"}))
    await app.service.advance(0)
    assert await app.count() == 1
    customer = await app.customer("cus_typed")
    assert customer["internal_id"] == (await app.customer("cus_e164"))["internal_id"]
    assert (customer["phone"], customer["first_name"], customer["last_name"]) == (
        PHONE, "Ana", "Gómez")


async def test_national_phones_are_read_in_the_configured_default_country(
        aiohttp_client: Any, mongo_uri: str, db_name: str) -> None:
    async for app in _app(aiohttp_client, mongo_uri, db_name, default_country="ES"):
        await app.service.event(event("es-1", {"id": "c-es", "phone": "612 34 56 78"},
                                      kind="customer.created"))
        await app.service.event(event("es-2", {"id": "c-es-2", "phone": "+34 612 345 678"}))
        await app.service.advance(0)
        assert await app.count() == 1
        assert (await app.customer("c-es-2"))["phone"] == "+34612345678"


async def test_a_shopify_billing_phone_in_national_format_finds_the_generic_customer(
        app: App) -> None:
    """orders/create has no customer phone; the billing address says "011 15 2233-4455"."""
    await app.service.event(event("g-1", {"id": "cus_1", "phone": PHONE, "locale": "es"},
                                  kind="customer.created"))
    await app.shopify(shopify_fixture("orders_create"), "orders/create", "wh-3")
    await app.service.advance(0)
    assert await app.count() == 1
    customer = await app.customer("cus_1")
    assert customer["email"] == "ana.gomez@example.com"
    assert customer["internal_id"] == (await app.customer("7165043769567"))["internal_id"]


async def test_different_people_stay_different_customers(app: App) -> None:
    await app.service.event(event("d-1", {"id": "a", "phone": PHONE}, kind="customer.created"))
    await app.service.event(event("d-2", {"id": "b", "phone": "+5491155667788"},
                                  kind="customer.created"))
    await app.service.event(event("d-3", {"id": "c", "email": "c@example.com"},
                                  kind="customer.created"))
    await app.service.advance(0)
    assert await app.count() == 3


async def test_an_event_whose_phone_and_email_belong_to_two_customers_is_not_lost(
        app: App) -> None:
    """A by phone, B by email; then a store event (new store id) with A's phone and B's email.

    By the contract's order (store id, then phone, then email) the event is A's.
    """
    await app.service.event(event("x-1", {"id": "a", "phone": PHONE}, kind="customer.created"))
    await app.service.event(event("x-2", {"id": "b", "email": "b@example.com"},
                                  kind="customer.created"))
    await app.service.advance(0)
    await app.service.event(event("x-3", {"id": "c", "phone": PHONE, "email": "b@example.com",
                                          "first_name": "Carla"}, at="2026-11-24T11:00:00Z"))
    await app.service.event(event("x-4", {"id": "a", "phone": PHONE}, kind="order.placed",
                                  at="2026-11-24T12:00:00Z", order_id="o-1"))
    await app.service.advance(0)
    pending = await app.db.inbox.count_documents({"state": "pending"})
    customer_a = await app.customer("a")
    assert customer_a["first_name"] == "Carla"  # x-3 was decided and committed on A
    assert (await app.customer("c"))["internal_id"] == customer_a["internal_id"]
    assert (await app.customer("b"))["email"] == "b@example.com"
    assert pending == 0  # x-4 (A's order) was not blocked behind a stuck lease
    doc_a = await app.db.customers.find_one({"keys": "store:a"})
    assert doc_a.get("last_order_at") is not None


async def test_a_customer_who_takes_a_phone_already_known_keeps_getting_events(
        app: App) -> None:
    await app.service.event(event("y-1", {"id": "a", "phone": "+5491155667788"},
                                  kind="customer.created"))
    await app.service.event(event("y-2", {"id": "b", "phone": PHONE}, kind="customer.created"))
    await app.service.advance(0)
    # a's store profile now has b's (e.g. a shared family) phone; then a orders.
    await app.service.event(event("y-3", {"id": "a", "phone": PHONE, "first_name": "Alba"},
                                  at="2026-11-24T11:00:00Z"))
    await app.service.advance(0)
    assert (await app.customer("a"))["first_name"] == "Alba"


async def test_a_phone_changed_in_the_store_becomes_the_customers_phone(app: App) -> None:
    await app.shopify(shopify_fixture("customers_create"), "customers/create", "wh-c")
    updated = shopify_fixture("customers_update")
    updated["phone"] = "+5493515123456"
    updated["default_address"]["phone"] = "+5493515123456"
    await app.shopify(updated, "customers/update", "wh-u")
    await app.service.advance(0)
    assert (await app.customer("7165043802335"))["phone"] == "+5493515123456"


# --- consent ledger -------------------------------------------------------------------


def consent_event(event_id: str, at: str, **consents: bool) -> Doc:
    return event(event_id, {"id": "cus_1", "phone": PHONE, "consents": consents}, at=at)


async def test_a_ledger_entry_per_consent_change_with_source_and_time(app: App) -> None:
    await app.service.event(consent_event("c-1", "2026-11-24T10:00:00Z", sms=True))
    await app.service.event(consent_event("c-2", "2026-11-24T11:00:00Z", sms=False))
    await app.service.event(consent_event("c-3", "2026-11-24T12:00:00Z", sms=True))
    await app.service.event(consent_event("c-4", "2026-11-24T13:00:00Z", sms=True))  # no change
    now = await app.service.advance(0)
    customer = await app.customer("cus_1")
    ledger = customer["consent_ledger"]
    assert [(e["channel"], e["state"], e["source"], e["at"]) for e in ledger] == [
        ("sms", "granted", "generic:customer.updated", "2026-11-24T10:00:00Z"),
        ("sms", "revoked", "generic:customer.updated", "2026-11-24T11:00:00Z"),
        ("sms", "granted", "generic:customer.updated", "2026-11-24T12:00:00Z"),
    ]
    assert all(when(e["recorded_at"]) <= when(now) for e in ledger)
    assert not any(e.get("superseded") for e in ledger)
    assert customer["consents"] == {"sms": {"state": "granted",
                                            "source": "generic:customer.updated",
                                            "at": "2026-11-24T12:00:00Z"}}


async def test_consent_time_is_the_events_consent_at_when_given(app: App) -> None:
    payload = consent_event("c-1", "2026-11-24T10:00:00Z", whatsapp=True, sms=False)
    payload["customer"]["consent_at"] = "2026-11-20T08:30:00-03:00"
    await app.service.event(payload)
    await app.service.advance(0)
    consents = (await app.customer("cus_1"))["consents"]
    assert consents["whatsapp"]["at"] == consents["sms"]["at"] == "2026-11-20T11:30:00Z"
    assert (consents["whatsapp"]["state"], consents["sms"]["state"]) == ("granted", "revoked")


async def test_an_older_true_from_the_store_does_not_override_a_later_opt_out(app: App) -> None:
    await app.service.event(consent_event("o-1", "2026-11-24T12:00:00Z", sms=False))
    # The store repeats an older true, several times and under new event ids.
    for n in range(3):
        await app.service.event(consent_event(f"o-old-{n}", "2026-11-24T09:00:00Z", sms=True))
    await app.service.advance(0)
    customer = await app.customer("cus_1")
    assert customer["consents"]["sms"] == {"state": "revoked",
                                           "source": "generic:customer.updated",
                                           "at": "2026-11-24T12:00:00Z"}
    ledger = customer["consent_ledger"]
    assert ledger[0]["state"] == "revoked" and not ledger[0].get("superseded")
    assert len(ledger) == 4
    assert all(e["state"] == "granted" and e["superseded"] is True
               and e["at"] == "2026-11-24T09:00:00Z" for e in ledger[1:])
    # A true given after the opt-out does count.
    await app.service.event(consent_event("o-new", "2026-11-24T13:00:00Z", sms=True))
    await app.service.advance(0)
    assert (await app.customer("cus_1"))["consents"]["sms"]["state"] == "granted"


async def test_shopify_consent_counts_as_of_consent_updated_at(app: App) -> None:
    """customers/update (unsubscribed on 26 Nov) arrives before a late customers/create
    (subscribed on 20 Nov): the customer stays unsubscribed."""
    await app.shopify(shopify_fixture("customers_update"), "customers/update", "wh-u")
    await app.shopify(shopify_fixture("customers_create"), "customers/create", "wh-c")
    await app.service.advance(0)
    customer = await app.customer("7165043802335")
    assert customer["consents"]["sms"] == {"state": "revoked",
                                           "source": "shopify:customer.updated",
                                           "at": "2026-11-26T14:42:08Z"}
    sms = [e for e in customer["consent_ledger"] if e["channel"] == "sms"]
    assert [(e["state"], e.get("superseded", False)) for e in sms] == [
        ("revoked", False), ("granted", True)]
    assert customer["consents"]["email"]["state"] == "granted"  # no later email statement


async def test_a_store_true_older_than_an_sms_stop_does_not_resubscribe(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    """The customer texts STOP; the store then sends events that carry its older opt-in."""
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, fakes,
                                                           flows=NO_FLOWS)))
    service = Service(client)
    now = await service.advance(0)
    await service.event(consent_event("s-1", "2026-01-01T00:00:00Z", sms=True))
    await service.advance(60)
    await service.sms(twilio_inbound_form("STOP", from_=PHONE,
                                          account_sid=fakes.twilio.account_sid))
    await service.advance(60)
    await service.event(consent_event("s-2", "2026-01-01T00:00:00Z", sms=True))
    await service.event(consent_event("s-3", now, sms=True))  # before the STOP, too
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["sms"]["state"] == "revoked"
    assert customer["consents"]["sms"]["source"] == "keyword:sms"
    assert [e["state"] for e in customer["consent_ledger"]] == [
        "granted", "revoked", "granted", "granted"]
    assert [bool(e.get("superseded")) for e in customer["consent_ledger"]] == [
        False, False, True, True]
