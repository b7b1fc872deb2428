"""Store webhooks through the running service: HTTP in, customer out (``/api/customers``).

Every real-format fixture goes through its route with the store's own
signature; what the service stored is read back through the agent API (and,
for what the API does not show, straight from the test database).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pymongo import AsyncMongoClient

from bot.types import Doc
from server import create_app
from tests.support.app import (
    EVENTS_SECRET,
    SHOPIFY_SECRET,
    WOO_SECRET,
    Service,
    make_settings,
)
from tests.support.store_signing import (
    events_headers,
    load_fixture,
    shopify_headers,
    woocommerce_headers,
)

# No shipped flow: these tests are about intake and customers, not what flows answer,
# and stay independent of rules/ (any module name that does not exist loads none).
NO_FLOWS = "se_no_flows"


def signed(route: str, body: bytes, topic: str, delivery: str,
           secret: str | None = None) -> dict[str, str]:
    """The headers the store behind ``route`` sends with ``body``."""
    if route == "/webhooks/shopify":
        return shopify_headers(secret or SHOPIFY_SECRET, body, topic, delivery)
    if route == "/webhooks/woocommerce":
        return woocommerce_headers(secret or WOO_SECRET, body, topic, delivery)
    return events_headers(secret or EVENTS_SECRET, body)


@dataclass
class App:
    client: TestClient[web.Request, web.Application]
    service: Service
    db: Any  # AsyncDatabase of the app's test database

    async def post(self, route: str, body: bytes, topic: str = "", delivery: str = "d-1",
                   *, secret: str | None = None) -> tuple[int, Doc]:
        response = await self.client.post(route, data=body,
                                          headers=signed(route, body, topic, delivery, secret))
        return response.status, await response.json()

    async def customer(self, customer_id: str, expect: int = 200) -> Doc:
        return dict(await self.service.api("GET", f"/api/customers/{quote(customer_id, safe='')}",
                                           expect=expect))


@pytest.fixture
async def app(aiohttp_client: Any, mongo_uri: str, db_name: str) -> AsyncIterator[App]:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, flows=NO_FLOWS)))
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield App(client, Service(client), mongo[db_name])
    finally:
        await mongo.close()


# --- every topic, correctly signed ------------------------------------------------------

# (route, fixture, topic, customer id, fields the customer must then have)
ANA = {"email": "ana.gomez@example.com", "phone": "+5491122334455", "first_name": "Ana",
       "last_name": "Gómez"}
MARTIN = {"email": "martin.rodriguez@example.com", "phone": "+5491155667788",
          "first_name": "Martín", "last_name": "Rodríguez"}
SOFIA = {"email": "sofia.martinez@example.com", "phone": "+5493414556677",
         "first_name": "Sofía", "last_name": "Martínez"}
JOAQUIN = {"email": "joaquin.fernandez@example.com", "phone": "+5492236789012",
           "first_name": "Joaquín"}
TOPICS: list[tuple[str, str, str, str, Doc, Doc]] = [
    # route, fixture, topic, customer id, profile, consents {channel: (state, at)}
    ("/webhooks/shopify", "shopify/checkouts_create.json", "checkouts/create", "7165043769567",
     {**ANA, "locale": "es-AR"}, {"sms": ("granted", "2026-11-24T10:00:00Z")}),
    ("/webhooks/shopify", "shopify/checkouts_update.json", "checkouts/update",
     "shopify-guest:lucia.perez@example.com",
     {"email": "lucia.perez@example.com", "phone": "+5493515123456", "first_name": "Lucía"},
     {"email": ("granted", "2026-11-24T12:52:47Z")}),
    ("/webhooks/shopify", "shopify/orders_create.json", "orders/create", "7165043769567",
     ANA, {}),
    ("/webhooks/shopify", "shopify/orders_fulfilled.json", "orders/fulfilled", "7165043769567",
     ANA, {}),
    ("/webhooks/shopify", "shopify/customers_create.json", "customers/create", "7165043802335",
     MARTIN, {"sms": ("granted", "2026-11-20T19:05:31Z"),
              "email": ("granted", "2026-11-20T19:05:30Z")}),
    ("/webhooks/shopify", "shopify/customers_update.json", "customers/update", "7165043802335",
     MARTIN, {"sms": ("revoked", "2026-11-26T14:42:08Z")}),
    ("/webhooks/shopify", "shopify/customers_marketing_consent_update.json",
     "customers_marketing_consent/update", "7165043769567", {"phone": "+5491122334455"},
     {"sms": ("granted", "2026-11-24T10:00:04Z")}),
    ("/webhooks/woocommerce", "woocommerce/order_created.json", "order.created", "12",
     SOFIA, {}),
    ("/webhooks/woocommerce", "woocommerce/order_updated_completed.json", "order.updated", "12",
     SOFIA, {}),
    ("/webhooks/woocommerce", "woocommerce/customer_created.json", "customer.created", "27",
     JOAQUIN, {}),
    ("/webhooks/woocommerce", "woocommerce/customer_updated.json", "customer.updated", "27",
     JOAQUIN, {}),
    ("/events", "events/checkout_started.json", "", "cus_1",
     {"email": "ana@example.com", "phone": "+5491122334455", "first_name": "Ana",
      "locale": "es", "timezone": "America/Argentina/Buenos_Aires"},
     {"whatsapp": ("granted", "2026-11-24T10:00:00Z"), "sms": ("granted", "2026-11-24T10:00:00Z")}),
    ("/events", "events/order_placed.json", "", "cus_1",
     {"email": "ana@example.com", "phone": "+5491122334455", "first_name": "Ana"}, {}),
    ("/events", "events/order_fulfilled.json", "", "cus_1",
     {"phone": "+5491122334455", "first_name": "Ana"}, {}),
    ("/events", "events/customer_created.json", "", "cus_2",
     {"email": "martin.rodriguez@example.com", "phone": "+5491155667788",
      "first_name": "Martín", "last_name": "Rodríguez", "birthday": "--03-14"},
     {"whatsapp": ("granted", "2026-11-20T19:05:30Z"), "sms": ("revoked", "2026-11-20T19:05:30Z"),
      "email": ("granted", "2026-11-20T19:05:30Z")}),
    ("/events", "events/product_viewed.json", "", "cus_1", {}, {}),
    ("/events", "events/product_back_in_stock.json", "", "cus_3",
     {"phone": "+5493515123456", "first_name": "Lucía"},
     {"whatsapp": ("granted", "2026-11-27T12:00:00Z")}),
]


@pytest.mark.parametrize(("route", "fixture", "topic", "customer_id", "profile", "consents"),
                         TOPICS, ids=[t[1] for t in TOPICS])
async def test_every_topic_with_a_correct_signature_makes_the_customer(
        app: App, route: str, fixture: str, topic: str, customer_id: str, profile: Doc,
        consents: Doc) -> None:
    body = load_fixture(fixture)
    status, answer = await app.post(route, body, topic, "delivery-1")
    if route == "/events":
        assert (status, answer) == (202, {"id": json.loads(body)["id"]})
    else:
        assert (status, answer) == (200, {"ok": True, "events": 1})
    await app.service.advance(0)
    customer = await app.customer(customer_id)
    assert customer["id"] == customer_id
    for field, value in profile.items():
        assert customer[field] == value, field
    assert {ch: (c["state"], c["at"]) for ch, c in customer["consents"].items()} == consents
    for channel, entry in customer["consents"].items():
        assert entry["source"].startswith(
            {"/webhooks/shopify": "shopify:", "/webhooks/woocommerce": "woocommerce:",
             "/events": "generic:"}[route]), channel
    assert len(customer["consent_ledger"]) == len(consents)
    assert await app.db.customers.count_documents({}) == 1
    assert await app.db.inbox.count_documents({"state": {"$ne": "done"}}) == 0


async def test_a_store_conversation_from_checkout_to_fulfilment_is_one_customer(app: App) -> None:
    """Shopify's checkout, consent update, order and fulfilment of Ana: one document."""
    for fixture, topic in [("checkouts_create", "checkouts/create"),
                           ("customers_marketing_consent_update",
                            "customers_marketing_consent/update"),
                           ("orders_create", "orders/create"),
                           ("orders_fulfilled", "orders/fulfilled")]:
        status, _ = await app.post("/webhooks/shopify", load_fixture(f"shopify/{fixture}.json"),
                                   topic, f"wh-{fixture}")
        assert status == 200
    await app.service.advance(0)
    customer = await app.customer("7165043769567")
    assert {k: customer[k] for k in ANA} == ANA
    assert customer["consents"]["sms"]["state"] == "granted"
    assert await app.db.customers.count_documents({}) == 1
    doc = await app.db.customers.find_one({})
    assert doc["checkouts"]["b1946ac92492d2347c6235b4d2611184"]["ordered"] is True
    assert await app.db.inbox.count_documents({"state": "done"}) == 4


