"""store_events.generic: POST /events, its signature, strict validation and the registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.errors import BadPayload, BadSignature
from bot.core.inputs import StoreEvent
from bot.infra.settings import Settings
from store_events.generic import DATA_MODELS, GenericAdapter
from store_events.registry import ADAPTER_CLASSES, ALL_ADAPTER_NAMES, build_adapters
from store_events.shopify import ShopifyAdapter
from store_events.woocommerce import WooCommerceAdapter
from tests.support.store_signing import events_headers, load_fixture

SECRET = "evt-secret-0123456789"
ADAPTER = GenericAdapter(SECRET, "AR")
FIXTURES = ["checkout_started", "order_placed", "order_fulfilled", "customer_created",
            "product_viewed", "product_back_in_stock"]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(load_fixture(f"events/{name}.json"))
    return data


def post(payload: dict[str, Any] | bytes) -> list[StoreEvent]:
    """Sign, verify and parse like the route does; returns the events."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = events_headers(SECRET, body)
    ADAPTER.verify(headers, body)
    events = ADAPTER.parse(headers, body)
    assert events is not None
    return events


def bad_payload(payload: dict[str, Any] | bytes) -> str:
    with pytest.raises(BadPayload) as caught:
        post(payload)
    return str(caught.value)


# --- signature ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_correct_signature_is_accepted(name: str) -> None:
    body = load_fixture(f"events/{name}.json")
    ADAPTER.verify(events_headers(SECRET, body), body)


def test_uppercase_hex_and_header_case_are_accepted() -> None:
    body = load_fixture("events/order_placed.json")
    signature = events_headers(SECRET, body)["X-Signature-256"]
    ADAPTER.verify({"x-signature-256": signature.upper().replace("SHA256=", "sha256=")}, body)


@pytest.mark.parametrize(
    "headers",
    [
        events_headers("another-secret", load_fixture("events/order_placed.json")),
        events_headers(SECRET, b'{"id": "evt_0002"}'),
        {"X-Signature-256": "sha256=zz"},
        {"X-Signature-256": "md5=" + "0" * 64},
        {"X-Signature-256": "0" * 64},
        {"X-Signature-256": ""},
        {},
    ],
    ids=["wrong-secret", "other-body", "not-hex", "wrong-scheme", "no-scheme", "empty", "missing"],
)
def test_wrong_or_missing_signature_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, load_fixture("events/order_placed.json"))


def test_tampered_body_is_refused() -> None:
    body = load_fixture("events/checkout_started.json")
    headers = events_headers(SECRET, body)
    with pytest.raises(BadSignature):
        ADAPTER.verify(headers, body.replace(b"59000.0", b"1.0"))


# --- the contract's example and every fixture --------------------------------------------


def test_checkout_started_matches_the_contract_example() -> None:
    body = load_fixture("events/checkout_started.json")
    headers = events_headers(SECRET, body)
    assert ADAPTER.delivery_id(headers, body) == "evt_0001"
    assert ADAPTER.topic(headers, body) == "checkout.started"
    [event] = post(body)
    assert event.id == "evt_0001"
    assert event.type == "checkout.started"
    assert event.source == "generic"
    assert event.occurred_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    customer = event.customer
    assert customer.id == "cus_1"
    assert customer.phone == "+5491122334455"
    assert customer.email == "ana@example.com"
    assert customer.first_name == "Ana"
    assert customer.locale == "es"
    assert customer.timezone == "America/Argentina/Buenos_Aires"
    assert customer.consents == {"whatsapp": True, "sms": True}
    assert customer.consent_at is None
    assert event.data == {
        "checkout_id": "chk_7f3a91",
        "recovery_url": "https://tienda.example.com/checkout/recover/chk_7f3a91?key=9d2e4c",
        "total": "59000.0",  # money: exact, as a decimal string
        "currency": "ARS",
        "items": [
            {"sku": "MATE-IMP-NEG", "title": "Mate imperial de calabaza", "quantity": 1,
             "price": "42000.0"},
            {"sku": "BOMB-ALP", "title": "Bombilla de alpaca", "quantity": 2, "price": "8500.0"},
        ],
    }


