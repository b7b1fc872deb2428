"""Provider refusals that mean more than "this send failed" carry a :data:`FailureMeaning`.

Synchronously: the real channel classes send to the loopback fakes, which
refuse a recipient the way the provider does (Meta's error JSON, Twilio's),
and the raised error names the meaning. Asynchronously: a failed status
webhook with the same codes parses to a status with the same meaning. What
the runtime does with a meaning is the sender's and the router's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.inputs import DeliveryStatus, FailureMeaning
from channels.base import OutboundMessage, TemplateRef
from channels.errors import PermanentSendError, RateLimited, SendError
from channels.sms import SmsChannel
from channels.whatsapp import WhatsAppChannel
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp import FakeWhatsApp
from tests.support.signing import (
    PHONE,
    form_body,
    json_body,
    twilio_status_form,
    whatsapp_status_webhook,
)

TOKEN = "wa-token"
PHONE_ID = "123456789012345"
SID = "AC" + "cd" * 16
TWILIO_TOKEN = "twilio-auth-token"
OTHER = "+5491199998888"


@pytest.fixture
async def whatsapp() -> AsyncIterator[tuple[FakeWhatsApp, WhatsAppChannel]]:
    async with FakeWhatsApp(token=TOKEN, phone_id=PHONE_ID) as fake:
        channel = WhatsAppChannel(phone_id=PHONE_ID, token=TOKEN, app_secret="s",
                                  verify_token="v", api_url=fake.url)
        try:
            yield fake, channel
        finally:
            await channel.close()


@pytest.fixture
async def sms() -> AsyncIterator[tuple[FakeTwilio, SmsChannel]]:
    async with FakeTwilio(account_sid=SID, auth_token=TWILIO_TOKEN) as fake:
        channel = SmsChannel(account_sid=SID, auth_token=TWILIO_TOKEN, from_number="+15005550006",
                             api_url=fake.url)
        try:
            yield fake, channel
        finally:
            await channel.close()


def promo(to: str = PHONE, channel: str = "whatsapp") -> OutboundMessage:
    """A marketing template (WhatsApp) or text (SMS) to ``to``."""
    if channel == "sms":
        return OutboundMessage(id=f"m-{to}", channel="sms", to=to, text="20% off hoy")
    return OutboundMessage(id=f"m-{to}", channel="whatsapp", to=to,
                           template=TemplateRef(name="promo_semana", params=["Ana"]))


# -- WhatsApp, on send ------------------------------------------------------------------


@pytest.mark.parametrize(("code", "meaning"), [
    (131050, "opted_out"),
    (131049, "marketing_limit"),
    (131026, "dead_address"),
])
async def test_whatsapp_refusals_are_permanent_with_their_meaning(
    whatsapp: tuple[FakeWhatsApp, WhatsAppChannel], code: int, meaning: FailureMeaning
) -> None:
    fake, channel = whatsapp
    fake.refuse(PHONE, code)
    for _ in range(2):  # the fake refuses this recipient every time, as Meta does
        with pytest.raises(PermanentSendError) as caught:
            await channel.send(promo())
        assert (caught.value.code, caught.value.meaning) == (str(code), meaning)
    assert fake.sent == {}
    assert await channel.send(promo(OTHER))  # other recipients are not refused


async def test_whatsapp_marketing_refusal_lets_service_messages_through(
    whatsapp: tuple[FakeWhatsApp, WhatsAppChannel],
) -> None:
    fake, channel = whatsapp
    fake.refuse(PHONE, 131050, message_type="template")
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(promo())
    assert caught.value.meaning == "opted_out"
    assert "stop receiving marketing" in caught.value.detail
    reply = OutboundMessage(id="r1", channel="whatsapp", to=PHONE, text="Tu pedido salió")
    assert (await channel.send(reply)).startswith("wamid.")
    fake.allow(PHONE)
    assert await channel.send(promo())


async def test_whatsapp_pair_rate_is_rate_limited_for_that_user(
    whatsapp: tuple[FakeWhatsApp, WhatsAppChannel],
) -> None:
    fake, channel = whatsapp
    fake.refuse(PHONE, 131056)
    with pytest.raises(RateLimited) as caught:
        await channel.send(promo())
    assert (caught.value.meaning, caught.value.retry_after) == ("pair_rate", 6.0)


async def test_whatsapp_only_those_codes_have_a_meaning(
    whatsapp: tuple[FakeWhatsApp, WhatsAppChannel],
) -> None:
    fake, channel = whatsapp
    refused = {PHONE: 131050, OTHER: 132001, "+5491177776666": 131047}
    for to, code in refused.items():
        fake.refuse(to, code)
    meanings: dict[int, FailureMeaning | None] = {}
    for to, code in refused.items():
        with pytest.raises(SendError) as caught:
            await channel.send(promo(to))
        meanings[code] = caught.value.meaning
    # a missing template or a closed window is the business's problem, not the customer's
    assert meanings == {131050: "opted_out", 132001: None, 131047: None}


# -- Twilio, on send --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "meaning"), [
    (21211, "dead_address"),
    (21614, "dead_address"),
    (21610, "blocked"),
])
async def test_twilio_refusals_are_permanent_with_their_meaning(
    sms: tuple[FakeTwilio, SmsChannel], code: int, meaning: FailureMeaning
) -> None:
    fake, channel = sms
    fake.refuse(PHONE, code)
    for _ in range(2):
        with pytest.raises(PermanentSendError) as caught:
            await channel.send(promo(channel="sms"))
        assert (caught.value.code, caught.value.meaning) == (str(code), meaning)
    assert dict(fake.sent) == {}
    assert await channel.send(promo(OTHER, channel="sms"))
    fake.allow(PHONE)
    assert await channel.send(promo(channel="sms"))


async def test_twilio_only_those_codes_have_a_meaning(
        sms: tuple[FakeTwilio, SmsChannel]) -> None:
    fake, channel = sms
    refused = {PHONE: 21610, OTHER: 21408}  # 21408: region not enabled, the account's problem
    for to, code in refused.items():
        fake.refuse(to, code)
    meanings: dict[int, FailureMeaning | None] = {}
    for to, code in refused.items():
        with pytest.raises(PermanentSendError) as caught:
            await channel.send(promo(to, channel="sms"))
        meanings[code] = caught.value.meaning
    assert meanings == {21610: "blocked", 21408: None}


# -- asynchronous failures ----------------------------------------------------------------


def _whatsapp_status(code: int | None, state: str = "failed") -> DeliveryStatus:
    channel = WhatsAppChannel(phone_id=PHONE_ID, token=TOKEN, app_secret="s", verify_token="v")
    webhook = whatsapp_status_webhook("wamid.OUT", state, error_code=code)
    [status] = channel.parse({}, json_body(webhook))
    assert isinstance(status, DeliveryStatus)
    return status


@pytest.mark.parametrize(("code", "meaning"), [
    (131050, "opted_out"),
    (131049, "marketing_limit"),
    (131026, "dead_address"),
])
def test_whatsapp_failed_status_carries_the_meaning(code: int, meaning: FailureMeaning) -> None:
    status = _whatsapp_status(code)
    assert (status.status, status.error_code, status.meaning) == ("failed", str(code), meaning)


def test_whatsapp_statuses_have_a_meaning_only_for_those_codes() -> None:
    meanings = {code: _whatsapp_status(code).meaning for code in (131050, 131047, 131000)}
    assert meanings == {131050: "opted_out", 131047: None, 131000: None}
    assert _whatsapp_status(None, "delivered").meaning is None


def _twilio_status(state: str, code: str | None) -> DeliveryStatus:
    channel = SmsChannel(account_sid=SID, auth_token=TWILIO_TOKEN, from_number="+15005550006",
                         clock=lambda: datetime(2026, 11, 24, tzinfo=UTC))
    form: dict[str, Any] = twilio_status_form("SM" + "1" * 32, state, error_code=code)
    [status] = channel.parse({}, form_body(form))
    assert isinstance(status, DeliveryStatus)
    assert (status.status, status.error_code) == (state, code)
    return status


@pytest.mark.parametrize(("state", "code", "meaning"), [
    ("undelivered", "30005", "dead_address"),  # unknown destination handset
    ("undelivered", "30006", "dead_address"),  # landline or unreachable carrier
    ("failed", "21211", "dead_address"),
    ("failed", "21614", "dead_address"),
    ("failed", "21610", "blocked"),
])
def test_twilio_status_callback_carries_the_meaning(
    state: str, code: str, meaning: FailureMeaning
) -> None:
    assert _twilio_status(state, code).meaning == meaning


def test_twilio_statuses_have_a_meaning_only_for_those_codes() -> None:
    meanings = {code: _twilio_status("undelivered", code).meaning
                for code in ("30005", "30003", "30007")}
    # 30003: the handset is off now and may come back; 30007: filtered by the carrier
    assert meanings == {"30005": "dead_address", "30003": None, "30007": None}
    assert _twilio_status("delivered", None).meaning is None