# --- signatures and secrets -------------------------------------------------------------

ROUTES = [("/webhooks/shopify", "shopify/customers_create.json", "customers/create",
           "7165043802335"),
          ("/webhooks/woocommerce", "woocommerce/customer_created.json", "customer.created",
           "27"),
          ("/events", "events/customer_created.json", "", "cus_2")]


@pytest.mark.parametrize(("route", "fixture", "topic", "customer_id"), ROUTES,
                         ids=[r[0] for r in ROUTES])
async def test_wrong_signature_is_401_and_nothing_is_stored(
        app: App, route: str, fixture: str, topic: str, customer_id: str) -> None:
    body = load_fixture(fixture)
    status, answer = await app.post(route, body, topic, secret="not-the-secret")
    assert status == 401
    assert "error" in answer
    tampered = body + b"\n"  # still valid JSON, but not the bytes that were signed
    headers = signed(route, body, topic, "d-2")
    response = await app.client.post(route, data=tampered, headers=headers)
    assert response.status == 401
    unsigned = {k: v for k, v in headers.items()
                if k not in ("X-Shopify-Hmac-Sha256", "X-WC-Webhook-Signature",
                             "X-Signature-256")}
    response = await app.client.post(route, data=body, headers=unsigned)
    assert response.status == 401
    assert "error" in await response.json()
    await app.service.advance(0)
    await app.customer(customer_id, expect=404)
    assert await app.db.inbox.count_documents({}) == 0
    assert await app.db.customers.count_documents({}) == 0


