"""store_events.shopify: signature, topics, mapping onto generic events, consent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.errors import BadPayload, BadSignature
from bot.core.inputs import StoreEvent
from store_events.shopify import ShopifyAdapter
from tests.support.store_signing import load_fixture, shopify_headers

SECRET = "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"
ADAPTER = ShopifyAdapter(SECRET, "AR")
TOPICS = {
    "checkouts_create": "checkouts/create",
    "checkouts_update": "checkouts/update",
    "orders_create": "orders/create",
    "orders_fulfilled": "orders/fulfilled",
    "customers_create": "customers/create",
    "customers_update": "customers/update",
    "customers_marketing_consent_update": "customers_marketing_consent/update",
    "products_update": "products/update",
    "inventory_levels_update": "inventory_levels/update",
}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(load_fixture(f"shopify/{name}.json"))
    return data


def deliver(name: str, payload: dict[str, Any] | bytes | None = None, *,
            topic: str | None = None, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            drop_headers: tuple[str, ...] = ()) -> list[StoreEvent] | None:
    """Sign and deliver a fixture (or a changed copy of it) like Shopify does."""
    if payload is None:
        body = load_fixture(f"shopify/{name}.json")
    elif isinstance(payload, bytes):
        body = payload
    else:
        body = json.dumps(payload).encode()
    headers = shopify_headers(SECRET, body, topic or TOPICS[name], webhook_id)
    for header in drop_headers:
        del headers[header]
    ADAPTER.verify(headers, body)
    return ADAPTER.parse(headers, body)


def one(events: list[StoreEvent] | None) -> StoreEvent:
    assert events is not None
    [event] = events
    return event


# --- signature, delivery id, topic -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_correct_signature_is_accepted(name: str) -> None:
    body = load_fixture(f"shopify/{name}.json")
    ADAPTER.verify(shopify_headers(SECRET, body, TOPICS[name], "w1"), body)


@pytest.mark.parametrize(
    "signature",
    [None, "", "not base64!", "c2hvcnQ=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
)
def test_wrong_or_missing_signature_is_refused(signature: str | None) -> None:
    body = load_fixture("shopify/orders_create.json")
    headers = shopify_headers(SECRET, body, "orders/create", "w1")
    del headers["X-Shopify-Hmac-Sha256"]
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, body)


def test_other_secret_or_changed_body_is_refused() -> None:
    body = load_fixture("shopify/orders_create.json")
    with pytest.raises(BadSignature):
        ADAPTER.verify(shopify_headers("another", body, "orders/create", "w1"), body)
    headers = shopify_headers(SECRET, body, "orders/create", "w1")
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, body.replace(b'"59000.00"', b'"1.00"', 1))


def test_header_names_are_case_insensitive() -> None:
    body = load_fixture("shopify/orders_create.json")
    signed = shopify_headers(SECRET, body, "orders/create", "w9")
    headers = {name.lower(): value for name, value in signed.items()}
    ADAPTER.verify(headers, body)
    assert ADAPTER.delivery_id(headers, body) == "w9"
    assert ADAPTER.topic(headers, body) == "orders/create"


def test_missing_webhook_id_or_topic_is_bad_payload() -> None:
    body = load_fixture("shopify/orders_create.json")
    headers = shopify_headers(SECRET, body, "orders/create", "w1")
    del headers["X-Shopify-Webhook-Id"], headers["X-Shopify-Topic"]
    with pytest.raises(BadPayload, match="X-Shopify-Webhook-Id"):
        ADAPTER.delivery_id(headers, body)
    with pytest.raises(BadPayload, match="X-Shopify-Topic"):
        ADAPTER.topic(headers, body)


# --- each topic ---------------------------------------------------------------------------


def test_checkouts_create_becomes_checkout_started() -> None:
    event = one(deliver("checkouts_create", webhook_id="wh-1"))
    assert event.id == "shopify:wh-1"
    assert event.type == "checkout.started"
    assert event.source == "shopify"
    assert event.occurred_at == datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)  # created_at
    assert event.data["checkout_id"] == "b1946ac92492d2347c6235b4d2611184"  # the token
    assert event.data["recovery_url"] == (
        "https://chasqui-demo.myshopify.com/73215082719/checkouts/ac/"
        "b1946ac92492d2347c6235b4d2611184/recover?key=8f3a2c0e5d7b4a19")
    assert event.data["total"] == "59000.00"  # Shopify's decimal string, exact
    assert event.data["currency"] == "ARS"
    assert event.data["items"] == [
        {"sku": "MATE-IMP-NEG", "title": "Mate imperial de calabaza", "quantity": 1,
         "price": "42000.00", "product_id": "8021456789012", "variant_id": "44123456789012"},
        {"sku": "BOMB-ALP", "title": "Bombilla de alpaca", "quantity": 2, "price": "8500.00",
         "product_id": "8021456789013", "variant_id": "44123456789013"},
    ]
    customer = event.customer
    assert customer.id == "7165043769567"
    assert customer.email == "ana.gomez@example.com"
    assert customer.first_name == "Ana"
    assert customer.last_name == "Gómez"
    assert customer.locale == "es-AR"
    assert customer.phone == "+5491122334455"  # sms_marketing_phone: the customer has none
    assert customer.consents == {"sms": True}  # buyer_accepts_sms, as of occurred_at
    assert customer.consent_at is None


def test_checkouts_update_of_a_guest() -> None:
    event = one(deliver("checkouts_update", webhook_id="wh-2"))
    assert event.type == "checkout.started"
    assert event.occurred_at == datetime(2026, 11, 24, 12, 52, 47, tzinfo=UTC)  # updated_at
    assert event.data["checkout_id"] == "d3b07384d113edec49eaa6238ad5ff00"
    assert event.data["total"] == "17000.00"
    assert event.data["items"][0]["sku"] is None  # "" in Shopify
    customer = event.customer
    assert customer.id == "shopify-guest:lucia.perez@example.com"
    assert customer.email == "lucia.perez@example.com"
    assert customer.phone == "+5493515123456"  # billing "(0351) 15-512-3456", country AR
    assert customer.first_name == "Lucía"
    assert customer.consents == {"email": True}  # buyer_accepts_marketing; sms unticked: no entry


def test_guest_without_email_is_known_by_phone() -> None:
    payload = fixture("checkouts_update")
    payload["email"] = None
    assert one(deliver("checkouts_update", payload)).customer.id == "shopify-guest:+5493515123456"


def test_anonymous_checkout_is_ignored() -> None:
    payload = fixture("checkouts_update")
    payload.update(email=None, billing_address=None, shipping_address=None)
    assert deliver("checkouts_update", payload) is None


def test_completed_checkout_is_ignored() -> None:
    payload = fixture("checkouts_update")
    payload["completed_at"] = "2026-11-24T09:55:00-03:00"
    assert deliver("checkouts_update", payload) is None


def test_orders_create_becomes_order_placed_of_that_checkout() -> None:
    checkout = one(deliver("checkouts_create"))
    event = one(deliver("orders_create", webhook_id="wh-3"))
    assert event.id == "shopify:order.placed:5923456789012"
    assert event.type == "order.placed"
    assert event.occurred_at == datetime(2026, 11, 24, 10, 25, 41, tzinfo=UTC)
    assert event.data["order_id"] == "5923456789012"
    assert event.data["checkout_id"] == checkout.data["checkout_id"]
    assert event.data["order_number"] == "#1042"
    assert event.data["total"] == "59000.00"
    assert event.data["currency"] == "ARS"
    assert [item["sku"] for item in event.data["items"]] == ["MATE-IMP-NEG", "BOMB-ALP"]
    assert event.customer.id == checkout.customer.id == "7165043769567"
    assert event.customer.phone == "+5491122334455"  # billing "011 15 2233-4455"
    assert event.customer.consents == {}


def test_the_same_order_placed_twice_has_the_same_event_id() -> None:
    first = one(deliver("orders_create", webhook_id="wh-a"))
    second = one(deliver("orders_create", webhook_id="wh-b"))
    assert first.id == second.id


def test_order_lines_carry_product_type_as_category_and_the_vendor() -> None:
    payload = fixture("orders_create")
    payload["line_items"][0]["product_type"] = " Mates "
    payload["line_items"][1]["product_type"] = ""  # Shopify's "no type"
    event = one(deliver("orders_create", payload))
    items = event.data["items"]
    assert [(i["product_id"], i["category"], i["vendor"]) for i in items] == [
        ("8021456789012", "Mates", "Chasqui Demo"), ("8021456789013", None, "Chasqui Demo")]
    assert [i["tags"] for i in items] == [[], []]  # not in Shopify's order webhooks
    # The fixture, as current API versions send it, has no product_type at all.
    assert [i["category"] for i in one(deliver("orders_create")).data["items"]] == [None, None]


def test_guest_order_matches_its_guest_checkout() -> None:
    checkout = fixture("checkouts_update")
    order = fixture("orders_create")
    order.update(customer=None, email="LUCIA.PEREZ@example.com", contact_email=None,
                 checkout_token=checkout["token"])
    placed = one(deliver("orders_create", order))
    assert placed.customer.id == one(deliver("checkouts_update")).customer.id
    assert placed.data["checkout_id"] == "d3b07384d113edec49eaa6238ad5ff00"


def test_order_without_checkout_has_checkout_id_none() -> None:
    payload = fixture("orders_create")
    payload["checkout_token"] = None
    assert one(deliver("orders_create", payload)).data["checkout_id"] is None


def test_orders_fulfilled_becomes_order_fulfilled() -> None:
    event = one(deliver("orders_fulfilled", webhook_id="wh-4"))
    assert event.id == "shopify:order.fulfilled:5923456789012"
    assert event.type == "order.fulfilled"
    assert event.occurred_at == datetime(2026, 11, 25, 17, 10, 2, tzinfo=UTC)  # updated_at
    assert event.data["order_id"] == "5923456789012"
    assert event.data["tracking_number"] == "CP123456789AR"
    assert event.data["tracking_company"] == "Correo Argentino"
    assert event.data["tracking_url"].startswith("https://www.correoargentino.com.ar/")
    assert event.customer.id == "7165043769567"


def test_customers_create_maps_both_consents_with_their_times() -> None:
    event = one(deliver("customers_create", webhook_id="wh-5"))
    assert event.id == "shopify:wh-5"
    assert event.type == "customer.created"
    assert event.occurred_at == datetime(2026, 11, 20, 19, 5, 33, tzinfo=UTC)
    assert event.data == {}
    customer = event.customer
    assert customer.id == "7165043802335"
    assert customer.phone == "+5491155667788"
    assert customer.email == "martin.rodriguez@example.com"
    assert (customer.first_name, customer.last_name) == ("Martín", "Rodríguez")
    assert customer.consents == {"sms": True, "email": True}
    assert customer.consent_at == datetime(2026, 11, 20, 19, 5, 31, tzinfo=UTC)  # the SMS one
    assert customer.model_extra == {"consent_times": {
        "sms": datetime(2026, 11, 20, 19, 5, 31, tzinfo=UTC),
        "email": datetime(2026, 11, 20, 19, 5, 30, tzinfo=UTC),
    }}
    assert "whatsapp" not in customer.consents


def test_customers_update_carries_the_opt_out_and_its_time() -> None:
    event = one(deliver("customers_update"))
    assert event.type == "customer.updated"
    assert event.occurred_at == datetime(2026, 11, 26, 14, 42, 9, tzinfo=UTC)
    assert event.customer.consents == {"sms": False}  # email "pending": no entry
    assert event.customer.consent_at == datetime(2026, 11, 26, 14, 42, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "expected"),
    [("subscribed", True), ("SUBSCRIBED", True), ("unsubscribed", False),
     ("not_subscribed", False), ("redacted", False), ("pending", None), (None, None)],
)
def test_sms_consent_states(state: str | None, expected: bool | None) -> None:
    payload = fixture("customers_create")
    payload["sms_marketing_consent"] = {"state": state, "opt_in_level": "single_opt_in",
                                        "consent_updated_at": "2026-11-21T08:00:00-03:00"}
    payload["email_marketing_consent"] = None
    customer = one(deliver("customers_create", payload)).customer
    assert customer.consents.get("sms") is expected
    if expected is None:
        assert customer.consents == {}
        assert customer.consent_at is None
    else:
        assert customer.consent_at == datetime(2026, 11, 21, 11, 0, tzinfo=UTC)


def test_consent_without_time_counts_as_of_the_event() -> None:
    payload = fixture("customers_create")
    payload["sms_marketing_consent"]["consent_updated_at"] = None
    payload["email_marketing_consent"]["consent_updated_at"] = None
    customer = one(deliver("customers_create", payload)).customer
    assert customer.consents == {"sms": True, "email": True}
    assert customer.consent_at is None
    assert customer.model_extra == {}


def test_marketing_consent_update_topic() -> None:
    event = one(deliver("customers_marketing_consent_update"))
    assert event.type == "customer.updated"
    assert event.customer.id == "7165043769567"
    assert event.customer.phone == "+5491122334455"
    assert event.customer.consents == {"sms": True}
    assert event.customer.consent_at == datetime(2026, 11, 24, 10, 0, 4, tzinfo=UTC)
    assert event.occurred_at == event.customer.consent_at
    payload = fixture("customers_marketing_consent_update")
    payload["customer_id"] = payload.pop("id")
    assert one(deliver("customers_marketing_consent_update", payload)).customer.id == (
        "7165043769567")


def test_email_marketing_consent_update_topic() -> None:
    payload = {"customer_id": 7165043769567, "email_address": "Ana.Gomez@example.com",
               "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": None,
                                           "consent_updated_at": None}}
    event = one(deliver("customers_email_marketing_consent_update", payload,
                        topic="customers_email_marketing_consent/update"))
    assert event.type == "customer.updated"
    assert event.customer.email == "ana.gomez@example.com"
    assert event.customer.consents == {"email": False}
    # no consent time in the payload: the delivery's X-Shopify-Triggered-At
    assert event.occurred_at == datetime(2026, 11, 24, 10, 0, 6, 123456, tzinfo=UTC)


@pytest.mark.parametrize("topic", ["products/delete", "orders/paid", "app/uninstalled",
                                   "checkouts/delete", "carts/update"])
def test_topics_not_handled_are_ignored(topic: str) -> None:
    assert deliver("products_update", topic=topic) is None


def restocked(old: int | None = 0, new: int = 12) -> dict[str, Any]:
    """The product fixture with its variant's quantity going from ``old`` to ``new``."""
    payload = fixture("products_update")
    payload["variants"][0].update(inventory_quantity=new, old_inventory_quantity=old)
    if old is None:
        del payload["variants"][0]["old_inventory_quantity"]
    return payload


