"""The normalised inputs every edge produces and the runtime consumes.

Channels (``channels/``) and store adapters (``store_events/``) turn provider
payloads into these plain models; the runtime (``bot/``) never sees a
provider's format. Keeping them in one module is what lets a rule and a
channel meet without importing each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

ChannelName = str
"""A channel's name ("whatsapp", "sms"...): the registry (``channels.registry``) owns the list."""

InboundKind = Literal["text", "choice", "media", "reaction", "start"]
DeliveryState = Literal["sent", "delivered", "read", "failed", "undelivered"]
FailureMeaning = Literal["opted_out", "blocked", "marketing_limit", "dead_address", "pair_rate"]
"""What a provider's refusal means for the customer, beyond "this send failed".

The channel maps its own codes onto these (``channels/``); the runtime acts
on the meaning without knowing the provider:

- ``opted_out``: the user stopped marketing at the provider (WhatsApp 131050):
  marketing consent on the channel is revoked, never retried.
- ``blocked``: the address refuses everything until the customer writes again
  (Twilio 21610, a STOP at the carrier): consent revoked and the address
  marked undeliverable.
- ``marketing_limit``: the provider's per-user marketing limit (WhatsApp
  131049): skipped for now, retried once no sooner than a day later.
- ``dead_address``: the number or address does not exist (any more) on the
  channel (Twilio 21211/21614, WhatsApp 131026): marked undeliverable.
- ``pair_rate``: too many messages to this one user (WhatsApp 131056): the
  message waits; other recipients are not held back.
"""


def stated_consent(value: object) -> bool | Literal["pending"]:
    """A store's consent value: ``true``, ``false`` or ``"pending"``, nothing looser.

    ``"pending"`` is an opt-in the customer has not confirmed yet (double
    opt-in); ``"yes"`` or ``1`` are refused rather than guessed, with one
    message that names the values allowed.
    """
    if isinstance(value, bool):
        return value
    if value == "pending":
        return "pending"
    raise PydanticCustomError("consent_value",
                              'Input should be a valid boolean or "pending"')


StatedConsent = Annotated[bool | Literal["pending"], PlainValidator(stated_consent)]
"""A store's consent value on one channel, validated by :func:`stated_consent`."""


class InboundMessage(BaseModel):
    """A customer's message as received on one channel."""

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    provider_id: str = Field(description="the provider's message id; dedupe key")
    sender: str = Field(description="the channel's address of the sender: an E.164 phone, "
                                    "a chat id...")
    user_id: str | None = Field(default=None, description="a provider's user id (WhatsApp's "
                                                          "business-scoped id)")
    kind: InboundKind = "text"
    text: str = ""
    choice_id: str | None = Field(default=None, description="id of the chosen button/list row")
    start_token: str | None = Field(default=None,
                                    description="a deep-link payload (Telegram's /start)")
    profile_name: str | None = None
    at: datetime


class DeliveryStatus(BaseModel):
    """A provider's report about one of our outbound messages."""

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    provider_id: str = Field(description="the provider's id of OUR outbound message")
    status: DeliveryState
    recipient: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    meaning: FailureMeaning | None = Field(
        default=None, description="what a failed status's error means (the channel's mapping)")
    at: datetime


class ConsentChange(BaseModel):
    """A provider's own report that a user changed their marketing preference.

    WhatsApp's ``user_preferences`` webhook is one: a user who taps "stop"
    under a business's messages in WhatsApp. ``provider_id`` is the dedupe
    key the channel builds (the provider gives none); ``detail`` is the
    provider's description, kept as evidence in the consent ledger.
    """

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    provider_id: str
    sender: str = Field(description="the channel's address of the user (an E.164 phone)")
    user_id: str | None = None
    state: Literal["granted", "revoked"]
    detail: str = ""
    via: str = Field(default="user_preferences",
                     description="how the user said it, for the ledger's source "
                                 "(<channel>:<via>): user_preferences, unsubscribe_link")
    at: datetime


class CustomerInfo(BaseModel):
    """What a store tells us about a customer in one event."""

    model_config = ConfigDict(extra="allow")

    id: str
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    birthday: str | None = Field(default=None, description="YYYY-MM-DD or --MM-DD")
    consents: dict[str, StatedConsent] = Field(
        default_factory=dict,
        description='per channel: true, false, or "pending" (an opt-in to be confirmed)')
    consent_at: datetime | None = Field(
        default=None, description="when the consents were given; defaults to occurred_at"
    )


class StoreEvent(BaseModel):
    """A store event in the generic shape of ``POST /events``.

    ``source`` says which adapter produced it ("generic", "shopify",
    "woocommerce"); ``data`` carries the type-specific fields, already
    validated by the adapter.
    """

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    occurred_at: datetime
    customer: CustomerInfo
    data: dict[str, Any] = Field(default_factory=dict)
    source: str = "generic"