@pytest.mark.parametrize(("route", "fixture", "topic", "customer_id"), ROUTES,
                         ids=[r[0] for r in ROUTES])
async def test_an_endpoint_whose_secret_is_unset_answers_503(
        aiohttp_client: Any, mongo_uri: str, db_name: str, route: str, fixture: str,
        topic: str, customer_id: str) -> None:
    unset = {"shopify_webhook_secret": None, "woocommerce_webhook_secret": None,
             "store_events_secret": None}
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, flows=NO_FLOWS,
                                                           **unset)))
    body = load_fixture(fixture)
    response = await client.post(route, data=body, headers=signed(route, body, topic, "d-1"))
    assert response.status == 503
    assert "secret" in (await response.json())["error"]
    service = Service(client)
    await service.advance(0)
    await service.api("GET", f"/api/customers/{customer_id}", expect=404)


async def test_only_the_endpoint_without_a_secret_is_off(aiohttp_client: Any, mongo_uri: str,
                                                         db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(
        mongo_uri, db_name, flows=NO_FLOWS, woocommerce_webhook_secret=None)))
    body = load_fixture("woocommerce/customer_created.json")
    off = await client.post("/webhooks/woocommerce", data=body,
                            headers=signed("/webhooks/woocommerce", body, "customer.created", "d"))
    assert off.status == 503
    body = load_fixture("shopify/customers_create.json")
    on = await client.post("/webhooks/shopify", data=body,
                           headers=signed("/webhooks/shopify", body, "customers/create", "d"))
    assert on.status == 200


# --- duplicates -------------------------------------------------------------------------


async def test_shopify_duplicate_delivery_changes_nothing(app: App) -> None:
    body = load_fixture("shopify/customers_create.json")
    webhook_id = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert await app.post("/webhooks/shopify", body, "customers/create", webhook_id) == (
        200, {"ok": True, "events": 1})
    await app.service.advance(0)
    before_customer = await app.db.customers.find_one({})
    before_inbox = await app.db.inbox.find({}).to_list(None)
    # The same delivery again (Shopify retries until it sees a 2xx), even with a changed body.
    again = await app.post("/webhooks/shopify", body, "customers/create", webhook_id)
    assert again == (200, {"duplicate": True})
    changed = json.loads(body)
    changed["first_name"] = "Otro"
    again = await app.post("/webhooks/shopify", json.dumps(changed).encode(), "customers/create",
                           webhook_id)
    assert again == (200, {"duplicate": True})
    await app.service.advance(0)
    assert await app.db.customers.find_one({}) == before_customer
    assert await app.db.inbox.find({}).to_list(None) == before_inbox
    assert (await app.customer("7165043802335"))["first_name"] == "Martín"