def restock(events: list[StoreEvent] | None) -> StoreEvent | None:
    """The restock among a product webhook's events (the other is its catalog entry)."""
    assert events is not None
    return next((e for e in events if e.type == "product.back_in_stock"), None)


def test_products_update_from_no_stock_to_some_is_back_in_stock() -> None:
    event = restock(deliver("products_update", restocked(old=0, new=12)))
    assert event is not None
    assert event.type == "product.back_in_stock"
    assert event.id == "shopify:product.back_in_stock:8021456789012:2026-11-24T15:31:08+00:00"
    assert event.customer.id == "shopify:store"
    assert event.model_dump()["store_wide"] is True  # fanned out, told to no store customer
    assert event.data == {
        "product_id": "8021456789012", "sku": "MATE-IMP-NEG", "variant_id": "44123456789012",
        "title": "Mate imperial de calabaza", "category": "Mates",
        "url": "https://chasqui-demo.myshopify.com/products/mate-imperial"}
    assert restock(deliver("products_update", restocked(old=-2, new=1))) is not None
    # Any other product update is no restock: unchanged, more stock, still none, and a
    # payload without the quantity before (it cannot tell).
    for old, new in [(12, 12), (3, 12), (0, 0), (None, 12)]:
        assert restock(deliver("products_update", restocked(old=old, new=new))) is None, (
            old, new)


