"""What the core asks of a messaging channel: the one seam between ``bot/`` and ``channels/``.

The core owns this protocol and knows no provider. Everything that differs
from one provider to the next is a question the core asks a channel object
it was handed (``server.py`` and the flow harness wire them in, in the
registry's contract order):

- ``address(customer)``: where the customer is reached on this channel;
- ``sender_keys(message)``: the identity keys of whoever wrote (a deep-link
  payload may name a customer);
- ``pacing_cost(message)`` and ``rate``: what a send costs the sender's pacer;
- ``deep_link(customer_id)``: a link that ties a chat to a customer, if the
  channel has one;
- ``has_service_window``, ``optout_at_once``, ``confirms_optout``: the few
  rules that are a channel's and not a flow's.

:class:`ChannelTraits` is that knowledge alone (what a decision needs, no
connection); :class:`Channel` adds the transport the runtime and the webhook
routes use. The outbound models and the send-error hierarchy live here too,
so the sender handles a provider's failure without importing the provider.
``channels.base`` and ``channels.errors`` re-export all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.core.inputs import ConsentChange, DeliveryStatus, FailureMeaning, InboundMessage


class Choice(BaseModel):
    """One quick-reply button or list row."""

    id: str
    title: str


class TemplateRef(BaseModel):
    """An approved template (WhatsApp) with its body parameters."""

    name: str
    language: str = "es"
    params: list[str] = Field(default_factory=list)

    def as_text(self) -> str:
        """The template on a channel without templates: its name and parameters."""
        return f"{self.name}: {', '.join(self.params)}" if self.params else self.name


class OutboundMessage(BaseModel):
    """A message to send, already rendered, channel and recipient chosen.

    ``id`` is the idempotency key (customer, flow run, step): the outbox sends
    each id at most once. Exactly one of ``text`` or ``template`` is set;
    ``choices`` go with ``text`` (up to 3 are buttons, more become a list).
    Anything a provider needs besides (a status callback URL, say) the
    channel adds itself from its settings.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    channel: str
    to: str = Field(description="the channel's address of the customer (phone, chat id...)")
    to_user_id: str | None = Field(
        default=None, description="a provider's user id, when there is no address")
    text: str | None = None
    choices: list[Choice] = Field(default_factory=list)
    template: TemplateRef | None = None
    # For channels whose messages link back to the service (e-mail's
    # unsubscribe and tracked links); chat channels ignore them.
    marketing: bool = Field(default=False, description="needs an unsubscribe link (e-mail)")
    customer: str | None = Field(default=None, description="the customer's internal id")


Parsed = list[InboundMessage | DeliveryStatus | ConsentChange]


class WebhookAck(BaseModel):
    """How to answer the provider once the webhook is stored."""

    status: int = 200
    body: str = ""
    content_type: Literal["application/json", "text/xml", "text/plain"] = "application/json"


# ------------------------------------------------------------------ send errors


class ChannelError(Exception):
    """Base of every error a channel raises when sending."""


class SendError(ChannelError):
    """A send did not go through.

    Attributes:
        code: the provider's error code, as text.
        detail: the provider's message, safe to record (no tokens).
        meaning: what the code means for the customer's address or consent
            (:data:`bot.core.inputs.FailureMeaning`), when it means more than
            "this send failed".
    """

    def __init__(self, code: str, detail: str = "", *,
                 meaning: FailureMeaning | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.meaning = meaning


class TransientSendError(SendError):
    """Worth retrying later (429, 5xx, network); ``retry_after`` in seconds if the provider said."""

    def __init__(self, code: str, detail: str = "", retry_after: float | None = None, *,
                 meaning: FailureMeaning | None = None) -> None:
        super().__init__(code, detail, meaning=meaning)
        self.retry_after = retry_after


class RateLimited(TransientSendError):
    """The provider asked us to slow down (HTTP 429 or the provider's own code)."""


class PermanentSendError(SendError):
    """Retrying will not help (bad number, blocked, invalid template): record and stop."""


class OutsideWindow(PermanentSendError):
    """The provider refused a free-form message outside its service window."""


# -------------------------------------------------------------------- protocols


class ChannelTraits(Protocol):
    """What decisions and the runtime ask a channel, without a connection to it.

    Attributes:
        name: the channel's name, as in messages, consents and conversations.
        title: how people write the name ("WhatsApp"), for recorded reasons.
        has_service_window: free-form messages go out only within 24 h of the
            customer's last message; outside it only an approved template.
        optout_at_once: a STOP takes effect at once, without a flow asking
            for confirmation (carriers require it of SMS).
        confirms_optout: a STOP taken at once is answered with one confirmation.
        rate: the sender's pace in cost units per second; 0 is unpaced.
        recipient_gap: seconds between two messages to the same recipient
            (WhatsApp's pair rate is about one every 6 s); 0 is none.
    """

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def has_service_window(self) -> bool: ...

    @property
    def optout_at_once(self) -> bool: ...

    @property
    def confirms_optout(self) -> bool: ...

    @property
    def rate(self) -> float: ...

    @property
    def recipient_gap(self) -> float: ...

    def address(self, customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """(to, to_user_id) of the customer document on this channel; (None, None) if none."""
        ...

    def sender_keys(self, message: InboundMessage | ConsentChange) -> list[str]:
        """Identity keys of the message's (or the preference change's) sender, best first."""
        ...

    def pacing_cost(self, message: OutboundMessage) -> float:
        """What sending ``message`` takes from the sender's pacer (1 per message by default)."""
        ...

    def deep_link(self, customer_id: str) -> str | None:
        """A link that ties a chat on this channel to the customer, or None."""
        ...


class Channel(ChannelTraits, Protocol):
    """One messaging provider: its traits plus webhooks in and sends out."""

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Raise :class:`bot.core.errors.BadSignature` unless the webhook is authentic.

        Args:
            headers: the request headers (case-insensitive mapping).
            body: the raw request body.
            url: the public URL the provider called (``PUBLIC_URL`` + path + query).
        """
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """Turn a verified webhook into inbound messages and delivery statuses.

        Raises :class:`bot.core.errors.BadPayload` when the body is malformed.
        Kinds the service does not act on (e.g. reactions) may be returned with
        their kind so the runtime can ignore them politely.
        """
        ...

    def ack(self, parsed: Parsed) -> WebhookAck:
        """The answer to give the provider after the webhook (``parsed``) is stored."""
        ...

    async def send(self, message: OutboundMessage) -> str:
        """Send one message and return the provider's message id.

        Raises:
            TransientSendError / RateLimited: retry later (``retry_after`` honoured).
            PermanentSendError / OutsideWindow: record on the message, never retry.
        """
        ...

    async def close(self) -> None:
        """Release HTTP clients."""
        ...