async def test_woocommerce_duplicate_delivery_changes_nothing(app: App) -> None:
    body = load_fixture("woocommerce/order_created.json")
    assert (await app.post("/webhooks/woocommerce", body, "order.created", "d-7"))[0] == 200
    await app.service.advance(0)
    before = await app.db.customers.find_one({})
    assert await app.post("/webhooks/woocommerce", body, "order.created", "d-7") == (
        200, {"duplicate": True})
    await app.service.advance(0)
    assert await app.db.customers.find_one({}) == before
    assert await app.db.inbox.count_documents({}) == 1


async def test_generic_event_answers_202_with_its_id_then_duplicate(app: App) -> None:
    event = json.loads(load_fixture("events/checkout_started.json"))
    assert await app.service.event(event) == {"id": "evt_0001"}
    await app.service.advance(0)
    before = await app.db.customers.find_one({})
    changed = {**event, "customer": {**event["customer"], "first_name": "Otra",
                                     "consents": {"sms": False}}}
    assert await app.service.event(event, expect=200) == {"duplicate": True}
    assert await app.service.event(changed, expect=200) == {"duplicate": True}
    await app.service.advance(0)
    assert await app.db.customers.find_one({}) == before
    customer = await app.customer("cus_1")
    assert customer["first_name"] == "Ana"
    assert customer["consents"]["sms"]["state"] == "granted"


# --- malformed bodies -------------------------------------------------------------------


def _without(fixture: str, *path: str | int) -> bytes:
    payload = json.loads(load_fixture(fixture))
    node = payload
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return json.dumps(payload).encode()


MALFORMED = [
    ("/events", b"{not json", "", "body"),
    ("/events", b"[1, 2]", "", "body"),
    ("/events", _without("events/checkout_started.json", "customer", "id"), "", "customer.id"),
    ("/events", _without("events/checkout_started.json", "occurred_at"), "", "occurred_at"),
    ("/events", _without("events/checkout_started.json", "data", "checkout_id"), "",
     "data.checkout_id"),
    ("/events", _without("events/checkout_started.json", "data", "items", 0, "price"), "",
     "data.items[0].price"),
    ("/events", _without("events/order_placed.json", "data", "order_id"), "", "data.order_id"),
    ("/webhooks/shopify", b"{not json", "orders/create", "body"),
    ("/webhooks/shopify", _without("shopify/orders_create.json", "total_price"),
     "orders/create", "total_price"),
    ("/webhooks/shopify", _without("shopify/checkouts_create.json", "token"),
     "checkouts/create", "token"),
    ("/webhooks/woocommerce", _without("woocommerce/order_created.json", "status"),
     "order.created", "status"),
    ("/webhooks/woocommerce", b"\xff\xfe", "order.created", "body"),
]


@pytest.mark.parametrize(("route", "body", "topic", "field"), MALFORMED,
                         ids=[f"{m[0]}-{m[3]}" for m in MALFORMED])
async def test_malformed_body_is_400_naming_the_field(app: App, route: str, body: bytes,
                                                      topic: str, field: str) -> None:
    status, answer = await app.post(route, body, topic)
    assert status == 400
    assert field in answer["error"], answer
    await app.service.advance(0)
    assert await app.db.inbox.count_documents({}) == 0
    assert await app.db.customers.count_documents({}) == 0


async def test_missing_webhook_headers_are_400_naming_the_header(app: App) -> None:
    body = load_fixture("shopify/orders_create.json")
    headers = signed("/webhooks/shopify", body, "orders/create", "wh-1")
    del headers["X-Shopify-Webhook-Id"]
    response = await app.client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status == 400
    assert "X-Shopify-Webhook-Id" in (await response.json())["error"]
    headers = signed("/webhooks/shopify", body, "orders/create", "wh-1")
    del headers["X-Shopify-Topic"]
    response = await app.client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status == 400
    assert "X-Shopify-Topic" in (await response.json())["error"]


