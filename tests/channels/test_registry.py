"""The channel registry builds only what the settings switch on."""

from __future__ import annotations

from typing import Any

import pytest

from bot.infra.settings import Settings
from channels.email import EmailChannel
from channels.registry import CHANNEL_CLASSES, build_channels
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from channels.whatsapp import WhatsAppChannel

WHATSAPP = {"whatsapp_phone_id": "1", "whatsapp_token": "t", "whatsapp_app_secret": "s",
            "whatsapp_verify_token": "v"}
SMS = {"twilio_account_sid": "AC1", "twilio_auth_token": "t", "twilio_from": "+15005550006"}
TELEGRAM = {"telegram_bot_token": "1:t", "telegram_secret_token": "s"}
EMAIL = {"smtp_url": "smtp://u:p@127.0.0.1:2525", "email_from": "Shop <shop@example.com>"}


def test_names_map_to_classes() -> None:
    expected = {"whatsapp": WhatsAppChannel, "telegram": TelegramChannel, "sms": SmsChannel,
                "email": EmailChannel}
    assert expected == CHANNEL_CLASSES
    assert list(CHANNEL_CLASSES) == ["whatsapp", "telegram", "sms", "email"]  # the contract's
    assert all(cls.traits(Settings()).name == name for name, cls in CHANNEL_CLASSES.items())


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({}, []),
        (WHATSAPP, ["whatsapp"]),
        ({**SMS, **TELEGRAM}, ["telegram", "sms"]),
        ({**WHATSAPP, **SMS, **TELEGRAM}, ["whatsapp", "telegram", "sms"]),
        ({**WHATSAPP, "whatsapp_verify_token": None, **SMS}, ["sms"]),
        ({**EMAIL, **SMS}, ["sms", "email"]),
        ({**EMAIL, "email_from": None}, []),
        ({**WHATSAPP, **SMS, **TELEGRAM, **EMAIL}, ["whatsapp", "telegram", "sms", "email"]),
    ],
)
def test_only_configured_channels_are_built(values: dict[str, Any], names: list[str]) -> None:
    empty = {key: None for key in (*WHATSAPP, *SMS, *TELEGRAM, *EMAIL)}
    channels = build_channels(Settings(**{**empty, **values}))
    assert list(channels) == names
    assert all(channel.name == name for name, channel in channels.items())