def test_order_placed_carries_the_checkout_it_completes() -> None:
    [event] = post(fixture("order_placed"))
    assert (event.id, event.type) == ("evt_0002", "order.placed")
    assert event.data["order_id"] == "ord_1042"
    assert event.data["checkout_id"] == "chk_7f3a91"
    assert event.data["total"] == "59000.0"
    assert event.data["currency"] == "ARS"


def test_order_placed_without_checkout_id_has_it_none() -> None:
    payload = fixture("order_placed")
    del payload["data"]["checkout_id"]
    [event] = post(payload)
    assert event.data["checkout_id"] is None


def test_order_lines_carry_product_id_category_and_tags() -> None:
    payload = fixture("order_placed")
    payload["data"]["items"] = [
        {"sku": "MATE-1", "title": "Mate", "quantity": 1, "price": "42000.00",
         "product_id": 8021, "category": "Mates", "tags": ["regalo", "calabaza"]},
        {"sku": "BOMB-1", "title": "Bombilla", "quantity": 2, "price": 8500},
    ]
    [event] = post(payload)
    first, second = event.data["items"]
    assert (first["product_id"], first["category"], first["tags"]) == (
        "8021", "Mates", ["regalo", "calabaza"])  # a numbered product kept as text
    assert (second["product_id"], second["category"], second["tags"]) == (None, None, [])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("category", 7, "data.items[0].category: Input should be a valid string"),
    ("tags", "regalo,calabaza", "data.items[0].tags: Input should be a valid list"),
    ("tags", [1], "data.items[0].tags[0]: Input should be a valid string"),
    ("product_id", True, "data.items[0].product_id: Input should be a valid string"),
])
def test_bad_order_line_category_tags_or_product_id_name_the_field(
        field: str, value: Any, message: str) -> None:
    payload = fixture("order_placed")
    payload["data"]["items"] = [{"sku": "MATE-1", field: value}]
    assert bad_payload(payload) == message


def test_order_fulfilled() -> None:
    [event] = post(fixture("order_fulfilled"))
    assert event.type == "order.fulfilled"
    assert event.data["order_id"] == "ord_1042"
    assert event.data["carrier"] == "Correo Argentino"
    assert event.occurred_at == datetime(2026, 11, 25, 17, 10, 1, tzinfo=UTC)


def test_customer_created_normalises_contacts_and_keeps_consent_time() -> None:
    [event] = post(fixture("customer_created"))
    customer = event.customer
    assert event.type == "customer.created"
    assert customer.id == "cus_2"
    assert customer.phone == "+5491155667788"  # was "011 15 5566-7788"
    assert customer.email == "martin.rodriguez@example.com"
    assert customer.birthday == "--03-14"
    assert customer.consents == {"whatsapp": True, "sms": False, "email": True}
    assert customer.consent_at == datetime(2026, 11, 20, 19, 5, 30, tzinfo=UTC)
    assert customer.model_extra == {"tags": ["newsletter"]}
    assert event.data == {"signup_source": "footer-form"}


def test_product_viewed_needs_no_data_fields() -> None:
    [event] = post(fixture("product_viewed"))
    assert event.type == "product.viewed"
    assert event.customer.id == "cus_1"
    assert event.customer.phone is None
    assert event.data["sku"] == "TERMO-1L-VER"
    payload = fixture("product_viewed")
    del payload["data"]
    assert post(payload)[0].data == {}


def test_product_back_in_stock() -> None:
    [event] = post(fixture("product_back_in_stock"))
    assert event.type == "product.back_in_stock"
    assert event.customer.consents == {"whatsapp": True}
    assert event.data["sku"] == "YERBA-ORG-1KG"


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_is_a_known_type(name: str) -> None:
    [event] = post(fixture(name))
    assert event.type in DATA_MODELS


# --- decisions where the contract is silent ----------------------------------------------


def test_unknown_type_is_ignored_not_refused() -> None:
    payload = fixture("product_viewed")
    payload["type"] = "wishlist.added"
    payload["data"] = {"sku": 93, "anything": [1, "two"]}
    body = json.dumps(payload).encode()
    headers = events_headers(SECRET, body)
    ADAPTER.verify(headers, body)
    assert ADAPTER.delivery_id(headers, body) == "evt_0005"
    assert ADAPTER.topic(headers, body) == "wishlist.added"
    assert ADAPTER.parse(headers, body) is None


