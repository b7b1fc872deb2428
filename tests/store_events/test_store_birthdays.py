"""Birthdays from store customer data: Shopify metafields and WooCommerce ``meta_data``.

Through the running service with the stores' own signatures (the birthday is
read back from ``/api/customers``), and through each adapter for the
variants: which keys count, and that a value that is no unambiguous date is
left out without refusing the webhook.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.inputs import StoreEvent
from server import create_app
from store_events.shopify import ShopifyAdapter
from store_events.woocommerce import WooCommerceAdapter
from tests.support.app import SHOPIFY_SECRET, WOO_SECRET, Service, make_settings
from tests.support.store_signing import load_fixture, shopify_headers, woocommerce_headers

NO_FLOWS = "se_no_flows"  # intake only: no shipped flow answers


def metafield(namespace: str, key: str, value: Any, kind: str = "date") -> dict[str, Any]:
    """A customer metafield as a webhook with ``metafieldNamespaces`` carries it."""
    return {"id": 21683458506931, "namespace": namespace, "key": key, "value": value,
            "description": None, "owner_id": 7165043802335, "owner_resource": "customer",
            "type": kind, "created_at": "2026-11-20T16:05:33-03:00",
            "updated_at": "2026-11-20T16:05:33-03:00",
            "admin_graphql_api_id": "gid://shopify/Metafield/21683458506931"}


def shopify_customer(*metafields: dict[str, Any] | Any) -> bytes:
    payload = json.loads(load_fixture("shopify/customers_create.json"))
    payload["metafields"] = list(metafields)
    return json.dumps(payload).encode()


def woocommerce_customer(*meta: tuple[str, Any]) -> bytes:
    payload = json.loads(load_fixture("woocommerce/customer_created.json"))
    payload["meta_data"] = [{"id": 900 + n, "key": key, "value": value}
                            for n, (key, value) in enumerate(meta)]
    return json.dumps(payload).encode()


@pytest.fixture
async def service(aiohttp_client: Any, mongo_uri: str, db_name: str) -> AsyncIterator[Service]:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, flows=NO_FLOWS)))
    yield Service(client)


async def test_shopify_birth_date_metafield_becomes_the_birthday(service: Service) -> None:
    body = shopify_customer(metafield("facts", "birth_date", "1990-03-14"))
    response = await service.client.post("/webhooks/shopify", data=body, headers=shopify_headers(
        SHOPIFY_SECRET, body, "customers/create", "wh-bd-1"))
    assert response.status == 200, await response.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/7165043802335")
    assert customer["birthday"] == "1990-03-14"
    assert customer["first_name"] == "Martín"


async def test_woocommerce_birthday_meta_becomes_the_birthday(service: Service) -> None:
    body = woocommerce_customer(("_wc_points", "12"), ("billing_birth_date", "--07-21"))
    response = await service.client.post(
        "/webhooks/woocommerce", data=body,
        headers=woocommerce_headers(WOO_SECRET, body, "customer.created", "d-bd-1"))
    assert response.status == 200, await response.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/27")
    assert customer["birthday"] == "--07-21"


async def test_a_date_that_is_not_unambiguous_is_left_out_not_refused(
        service: Service) -> None:
    body = shopify_customer(metafield("facts", "birth_date", "1990-03-14"))
    await service.client.post("/webhooks/shopify", data=body, headers=shopify_headers(
        SHOPIFY_SECRET, body, "customers/create", "wh-bd-2"))
    payload = json.loads(body)
    payload["metafields"] = [metafield("custom", "birthday", "14/03/1991",
                                       "single_line_text_field")]
    payload["first_name"] = "Martina"
    changed = json.dumps(payload).encode()
    response = await service.client.post("/webhooks/shopify", data=changed, headers=shopify_headers(
        SHOPIFY_SECRET, changed, "customers/update", "wh-bd-3"))
    assert response.status == 200, await response.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/7165043802335")
    assert customer["birthday"] == "1990-03-14"  # kept: "14/03/1991" says nothing we trust
    assert customer["first_name"] == "Martina"  # the rest of the update counted


# --- each adapter, signed as the store signs -------------------------------------------


def shopify(body: bytes, topic: str = "customers/create") -> StoreEvent:
    adapter = ShopifyAdapter(SHOPIFY_SECRET, "AR")
    headers = shopify_headers(SHOPIFY_SECRET, body, topic, "wh-1")
    adapter.verify(headers, body)
    events = adapter.parse(headers, body)
    assert events is not None
    [event] = events
    return event


def woocommerce(body: bytes, topic: str = "customer.updated") -> StoreEvent:
    adapter = WooCommerceAdapter(WOO_SECRET, "AR")
    headers = woocommerce_headers(WOO_SECRET, body, topic, "d-1")
    adapter.verify(headers, body)
    events = adapter.parse(headers, body)
    assert events is not None
    [event] = events
    return event


GOOD = metafield("custom", "date_of_birth", "1988-08-08")  # found after the one tried first


@pytest.mark.parametrize(("metafields", "expected"), [
    ([metafield("custom", "birthday", "1985-11-02")], "1985-11-02"),
    ([metafield("customer_fields", "date_of_birth", "--02-29")], "--02-29"),
    # The standard definition wins over a store's own, wherever it is in the list.
    ([metafield("custom", "birthday", "1985-11-02"), metafield("facts", "birth_date",
                                                              "1990-03-14")], "1990-03-14"),
    # A bad standard value does not hide a good custom one.
    ([metafield("facts", "birth_date", "1990-02-30"), GOOD], "1988-08-08"),
    # Not a birthday key, not an unambiguous date, not a date, not a metafield: skipped.
    ([metafield("custom", "anniversary", "2015-06-01"), GOOD], "1988-08-08"),
    ([metafield("custom", "birthday", "03/14/1990", "single_line_text_field"), GOOD],
     "1988-08-08"),
    ([metafield("custom", "birthday", 19900314, "number_integer"), GOOD], "1988-08-08"),
    ([metafield("custom", "birthday", "1990-03-14T00:00:00Z", "date_time"), GOOD],
     "1988-08-08"),
    (["not an object", None, GOOD], "1988-08-08"),
])
def test_shopify_metafields(metafields: list[Any], expected: str) -> None:
    event = shopify(shopify_customer(*metafields), "customers/update")
    assert event.customer.birthday == expected
    assert event.customer.id == "7165043802335"


@pytest.mark.parametrize(("meta", "expected"), [
    ([("birthday", "1992-05-30")], "1992-05-30"),
    ([("birth_date", "--12-24")], "--12-24"),
    ([("date_of_birth", "2001-01-09")], "2001-01-09"),
    ([("billing_birth_date", "1970-10-10")], "1970-10-10"),
    # Skipped: an ambiguous date, an empty one, no date at all, another key.
    ([("birthday", "30/05/1992"), ("date_of_birth", "1992-05-30")], "1992-05-30"),
    ([("birthday", ""), ("birth_date", "1992-05-30")], "1992-05-30"),
    ([("birthday", {"day": 30, "month": 5}), ("birth_date", "1992-05-30")], "1992-05-30"),
    ([("_birthday_plugin_notice", "1980-01-01"), ("birth_date", "1992-05-30")], "1992-05-30"),
])
def test_woocommerce_meta_data(meta: list[tuple[str, Any]], expected: str) -> None:
    assert woocommerce(woocommerce_customer(*meta)).customer.birthday == expected