def test_inventory_level_maps_what_it_can() -> None:
    event = one(deliver("inventory_levels_update"))
    assert event.type == "product.inventory_level"
    assert event.customer.id == "shopify:store"
    # No product in this topic: the fan-out names it from the catalog (bot.runtime.catalog).
    assert event.data == {"inventory_item_id": "46234567890123", "location_id": "65544149123",
                          "available": 6}
    assert event.id == ("shopify:inventory_level:46234567890123:65544149123:"
                        "2026-11-24T15:31:08+00:00")
    # A level of 0 is kept too (a later restock is judged against it); no quantity is not.
    empty = {**fixture("inventory_levels_update"), "available": 0}
    assert one(deliver("inventory_levels_update", empty)).data["available"] == 0
    untracked = {**fixture("inventory_levels_update"), "available": None}
    assert deliver("inventory_levels_update", untracked) is None


# --- malformed bodies ---------------------------------------------------------------------


def test_malformed_json_is_bad_payload() -> None:
    with pytest.raises(BadPayload, match=r"^body: not JSON"):
        deliver("orders_create", b'{"id": 5923456789012,')


@pytest.mark.parametrize(
    ("name", "mutate", "expected"),
    [
        ("checkouts_create", lambda p: p.pop("token"), "token: Field required"),
        ("checkouts_create", lambda p: p.pop("abandoned_checkout_url"),
         "abandoned_checkout_url: Field required"),
        ("checkouts_create", lambda p: p.update(total_price="gratis"), "total_price: "),
        ("checkouts_create", lambda p: p["line_items"][1].update(quantity="dos"),
         "line_items[1].quantity: "),
        ("orders_create", lambda p: p.pop("id"), "id: Field required"),
        ("orders_create", lambda p: p["customer"].pop("id"), "customer.id: Field required"),
        ("orders_create", lambda p: p.update(created_at="ayer"), "created_at: "),
        ("customers_create", lambda p: p.update(id=[7]), "id: Input should be a valid string"),
        # An empty id names nobody: it left an input no customer could be found for.
        ("customers_create", lambda p: p.update(id=""), "id: Value error, an id must not be empty"),
        ("orders_create", lambda p: p["customer"].update(id=""),
         "customer.id: Value error, an id must not be empty"),
        ("customers_marketing_consent_update", lambda p: p.pop("sms_marketing_consent"),
         "sms_marketing_consent: Field required"),
    ],
)
def test_missing_or_ill_typed_field_is_named(name: str, mutate: Any, expected: str) -> None:
    payload = fixture(name)
    mutate(payload)
    with pytest.raises(BadPayload) as caught:
        deliver(name, payload)
    assert str(caught.value).startswith(expected)


def test_time_falls_back_to_triggered_at_then_fails_naming_the_field() -> None:
    payload = fixture("customers_create")
    payload.update(created_at=None, updated_at=None)
    event = one(deliver("customers_create", payload))
    assert event.occurred_at == datetime(2026, 11, 24, 10, 0, 6, 123456, tzinfo=UTC)
    with pytest.raises(BadPayload, match=r"^created_at: Field required"):
        deliver("customers_create", payload, drop_headers=("X-Shopify-Triggered-At",))
