"""The seam every store plugs into, and the small helpers the adapters share.

A store adapter turns one store's webhook into generic
:class:`bot.core.inputs.StoreEvent` s, the shape of ``POST /events``; nothing
behind the route ever sees a store's own format. The route calls, in order
and all pure (no I/O, no clock)::

    adapter.verify(headers, body)          # BadSignature -> 401
    key = adapter.delivery_id(headers, body)  # BadPayload -> 400; repeated key -> duplicate
    topic = adapter.topic(headers, body)   # for logs and for keeping ignored bodies
    events = adapter.parse(headers, body)  # None -> 200 {"ignored": true}; BadPayload -> 400

then persists the body and the events before answering, and processes them
afterwards (verify -> parse -> persist -> answer -> process).

Adding a store means adding one module with one class implementing
:class:`StoreAdapter` and one line naming that class in
``store_events.registry``; its route is the class's ``path``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from bot.core.errors import BadPayload, BadSignature
from bot.core.inputs import CustomerInfo, StoreEvent
from bot.http.json_body import load_json
from store_events.phones import normalize_email, normalize_phone

if TYPE_CHECKING:
    from bot.infra.settings import Settings

__all__ = [
    "BadPayload", "BadSignature", "IdStr", "Money", "ProfileBuilder", "StoreAdapter", "StoreModel",
    "as_utc", "check_signature", "get_header", "hmac_sha256", "json_numbers", "load_json_object",
    "money", "parse_timestamp", "require_header", "validation_message",
]


class StoreAdapter(Protocol):
    """One store's webhooks, turned into generic store events.

    Implementations are constructed by :meth:`from_settings`; every method
    is pure so that it can be tested with nothing but bytes and headers, and
    so that the route can run them before anything is stored.

    Attributes:
        name: registry key and log label ("shopify", "woocommerce", "events").
        path: the HTTP route the store calls, e.g. "/webhooks/shopify".
    """

    name: ClassVar[str]
    path: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreAdapter | None:
        """Build the adapter, or None while its secret is unset.

        The route of an adapter that is None answers 503: an unsigned store
        endpoint would let anyone inject orders and consents.
        """
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise :class:`bot.core.errors.BadSignature` unless the body was signed with our secret.

        Uses :func:`hmac.compare_digest` so the comparison time does not
        leak how much of a forged signature was right.

        Args:
            headers: the request headers (a case-insensitive mapping in the
                server; plain dicts work too).
            body: the raw request body, exactly as received: the HMAC is over
                these bytes, not over re-encoded JSON.
        """
        ...

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        """The dedupe key of this delivery; a repeated key changes nothing.

        Stores retry a delivery until they get a 2xx, and may deliver twice
        even then, so the key is the one the store keeps across retries:
        Shopify ``X-Shopify-Webhook-Id``, WooCommerce
        ``X-WC-Webhook-Delivery-ID``, the generic route the event ``id``.

        Raises:
            BadPayload: the key is missing.
        """
        ...

    def topic(self, headers: Mapping[str, str], body: bytes) -> str:
        """The store's own name for what happened ("orders/create", "order.updated", ...).

        Raises:
            BadPayload: the topic is missing.
        """
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[StoreEvent] | None:
        """Turn a verified delivery into generic store events.

        Returns:
            The events, or None when the topic is not one the service acts
            on (the route answers 200 ``{"ignored": true}`` so the store
            does not retry forever, and keeps the body for inspection).

        Raises:
            BadPayload: the body is malformed; the message names the field,
                e.g. ``"data.checkout_id: Field required"``.
        """
        ...


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Header ``name`` case-insensitively, stripped; None when absent or blank."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None:
        return None
    value = value.strip()
    return value or None


def require_header(headers: Mapping[str, str], name: str) -> str:
    """Header ``name``, or :class:`BadPayload` naming it."""
    value = get_header(headers, name)
    if value is None:
        raise BadPayload(f"missing {name} header")
    return value


