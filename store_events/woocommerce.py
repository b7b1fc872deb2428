"""WooCommerce webhooks (``POST /webhooks/woocommerce``) -> generic store events.

WooCommerce signs the raw body with the webhook's secret
(``X-WC-Webhook-Signature``, base64 HMAC-SHA256), names the topic in
``X-WC-Webhook-Topic`` and gives each delivery an
``X-WC-Webhook-Delivery-ID``, the dedupe key. Payloads are the REST API
(``wc/v3``) representation of the order or customer.

Topics and what they become:

=============================  ==============================================
``order.created``              ``order.placed``
``order.updated``              ``order.fulfilled`` when status is "completed";
                               any other status is ignored
``customer.created``           ``customer.created``
``customer.updated``           ``customer.updated``
``product.updated``            ``product.back_in_stock`` when the product is
                               available (stock_status "instock", and
                               stock_quantity > 0 when stock is managed);
                               any other update is ignored
=============================  ==============================================

Every other topic is ignored (``parse`` returns None).

Decisions:
    * The ping WooCommerce sends when a webhook is saved (a form body
      ``webhook_id=N``, with no signature, topic or delivery headers) is not
      an error: ``verify`` lets exactly that body through unsigned (it
      carries no data), ``delivery_id`` is ``ping:<N>``, ``topic`` is
      "ping" and ``parse`` ignores it. Otherwise WooCommerce would report the
      delivery URL as failing.
    * ``checkout_id`` of ``order.placed`` is the order's ``cart_hash``: it
      is the one id that exists before the order does (WooCommerce computes
      it from the cart in the session), so a store plugin that posts
      ``checkout.started`` to ``POST /events`` with the cart hash as
      ``checkout_id`` has its cart flow ended by the order. The
      ``order_key`` only exists once the order does; it is kept in ``data``.
      Orders made in the admin have no cart hash: ``checkout_id`` is None.
    * Customer id: ``str(customer_id)`` when it is > 0, else
      ``woocommerce-guest:<billing email>`` (``woocommerce-guest:<E.164
      phone>`` without an email); an order with neither is ignored.
    * Consent: WooCommerce core has no per-channel marketing consent, so
      ``consents`` stays empty; consent has to come from a generic event or
      from the customer opting in.
    * Birthdays: WooCommerce core has none; birthday plugins keep it in the
      customer's ``meta_data`` (``[{"id", "key", "value"}]``) under
      ``birthday``, ``birth_date``, ``date_of_birth`` or
      ``billing_birth_date``. A ``YYYY-MM-DD`` or ``--MM-DD`` value becomes
      the customer's ``birthday``; any other is ignored
      (``store_events.birthdays``).
    * Phones are read with the billing (or shipping) country as the region,
      so a national number typed in a foreign address still parses.
    * ``occurred_at`` comes from the payload's ``*_gmt`` dates (UTC without
      an offset): created for the create topics, completed (else modified)
      for a fulfilled order, modified for ``customer.updated``.
    * Money: an order's ``total`` is a decimal string ("34000.00"), a line's
      ``price`` a JSON number; both stay exact (:data:`store_events.base.Money`).
    * Products: a line's ``product_id`` (and ``variation_id``) is what the
      order webhook has. WooCommerce puts product categories and tags on
      the product (``/wp-json/wc/v3/products/<id>``), not in order
      payloads, so an order's lines have ``category`` None and no ``tags``;
      the purchase history (:mod:`bot.core.purchases`) then knows the
      products bought but not their categories. A store plugin can post
      its orders to ``POST /events`` with ``category`` on each line.
    * Event ids are ``woocommerce:<delivery id>``, except that an order is
      placed and fulfilled once: ``woocommerce:order.placed:<id>`` and
      ``woocommerce:order.fulfilled:<id>``. WooCommerce sends
      ``order.updated`` on every later edit of a completed order; those
      repeat the same event id instead of announcing the shipment again.
    * Restocks: ``product.updated`` carries the product as it is now and
      nothing of what it was, so "went from out of stock to available"
      cannot be seen in one webhook. Every update of an available product
      maps to ``product.back_in_stock``; its id is
      ``woocommerce:product.back_in_stock:<id>:<date_modified_gmt>``, so the
      two deliveries WooCommerce often makes for one save count once. What
      keeps a customer from hearing "it is back" after each edit is the
      back-in-stock flow: it tells one customer about one product at most
      once in 30 days (``rules/back_in_stock.py``). A store that can tell
      real restocks (a plugin on ``woocommerce_product_set_stock_status``)
      should post ``product.back_in_stock`` to ``POST /events`` instead. The
      event has no customer: its customer is ``woocommerce:store`` with
      ``store_wide: true``, and the fan-out gives it to the customers
      interested in the product only. Data: ``product_id``, ``sku``,
      ``title`` (``name``), ``url`` (``permalink``) and ``category`` (the
      first category's name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationError

from bot.core.inputs import CustomerInfo, StoreEvent
from bot.infra.settings import secret
from store_events.base import (
    BadPayload,
    IdStr,
    Money,
    ProfileBuilder,
    StoreModel,
    as_utc,
    check_signature,
    get_header,
    load_json_object,
    require_header,
    validation_message,
)
from store_events.birthdays import from_woocommerce_meta
from store_events.generic import build_data

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
DELIVERY_HEADER = "X-WC-Webhook-Delivery-ID"
STORE_CUSTOMER = "woocommerce:store"  # the customer of a store-wide event (a restock)
_PING = re.compile(rb"^\s*webhook_id=(\d{1,20})\s*$")


class Address(StoreModel):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    country: str | None = None


class LineItem(StoreModel):
    name: str
    quantity: int
    price: Money
    sku: str | None = None
    product_id: IdStr | None = None
    variation_id: IdStr | None = None


class Order(StoreModel):
    id: IdStr
    number: IdStr | None = None
    order_key: str | None = None
    status: str
    currency: str
    total: Money
    customer_id: int = 0
    cart_hash: str | None = None
    billing: Address = Field(default_factory=Address)
    shipping: Address = Field(default_factory=Address)
    line_items: list[LineItem] = Field(default_factory=list)
    date_created_gmt: datetime | None = None
    date_modified_gmt: datetime | None = None
    date_completed_gmt: datetime | None = None


class Category(StoreModel):
    name: str | None = None


class Product(StoreModel):
    id: IdStr
    name: str
    sku: str | None = None
    permalink: str | None = None
    stock_status: str | None = None
    manage_stock: bool = False
    stock_quantity: int | None = None
    categories: list[Category] = Field(default_factory=list)
    date_created_gmt: datetime | None = None
    date_modified_gmt: datetime | None = None


class Customer(StoreModel):
    id: IdStr
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    billing: Address = Field(default_factory=Address)
    shipping: Address = Field(default_factory=Address)
    date_created_gmt: datetime | None = None
    date_modified_gmt: datetime | None = None
    meta_data: Any = None  # read leniently (store_events.birthdays): never a 400


def _ping_id(body: bytes) -> str | None:
    match = _PING.match(body)
    return match.group(1).decode() if match else None


def _load(model: type[Order] | type[Customer] | type[Product], body: bytes) -> Any:
    try:
        return model.model_validate(load_json_object(body))
    except ValidationError as error:
        raise BadPayload(validation_message(error)) from None


def _when(*candidates: tuple[str, datetime | None]) -> datetime:
    for _, value in candidates:
        if value is not None:
            return as_utc(value)
    raise BadPayload(f"{candidates[0][0]}: Field required")


def _items(order: Order) -> list[dict[str, Any]]:
    return [
        {"sku": line.sku or None, "title": line.name, "quantity": line.quantity,
         "price": line.price, "product_id": line.product_id,
         "variant_id": line.variation_id if line.variation_id not in (None, "0") else None}
        for line in order.line_items
    ]


class WooCommerceAdapter:
    """WooCommerce's webhooks; see the module docstring for the topic mapping."""

    name: ClassVar[str] = "woocommerce"
    path: ClassVar[str] = "/webhooks/woocommerce"

    def __init__(self, secret_key: str, default_country: str) -> None:
        self._secret = secret_key
        self._country = default_country

    @classmethod
    def from_settings(cls, settings: Settings) -> WooCommerceAdapter | None:
        """None while ``WOOCOMMERCE_WEBHOOK_SECRET`` is unset (the route then answers 503)."""
        key = secret(settings.woocommerce_webhook_secret)
        return cls(key, settings.default_country) if key else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check ``X-WC-Webhook-Signature``; an unsigned ping body alone is let through."""
        signature = get_header(headers, SIGNATURE_HEADER)
        if signature is None and _ping_id(body) is not None:
            return
        check_signature(self._secret, body, signature, header_name=SIGNATURE_HEADER,
                        encoding="base64")

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """``X-WC-Webhook-Delivery-ID``; ``ping:<webhook id>`` for the ping."""
        ping = _ping_id(body)
        if ping is not None and get_header(headers, DELIVERY_HEADER) is None:
            return f"ping:{ping}"
        return require_header(headers, DELIVERY_HEADER)

    def topic(self, headers: Mapping[str, str], body: bytes) -> str:
        """``X-WC-Webhook-Topic``, e.g. "order.created"; "ping" for the ping."""
        topic = get_header(headers, TOPIC_HEADER)
        if topic is None and _ping_id(body) is not None:
            return "ping"
        return require_header(headers, TOPIC_HEADER)

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[StoreEvent] | None:
        """Map the topic's payload onto generic events; None for the ping and other topics."""
        if _ping_id(body) is not None:
            return None
        topic = self.topic(headers, body)
        if topic == "order.created":
            return self._order_placed(_load(Order, body), topic)
        if topic == "order.updated":
            return self._order_fulfilled(_load(Order, body), topic)
        if topic in ("customer.created", "customer.updated"):
            event_id = f"woocommerce:{self.delivery_id(headers, body)}"
            return self._customer(_load(Customer, body), topic, event_id)
        if topic == "product.updated":
            return self._product_available(_load(Product, body), topic)
        return None

    def _buyer(self, order: Order) -> CustomerInfo | None:
        profile = ProfileBuilder(self._country)
        profile.add_email(order.billing.email)
        profile.add_phone(order.billing.phone, order.billing.country)
        profile.add_phone(order.shipping.phone, order.shipping.country)
        profile.add_names(order.billing.first_name, order.billing.last_name)
        profile.add_names(order.shipping.first_name, order.shipping.last_name)
        customer_id = str(order.customer_id) if order.customer_id > 0 else None
        customer_id = customer_id or profile.guest_id("woocommerce-guest")
        return profile.build(customer_id) if customer_id else None

    @staticmethod
    def _event(event_id: str, event_type: str, customer: CustomerInfo, data: dict[str, Any],
               occurred_at: datetime, topic: str) -> list[StoreEvent]:
        extra: dict[str, Any] = {"topic": topic}  # the store's own name, for inspection
        if customer.id == STORE_CUSTOMER:
            extra["store_wide"] = True  # fanned out to the interested customers only
        return [StoreEvent(
            **extra, id=event_id, type=event_type, occurred_at=occurred_at, customer=customer,
            data=build_data(event_type, data), source="woocommerce",
        )]

    def _order_placed(self, order: Order, topic: str) -> list[StoreEvent] | None:
        customer = self._buyer(order)
        if customer is None:
            return None
        when = _when(("date_created_gmt", order.date_created_gmt),
                     ("date_modified_gmt", order.date_modified_gmt))
        data = {"order_id": order.id, "checkout_id": order.cart_hash or None,
                "order_key": order.order_key, "order_number": order.number,
                "status": order.status, "total": order.total, "currency": order.currency,
                "items": _items(order)}
        return self._event(f"woocommerce:order.placed:{order.id}", "order.placed", customer,
                           data, when, topic)

    def _order_fulfilled(self, order: Order, topic: str) -> list[StoreEvent] | None:
        if order.status != "completed":
            return None
        customer = self._buyer(order)
        if customer is None:
            return None
        when = _when(("date_completed_gmt", order.date_completed_gmt),
                     ("date_modified_gmt", order.date_modified_gmt))
        data = {"order_id": order.id, "order_number": order.number, "order_key": order.order_key}
        return self._event(f"woocommerce:order.fulfilled:{order.id}", "order.fulfilled",
                           customer, data, when, topic)

    def _product_available(self, product: Product, topic: str) -> list[StoreEvent] | None:
        """An available product as ``product.back_in_stock``; None when it is not available."""
        managed_empty = product.manage_stock and (product.stock_quantity or 0) <= 0
        if product.stock_status != "instock" or managed_empty:
            return None
        when = _when(("date_modified_gmt", product.date_modified_gmt),
                     ("date_created_gmt", product.date_created_gmt))
        category = next((c.name for c in product.categories if c.name), None)
        data = {"product_id": product.id, "sku": product.sku or None, "title": product.name,
                "url": product.permalink or None, "category": category}
        return self._event(f"woocommerce:product.back_in_stock:{product.id}:{when.isoformat()}",
                           "product.back_in_stock", CustomerInfo(id=STORE_CUSTOMER), data,
                           when, topic)

    def _customer(self, customer: Customer, topic: str, event_id: str) -> list[StoreEvent]:
        profile = ProfileBuilder(self._country)
        profile.add_email(customer.email)
        profile.add_email(customer.billing.email)
        profile.add_phone(customer.billing.phone, customer.billing.country)
        profile.add_phone(customer.shipping.phone, customer.shipping.country)
        profile.add_names(customer.first_name, customer.last_name)
        profile.add_names(customer.billing.first_name, customer.billing.last_name)
        if topic == "customer.created":
            event_type = "customer.created"
            when = _when(("date_created_gmt", customer.date_created_gmt),
                         ("date_modified_gmt", customer.date_modified_gmt))
        else:
            event_type = "customer.updated"
            when = _when(("date_modified_gmt", customer.date_modified_gmt),
                         ("date_created_gmt", customer.date_created_gmt))
        info = profile.build(customer.id)
        birthday = from_woocommerce_meta(customer.meta_data)
        if birthday is not None:
            info = info.model_copy(update={"birthday": birthday})
        return self._event(event_id, event_type, info, {}, when, topic)
