"""The channels the service knows, by name, and the ones switched on by the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.inputs import CHANNEL_ORDER, ChannelName
from channels.base import Channel
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel

if TYPE_CHECKING:
    from bot.infra.settings import Settings

CHANNEL_CLASSES: dict[ChannelName, type[Channel]] = {
    WhatsAppChannel.name: WhatsAppChannel,
    TelegramChannel.name: TelegramChannel,
    SmsChannel.name: SmsChannel,
}


def build_channels(settings: Settings) -> dict[ChannelName, Channel]:
    """Every configured channel, keyed by name, in the order of ``CHANNEL_ORDER``.

    A channel whose variables are incomplete is left out (``from_settings``
    returned None); nothing here makes a network call.
    """
    channels: dict[ChannelName, Channel] = {}
    for name in CHANNEL_ORDER:
        channel = CHANNEL_CLASSES[name].from_settings(settings)
        if channel is not None:
            channels[name] = channel
    return channels
