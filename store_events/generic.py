"""``POST /events``: the generic store event, and the ``data`` models every adapter shares.

Any store or backend can post events in the contract's shape, signed with
``X-Signature-256: sha256=<hex HMAC-SHA256(raw body, STORE_EVENTS_SECRET)>``.
The body is validated strictly (a number where text is expected is an
error, not a coercion) so a sender finds its mistakes at once, with a 400
naming the field ("data.checkout_id: Field required"), instead of a flow
that silently never starts.

Decisions:
    * An unknown ``type`` is not an error, but it is not an event either:
      once the envelope is valid (``id``, ``type``, ``occurred_at``,
      ``customer.id``, an object as ``data``), ``parse`` returns None, so the
      route answers 200 ``{"ignored": true}`` and keeps the body, which is
      what the contract says of a type the service does not handle. A store
      can send new kinds of events before any flow uses them without being
      told it failed, and nothing it sent is lost. A malformed envelope is
      still a 400, whatever the type.
    * Fields the contract does not name are accepted and kept, at every
      level (envelope, customer, data, items).
    * The customer's phone is normalised to E.164 and the email lower-cased
      (:mod:`store_events.phones`); a phone or email that does not parse is
      dropped (None) rather than failing the event; the raw body is kept by
      the route anyway.
    * A naive ``occurred_at`` is taken as UTC; every time is returned in UTC.
      How far in the future it may lie is not the adapter's business: the
      route stamps each event with the service clock at intake
      (``received_at``), and a store time counts as no later than that
      (:mod:`bot.core.store_clock`).
    * Money (``total``, ``price``) is a JSON number or a decimal string
      ("59.90", as Shopify and most backends send it), kept exact as a
      normalised decimal string (:data:`store_events.base.Money`); the JSON
      number 59.9 becomes "59.9", never the float 59.899999... Optional
      money fields (an order's ``total``, a product's ``price``) are left
      out of ``data`` when not sent, rather than added as None.

The ``data`` models in :data:`DATA_MODELS` are also what the Shopify and
WooCommerce adapters build their ``data`` with (:func:`build_data`), so an
event has the same keys whichever store it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from bot.core.inputs import CustomerInfo, StatedConsent, StoreEvent
from bot.infra.settings import secret
from store_events.base import (
    BadPayload,
    IdStr,
    Money,
    as_utc,
    check_signature,
    get_header,
    json_numbers,
    load_json_object,
    validation_message,
)
from store_events.birthdays import iso_birthday
from store_events.phones import normalize_email, normalize_phone

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SIGNATURE_HEADER = "X-Signature-256"


class _Strict(BaseModel):
    """A ``data`` model: strict types, unknown fields kept.

    ``omit_if_absent`` names optional fields that are left out of the dump
    when the sender did not give them (instead of appearing as None).
    """

    model_config = ConfigDict(strict=True, extra="allow")
    omit_if_absent: ClassVar[frozenset[str]] = frozenset()


Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217"),
                     AfterValidator(str.upper)]


class CartItem(_Strict):
    """One line of a checkout: ``sku`` may be null (products without one), the rest is required."""

    sku: str | None
    title: str
    quantity: int = Field(ge=1)
    price: Money


class CheckoutStartedData(_Strict):
    """``checkout.started``: what the cart-recovery flow needs to write its message."""

    checkout_id: str = Field(min_length=1)
    recovery_url: str = Field(pattern=r"^https?://\S+$")
    total: Money
    currency: Currency
    items: list[CartItem]


class OrderItem(_Strict):
    """One line of an order; looser than a cart line (a line edited away may have quantity 0).

    ``product_id``, ``category`` and ``tags`` feed the customer's purchase
    history (:mod:`bot.core.purchases`): products and categories bought. A
    product id may be sent as a number (stores number their products);
    it is kept as text, as the Shopify and WooCommerce adapters keep theirs.
    """

    sku: str | None = None
    title: str | None = None
    quantity: int | None = Field(default=None, ge=0)
    price: Money | None = None
    product_id: IdStr | None = None
    category: str | None = None
    tags: list[str] = Field(default_factory=list)


class OrderPlacedData(_Strict):
    """``order.placed``: ``checkout_id`` is the checkout it completes, when the store knows it."""

    omit_if_absent: ClassVar[frozenset[str]] = frozenset({"total", "currency", "items"})

    order_id: str = Field(min_length=1)
    checkout_id: str | None = None
    total: Money | None = None
    currency: Currency | None = None
    items: list[OrderItem] | None = None


class OrderFulfilledData(_Strict):
    """``order.fulfilled``: the order has shipped (or was handed over)."""

    order_id: str = Field(min_length=1)


class CustomerCreatedData(_Strict):
    """``customer.created``: the profile is in ``customer``; no data fields."""


class CustomerUpdatedData(_Strict):
    """``customer.updated``: profile or consent changes, merged into the stored customer."""


class ProductViewedData(_Strict):
    """``product.viewed``: no required fields; a ``price`` given is money."""

    omit_if_absent: ClassVar[frozenset[str]] = frozenset({"price", "currency"})

    price: Money | None = None
    currency: Currency | None = None


class CartUpdatedData(_Strict):
    """``cart.updated``: no required fields; a ``total`` given is money."""

    omit_if_absent: ClassVar[frozenset[str]] = frozenset({"total", "currency"})

    total: Money | None = None
    currency: Currency | None = None


class ProductBackInStockData(ProductViewedData):
    """``product.back_in_stock``: no required fields; a ``price`` given is money."""


class SubscriptionChangedData(_Strict):
    """``subscription.changed``: no required fields."""


class PageVisitedData(_Strict):
    """``page.visited``: no required fields."""


DATA_MODELS: dict[str, type[_Strict]] = {
    "customer.created": CustomerCreatedData,
    "customer.updated": CustomerUpdatedData,
    "product.viewed": ProductViewedData,
    "cart.updated": CartUpdatedData,
    "checkout.started": CheckoutStartedData,
    "order.placed": OrderPlacedData,
    "order.fulfilled": OrderFulfilledData,
    "product.back_in_stock": ProductBackInStockData,
    "subscription.changed": SubscriptionChangedData,
    "page.visited": PageVisitedData,
}
"""Event type -> model of its ``data``; ``POST /events`` ignores (and keeps) other types."""


def build_data(event_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``fields`` as the ``data`` of ``event_type`` (a key of :data:`DATA_MODELS`).

    Known keys are always present (None when optional and unknown), so rules
    can read ``data["checkout_id"]`` whichever store sent the event.

    Raises:
        BadPayload: naming ``data.<field>``.
    """
    model = DATA_MODELS[event_type]
    try:
        validated = model.model_validate(dict(fields))
    except ValidationError as error:
        raise BadPayload(validation_message(error, "data")) from None
    data = validated.model_dump()
    for name in model.omit_if_absent - validated.model_fields_set:
        del data[name]
    return dict(json_numbers(data))