def hmac_sha256(secret: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of ``body`` keyed with ``secret`` (UTF-8)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


def check_signature(secret: str, body: bytes, header: str | None, *, header_name: str,
                    encoding: str) -> None:
    """Compare a signature header with the HMAC-SHA256 of ``body`` in constant time.

    Args:
        secret: the shared secret.
        body: the raw body.
        header: the header's value (None when absent).
        header_name: for the error message.
        encoding: "base64" (Shopify, WooCommerce) or "sha256=hex" (``X-Signature-256``).

    Raises:
        BadSignature: the header is missing, malformed or does not match.
    """
    if not header:
        raise BadSignature(f"missing {header_name} header")
    digest = hmac_sha256(secret, body)
    if encoding == "base64":
        try:
            given = base64.b64decode(header.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadSignature(f"{header_name} is not base64") from None
    else:
        scheme, _, hex_part = header.strip().partition("=")
        if scheme.lower() != "sha256" or not hex_part:
            raise BadSignature(f"{header_name} must be sha256=<hex>")
        try:
            given = bytes.fromhex(hex_part)
        except ValueError:
            raise BadSignature(f"{header_name} is not hex") from None
    if not hmac.compare_digest(digest, given):
        raise BadSignature(f"{header_name} does not match the body")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json_object(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as a JSON object, or raise :class:`BadPayload` saying why not.

    JSON numbers with a fraction or an exponent come back as :class:`Decimal`,
    read from the text itself: a float would already have turned 59.9 into
    59.899999999999998578..., and money must stay exact (:data:`Money`).
    Numbers that are not money are turned back into floats by
    :func:`json_numbers` once the payload is validated. What MongoDB could
    not store (integers beyond 64 bits, lone surrogates, deep nesting) is
    refused by :func:`bot.http.json_body.load_json`, naming the field.
    """
    value = load_json(body, parse_float=Decimal, parse_constant=_reject_constant)
    if not isinstance(value, dict):
        raise BadPayload("body: expected a JSON object")
    return value


def json_numbers(value: Any) -> Any:
    """``value`` with every :class:`Decimal` left in it as a float, as JSON numbers were before.

    For fields that are not money (kept "as sent", e.g. a store's own
    ``weight``): the stored payload keeps them JSON numbers, not the strings
    a Decimal would be serialised as.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_numbers(item) for item in value]
    return value


MONEY_INTEGER_DIGITS = 20
MONEY_FRACTION_DIGITS = 20  # WooCommerce line prices are floats like 8.2644628099174
_MONEY_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _money_error(detail: str) -> PydanticCustomError:
    return PydanticCustomError("money", "{detail}", {"detail": detail})


def money(value: object) -> str:
    """An amount of money as a normalised decimal string, e.g. 59.9 -> "59.9", "059.90" -> "59.90".

    Accepts a JSON number (an ``int``, or the :class:`Decimal` that
    :func:`load_json_object` reads it as) or a plain decimal string, as
    Shopify and most store backends send money. Refuses booleans, floats
    (already inexact), NaN and infinities, exponents in strings, negative
    amounts and amounts beyond :data:`MONEY_INTEGER_DIGITS` digits before the
    point or :data:`MONEY_FRACTION_DIGITS` after it ("1e999" is a number, but
    no price). The given scale is kept ("59.90" stays "59.90").

    Why a string and not a number or BSON Decimal128: the payload is stored
    as JSON (``model_dump(mode="json")`` into the inbox, then the customer
    document and the flows' facts, which durable_rules needs to be JSON); a
    decimal string survives each of those unchanged and exact, whereas a
    float would not be exact and a Decimal or Decimal128 would not survive
    JSON. Nothing adds amounts up in the database, so nothing needs a numeric
    BSON type; a flow that formats or compares an amount reads it with
    ``Decimal(text)``.

    Raises:
        PydanticCustomError: the reason, which pydantic prefixes with the field.
    """
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise _money_error("Input should be a decimal number or a decimal string such as "
                           "\"59.90\"")
    if isinstance(value, str):
        if value.startswith("-") and _MONEY_TEXT.match(value[1:]):
            raise _money_error("Input should be greater than or equal to 0")
        if not _MONEY_TEXT.match(value):
            raise _money_error("Input should be a decimal string such as \"59.90\", "
                               f"not {value[:40]!r}")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):  # pragma: no cover - the pattern above rules it out
        raise _money_error("Input should be a decimal number") from None
    if not amount.is_finite():
        raise _money_error("Input should be a finite number")
    if amount < 0:
        raise _money_error("Input should be greater than or equal to 0")
    if amount != 0 and amount.adjusted() >= MONEY_INTEGER_DIGITS:
        raise _money_error(f"Input should have at most {MONEY_INTEGER_DIGITS} digits before "
                           "the decimal point")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_FRACTION_DIGITS:
        raise _money_error(f"Input should have at most {MONEY_FRACTION_DIGITS} decimal places")
    return format(abs(amount), "f")


Money = Annotated[str, PlainValidator(money),
                  WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                                            {"type": "string", "pattern": _MONEY_TEXT.pattern}]})]
