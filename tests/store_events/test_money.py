"""Money as stores send it: a JSON number or a decimal string, kept exact, anything else a 400.

The adapters are fed raw bytes (the JSON text matters: 59.9 must not pass
through a float), then the service stores and decides a checkout whose money
came as strings, and the shipped cart flow still writes to the customer.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from bot.core.errors import BadPayload
from bot.core.inputs import StoreEvent
from bot.types import Doc
from server import create_app
from store_events.base import money
from store_events.generic import GenericAdapter
from store_events.shopify import ShopifyAdapter
from store_events.woocommerce import WooCommerceAdapter
from tests.support.app import EVENTS_SECRET, Fakes, Service, make_settings
from tests.support.store_signing import (
    events_headers,
    load_fixture,
    shopify_headers,
    woocommerce_headers,
)

GENERIC = GenericAdapter("s", "AR")


def checkout_body(total: str, price: str, *, event_type: str = "checkout.started") -> bytes:
    """A checkout whose ``total`` and first ``price`` are spliced in as raw JSON text."""
    data = ('"data": {"checkout_id": "chk_1", "recovery_url": "https://shop.example/r/chk_1", '
            f'"total": {total}, "currency": "ars", "items": [{{"sku": "M", "title": "Mate", '
            f'"quantity": 1, "price": {price}, "weight": 0.35}}]}}')
    return (f'{{"id": "evt_1", "type": "{event_type}", "occurred_at": "2026-11-24T10:00:00Z", '
            f'"customer": {{"id": "cus_1", "phone": "+5491122334455"}}, {data}}}').encode()


def parse_generic(body: bytes) -> StoreEvent:
    events = GENERIC.parse(events_headers("s", body), body)
    assert events is not None
    [event] = events
    return event


# --- the money type ---------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "kept"), [
    (Decimal("59.9"), "59.9"), (Decimal("59.90"), "59.90"), ("59.90", "59.90"),
    ("059.90", "59.90"), (25000, "25000"), ("0", "0"), (Decimal("1E+2"), "100"),
    (Decimal("-0.0"), "0.0"), ("8.2644628099174", "8.2644628099174"),
])
def test_money_is_kept_exact_as_a_decimal_string(given: object, kept: str) -> None:
    assert money(given) == kept


@pytest.mark.parametrize(("given", "reason"), [
    ("abc", "decimal string"), ("1e5", "decimal string"), ("59,90", "decimal string"),
    (" 59.90", "decimal string"), ("", "decimal string"), ("NaN", "decimal string"),
    (Decimal("NaN"), "finite"), (Decimal("Infinity"), "finite"),
    (Decimal("1E+999"), "at most 20 digits"), (10**20, "at most 20 digits"),
    (Decimal("1E-21"), "at most 20 decimal places"),
    ("-1.50", "greater than or equal to 0"), (Decimal("-1.5"), "greater than or equal to 0"),
    (True, "decimal number"), (59.9, "decimal number"), (None, "decimal number"),
    ({"amount": "1"}, "decimal number"),
])
def test_anything_else_is_refused_saying_why(given: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        money(given)


# --- the adapters -------------------------------------------------------------------------------


def test_generic_money_as_strings_or_numbers_is_exact_with_its_currency() -> None:
    event = parse_generic(checkout_body('"59.90"', '"59.90"'))
    assert (event.data["total"], event.data["currency"]) == ("59.90", "ARS")
    assert event.data["items"][0]["price"] == "59.90"
    event = parse_generic(checkout_body("59.9", "0.1"))
    assert (event.data["total"], event.data["items"][0]["price"]) == ("59.9", "0.1")
    assert event.data["items"][0]["weight"] == 0.35  # not money: a JSON number, kept as sent
    stored = event.model_dump(mode="json")  # what the inbox keeps
    assert stored["data"]["total"] == "59.9"
    assert stored["data"]["items"][0]["weight"] == 0.35


@pytest.mark.parametrize(("total", "price", "error"), [
    ('"abc"', '"1"', "data.total: Input should be a decimal string"),
    ("1e999", '"1"', "data.total: Input should have at most 20 digits"),
    ("true", '"1"', "data.total: Input should be a decimal number"),
    ('"-5"', '"1"', "data.total: Input should be greater than or equal to 0"),
    ('"1"', '"12.5.0"', "data.items[0].price: Input should be a decimal string"),
    ('"1"', "-0.5", "data.items[0].price: Input should be greater than or equal to 0"),
    ('"1"', "null", "data.items[0].price: Input should be a decimal number"),
])
def test_bad_money_is_a_bad_payload_naming_the_field(total: str, price: str, error: str) -> None:
    with pytest.raises(BadPayload) as raised:
        parse_generic(checkout_body(total, price))
    assert str(raised.value).startswith(error)


def test_an_order_total_is_money_and_absent_money_adds_no_keys() -> None:
    body = json.dumps({"id": "e", "type": "order.placed", "occurred_at": "2026-11-24T10:00:00Z",
                       "customer": {"id": "c"},
                       "data": {"order_id": "o1", "total": "120.50", "currency": "usd"}}).encode()
    assert parse_generic(body).data == {"order_id": "o1", "checkout_id": None,
                                        "total": "120.50", "currency": "USD"}
    with pytest.raises(BadPayload, match=r"^data.total: "):
        parse_generic(body.replace(b'"120.50"', b'"ciento"'))
    viewed = json.dumps({"id": "e", "type": "product.viewed", "occurred_at": "2026-11-24T10:00:00Z",
                         "customer": {"id": "c"}, "data": {"sku": "M", "price": 12500.5}}).encode()
    assert parse_generic(viewed).data == {"sku": "M", "price": "12500.5"}


def test_shopify_decimal_strings_stay_exact() -> None:
    payload = json.loads(load_fixture("shopify/checkouts_create.json"))
    payload["total_price"] = "59.90"
    payload["line_items"][0]["price"] = "0.10"
    body = json.dumps(payload).encode()
    adapter = ShopifyAdapter("s", "AR")
    headers = shopify_headers("s", body, "checkouts/create", "wh-1")
    [event] = adapter.parse(headers, body) or []
    assert event.data["total"] == "59.90"
    assert event.data["items"][0]["price"] == "0.10"
    with pytest.raises(BadPayload, match=r"^line_items\[0\].price: Input should be a decimal"):
        bad = body.replace(b'"0.10"', b'"gratis"')
        adapter.parse(shopify_headers("s", bad, "checkouts/create", "wh-2"), bad)


def test_woocommerce_float_prices_stay_exact() -> None:
    payload = json.loads(load_fixture("woocommerce/order_created.json"))
    payload["total"] = "10.00"
    body = json.dumps(payload).encode().replace(b'"price": 29500', b'"price": 8.2644628099174')
    adapter = WooCommerceAdapter("s", "AR")
    [event] = adapter.parse(woocommerce_headers("s", body, "order.created", "d-1"), body) or []
    assert event.data["total"] == "10.00"
    assert event.data["items"][0]["price"] == "8.2644628099174"


# --- through the service ------------------------------------------------------------------------


async def test_a_checkout_with_money_as_strings_reaches_the_cart_flow(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    """Accepted (202), stored exact, and the shipped cart-recovery flow asks the customer."""
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=3600)
    client = await aiohttp_client(create_app(settings))
    service = Service(client)
    now = await service.advance(0)
    body = checkout_body('"59.90"', '"59.90"').replace(b"2026-11-24T10:00:00Z", now.encode())
    body = body.replace(b'"phone": "+5491122334455"',
                        b'"phone": "+5491122334455", "consents": {"whatsapp": true}')
    response = await client.post("/events", data=body, headers=events_headers(EVENTS_SECRET, body))
    assert response.status == 202, await response.text()
    mongo: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = mongo[db_name]
        stored = await db.inbox.find_one({"payload.id": "evt_1"})
        assert stored is not None
        assert stored["payload"]["data"]["total"] == "59.90"
        await service.advance(0)
        doc = await db.customers.find_one({"keys": "store:cus_1"})
        assert doc is not None
        [wait] = [w for w in doc["waits"] if w["id"] == "cart:chk_1"]
        assert wait["event"]["total"] == "59.90"
        assert wait["event"]["items"][0]["price"] == "59.90"
    finally:
        await mongo.close()
    await service.advance(3601)
    sent = fakes.whatsapp.sent.get("5491122334455", [])
    assert [m["template"]["name"] for m in sent] == ["cart_recovery_interested"]


async def test_bad_money_answers_400_naming_the_field(
        aiohttp_client: Any, mongo_uri: str, db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    body = checkout_body('"59.90"', '"abc"')
    response = await client.post("/events", data=body, headers=events_headers(EVENTS_SECRET, body))
    assert response.status == 400
    assert (await response.json())["error"].startswith("data.items[0].price: ")