# --- unknown topics are kept ------------------------------------------------------------

IGNORED = [
    ("/webhooks/shopify", load_fixture("shopify/products_update.json"), "products/delete"),
    ("/webhooks/woocommerce", load_fixture("woocommerce/order_updated_processing.json"),
     "order.updated"),
    ("/webhooks/woocommerce", load_fixture("woocommerce/customer_created.json"),
     "coupon.created"),
    ("/events", json.dumps({
        "id": "evt_9001", "type": "loyalty.points_earned", "occurred_at": "2026-11-24T10:00:00Z",
        "customer": {"id": "cus_1", "phone": "+5491122334455"}, "data": {"points": 120},
    }, ensure_ascii=False).encode(), "loyalty.points_earned"),
]


@pytest.mark.parametrize(("route", "body", "topic"), IGNORED,
                         ids=[f"{i[0]}-{i[2]}" for i in IGNORED])
async def test_unknown_topic_is_200_ignored_and_kept(app: App, route: str, body: bytes,
                                                     topic: str) -> None:
    status, answer = await app.post(route, body, topic, "wh-unknown")
    assert (status, answer) == (200, {"ignored": True})
    await app.service.advance(0)
    [kept] = await app.db.inbox.find({}).to_list(None)
    assert kept["state"] == "ignored"
    assert kept["raw"] == body.decode()
    assert kept["payload"]["topic"] == topic
    assert await app.db.customers.count_documents({}) == 0
    # A repeat answers as every repeat does (the contract's /events answer)
    # and keeps nothing more.
    assert await app.post(route, body, topic, "wh-unknown") == (200, {"duplicate": True})
    assert await app.db.inbox.count_documents({}) == 1


# --- size limit -------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "topic"), [("/webhooks/shopify", "orders/create"),
                                              ("/webhooks/woocommerce", "order.created"),
                                              ("/events", "")])
async def test_body_over_one_mebibyte_is_413(app: App, route: str, topic: str) -> None:
    payload = json.loads(load_fixture("events/checkout_started.json"))
    payload["padding"] = "x" * (1024 * 1024)
    body = json.dumps(payload).encode()
    response = await app.client.post(route, data=io.BytesIO(body),
                                     headers=signed(route, body, topic, "d-big"))
    assert response.status == 413
    assert "error" in await response.json()
    assert await app.db.inbox.count_documents({}) == 0


async def test_a_body_of_exactly_one_mebibyte_is_accepted(app: App) -> None:
    payload = json.loads(load_fixture("events/customer_created.json"))
    payload["padding"] = ""
    size = len(json.dumps(payload).encode())
    payload["padding"] = "x" * (1024 * 1024 - size)
    body = json.dumps(payload).encode()
    assert len(body) == 1024 * 1024
    status, answer = await app.post("/events", body)
    assert (status, answer) == (202, {"id": "evt_0004"})


async def test_simultaneous_copies_of_one_delivery_are_stored_once(app: App) -> None:
    body = load_fixture("shopify/orders_create.json")
    headers = signed("/webhooks/shopify", body, "orders/create", "wh-same")
    responses = await asyncio.gather(*(app.client.post("/webhooks/shopify", data=body,
                                                       headers=headers) for _ in range(5)))
    answers = [(r.status, await r.json()) for r in responses]
    assert sorted(a[1] == {"duplicate": True} for a in answers) == [False] + [True] * 4
    assert (200, {"ok": True, "events": 1}) in answers
    await app.service.advance(0)
    assert await app.db.inbox.count_documents({}) == 1
    assert await app.db.customers.count_documents({}) == 1


async def test_woocommerce_ping_is_answered_unsigned_and_kept(app: App) -> None:
    response = await app.client.post(
        "/webhooks/woocommerce", data=b"webhook_id=7",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 200
    assert await response.json() == {"ignored": True}
    [kept] = await app.db.inbox.find({}).to_list(None)
    assert (kept["_id"], kept["state"], kept["raw"]) == (
        "woocommerce:delivery:ping:7", "ignored", "webhook_id=7")