"""An amount of money, exact: a JSON number or a decimal string in, a decimal string out."""


def _format_loc(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def validation_message(error: ValidationError, prefix: str = "") -> str:
    """Pydantic errors as "path: message" pairs, e.g. "data.items[0].price: Field required"."""
    parts = []
    for item in error.errors(include_url=False):
        path = _format_loc(prefix, tuple(item["loc"]))
        parts.append(f"{path}: {item['msg']}" if path else str(item["msg"]))
    return "; ".join(parts)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time is taken to be UTC already (the contract's times are)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def parse_timestamp(value: object, field: str) -> datetime:
    """An ISO 8601 text as an aware UTC datetime, or :class:`BadPayload` naming ``field``."""
    try:
        return as_utc(_DATETIME.validate_python(value))
    except ValidationError as error:
        raise BadPayload(validation_message(error, field)) from None


def _id_to_str(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and not value.strip():
        # An empty id names nobody: an input left with no key to find its customer by.
        raise ValueError("an id must not be empty")
    return value


IdStr = Annotated[str, BeforeValidator(_id_to_str)]
"""A store id: stores send numbers (Shopify, WooCommerce), we keep text."""


class StoreModel(BaseModel):
    """A store's own payload: the fields we read are typed, the rest ignored."""

    model_config = ConfigDict(extra="ignore")


class ProfileBuilder:
    """Collects what one store payload says about its customer; the first usable value wins.

    Store payloads repeat the buyer in several places (customer, billing and
    shipping addresses, top-level email/phone), often partly empty or
    malformed; the adapters feed them in order of trust and take the first
    that normalises.
    """

    def __init__(self, default_country: str) -> None:
        self.default_country = default_country
        self.phone: str | None = None
        self.email: str | None = None
        self.first_name: str | None = None
        self.last_name: str | None = None
        self.consents: dict[str, bool] = {}
        self.times: dict[str, datetime] = {}

    def add_phone(self, raw: str | None, region: str | None = None) -> None:
        """Take ``raw`` unless a phone was found; ``region`` is its address's country."""
        if self.phone is None:
            self.phone = normalize_phone(raw, region or self.default_country)

    def add_email(self, raw: str | None) -> None:
        if self.email is None:
            self.email = normalize_email(raw)

    def add_names(self, first: str | None, last: str | None) -> None:
        self.first_name = self.first_name or (first or "").strip() or None
        self.last_name = self.last_name or (last or "").strip() or None

    def set_consent(self, channel: str, value: bool | None, at: datetime | None = None) -> None:
        """Record ``channel``'s consent unless already known; None means "no statement"."""
        if value is None or channel in self.consents:
            return
        self.consents[channel] = value
        if at is not None:
            self.times[channel] = as_utc(at)

    def guest_id(self, prefix: str) -> str | None:
        """``<prefix>:<email>`` (else ``<prefix>:<phone>``), or None without either."""
        contact = self.email or self.phone
        return f"{prefix}:{contact}" if contact else None

    def build(self, customer_id: str, locale: str | None = None) -> CustomerInfo:
        """The :class:`CustomerInfo`.

        ``consent_at`` is the SMS consent's time (the messaging channel a
        store can speak for), else the first other channel's; each channel's
        own time is in the extra field ``consent_times``.
        """
        extra: dict[str, Any] = {"consent_times": dict(self.times)} if self.times else {}
        if "sms" in self.consents:
            at = self.times.get("sms")
        else:
            at = next(iter(self.times.values()), None)
        return CustomerInfo(
            id=customer_id, phone=self.phone, email=self.email, first_name=self.first_name,
            last_name=self.last_name, locale=locale or None, consents=dict(self.consents),
            consent_at=at, **extra,
        )
