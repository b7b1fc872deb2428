"""WhatsApp channel: handshake, signatures, real-format payloads, sends against the fake."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.core.inputs import DeliveryStatus, InboundMessage
from bot.infra.settings import Settings
from channels.base import Choice, OutboundMessage, TemplateRef
from channels.errors import (
    BadPayload,
    BadSignature,
    OutsideWindow,
    PermanentSendError,
    RateLimited,
    TransientSendError,
)
from channels.whatsapp import WhatsAppChannel, graph_base_url
from tests.fakes.whatsapp import FakeWhatsApp
from tests.support.signing import (
    USER_ID,
    json_body,
    signed_whatsapp,
    whatsapp_button_webhook,
    whatsapp_list_webhook,
    whatsapp_signature,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
)

DATA = Path(__file__).parents[1] / "data" / "whatsapp"
PHONE_ID = "123456789012345"
TOKEN = "EAAG-test-token"
APP_SECRET = "app-secret"
VERIFY_TOKEN = "verify-me"
ANA = "+5491122334455"
ANA_ID = "AR.1410018717833190"
OUT_WAMID = "wamid.HBgNNTQ5MTEyMjMzNDQ1NRUCABEYEjQ4RTg2QTg1RTY5QkY0MjVCQwA="


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "whatsapp_phone_id": PHONE_ID,
        "whatsapp_token": TOKEN,
        "whatsapp_app_secret": APP_SECRET,
        "whatsapp_verify_token": VERIFY_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def parser() -> WhatsAppChannel:
    """A channel for the pure methods (no request is ever made)."""
    channel = WhatsAppChannel.from_settings(settings())
    assert channel is not None
    return channel


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token=TOKEN, phone_id=PHONE_ID) as server:
        yield server


@pytest_asyncio.fixture
async def channel(fake: FakeWhatsApp) -> AsyncIterator[WhatsAppChannel]:
    built = WhatsAppChannel.from_settings(settings(whatsapp_api_url=fake.url))
    assert built is not None
    yield built
    await built.close()


def outbound(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"id": "m1", "channel": "whatsapp", "to": ANA, **fields})


# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    ["whatsapp_phone_id", "whatsapp_token", "whatsapp_app_secret", "whatsapp_verify_token"],
)
def test_off_while_a_variable_is_missing(missing: str) -> None:
    assert WhatsAppChannel.from_settings(settings(**{missing: None})) is None


def test_ack_is_a_fast_json_200(parser: WhatsAppChannel) -> None:
    ack = parser.ack([])
    assert (ack.status, json.loads(ack.body), ack.content_type) == (
        200, {"ok": True}, "application/json")


# -- handshake and signatures ------------------------------------------------------


def test_handshake_echoes_the_challenge(parser: WhatsAppChannel) -> None:
    assert parser.verify_handshake("subscribe", VERIFY_TOKEN, "1158201444") == "1158201444"


@pytest.mark.parametrize(
    ("mode", "token"),
    [("subscribe", "wrong"), ("unsubscribe", VERIFY_TOKEN), (None, VERIFY_TOKEN),
     ("subscribe", None), ("subscribe", "")],
)
def test_handshake_refuses_wrong_mode_or_token(
    parser: WhatsAppChannel, mode: str | None, token: str | None
) -> None:
    with pytest.raises(BadSignature):
        parser.verify_handshake(mode, token, "1158201444")


def test_signature_accepted(parser: WhatsAppChannel) -> None:
    body, headers = signed_whatsapp(APP_SECRET, whatsapp_text_webhook())
    parser.verify(headers, body, "http://127.0.0.1:8080/webhooks/whatsapp")
    lowercase = {"x-hub-signature-256": headers["X-Hub-Signature-256"]}
    parser.verify(lowercase, body, "")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": whatsapp_signature("other-secret", b"{}")},
        {"X-Hub-Signature-256": whatsapp_signature(APP_SECRET, b"{}").replace("sha256", "sha1")},
        {"X-Hub-Signature-256": "sha256=not-hex"},
    ],
)
def test_signature_refused(parser: WhatsAppChannel, headers: dict[str, str]) -> None:
    with pytest.raises(BadSignature):
        parser.verify(headers, b"{}", "")


def test_signature_covers_the_raw_body(parser: WhatsAppChannel) -> None:
    body, headers = signed_whatsapp(APP_SECRET, whatsapp_text_webhook("Hola"))
    with pytest.raises(BadSignature):
        parser.verify(headers, body.replace(b"Hola", b"Chau"), "")


# -- parsing -----------------------------------------------------------------------

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "text.json": [{"kind": "text", "text": "¿Tienen talle M?", "sender": ANA, "user_id": ANA_ID,
                   "profile_name": "Ana Pérez"}],
    "text_username_only.json": [{"kind": "text", "sender": "AR.7731209955120044",
                                 "user_id": "AR.7731209955120044", "profile_name": "Luz"}],
    "button_reply.json": [{"kind": "choice", "choice_id": "cart_yes", "text": "Sí, ayudame"}],
    "list_reply.json": [{"kind": "choice", "choice_id": "size_m", "text": "Talle M"}],
    "quick_reply_button.json": [{"kind": "choice", "choice_id": "STOP_PROMOS",
                                 "text": "No quiero promociones"}],
    "image.json": [{"kind": "media", "text": "Este modelo"}],
    "audio.json": [{"kind": "media", "text": ""}],
    "location.json": [{"kind": "media", "text": ""}],
    "reaction.json": [{"kind": "reaction", "text": "\u2764\ufe0f"}],
    "unsupported.json": [],
    "status_sent.json": [{"status": "sent", "provider_id": OUT_WAMID, "recipient": ANA}],
    "status_delivered.json": [{"status": "delivered", "provider_id": OUT_WAMID}],
    "status_read.json": [{"status": "read", "provider_id": OUT_WAMID}],
    "status_failed.json": [{"status": "failed", "error_code": "131047",
                            "error_message": "Re-engagement message", "recipient": ANA}],
}


def test_every_fixture_has_an_expectation() -> None:
    assert {path.name for path in DATA.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_fixture(parser: WhatsAppChannel, name: str) -> None:
    body = (DATA / name).read_bytes()
    parsed = parser.parse({}, body)
    assert len(parsed) == len(EXPECTED[name])
    raw = json.loads(body)["entry"][0]["changes"][0]["value"]
    for item, expected in zip(parsed, EXPECTED[name], strict=True):
        assert item.channel == "whatsapp"
        assert item.model_dump(include=set(expected)) == expected
        if isinstance(item, InboundMessage):
            assert item.provider_id == raw["messages"][0]["id"]
            assert int(item.at.timestamp()) == int(raw["messages"][0]["timestamp"])
            assert item.sender.startswith("+") or item.sender == item.user_id
        else:
            assert isinstance(item, DeliveryStatus)
            assert int(item.at.timestamp()) == int(raw["statuses"][0]["timestamp"])


def test_parse_builders_round_trip(parser: WhatsAppChannel) -> None:
    [text] = parser.parse({}, json_body(whatsapp_text_webhook("STOP")))
    [button] = parser.parse({}, json_body(whatsapp_button_webhook("yes", "Sí")))
    [row] = parser.parse({}, json_body(whatsapp_list_webhook("r3", "Rojo")))
    [status] = parser.parse({}, json_body(whatsapp_status_webhook("wamid.X", "read")))
    [failed] = parser.parse({}, json_body(whatsapp_status_webhook("wamid.X", "failed",
                                                                  error_code=131026)))
    assert isinstance(text, InboundMessage) and isinstance(button, InboundMessage)
    assert isinstance(row, InboundMessage)
    assert isinstance(status, DeliveryStatus) and isinstance(failed, DeliveryStatus)
    assert (text.kind, text.text, text.sender, text.user_id) == ("text", "STOP", ANA, USER_ID)
    assert (button.kind, button.choice_id, button.text) == ("choice", "yes", "Sí")
    assert (row.kind, row.choice_id) == ("choice", "r3")
    assert (status.status, status.provider_id) == ("read", "wamid.X")
    assert (failed.status, failed.error_code) == ("failed", "131026")


def test_username_user_without_phone_is_known_by_user_id(parser: WhatsAppChannel) -> None:
    [message] = parser.parse({}, json_body(whatsapp_text_webhook("hola", phone=None)))
    assert isinstance(message, InboundMessage)
    assert message.sender == USER_ID
    assert message.user_id == USER_ID


def test_several_contacts_are_matched_to_their_messages(parser: WhatsAppChannel) -> None:
    first = whatsapp_text_webhook("uno")
    second = whatsapp_text_webhook("dos", phone="+5491199998888", user_id="AR.42", name="Bea")
    value = first["entry"][0]["changes"][0]["value"]
    other = second["entry"][0]["changes"][0]["value"]
    value["contacts"] += other["contacts"]
    value["messages"] += other["messages"]
    value["statuses"] = whatsapp_status_webhook("wamid.Y")["entry"][0]["changes"][0]["value"][
        "statuses"]
    uno, dos, status = parser.parse({}, json_body(first))
    assert isinstance(uno, InboundMessage) and isinstance(dos, InboundMessage)
    assert (uno.text, uno.sender, uno.profile_name) == ("uno", ANA, "Ana")
    assert (dos.text, dos.sender, dos.user_id, dos.profile_name) == (
        "dos", "+5491199998888", "AR.42", "Bea")
    assert isinstance(status, DeliveryStatus)


def test_other_webhook_fields_are_ignored(parser: WhatsAppChannel) -> None:
    payload = whatsapp_text_webhook()
    payload["entry"][0]["changes"][0]["field"] = "account_update"
    assert parser.parse({}, json_body(payload)) == []


def _broken(change: Any) -> bytes:
    payload = whatsapp_list_webhook("r1", "Uno")
    change(payload["entry"][0]["changes"][0]["value"]["messages"][0])
    return json_body(payload)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "webhook must be an object"),
        (b'{"object": "whatsapp_business_account"}', "'entry' must be a list"),
        (_broken(lambda m: m.pop("id")), "'id' must be a str"),
        (_broken(lambda m: m.update(timestamp="yesterday")), "timestamp"),
        (_broken(lambda m: m["interactive"]["list_reply"].pop("id")), "'id' must be a str"),
        (_broken(lambda m: m.pop("context")), "refused by pywa"),
        (_broken(lambda m: (m.pop("from"), m.pop("from_user_id"))), None),
    ],
)
def test_malformed_payloads_are_refused(
    parser: WhatsAppChannel, body: bytes, problem: str | None
) -> None:
    if problem is None:  # the contact still names the user: accepted
        [message] = parser.parse({}, body)
        assert isinstance(message, InboundMessage)
        assert message.user_id == USER_ID
        return
    with pytest.raises(BadPayload, match=problem):
        parser.parse({}, body)


def test_message_without_any_sender_is_refused(parser: WhatsAppChannel) -> None:
    payload = whatsapp_text_webhook()
    value = payload["entry"][0]["changes"][0]["value"]
    value.pop("contacts")
    value["messages"][0].pop("from")
    value["messages"][0].pop("from_user_id")
    with pytest.raises(BadPayload, match="no 'from'"):
        parser.parse({}, json_body(payload))


# -- sending -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_construction_makes_no_call(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    assert fake.requests == []  # pywa was given no callback_url, verify_token or app_secret


@pytest.mark.asyncio
async def test_text_goes_through_the_rewritten_transport(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    wamid = await channel.send(outbound(text="Hola Ana"))
    [request] = fake.requests
    assert wamid.startswith("wamid.")
    assert request.path == f"/v21.0/{PHONE_ID}/messages"  # pywa's path, the fake's host
    assert request.headers["Host"] == fake.url.removeprefix("http://")
    assert request.authorized
    assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "type": "text", "to": "5491122334455",
                            "text": {"body": "Hola Ana", "preview_url": False}}
    assert fake.sent["5491122334455"] == [request.json]


@pytest.mark.asyncio
async def test_up_to_three_choices_are_reply_buttons(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    choices = [Choice(id="yes", title="Sí"), Choice(id="later", title="Más tarde, por favor ya")]
    await channel.send(outbound(text="¿Te ayudamos?", choices=choices))
    interactive = fake.requests[0].json["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "¿Te ayudamos?"}
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "yes", "title": "Sí"}},
        {"type": "reply", "reply": {"id": "later", "title": "Más tarde, por favo…"}},
    ]


@pytest.mark.asyncio
async def test_more_than_three_choices_are_a_list(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    choices = [Choice(id=f"size_{s}", title=f"Talle {s}") for s in "SMLX"]
    await channel.send(outbound(text="¿Qué talle?", choices=choices))
    interactive = fake.requests[0].json["interactive"]
    assert interactive["type"] == "list"
    [section] = interactive["action"]["sections"]
    assert interactive["action"]["button"] == "Ver opciones"
    assert section["rows"] == [{"id": f"size_{s}", "title": f"Talle {s}"} for s in "SMLX"]


@pytest.mark.asyncio
async def test_more_than_ten_choices_are_refused_before_sending(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    choices = [Choice(id=str(n), title=str(n)) for n in range(11)]
    with pytest.raises(PermanentSendError, match="too_many_choices"):
        await channel.send(outbound(text="?", choices=choices))
    assert fake.requests == []


@pytest.mark.asyncio
async def test_template_with_body_params(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    template = TemplateRef(name="carrito_abandonado", language="es", params=["Ana", "$ 25.000"])
    await channel.send(outbound(template=template))
    body = fake.requests[0].json
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "carrito_abandonado",
        "language": {"code": "es"},
        "components": [{"type": "BODY", "parameters": [
            {"type": "text", "text": "Ana"}, {"type": "text", "text": "$ 25.000"}]}],
    }


@pytest.mark.asyncio
async def test_user_id_only_recipient(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    await channel.send(outbound(to="", to_user_id="AR.7731209955120044", text="Hola"))
    body = fake.requests[0].json
    assert body["recipient"] == "AR.7731209955120044"
    assert "to" not in body


@pytest.mark.asyncio
async def test_unknown_template_language_is_permanent(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    with pytest.raises(PermanentSendError, match="template_language"):
        await channel.send(outbound(template=TemplateRef(name="x", language="xx_YY")))
    assert fake.requests == []


# -- errors --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_throughput_limit_is_rate_limited_with_retry_after(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.fail_next(status=429, code=130429, retry_after=1)
    with pytest.raises(RateLimited) as caught:
        await channel.send(outbound(text="Hola"))
    assert (caught.value.code, caught.value.retry_after) == ("130429", 1.0)
    assert (await channel.send(outbound(text="Hola"))).startswith("wamid.")  # failure used up


@pytest.mark.asyncio
async def test_pair_rate_limit_waits_six_seconds_by_default(
    fake: FakeWhatsApp, channel: WhatsAppChannel
) -> None:
    fake.fail_next(code=131056)
    with pytest.raises(RateLimited) as caught:
        await channel.send(outbound(text="Hola"))
    assert caught.value.retry_after == 6.0


@pytest.mark.asyncio
async def test_server_error_is_transient(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    fake.fail_next(status=500)
    with pytest.raises(TransientSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.code == "131000"


@pytest.mark.asyncio
async def test_unlisted_5xx_code_is_transient(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    fake.fail_next(status=502, code=999999)
    with pytest.raises(TransientSendError):
        await channel.send(outbound(text="Hola"))


@pytest.mark.asyncio
async def test_outside_the_window(fake: FakeWhatsApp, channel: WhatsAppChannel) -> None:
    fake.fail_next(status=400, code=131047)
    with pytest.raises(OutsideWindow) as caught:
        await channel.send(outbound(text="Hola"))
    assert caught.value.code == "131047"
    assert "24 hours" in caught.value.detail


@pytest.mark.parametrize("code", [131026, 131051, 132000, 132001, 100, 131050])
@pytest.mark.asyncio
async def test_permanent_codes(fake: FakeWhatsApp, channel: WhatsAppChannel, code: int) -> None:
    fake.fail_next(status=400, code=code)
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert not isinstance(caught.value, OutsideWindow)
    assert caught.value.code == str(code)


@pytest.mark.asyncio
async def test_wrong_token_is_permanent(fake: FakeWhatsApp) -> None:
    built = WhatsAppChannel.from_settings(
        settings(whatsapp_api_url=fake.url, whatsapp_token="expired"))
    assert built is not None
    try:
        with pytest.raises(PermanentSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "190"
    assert fake.requests[0].authorized is False


@pytest.mark.asyncio
async def test_unreachable_api_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    built = WhatsAppChannel.from_settings(settings(whatsapp_api_url=f"http://127.0.0.1:{port}"))
    assert built is not None
    try:
        with pytest.raises(TransientSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "network"


# -- the transport alone ------------------------------------------------------------------


def test_the_api_address_keeps_a_path_prefix_and_adds_the_version() -> None:
    assert graph_base_url("http://127.0.0.1:9/graph/", "21.0") == "http://127.0.0.1:9/graph/v21.0"
    assert graph_base_url("https://graph.facebook.com", "23.0") == (
        "https://graph.facebook.com/v23.0")


def test_the_api_address_must_be_http() -> None:
    with pytest.raises(ValueError, match="WHATSAPP_API_URL"):
        graph_base_url("ftp://example.com", "21.0")


@pytest.mark.parametrize("kind", ["messages", "statuses"])
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_message_id_is_refused(parser: WhatsAppChannel, kind: str, empty: str) -> None:
    """Found by the full fuzz run: an empty id became the inbox key ``whatsapp:``, and
    every later message with an empty id was answered 200 as its duplicate and dropped."""
    payload = whatsapp_text_webhook() if kind == "messages" else whatsapp_status_webhook(
        "wamid.X", "delivered")
    payload["entry"][0]["changes"][0]["value"][kind][0]["id"] = empty
    with pytest.raises(BadPayload, match="'id' must not be empty"):
        parser.parse({}, json_body(payload))