def test_unknown_type_with_a_malformed_envelope_is_still_refused() -> None:
    payload = _without(fixture("product_viewed"), "customer", "id")
    payload["type"] = "wishlist.added"
    assert bad_payload(payload) == "customer.id: Field required"
    payload = fixture("product_viewed")
    payload.update(type="wishlist.added", data="sku-93")
    assert bad_payload(payload).startswith("data: Input should be a valid dictionary")


def test_fields_not_named_are_kept_at_every_level() -> None:
    payload = fixture("checkout_started")
    payload["store"] = "tienda-1"
    payload["source"] = "ignored: the adapter says who produced the event"
    payload["customer"]["loyalty_tier"] = "gold"
    payload["data"]["coupon"] = "VUELVE-10"
    payload["data"]["items"][0]["image_url"] = "https://tienda.example.com/mate.jpg"
    [event] = post(payload)
    assert event.model_extra == {"store": "tienda-1"}
    assert event.source == "generic"
    assert event.customer.model_extra == {"loyalty_tier": "gold"}
    assert event.data["coupon"] == "VUELVE-10"
    assert event.data["items"][0]["image_url"] == "https://tienda.example.com/mate.jpg"


def test_naive_and_offset_times_become_utc() -> None:
    payload = fixture("order_placed")
    payload["occurred_at"] = "2026-11-24T07:25:41-03:00"
    assert post(payload)[0].occurred_at == datetime(2026, 11, 24, 10, 25, 41, tzinfo=UTC)
    payload["occurred_at"] = "2026-11-24T10:25:41"
    assert post(payload)[0].occurred_at == datetime(2026, 11, 24, 10, 25, 41, tzinfo=UTC)


def test_unparseable_phone_and_email_are_dropped_not_fatal() -> None:
    payload = fixture("checkout_started")
    payload["customer"]["phone"] = "call me maybe"
    payload["customer"]["email"] = "ana-at-example"
    [event] = post(payload)
    assert event.customer.phone is None
    assert event.customer.email is None


def test_currency_is_upper_cased() -> None:
    payload = fixture("checkout_started")
    payload["data"]["currency"] = "ars"
    assert post(payload)[0].data["currency"] == "ARS"


# --- malformed bodies: BadPayload naming the field ----------------------------------------


def _without(payload: dict[str, Any], *path: str | int) -> dict[str, Any]:
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("id",), "id: Field required"),
        (("type",), "type: Field required"),
        (("occurred_at",), "occurred_at: Field required"),
        (("customer",), "customer: Field required"),
        (("customer", "id"), "customer.id: Field required"),
        (("data", "checkout_id"), "data.checkout_id: Field required"),
        (("data", "recovery_url"), "data.recovery_url: Field required"),
        (("data", "total"), "data.total: Field required"),
        (("data", "currency"), "data.currency: Field required"),
        (("data", "items"), "data.items: Field required"),
        (("data", "items", 1, "price"), "data.items[1].price: Field required"),
        (("data", "items", 0, "sku"), "data.items[0].sku: Field required"),
    ],
)
def test_missing_required_field_is_named(path: tuple[str | int, ...], expected: str) -> None:
    assert bad_payload(_without(fixture("checkout_started"), *path)) == expected


