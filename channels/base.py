"""The seam every messaging provider plugs into.

The protocol is the core's (:mod:`bot.core.channel`); this module re-exports
it for the providers and adds what only the edge needs: ``from_settings``,
which the registry calls, and the identity keys of a phone-number sender.
A channel is one module with one class implementing :class:`Channel`. The
webhook route calls ``verify`` then ``parse`` (both pure: no I/O), the server
persists what ``parse`` returned and answers with ``ack``; the outbox sender
calls ``send``. Adding a provider means adding a module and naming its class
in ``channels.registry``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bot.core.channel import (
    Channel,
    ChannelTraits,
    Choice,
    OutboundMessage,
    Parsed,
    TemplateRef,
    WebhookAck,
)
from bot.core.customers import identity_keys
from bot.core.inputs import ConsentChange, InboundMessage

if TYPE_CHECKING:
    from bot.infra.settings import Settings

__all__ = ["Channel", "ChannelTraits", "Choice", "ConfigurableChannel", "OutboundMessage",
           "Parsed", "TemplateRef", "WebhookAck", "phone_sender_keys"]


class ConfigurableChannel(Channel, Protocol):
    """A channel the registry builds from the settings.

    ``from_settings`` returns None when the provider is not configured (the
    channel is then off); ``traits`` gives the channel's knowledge alone, with
    no connection, for the flow harness's collecting stand-ins.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """Build the channel, or None when a required variable is missing."""
        ...

    @classmethod
    def traits(cls, settings: Settings) -> ChannelTraits:
        """The channel's traits as the settings give them; needs no credentials."""
        ...


def phone_sender_keys(message: InboundMessage | ConsentChange) -> list[str]:
    """Keys of a sender known by phone (E.164) and, on some providers, a user id."""
    phone = message.sender if message.sender.startswith("+") else None
    return identity_keys(phone=phone, wa_user_id=message.user_id) or [
        f"phone:{message.sender}"]