class GenericCustomer(_Strict):
    """``customer`` of a generic event; ``id`` is the store's customer id."""

    id: str = Field(min_length=1)
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    birthday: str | None = Field(default=None, pattern=r"^(\d{4}-\d{2}-\d{2}|--\d{2}-\d{2})$")
    consents: dict[str, StatedConsent] = Field(default_factory=dict)  # true, false, "pending"
    consent_at: datetime | None = Field(default=None, strict=False)

    @field_validator("birthday")
    @classmethod
    def _real_day(cls, value: str | None) -> str | None:
        """A day the calendar has: "1990-02-30" would fail every later decision."""
        if value is not None and iso_birthday(value) is None:
            raise ValueError(f"{value!r} is not a real day (YYYY-MM-DD or --MM-DD)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        """An IANA name the zone database opens; anything else is refused, not ignored.

        ``ZoneInfo`` reads the name as a file path: besides its own errors it
        raises ``OSError`` for a name too long for a file name or naming a
        directory ("America"); all of them mean "no such zone".
        """
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise PydanticCustomError("time_zone", "unknown time zone {zone}",
                                      {"zone": repr(shown)}) from None
        return value


class GenericEvent(_Strict):
    """The envelope of ``POST /events``; ``data`` is checked per type afterwards."""

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    occurred_at: datetime = Field(strict=False)
    customer: GenericCustomer
    data: dict[str, Any] = Field(default_factory=dict)


def _required_text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        raise BadPayload(f"{key}: Field required")
    if not isinstance(value, str) or not value:
        raise BadPayload(f"{key}: Input should be a non-empty string")
    return value


class GenericAdapter:
    """``POST /events``: a store event already in the generic shape.

    The dedupe key is the event's own ``id``: a store that posts the same
    event twice (a retry after a timeout) gets ``{"duplicate": true}``.
    """

    name: ClassVar[str] = "events"
    path: ClassVar[str] = "/events"

    def __init__(self, secret_key: str, default_country: str) -> None:
        self._secret = secret_key
        self._country = default_country

    @classmethod
    def from_settings(cls, settings: Settings) -> GenericAdapter | None:
        """None while ``STORE_EVENTS_SECRET`` is unset (the route then answers 503)."""
        key = secret(settings.store_events_secret)
        return cls(key, settings.default_country) if key else None

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Check ``X-Signature-256: sha256=<hex>`` over the raw body."""
        check_signature(self._secret, body, get_header(headers, SIGNATURE_HEADER),
                        header_name=SIGNATURE_HEADER, encoding="hex")

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The event ``id``."""
        return _required_text(load_json_object(body), "id")

    def topic(self, headers: Mapping[str, str], body: bytes) -> str:
        """The event ``type``."""
        return _required_text(load_json_object(body), "type")

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[StoreEvent] | None:
        """Validate the body: one :class:`StoreEvent`, or None for a type not handled."""
        try:
            envelope = GenericEvent.model_validate(load_json_object(body))
        except ValidationError as error:
            raise BadPayload(validation_message(error)) from None
        if envelope.type not in DATA_MODELS:
            return None
        return [self._to_event(envelope)]

    def _to_event(self, envelope: GenericEvent) -> StoreEvent:
        data = build_data(envelope.type, envelope.data)
        given = envelope.customer
        customer = CustomerInfo(
            **json_numbers(given.model_extra or {}),
            id=given.id,
            phone=normalize_phone(given.phone, self._country),
            email=normalize_email(given.email),
            first_name=given.first_name,
            last_name=given.last_name,
            locale=given.locale,
            timezone=given.timezone,
            birthday=given.birthday,
            consents=dict(given.consents),
            consent_at=as_utc(given.consent_at) if given.consent_at else None,
        )
        extras = {k: json_numbers(v) for k, v in (envelope.model_extra or {}).items()
                  if k not in ("source", "received_at")}
        return StoreEvent(
            **extras,
            id=envelope.id,
            type=envelope.type,
            occurred_at=as_utc(envelope.occurred_at),
            customer=customer,
            data=data,
            source="generic",
        )
