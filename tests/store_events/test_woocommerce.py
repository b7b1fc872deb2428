"""store_events.woocommerce: signature, the ping, topics and their mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.errors import BadPayload, BadSignature
from bot.core.inputs import StoreEvent
from store_events.woocommerce import WooCommerceAdapter
from tests.support.store_signing import load_fixture, woocommerce_headers

SECRET = "wc-secret-@#&;tienda"
ADAPTER = WooCommerceAdapter(SECRET, "AR")
TOPICS = {
    "order_created": "order.created",
    "order_updated_completed": "order.updated",
    "order_updated_processing": "order.updated",
    "customer_created": "customer.created",
    "customer_updated": "customer.updated",
    "product_updated": "product.updated",
}
PING_BODY = b"webhook_id=7"
PING_HEADERS = {
    "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
    "Content-Type": "application/x-www-form-urlencoded",
}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(load_fixture(f"woocommerce/{name}.json"))
    return data


def deliver(name: str, payload: dict[str, Any] | bytes | None = None, *,
            topic: str | None = None, delivery_id: str = "8f2b8a1c4e6d0f3a5b7c9d1e2f3a4b5c",
            ) -> list[StoreEvent] | None:
    """Sign and deliver a fixture (or a changed copy of it) like WooCommerce does."""
    if payload is None:
        body = load_fixture(f"woocommerce/{name}.json")
    elif isinstance(payload, bytes):
        body = payload
    else:
        body = json.dumps(payload).encode()
    headers = woocommerce_headers(SECRET, body, topic or TOPICS[name], delivery_id)
    ADAPTER.verify(headers, body)
    return ADAPTER.parse(headers, body)


def one(events: list[StoreEvent] | None) -> StoreEvent:
    assert events is not None
    [event] = events
    return event


# --- signature, delivery id, topic, ping ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_correct_signature_is_accepted(name: str) -> None:
    body = load_fixture(f"woocommerce/{name}.json")
    headers = woocommerce_headers(SECRET, body, TOPICS[name], "d-1")
    ADAPTER.verify(headers, body)
    assert ADAPTER.delivery_id(headers, body) == "d-1"
    assert ADAPTER.topic(headers, body) == TOPICS[name]


@pytest.mark.parametrize("signature", [None, "", "%%%", "c2hvcnQ=",
                                       "5poyFy4qB6fdvvT5pGbefZmfkpL48uD47F0WYwfmpo4="])
def test_wrong_or_missing_signature_is_refused(signature: str | None) -> None:
    body = load_fixture("woocommerce/order_created.json")
    headers = woocommerce_headers(SECRET, body, "order.created", "d-1")
    del headers["X-WC-Webhook-Signature"]
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, body)


def test_other_secret_or_changed_body_is_refused() -> None:
    body = load_fixture("woocommerce/order_created.json")
    with pytest.raises(BadSignature):
        ADAPTER.verify(woocommerce_headers("other", body, "order.created", "d-1"), body)
    headers = woocommerce_headers(SECRET, body, "order.created", "d-1")
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, body.replace(b'"processing"', b'"completed"'))


def test_missing_delivery_id_or_topic_is_bad_payload() -> None:
    body = load_fixture("woocommerce/order_created.json")
    headers = woocommerce_headers(SECRET, body, "order.created", "d-1")
    del headers["X-WC-Webhook-Delivery-ID"], headers["X-WC-Webhook-Topic"]
    with pytest.raises(BadPayload, match="X-WC-Webhook-Delivery-ID"):
        ADAPTER.delivery_id(headers, body)
    with pytest.raises(BadPayload, match="X-WC-Webhook-Topic"):
        ADAPTER.topic(headers, body)


def test_the_ping_is_not_an_error() -> None:
    ADAPTER.verify(PING_HEADERS, PING_BODY)  # WooCommerce does not sign it
    assert ADAPTER.delivery_id(PING_HEADERS, PING_BODY) == "ping:7"
    assert ADAPTER.topic(PING_HEADERS, PING_BODY) == "ping"
    assert ADAPTER.parse(PING_HEADERS, PING_BODY) is None


def test_a_signed_ping_is_checked_like_any_delivery() -> None:
    headers = woocommerce_headers(SECRET, PING_BODY, "order.created", "d-1")
    ADAPTER.verify(headers, PING_BODY)
    headers["X-WC-Webhook-Signature"] = "AAAA"
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, PING_BODY)


@pytest.mark.parametrize("body", [b"webhook_id=7&order=1", b"webhook_id=abc", b"{}",
                                  b'{"webhook_id": 7}', b""])
def test_only_the_exact_ping_body_goes_unsigned(body: bytes) -> None:
    with pytest.raises(BadSignature):
        ADAPTER.verify(PING_HEADERS, body)


# --- each topic ---------------------------------------------------------------------------


def test_order_created_becomes_order_placed() -> None:
    event = one(deliver("order_created"))
    assert event.id == "woocommerce:order.placed:4821"
    assert event.type == "order.placed"
    assert event.source == "woocommerce"
    assert event.occurred_at == datetime(2026, 11, 24, 13, 14, 5, tzinfo=UTC)  # *_gmt
    assert event.data["order_id"] == "4821"
    assert event.data["checkout_id"] == "6f1ed002ab5595859014ebf0951522d9"  # cart_hash
    assert event.data["order_key"] == "wc_order_Q6tuhq12KJOel"
    assert event.data["status"] == "processing"
    assert event.data["total"] == "34000.00"  # a decimal string in WooCommerce, kept exact
    assert event.data["currency"] == "ARS"
    assert event.data["items"] == [
        {"sku": "TERMO-1L-VER", "title": "Termo acero inoxidable 1 L - Verde", "quantity": 1,
         "price": "29500", "product_id": "93", "variant_id": "101",
         "category": None, "tags": []},  # not in WooCommerce's order webhooks
    ]
    customer = event.customer
    assert customer.id == "12"
    assert customer.email == "sofia.martinez@example.com"
    assert customer.phone == "+5493414556677"  # "0341 15 455-6677", billing country AR
    assert (customer.first_name, customer.last_name) == ("Sofía", "Martínez")
    assert customer.consents == {}  # WooCommerce core has no marketing consent


def test_guest_order_is_known_by_billing_email_then_phone() -> None:
    payload = fixture("order_created")
    payload["customer_id"] = 0
    payload["billing"]["email"] = "Sofia.Martinez@Example.com"
    assert one(deliver("order_created", payload)).customer.id == (
        "woocommerce-guest:sofia.martinez@example.com")
    payload["billing"]["email"] = ""
    assert one(deliver("order_created", payload)).customer.id == (
        "woocommerce-guest:+5493414556677")
    payload["billing"]["phone"] = ""
    assert deliver("order_created", payload) is None


def test_order_lines_have_their_product_but_no_category() -> None:
    """WooCommerce keeps categories on the product, not in order webhooks: None, said so."""
    payload = fixture("order_created")
    payload["line_items"][0]["categories"] = [{"id": 15, "name": "Termos"}]  # not sent; ignored
    [item] = one(deliver("order_created", payload)).data["items"]
    assert (item["product_id"], item["category"], item["tags"]) == ("93", None, [])


def test_admin_order_without_cart_hash_has_no_checkout_id() -> None:
    payload = fixture("order_created")
    payload.update(cart_hash="", created_via="admin")
    assert one(deliver("order_created", payload)).data["checkout_id"] is None


def test_foreign_billing_country_is_used_for_national_numbers() -> None:
    payload = fixture("order_created")
    payload["billing"].update(country="ES", phone="612 34 56 78")
    assert one(deliver("order_created", payload)).customer.phone == "+34612345678"


def test_order_updated_completed_becomes_order_fulfilled() -> None:
    event = one(deliver("order_updated_completed", delivery_id="d-2"))
    assert event.id == "woocommerce:order.fulfilled:4821"
    assert event.type == "order.fulfilled"
    assert event.occurred_at == datetime(2026, 11, 25, 14, 30, 40, tzinfo=UTC)  # completed
    assert event.data["order_id"] == "4821"
    assert event.data["order_number"] == "4821"
    assert event.customer.id == "12"


def test_later_edits_of_a_completed_order_repeat_the_same_event_id() -> None:
    first = one(deliver("order_updated_completed", delivery_id="d-2"))
    again = one(deliver("order_updated_completed", delivery_id="d-3"))
    assert first.id == again.id


@pytest.mark.parametrize("status", ["processing", "on-hold", "pending", "cancelled",
                                    "refunded", "failed"])
def test_order_updated_with_other_status_is_ignored(status: str) -> None:
    payload = fixture("order_updated_processing")
    payload["status"] = status
    assert deliver("order_updated_processing", payload) is None
    assert deliver("order_updated_processing") is None


def test_customer_created() -> None:
    event = one(deliver("customer_created", delivery_id="d-4"))
    assert event.id == "woocommerce:d-4"
    assert event.type == "customer.created"
    assert event.occurred_at == datetime(2026, 11, 22, 22, 48, 10, tzinfo=UTC)
    assert event.data == {}
    customer = event.customer
    assert customer.id == "27"
    assert customer.email == "joaquin.fernandez@example.com"
    assert customer.phone == "+5492236789012"  # "223 15 678-9012"
    assert (customer.first_name, customer.last_name) == ("Joaquín", "Fernández")
    assert customer.consents == {}


def test_customer_updated() -> None:
    event = one(deliver("customer_updated", delivery_id="d-5"))
    assert event.type == "customer.updated"
    assert event.occurred_at == datetime(2026, 11, 26, 12, 5, 17, tzinfo=UTC)  # modified
    assert event.customer.id == "27"
    assert event.customer.last_name == "Fernández Ruiz"
    assert event.customer.phone == "+5492236789012"  # "+54 9 223 678-9012"


@pytest.mark.parametrize("topic", ["product.deleted", "coupon.created", "order.deleted",
                                   "customer.deleted", "action.woocommerce_add_to_cart"])
def test_topics_not_handled_are_ignored(topic: str) -> None:
    assert deliver("order_created", topic=topic) is None


def test_product_updated_in_stock_is_back_in_stock_for_the_interested() -> None:
    event = one(deliver("product_updated"))
    assert event.type == "product.back_in_stock"
    assert event.id == "woocommerce:product.back_in_stock:812:2026-11-24T15:31:08+00:00"
    assert event.customer.id == "woocommerce:store"
    assert event.model_dump()["store_wide"] is True  # fanned out, told to no store customer
    assert event.data == {
        "product_id": "812", "sku": "MATE-IMP-NEG", "title": "Mate imperial de calabaza",
        "url": "https://tienda.example.com/producto/mate-imperial-de-calabaza/",
        "category": "Mates"}
    assert event.occurred_at == datetime(2026, 11, 24, 15, 31, 8, tzinfo=UTC)
    unmanaged = {**fixture("product_updated"), "manage_stock": False, "stock_quantity": None}
    assert one(deliver("product_updated", unmanaged)).type == "product.back_in_stock"
    for change in ({"stock_status": "outofstock", "stock_quantity": 0},
                   {"stock_status": "onbackorder", "stock_quantity": 0},
                   {"stock_status": "instock", "stock_quantity": 0}):
        assert deliver("product_updated", {**fixture("product_updated"), **change}) is None


# --- malformed bodies ---------------------------------------------------------------------


def test_malformed_json_is_bad_payload() -> None:
    with pytest.raises(BadPayload, match=r"^body: not JSON"):
        deliver("order_created", b'{"id": 4821, "status": ')


@pytest.mark.parametrize(
    ("name", "mutate", "expected"),
    [
        ("order_created", lambda p: p.pop("id"), "id: Field required"),
        ("order_created", lambda p: p.pop("status"), "status: Field required"),
        ("order_created", lambda p: p.update(total="mucho"), "total: "),
        ("order_created", lambda p: p.update(customer_id="x"), "customer_id: "),
        ("order_created", lambda p: p["line_items"][0].pop("quantity"),
         "line_items[0].quantity: Field required"),
        ("order_created", lambda p: p.update(billing="Rosario"), "billing: "),
        ("order_created", lambda p: p.update(date_created_gmt=None, date_modified_gmt=None),
         "date_created_gmt: Field required"),
        ("order_updated_completed", lambda p: p.update(date_completed_gmt="mañana"),
         "date_completed_gmt: "),
        ("customer_created", lambda p: p.pop("id"), "id: Field required"),
        ("customer_updated", lambda p: p.update(date_modified_gmt=None, date_created_gmt=None),
         "date_modified_gmt: Field required"),
    ],
)
def test_missing_or_ill_typed_field_is_named(name: str, mutate: Any, expected: str) -> None:
    payload = fixture(name)
    mutate(payload)
    with pytest.raises(BadPayload) as caught:
        deliver(name, payload)
    assert str(caught.value).startswith(expected)
