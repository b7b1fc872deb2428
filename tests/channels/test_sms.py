"""SMS channel (Twilio): signatures, inbound and status callbacks, sends against the fake."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from aiohttp import web

from bot.core.inputs import DeliveryStatus, InboundMessage
from bot.infra.settings import Settings
from channels.base import Choice, OutboundMessage, TemplateRef
from channels.errors import (
    BadPayload,
    BadSignature,
    PermanentSendError,
    RateLimited,
    TransientSendError,
)
from channels.segments import count_segments
from channels.sms import EMPTY_TWIML, SmsChannel, match_numbered_choice, render, signature
from tests.fakes.twilio import FakeTwilio
from tests.support.signing import (
    form_body,
    signed_twilio,
    twilio_inbound_form,
    twilio_signature,
    twilio_status_form,
)

DATA = Path(__file__).parents[1] / "data" / "twilio"
SID = "AC" + "ab" * 16
TOKEN = "twilio-auth-token"
SENDER = "+15005550006"
ANA = "+5491122334455"
URL = "https://chasqui.example.com/webhooks/sms"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_account_sid": SID,
        "twilio_auth_token": TOKEN,
        "twilio_from": SENDER,
        "public_url": "https://chasqui.example.com",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def parser() -> SmsChannel:
    return SmsChannel(account_sid=SID, auth_token=TOKEN, from_number=SENDER, clock=lambda: NOW)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(account_sid=SID, auth_token=TOKEN) as server:
        yield server


@pytest_asyncio.fixture
async def channel(fake: FakeTwilio) -> AsyncIterator[SmsChannel]:
    built = SmsChannel.from_settings(settings(twilio_api_url=fake.url))
    assert built is not None
    yield built
    await built.close()


def outbound(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"id": "m1", "channel": "sms", "to": ANA, **fields})


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["twilio_account_sid", "twilio_auth_token", "twilio_from"])
def test_off_while_a_variable_is_missing(missing: str) -> None:
    assert SmsChannel.from_settings(settings(**{missing: None})) is None


def test_default_status_callback_is_the_public_status_route() -> None:
    built = SmsChannel.from_settings(settings(sms_max_segments=2))
    assert built is not None
    assert built.status_callback == "https://chasqui.example.com/webhooks/sms/status"
    assert built.max_segments == 2


def test_ack_is_empty_twiml(parser: SmsChannel) -> None:
    ack = parser.ack([])
    assert (ack.status, ack.body, ack.content_type) == (200, EMPTY_TWIML, "text/xml")
    assert ack.body == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# -- signatures ------------------------------------------------------------------------

TWILIO_DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
                     "From": "+14158675309", "To": "+18005551212"}


def test_signature_matches_twilios_published_vector() -> None:
    assert signature("12345", TWILIO_DOC_URL, list(TWILIO_DOC_PARAMS.items())) == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"),
                ("Digits", "1234"), ("Digits", "1234")]
    assert signature("12345", TWILIO_DOC_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert twilio_signature("12345", TWILIO_DOC_URL, TWILIO_DOC_PARAMS) == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_published_vector_verifies_as_a_request() -> None:
    channel = SmsChannel(account_sid=SID, auth_token="12345", from_number=SENDER)
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    channel.verify(headers, form_body(TWILIO_DOC_PARAMS), TWILIO_DOC_URL)


def test_signed_webhook_accepted(parser: SmsChannel) -> None:
    body, headers = signed_twilio(TOKEN, URL, twilio_inbound_form("Hola & chau = ok"))
    parser.verify(headers, body, URL)
    parser.verify({"x-twilio-signature": headers["X-Twilio-Signature"]}, body, URL)


def test_default_port_variants_are_accepted(parser: SmsChannel) -> None:
    params = twilio_status_form("SM1")
    body, headers = signed_twilio(TOKEN, "https://chasqui.example.com:443/webhooks/sms", params)
    parser.verify(headers, body, URL)
    body, headers = signed_twilio(TOKEN, URL, params)
    parser.verify(headers, body, "https://chasqui.example.com:443/webhooks/sms")


@pytest.mark.parametrize(
    ("token", "url", "tamper"),
    [
        ("other-token", URL, False),
        (TOKEN, "https://chasqui.example.com/webhooks/sms/status", False),
        (TOKEN, URL, True),
    ],
)
def test_bad_signatures_refused(parser: SmsChannel, token: str, url: str, tamper: bool) -> None:
    params = twilio_inbound_form("SI")
    body, headers = signed_twilio(token, url, params)
    if tamper:
        body = form_body({**params, "Body": "NO"})
    with pytest.raises(BadSignature):
        parser.verify(headers, body, URL)


def test_missing_signature_refused(parser: SmsChannel) -> None:
    with pytest.raises(BadSignature, match="missing"):
        parser.verify({}, form_body(twilio_inbound_form()), URL)


# -- parsing ------------------------------------------------------------------------------

OUT_SID = "SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "inbound_sms.json": [{"kind": "text", "text": "Sí, quiero el descuento", "sender": ANA,
                          "provider_id": "SM3f1c2e9b8a7d6c5b4a39281706f5e4d3"}],
    "inbound_stop.json": [{"kind": "text", "text": "STOP", "sender": ANA}],
    "inbound_mms.json": [{"kind": "media", "text": "",
                          "provider_id": "MM7c6b5a49382716f5e4d3c2b1a0f9e8d7"}],
    "status_queued.json": [],
    "status_sent.json": [{"status": "sent", "provider_id": OUT_SID, "recipient": ANA,
                          "error_code": None}],
    "status_delivered.json": [{"status": "delivered", "provider_id": OUT_SID}],
    "status_undelivered.json": [{"status": "undelivered", "error_code": "30005",
                                 "error_message": "Unknown destination handset"}],
    "status_failed.json": [{"status": "failed", "error_code": "30007"}],
}


def test_every_fixture_has_an_expectation() -> None:
    assert {path.name for path in DATA.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_fixture(parser: SmsChannel, name: str) -> None:
    params = json.loads((DATA / name).read_text())
    parsed = parser.parse({}, urlencode(params).encode())
    assert len(parsed) == len(EXPECTED[name])
    for item, expected in zip(parsed, EXPECTED[name], strict=True):
        assert isinstance(item, InboundMessage | DeliveryStatus)
        assert item.channel == "sms"
        assert item.at == NOW
        assert item.model_dump(include=set(expected)) == expected


@pytest.mark.parametrize("status", ["queued", "sending", "accepted", "scheduled", "canceled"])
def test_interim_statuses_give_nothing(parser: SmsChannel, status: str) -> None:
    assert parser.parse({}, form_body(twilio_status_form("SM1", status))) == []


def test_mms_with_a_caption_is_text(parser: SmsChannel) -> None:
    params = twilio_inbound_form("mirá", media_urls=["https://api.twilio.com/x.jpg"])
    [message] = parser.parse({}, form_body(params))
    assert isinstance(message, InboundMessage)
    assert (message.kind, message.text) == ("text", "mirá")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "no MessageSid"),
        (b"Body=hola&From=%2B1", "no MessageSid"),
        (b"MessageSid=SM1&Body=hola", "without From"),
        (b"MessageSid=SM1&From=%2B1&NumMedia=x", "NumMedia"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_forms_refused(parser: SmsChannel, body: bytes, problem: str) -> None:
    with pytest.raises(BadPayload, match=problem):
        parser.parse({}, body)


# -- rendering ---------------------------------------------------------------------------


def test_choices_are_numbered_lines() -> None:
    message = outbound(text="¿Te ayudamos?", choices=[Choice(id="y", title="Sí"),
                                                      Choice(id="n", title="No")])
    assert render(message) == "¿Te ayudamos?\n\n1) Sí\n2) No"
    assert match_numbered_choice(" 2) ", message.choices) == message.choices[1]
    assert match_numbered_choice("3", message.choices) is None
    assert match_numbered_choice("sí", message.choices) is None


def test_template_is_its_name_and_params() -> None:
    assert render(outbound(template=TemplateRef(name="cart", params=["Ana", "$10"]))) == (
        "cart: Ana, $10")
    assert render(outbound(template=TemplateRef(name="hello"))) == "hello"


# -- sending -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_posts_the_form_with_basic_auth(fake: FakeTwilio, channel: SmsChannel) -> None:
    sid = await channel.send(outbound(text="Hola Ana"))
    [request] = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.authorized
    assert "Authorization" not in request.headers
    assert request.form == {"To": ANA, "From": SENDER, "Body": "Hola Ana",
                            "StatusCallback": "https://chasqui.example.com/webhooks/sms/status"}
    assert sid.startswith("SM") and len(sid) == 34
    assert fake.sent[ANA][0]["sid"] == sid
    assert fake.sent[ANA][0]["status"] == "queued"


@pytest.mark.asyncio
async def test_send_uses_the_default_status_callback(
    fake: FakeTwilio, channel: SmsChannel
) -> None:
    await channel.send(outbound(text="Hola", choices=[Choice(id="y", title="Sí")]))
    form = fake.requests[0].form or {}
    assert form["StatusCallback"] == "https://chasqui.example.com/webhooks/sms/status"
    assert form["Body"] == "Hola\n\n1) Sí"


@pytest.mark.asyncio
async def test_long_text_is_cut_to_the_segment_limit(
    fake: FakeTwilio, channel: SmsChannel
) -> None:
    await channel.send(outbound(text="Tu carrito te espera. " * 60))
    body = (fake.requests[0].form or {})["Body"]
    assert count_segments(body) == 3
    assert body.endswith("...")


@pytest.mark.asyncio
async def test_rate_limited_with_retry_after(fake: FakeTwilio, channel: SmsChannel) -> None:
    fake.fail_next(status=429, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await channel.send(outbound(text="Hola"))
    assert (caught.value.code, caught.value.retry_after) == ("20429", 7.0)
    assert await channel.send(outbound(text="Hola"))


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.asyncio
async def test_server_errors_are_transient(
    fake: FakeTwilio, channel: SmsChannel, status: int
) -> None:
    fake.fail_next(status=status)
    with pytest.raises(TransientSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert not isinstance(caught.value, RateLimited)


@pytest.mark.parametrize("code", [21211, 21610, 21408, 21614])
@pytest.mark.asyncio
async def test_bad_requests_are_permanent(
    fake: FakeTwilio, channel: SmsChannel, code: int
) -> None:
    fake.fail_next(status=400, code=code)
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert caught.value.code == str(code)


@pytest.mark.asyncio
async def test_invalid_number_checked_by_the_fake(fake: FakeTwilio, channel: SmsChannel) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(to="1122334455", text="Hola"))
    assert caught.value.code == "21211"


@pytest.mark.asyncio
async def test_wrong_credentials_are_permanent(fake: FakeTwilio) -> None:
    built = SmsChannel(account_sid=SID, auth_token="wrong", from_number=SENDER, api_url=fake.url)
    try:
        with pytest.raises(PermanentSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "20003"
    assert fake.requests[0].authorized is False


@pytest.mark.asyncio
async def test_unreachable_api_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    built = SmsChannel(account_sid=SID, auth_token=TOKEN, from_number=SENDER,
                       api_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransientSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "network"


@pytest.mark.asyncio
async def test_the_fake_plays_twilio_status_callbacks(fake: FakeTwilio, parser: SmsChannel) -> None:
    received: list[tuple[str, bytes]] = []

    async def status_route(request: web.Request) -> web.Response:
        received.append((request.headers["X-Twilio-Signature"], await request.read()))
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/webhooks/sms/status", status_route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    callback = f"http://{host}:{port}/webhooks/sms/status"
    sender = SmsChannel(account_sid=SID, auth_token=TOKEN, from_number=SENDER, api_url=fake.url,
                        status_callback=callback)
    try:
        sid = await sender.send(outbound(text="Hola"))
        assert await fake.push_status(sid, "undelivered", error_code="30003") == 200
    finally:
        await sender.close()
        await runner.cleanup()
    [(signed, body)] = received
    parser.verify({"X-Twilio-Signature": signed}, body, callback)
    [status] = parser.parse({}, body)
    assert isinstance(status, DeliveryStatus)
    assert (status.provider_id, status.status, status.error_code) == (sid, "undelivered", "30003")

