"""The channels the service knows, in the contract's order, and the ones the settings switch on.

This is the one list of channel names: the core is handed an ordered mapping
of channels and never names one. The order (WhatsApp, Telegram, SMS, e-mail) is the
order in which a flow's message picks a channel when the customer did not
just write on one. Adding a channel means adding its class here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from channels.base import Channel, ChannelTraits, ConfigurableChannel
from channels.email import EmailChannel
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel

if TYPE_CHECKING:
    from bot.infra.settings import Settings

CHANNEL_CLASSES: dict[str, type[ConfigurableChannel]] = {
    WhatsAppChannel.name: WhatsAppChannel,
    TelegramChannel.name: TelegramChannel,
    SmsChannel.name: SmsChannel,
    EmailChannel.name: EmailChannel,
}
CHANNEL_ORDER: tuple[str, ...] = tuple(CHANNEL_CLASSES)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every configured channel, keyed by name, in the order of ``CHANNEL_ORDER``.

    A channel whose variables are incomplete is left out (``from_settings``
    returned None); nothing here makes a network call.
    """
    channels: dict[str, Channel] = {}
    for name in CHANNEL_ORDER:
        channel = CHANNEL_CLASSES[name].from_settings(settings)
        if channel is not None:
            channels[name] = channel
    return channels


def build_traits(settings: Settings, names: Iterable[str] | None = None,
                 ) -> dict[str, ChannelTraits]:
    """The traits of the named channels (all by default), in the order of ``CHANNEL_ORDER``.

    No credentials are needed: the flow harness (``bot.testing``) pairs these
    with collecting stand-ins, so a flow's test picks channels, addresses and
    windows exactly as the service does.

    Raises:
        ValueError: a name the registry does not know.
    """
    wanted = set(CHANNEL_ORDER if names is None else names)
    unknown = wanted - set(CHANNEL_ORDER)
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(CHANNEL_ORDER)}")
    return {name: CHANNEL_CLASSES[name].traits(settings)
            for name in CHANNEL_ORDER if name in wanted}