def test_missing_data_of_a_type_that_needs_it() -> None:
    payload = _without(fixture("order_fulfilled"), "data")
    assert bad_payload(payload) == "data.order_id: Field required"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["data"].update(total="59 000"), "data.total: Input should be a decimal"),
        (lambda p: p["data"].update(total=True), "data.total: Input should be a decimal"),
        (lambda p: p["data"].update(checkout_id=7), "data.checkout_id: Input should be a valid"),
        (lambda p: p["data"]["items"][0].update(quantity="1"),
         "data.items[0].quantity: Input should be a valid integer"),
        (lambda p: p["data"]["items"][0].update(quantity=0),
         "data.items[0].quantity: Input should be greater than or equal to 1"),
        (lambda p: p["data"].update(items={"sku": "x"}),
         "data.items: Input should be a valid list"),
        (lambda p: p["data"].update(recovery_url="javascript:alert(1)"), "data.recovery_url:"),
        (lambda p: p["data"].update(currency="pesos"), "data.currency:"),
        (lambda p: p["customer"].update(id=1), "customer.id: Input should be a valid string"),
        (lambda p: p["customer"].update(id=""), "customer.id: String should have at least 1"),
        (lambda p: p["customer"]["consents"].update(sms="yes"),
         "customer.consents.sms: Input should be a valid boolean"),
        (lambda p: p["customer"].update(timezone="Mars/Olympus"), "customer.timezone:"),
        (lambda p: p["customer"].update(birthday="14/03"), "customer.birthday:"),
        (lambda p: p["customer"].update(birthday="1990-02-30"),
         "customer.birthday: Value error, '1990-02-30' is not a real day"),
        (lambda p: p["customer"].update(birthday="--13-01"), "customer.birthday: Value error"),
        (lambda p: p.update(occurred_at="yesterday"), "occurred_at: Input should be a valid"),
        (lambda p: p.update(customer="cus_1"), "customer: Input should be a valid dictionary"),
        (lambda p: p.update(data=[1, 2]), "data: Input should be a valid dictionary"),
        (lambda p: p.update(id=12), "id: Input should be a valid string"),
    ],
)
def test_ill_typed_field_is_named(mutate: Any, expected: str) -> None:
    payload = fixture("checkout_started")
    mutate(payload)
    assert bad_payload(payload).startswith(expected)


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b'"a string"', b"[1, 2]",
                                  b'{"total": NaN}', b"\xff\xfe"])
def test_body_that_is_not_a_json_object(body: bytes) -> None:
    assert bad_payload(body).startswith("body: ")


def test_delivery_id_and_topic_need_id_and_type() -> None:
    body = json.dumps(_without(fixture("order_placed"), "id")).encode()
    with pytest.raises(BadPayload, match=r"^id: Field required$"):
        ADAPTER.delivery_id({}, body)
    with pytest.raises(BadPayload, match=r"^type: "):
        ADAPTER.topic({}, json.dumps({"id": "e", "type": ["x"]}).encode())
    with pytest.raises(BadPayload, match=r"^body: "):
        ADAPTER.delivery_id({}, b"nope")


# --- construction and registry -----------------------------------------------------------


def test_adapters_are_off_while_their_secret_is_unset() -> None:
    settings = Settings(store_events_secret=None, shopify_webhook_secret=None,
                        woocommerce_webhook_secret=None)
    assert GenericAdapter.from_settings(settings) is None
    assert ShopifyAdapter.from_settings(settings) is None
    assert WooCommerceAdapter.from_settings(settings) is None
    assert build_adapters(settings) == {}
    assert build_adapters(Settings(store_events_secret=SecretStr(""))) == {}


def test_registry_builds_only_the_configured_adapters() -> None:
    settings = Settings(store_events_secret=SecretStr(SECRET),
                        shopify_webhook_secret=SecretStr("shp"))
    adapters = build_adapters(settings)
    assert set(adapters) == {"events", "shopify"}
    assert isinstance(adapters["events"], GenericAdapter)
    assert isinstance(adapters["shopify"], ShopifyAdapter)
    assert ALL_ADAPTER_NAMES == ("shopify", "woocommerce", "events")
    assert {name: cls.path for name, cls in ADAPTER_CLASSES.items()} == {
        "shopify": "/webhooks/shopify",
        "woocommerce": "/webhooks/woocommerce",
        "events": "/events",
    }


def test_adapter_from_settings_signs_with_the_configured_secret() -> None:
    adapter = GenericAdapter.from_settings(Settings(store_events_secret=SecretStr(SECRET)))
    assert adapter is not None
    body = load_fixture("events/order_placed.json")
    adapter.verify(events_headers(SECRET, body), body)
    with pytest.raises(BadSignature):
        adapter.verify(events_headers("other", body), body)
