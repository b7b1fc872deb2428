"""Shopify webhooks (``POST /webhooks/shopify``) -> generic store events.

Shopify signs the raw body with the app's client secret
(``X-Shopify-Hmac-Sha256``, base64 HMAC-SHA256), names the topic in
``X-Shopify-Topic`` and keeps ``X-Shopify-Webhook-Id`` across retries of one
delivery, which is therefore the dedupe key.

Topics and what they become (every other topic is ignored: ``parse``
returns None):

* ``checkouts/create``, ``checkouts/update`` -> ``checkout.started``
* ``orders/create`` -> ``order.placed``
* ``orders/fulfilled`` -> ``order.fulfilled``
* ``customers/create`` -> ``customer.created``
* ``customers/update`` -> ``customer.updated``
* ``customers_marketing_consent/update`` -> ``customer.updated`` (SMS consent)
* ``customers_email_marketing_consent/update`` -> ``customer.updated`` (email consent)
* ``products/create``, ``products/update`` -> ``product.catalog`` (the store
  catalog: each variant's inventory item, SKU and quantity), and also
  ``product.back_in_stock`` when an update shows a variant's stock went from
  0 (or less) to more than 0
* ``inventory_levels/update`` -> ``product.inventory_level``, which the
  fan-out turns into ``product.back_in_stock`` when the catalog says it is a
  restock (see the decisions)

Decisions:
    * ``checkout_id`` is the checkout's ``token``, not its numeric ``id``:
      the token is what an order carries back (``checkout_token``), so
      ``order.placed`` can end the cart flow of exactly that checkout, and
      it stays the same across ``checkouts/update``.
    * A checkout already completed (``completed_at`` set) is ignored: its
      ``orders/create`` follows and must not restart the abandonment timer.
    * A guest (no ``customer`` object) gets the id
      ``shopify-guest:<email>`` (or ``shopify-guest:<E.164 phone>`` without
      an email), built from the normalised value so that the guest's
      checkout and order land on the same customer. A checkout or order with
      neither is ignored: there is nobody to write to.
    * Consent: ``sms_marketing_consent`` -> ``consents["sms"]`` and
      ``email_marketing_consent`` -> ``consents["email"]``; "subscribed" is
      True, "unsubscribed", "not_subscribed", "redacted" (and email's
      "invalid") are False, "pending" or no state gives no entry. SMS consent
      is for SMS only; WhatsApp consent never comes from Shopify.
      ``consent_at`` is the SMS consent's ``consent_updated_at`` (the email
      one's when there is no SMS entry), and ``customer.consent_times`` has
      each channel's own time; a null ``consent_updated_at`` means "as of
      ``occurred_at``". Shopify's 2025-01 changelog removes both objects
      from the customer in webhook payloads in favour of the two consent
      topics above, so those are handled too, and a checkout's
      ``buyer_accepts_sms`` / an order's or checkout's
      ``buyer_accepts_marketing`` count when the customer object has no
      consent (True only: an unticked box is no opt-out).
    * Birthdays: Shopify customers have no birthday field. A store keeps it
      in a customer metafield, the standard ``facts.birth_date`` or its own
      (any namespace, key ``birthday``, ``birth_date`` or ``date_of_birth``),
      which ``customers/create`` and ``customers/update`` carry in a
      ``metafields`` list when the webhook subscription names the namespace
      (``metafieldNamespaces``). A ``YYYY-MM-DD`` or ``--MM-DD`` value
      becomes the customer's ``birthday``; any other value is ignored
      (``store_events.birthdays``).
    * ``occurred_at``: ``created_at`` for the create topics, ``updated_at``
      for update and fulfilled topics (so ``checkouts/update`` restarts the
      abandonment countdown from the shopper's last activity), falling back
      to ``X-Shopify-Triggered-At``.
    * Money (``total_price``, line ``price``) arrives as decimal strings
      ("59000.00") and stays exact (:data:`store_events.base.Money`).
    * An order's lines carry ``category`` (the line's ``product_type`` when
      the payload has one; current webhooks mostly do not) and ``vendor``,
      for the customer's purchase history (:mod:`bot.core.purchases`).
    * Event ids are ``shopify:<webhook id>``, except that an order is placed
      and fulfilled once, so those events are ``shopify:order.placed:<id>``
      and ``shopify:order.fulfilled:<id>`` whatever delivery carried them.
    * Restocks. A product webhook has no customer: its event carries the
      customer ``shopify:store`` and ``store_wide: true``, and the fan-out
      (``Runtime.fanout_pass``) gives it to every customer interested in the
      product (viewed it, had it in a cart) and to no store customer.
      ``products/update`` is a restock when some variant has
      ``inventory_quantity`` > 0 and ``old_inventory_quantity`` <= 0: the
      payload's only trace of the quantity before. Shopify deprecated that
      field; a variant without it is judged by the fan-out against the
      catalog's previous quantity instead (``bot.runtime.catalog``), and an
      unknown previous quantity is no restock, so customers are never told
      "it is back" about a product that never left. The event has
      ``product_id``, the first
      restocked variant's ``sku`` and ``variant_id``, ``title``,
      ``category`` (``product_type``) and ``url``
      (``https://<X-Shopify-Shop-Domain>/products/<handle>``, which redirects
      to the shop's own domain); its id is
      ``shopify:product.back_in_stock:<product id>:<updated_at>``, so the
      repeats Shopify sends for one change count once.
    * The catalog. ``products/create`` and ``products/update`` always give a
      store-wide ``product.catalog`` event (``product_id``, ``title``,
      ``category``, ``url`` as above, and ``variants``: ``variant_id``,
      ``sku``, ``inventory_item_id``, ``inventory_quantity``,
      ``old_inventory_quantity``), id
      ``shopify:product.catalog:<product id>:<updated_at>``; the fan-out
      keeps one catalog document per inventory item. ``products/create`` is
      never a restock itself: a new product has not come back.
    * ``inventory_levels/update`` names an inventory item at a location and
      its ``available`` quantity, neither the product nor the quantity
      before. It maps to the store-wide ``product.inventory_level`` with
      ``inventory_item_id``, ``location_id`` and ``available``, whatever the
      quantity (a 0 is what lets a later level be a restock; a null
      ``available``, an untracked item, is ignored). The fan-out looks the
      item up in the catalog: known out of stock before and in stock now is
      a restock, fanned out as ``product.back_in_stock`` with the catalog's
      product; 5 -> 7, an item no product webhook has named, or one whose
      stock before is unknown tell nobody (the inbox item is done with a
      ``note``). Its id is
      ``shopify:inventory_level:<item>:<location>:<updated_at>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import AliasChoices, BaseModel, Field, ValidationError

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
    parse_timestamp,
    require_header,
    validation_message,
)
from store_events.birthdays import from_shopify_metafields
from store_events.generic import build_data

if TYPE_CHECKING:
    from bot.infra.settings import Settings

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOP_HEADER = "X-Shopify-Shop-Domain"
STORE_CUSTOMER = "shopify:store"  # the customer of a store-wide event (a restock)
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"
_GRANTED = {"subscribed"}
_REFUSED = {"unsubscribed", "not_subscribed", "redacted", "invalid"}
_M = TypeVar("_M", bound="BaseModel")


class Consent(StoreModel):
    state: str | None = None
    consent_updated_at: datetime | None = None


class Address(StoreModel):
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    country_code: str | None = None


class Customer(StoreModel):
    id: IdStr
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    sms_marketing_consent: Consent | None = None
    email_marketing_consent: Consent | None = None
    default_address: Address | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metafields: Any = None  # read leniently (store_events.birthdays): never a 400


class LineItem(StoreModel):
    sku: str | None = None
    title: str
    quantity: int
    price: Money
    product_id: IdStr | None = None
    variant_id: IdStr | None = None
    vendor: str | None = None
    product_type: str | None = None


class Purchase(StoreModel):
    """What checkouts and orders share: the buyer and the cart."""

    customer: Customer | None = None
    email: str | None = None
    phone: str | None = None
    customer_locale: str | None = None
    buyer_accepts_marketing: bool | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    total_price: Money
    currency: str
    line_items: list[LineItem] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Checkout(Purchase):
    token: str = Field(min_length=1)
    abandoned_checkout_url: str
    completed_at: datetime | None = None
    sms_marketing_phone: str | None = None
    buyer_accepts_sms: bool | None = None


class Fulfillment(StoreModel):
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


class Order(Purchase):
    id: IdStr
    name: str | None = None
    checkout_token: str | None = None
    order_status_url: str | None = None
    fulfillments: list[Fulfillment] = Field(default_factory=list)


class Variant(StoreModel):
    id: IdStr | None = None
    sku: str | None = None
    # What ``inventory_levels/update`` names instead of the variant (REST ProductVariant,
    # https://shopify.dev/docs/api/admin-rest/2025-10/resources/product-variant).
    inventory_item_id: IdStr | None = None
    inventory_quantity: int | None = None
    old_inventory_quantity: int | None = None


class Product(StoreModel):
    id: IdStr
    title: str
    handle: str | None = None
    product_type: str | None = None
    variants: list[Variant] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class InventoryLevel(StoreModel):
    inventory_item_id: IdStr
    location_id: IdStr | None = None
    available: int | None = None
    updated_at: datetime | None = None


class SmsConsentUpdate(StoreModel):
    id: IdStr = Field(validation_alias=AliasChoices("id", "customer_id"))
    phone: str | None = None
    sms_marketing_consent: Consent


class EmailConsentUpdate(StoreModel):
    customer_id: IdStr = Field(validation_alias=AliasChoices("customer_id", "id"))
    email_address: str | None = None
    email_marketing_consent: Consent


def _validate(model: type[_M], payload: dict[str, Any]) -> _M:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise BadPayload(validation_message(error)) from None


def _consent_value(consent: Consent | None) -> bool | None:
    state = (consent.state or "").lower() if consent else ""
    if state in _GRANTED:
        return True
    if state in _REFUSED:
        return False
    return None


def _items(lines: list[LineItem]) -> list[dict[str, Any]]:
    return [
        {"sku": line.sku or None, "title": line.title, "quantity": line.quantity,
         "price": line.price, "product_id": line.product_id, "variant_id": line.variant_id}
        for line in lines
    ]


def _order_items(lines: list[LineItem]) -> list[dict[str, Any]]:
    """An order's lines, with the product's ``category`` (``product_type``) and ``vendor``.

    Shopify's order webhooks carry neither product tags nor collections, and
    current API versions leave ``product_type`` out of line items too (it is
    on the product, ``products/update``): ``category`` is the line's
    ``product_type`` when a payload has one, else None, and ``tags`` stay
    empty. A store that wants categories on every order can post them to
    ``POST /events`` instead.
    """
    return [{**item, "category": (line.product_type or "").strip() or None,
             "vendor": (line.vendor or "").strip() or None}
            for item, line in zip(_items(lines), lines, strict=True)]


def _add_consent(profile: ProfileBuilder, channel: str, consent: Consent | None) -> None:
    at = consent.consent_updated_at if consent else None
    profile.set_consent(channel, _consent_value(consent), at)


def _add_address(profile: ProfileBuilder, address: Address | None) -> None:
    if address is not None:
        profile.add_phone(address.phone, address.country_code)
        profile.add_names(address.first_name, address.last_name)


def _add_customer(profile: ProfileBuilder, customer: Customer | None) -> None:
    if customer is not None:
        profile.add_phone(customer.phone)
        profile.add_email(customer.email)
        profile.add_names(customer.first_name, customer.last_name)
        _add_consent(profile, "sms", customer.sms_marketing_consent)
        _add_consent(profile, "email", customer.email_marketing_consent)


class _Context:
    """The headers one delivery's handlers need."""

    def __init__(self, topic: str, webhook_id: str, triggered_at: str | None,
                 shop: str | None = None) -> None:
        self.topic = topic
        self.webhook_id = webhook_id
        self.triggered_at = triggered_at
        self.shop = shop

    def when(self, *candidates: tuple[str, datetime | None]) -> datetime:
        """The first payload time given, else ``X-Shopify-Triggered-At``."""
        for _, value in candidates:
            if value is not None:
                return as_utc(value)
        if self.triggered_at is not None:
            return parse_timestamp(self.triggered_at, TRIGGERED_AT_HEADER)
        raise BadPayload(f"{candidates[0][0]}: Field required (and no {TRIGGERED_AT_HEADER})")


