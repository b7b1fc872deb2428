"""The seam every messaging provider plugs into.

A channel is one module with one class implementing :class:`Channel`. The
webhook route calls ``verify`` then ``parse`` (both pure: no I/O), the server
persists what ``parse`` returned and answers with ``ack``; the outbox sender
calls ``send``. Adding a provider means adding a module and naming its class
in ``channels.registry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.core.inputs import ChannelName, DeliveryStatus, InboundMessage

if TYPE_CHECKING:
    from bot.infra.settings import Settings


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
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    channel: ChannelName
    to: str = Field(description="E.164 phone, or Telegram chat id")
    to_user_id: str | None = Field(
        default=None, description="WhatsApp user id when there is no phone")
    text: str | None = None
    choices: list[Choice] = Field(default_factory=list)
    template: TemplateRef | None = None
    status_callback: str | None = Field(default=None, description="Twilio StatusCallback URL")


Parsed = list[InboundMessage | DeliveryStatus]


class WebhookAck(BaseModel):
    """How to answer the provider once the webhook is stored."""

    status: int = 200
    body: str = ""
    content_type: Literal["application/json", "text/xml", "text/plain"] = "application/json"


class Channel(Protocol):
    """One messaging provider.

    Implementations are constructed by ``from_settings``, which returns None
    when the provider is not configured (the channel is then off).
    """

    name: ClassVar[ChannelName]

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """Build the channel, or None when a required variable is missing."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Raise :class:`channels.errors.BadSignature` unless the webhook is authentic.

        Args:
            headers: the request headers (case-insensitive mapping).
            body: the raw request body.
            url: the public URL the provider called (``PUBLIC_URL`` + path + query).
        """
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """Turn a verified webhook into inbound messages and delivery statuses.

        Raises :class:`channels.errors.BadPayload` when the body is malformed.
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