class ShopifyAdapter:
    """Shopify's webhooks; see the module docstring for the topic mapping."""

    name: ClassVar[str] = "shopify"
    path: ClassVar[str] = "/webhooks/shopify"

    def __init__(self, secret_key: str, default_country: str) -> None:
        self._secret = secret_key
        self._country = default_country
        self._handlers: dict[str, Callable[[dict[str, Any], _Context], list[StoreEvent] | None]] = {
            "checkouts/create": self._checkout,
            "checkouts/update": self._checkout,
            "orders/create": self._order_placed,
            "orders/fulfilled": self._order_fulfilled,
            "customers/create": self._customer,
            "customers/update": self._customer,
            "customers_marketing_consent/update": self._sms_consent,
            "customers_email_marketing_consent/update": self._email_consent,
            "products/create": self._product,
            "products/update": self._product,
            "inventory_levels/update": self._inventory_level,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopifyAdapter | None:
        """None while ``SHOPIFY_WEBHOOK_SECRET`` is unset (the route then answers 503)."""
        key = secret(settings.shopify_webhook_secret)
        return cls(key, settings.default_country) if key else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body)."""
        check_signature(self._secret, body, get_header(headers, HMAC_HEADER),
                        header_name=HMAC_HEADER, encoding="base64")

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """``X-Shopify-Webhook-Id``: the same on every retry of one delivery."""
        return require_header(headers, WEBHOOK_ID_HEADER)

    def topic(self, headers: Mapping[str, str], body: bytes) -> str:
        """``X-Shopify-Topic``, e.g. "orders/create"."""
        return require_header(headers, TOPIC_HEADER)

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[StoreEvent] | None:
        """Map the topic's payload onto generic events; None for topics not handled."""
        topic = self.topic(headers, body)
        handler = self._handlers.get(topic)
        if handler is None:
            return None
        context = _Context(topic, self.delivery_id(headers, body),
                           get_header(headers, TRIGGERED_AT_HEADER),
                           get_header(headers, SHOP_HEADER))
        return handler(load_json_object(body), context)

    def _event(self, context: _Context, event_type: str, customer: CustomerInfo,
               data: dict[str, Any], occurred_at: datetime, event_id: str | None = None,
               ) -> list[StoreEvent]:
        extra: dict[str, Any] = {"topic": context.topic}  # the store's own name, for inspection
        if customer.id == STORE_CUSTOMER:
            extra["store_wide"] = True  # fanned out to the interested customers only
        return [StoreEvent(
            **extra, id=event_id or f"shopify:{context.webhook_id}", type=event_type,
            occurred_at=occurred_at, customer=customer, data=build_data(event_type, data),
            source="shopify",
        )]

    def _buyer(self, purchase: Purchase) -> CustomerInfo | None:
        """The buyer of a checkout or order; a guest id without a customer; None if anonymous."""
        profile = ProfileBuilder(self._country)
        _add_customer(profile, purchase.customer)
        if isinstance(purchase, Checkout):
            profile.add_phone(purchase.sms_marketing_phone)
            if purchase.buyer_accepts_sms is True and profile.phone:
                profile.set_consent("sms", True)
        profile.add_phone(purchase.phone)
        profile.add_email(purchase.email)
        _add_address(profile, purchase.billing_address)
        _add_address(profile, purchase.shipping_address)
        if purchase.customer is not None:
            _add_address(profile, purchase.customer.default_address)
        if purchase.buyer_accepts_marketing is True and profile.email:
            profile.set_consent("email", True)
        if purchase.customer is not None:
            return profile.build(purchase.customer.id, purchase.customer_locale)
        guest = profile.guest_id("shopify-guest")
        return profile.build(guest, purchase.customer_locale) if guest else None

    def _checkout(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent] | None:
        checkout = _validate(Checkout, payload)
        if checkout.completed_at is not None:
            return None
        customer = self._buyer(checkout)
        if customer is None:
            return None
        if context.topic == "checkouts/create":
            when = context.when(("created_at", checkout.created_at),
                                ("updated_at", checkout.updated_at))
        else:
            when = context.when(("updated_at", checkout.updated_at),
                                ("created_at", checkout.created_at))
        data = {"checkout_id": checkout.token, "recovery_url": checkout.abandoned_checkout_url,
                "total": checkout.total_price, "currency": checkout.currency,
                "items": _items(checkout.line_items)}
        return self._event(context, "checkout.started", customer, data, when)

    def _order(self, payload: dict[str, Any]) -> tuple[Order, CustomerInfo | None]:
        order = _validate(Order, payload)
        customer = self._buyer(order)
        return order, customer

    def _order_placed(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent] | None:
        order, customer = self._order(payload)
        if customer is None:
            return None
        when = context.when(("created_at", order.created_at), ("updated_at", order.updated_at))
        data = {"order_id": order.id, "checkout_id": order.checkout_token or None,
                "order_number": order.name, "total": order.total_price,
                "currency": order.currency, "items": _order_items(order.line_items),
                "status_url": order.order_status_url}
        return self._event(context, "order.placed", customer, data, when,
                           f"shopify:order.placed:{order.id}")

    def _order_fulfilled(self, payload: dict[str, Any], context: _Context,
                         ) -> list[StoreEvent] | None:
        order, customer = self._order(payload)
        if customer is None:
            return None
        when = context.when(("updated_at", order.updated_at), ("created_at", order.created_at))
        shipped = next((f for f in reversed(order.fulfillments) if f.tracking_number
                        or f.tracking_url), Fulfillment())
        data = {"order_id": order.id, "order_number": order.name,
                "tracking_company": shipped.tracking_company,
                "tracking_number": shipped.tracking_number,
                "tracking_url": shipped.tracking_url, "status_url": order.order_status_url}
        return self._event(context, "order.fulfilled", customer, data, when,
                           f"shopify:order.fulfilled:{order.id}")

    def _store_wide(self, context: _Context, event_type: str, data: dict[str, Any],
                    occurred_at: datetime, event_id: str) -> StoreEvent:
        """A store-wide event the service keeps to itself (``product.catalog``,
        ``product.inventory_level``): not a ``POST /events`` type, so its ``data`` is
        built here from the validated payload rather than by ``build_data``."""
        return StoreEvent(topic=context.topic, store_wide=True, id=event_id, type=event_type,
                          occurred_at=occurred_at, customer=CustomerInfo(id=STORE_CUSTOMER),
                          data=data, source="shopify")

    def _product(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent]:
        """``products/create`` or ``products/update``: the catalog entry, and the restock
        an update shows (``old_inventory_quantity``; module docstring)."""
        product = _validate(Product, payload)
        when = context.when(("updated_at", product.updated_at),
                            ("created_at", product.created_at))
        url = (f"https://{context.shop}/products/{product.handle}"
               if context.shop and product.handle else None)
        category = (product.product_type or "").strip() or None
        variants = [{"variant_id": v.id, "sku": v.sku or None,
                     "inventory_item_id": v.inventory_item_id,
                     "inventory_quantity": v.inventory_quantity,
                     "old_inventory_quantity": v.old_inventory_quantity}
                    for v in product.variants]
        events = [self._store_wide(
            context, "product.catalog",
            {"product_id": product.id, "title": product.title, "category": category,
             "url": url, "variants": variants},
            when, f"shopify:product.catalog:{product.id}:{when.isoformat()}")]
        restocked = [v for v in product.variants
                     if (v.inventory_quantity or 0) > 0
                     and v.old_inventory_quantity is not None and v.old_inventory_quantity <= 0]
        if restocked and context.topic == "products/update":
            data = {"product_id": product.id, "sku": restocked[0].sku or None,
                    "variant_id": restocked[0].id, "title": product.title,
                    "category": category, "url": url}
            events += self._event(
                context, "product.back_in_stock", CustomerInfo(id=STORE_CUSTOMER), data, when,
                f"shopify:product.back_in_stock:{product.id}:{when.isoformat()}")
        return events

    def _inventory_level(self, payload: dict[str, Any], context: _Context,
                         ) -> list[StoreEvent] | None:
        """``inventory_levels/update`` -> ``product.inventory_level``, whatever the quantity:
        the fan-out tells a restock from it with the catalog (module docstring)."""
        level = _validate(InventoryLevel, payload)
        if level.available is None:
            return None  # an untracked item: no quantity to learn from
        when = context.when(("updated_at", level.updated_at))
        data = {"inventory_item_id": level.inventory_item_id, "location_id": level.location_id,
                "available": level.available}
        return [self._store_wide(
            context, "product.inventory_level", data, when,
            f"shopify:inventory_level:{level.inventory_item_id}:{level.location_id}:"
            f"{when.isoformat()}")]

    def _customer(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent]:
        customer = _validate(Customer, payload)
        profile = ProfileBuilder(self._country)
        _add_customer(profile, customer)
        _add_address(profile, customer.default_address)
        info = profile.build(customer.id, customer.locale)
        birthday = from_shopify_metafields(customer.metafields)
        if birthday is not None:
            info = info.model_copy(update={"birthday": birthday})
        if context.topic == "customers/create":
            event_type = "customer.created"
            when = context.when(("created_at", customer.created_at),
                                ("updated_at", customer.updated_at))
        else:
            event_type = "customer.updated"
            when = context.when(("updated_at", customer.updated_at),
                                ("created_at", customer.created_at))
        return self._event(context, event_type, info, {}, when)

    def _sms_consent(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent]:
        update = _validate(SmsConsentUpdate, payload)
        profile = ProfileBuilder(self._country)
        profile.add_phone(update.phone)
        _add_consent(profile, "sms", update.sms_marketing_consent)
        info = profile.build(update.id, None)
        when = context.when(("sms_marketing_consent.consent_updated_at",
                             update.sms_marketing_consent.consent_updated_at))
        return self._event(context, "customer.updated", info, {}, when)

    def _email_consent(self, payload: dict[str, Any], context: _Context) -> list[StoreEvent]:
        update = _validate(EmailConsentUpdate, payload)
        profile = ProfileBuilder(self._country)
        profile.add_email(update.email_address)
        _add_consent(profile, "email", update.email_marketing_consent)
        info = profile.build(update.customer_id, None)
        when = context.when(("email_marketing_consent.consent_updated_at",
                             update.email_marketing_consent.consent_updated_at))
        return self._event(context, "customer.updated", info, {}, when)
