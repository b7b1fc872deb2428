"""Telegram channel: secret token, update parsing, deep links, sends against the fake Bot API."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.core.inputs import InboundMessage
from bot.infra.settings import Settings
from channels.base import Choice, OutboundMessage, TemplateRef
from channels.errors import (
    BadPayload,
    BadSignature,
    PermanentSendError,
    RateLimited,
    TransientSendError,
)
from channels.telegram import TelegramChannel, deep_link
from tests.fakes.telegram import FakeTelegram
from tests.support.signing import (
    CHAT_ID,
    json_body,
    telegram_callback_update,
    telegram_headers,
    telegram_message_update,
)

DATA = Path(__file__).parents[1] / "data" / "telegram"
TOKEN = "123456:ABC-test"
SECRET = "tg-secret"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"telegram_bot_token": TOKEN, "telegram_secret_token": SECRET}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def parser() -> TelegramChannel:
    return TelegramChannel(token=TOKEN, secret_token=SECRET, clock=lambda: NOW)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest_asyncio.fixture
async def channel(fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    built = TelegramChannel.from_settings(settings(telegram_api_url=fake.url))
    assert built is not None
    yield built
    await built.close()


def outbound(**fields: Any) -> OutboundMessage:
    return OutboundMessage(**{"id": "m1", "channel": "telegram", "to": str(CHAT_ID), **fields})


# -- configuration, secret token, deep links ---------------------------------------------


@pytest.mark.parametrize("missing", ["telegram_bot_token", "telegram_secret_token"])
def test_off_while_a_variable_is_missing(missing: str) -> None:
    assert TelegramChannel.from_settings(settings(**{missing: None})) is None


def test_secret_token_accepted(parser: TelegramChannel) -> None:
    parser.verify(telegram_headers(SECRET), b"{}", "")
    parser.verify({"x-telegram-bot-api-secret-token": SECRET}, b"{}", "")


@pytest.mark.parametrize("headers", [{}, telegram_headers("wrong"), telegram_headers("")])
def test_secret_token_refused(parser: TelegramChannel, headers: dict[str, str]) -> None:
    with pytest.raises(BadSignature):
        parser.verify(headers, b"{}", "")


def test_ack(parser: TelegramChannel) -> None:
    ack = parser.ack([])
    assert (ack.status, json.loads(ack.body)) == (200, {"ok": True})


def test_deep_link() -> None:
    assert deep_link("chasqui_bot", "c_8f3a-2b1e") == "https://t.me/chasqui_bot?start=c_8f3a-2b1e"
    assert deep_link("@chasqui_bot", "x") == "https://t.me/chasqui_bot?start=x"


@pytest.mark.parametrize("token", ["", "a b", "ñ", "x" * 65, "a+b"])
def test_deep_link_refuses_tokens_telegram_would_drop(token: str) -> None:
    with pytest.raises(ValueError, match="start token"):
        deep_link("chasqui_bot", token)


# -- parsing --------------------------------------------------------------------------------

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "message_text.json": [{"kind": "text", "text": "¿Llega antes del viernes?",
                           "sender": "987654321", "provider_id": "987654321:42",
                           "profile_name": "Ana Pérez"}],
    "start_deep_link.json": [{"kind": "start", "start_token": "c_8f3a2b1e",
                              "provider_id": "987654321:43"}],
    "photo.json": [{"kind": "media", "text": "Este"}],
    "callback_query.json": [{"kind": "choice", "choice_id": "cart_yes", "text": "Sí, ayudame",
                             "provider_id": "cb:4382bfdwdsb323b2d9", "sender": "987654321",
                             "at": NOW}],
    "edited_message.json": [],
}


def test_every_fixture_has_an_expectation() -> None:
    assert {path.name for path in DATA.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_fixture(parser: TelegramChannel, name: str) -> None:
    parsed = parser.parse({}, (DATA / name).read_bytes())
    assert len(parsed) == len(EXPECTED[name])
    for item, expected in zip(parsed, EXPECTED[name], strict=True):
        assert item.channel == "telegram"
        assert item.model_dump(include=set(expected)) == expected


def test_message_time_is_telegrams(parser: TelegramChannel) -> None:
    [message] = parser.parse({}, (DATA / "message_text.json").read_bytes())
    assert message.at == datetime.fromtimestamp(1779373800, tz=UTC)


@pytest.mark.parametrize(
    ("text", "token"),
    [("/start abc123", "abc123"), ("/start", None), ("/start@chasqui_bot tok_1", "tok_1")],
)
def test_start_commands(parser: TelegramChannel, text: str, token: str | None) -> None:
    [message] = parser.parse({}, json_body(telegram_message_update(text)))
    assert isinstance(message, InboundMessage)
    assert (message.kind, message.start_token) == ("start", token)


def test_other_commands_are_text(parser: TelegramChannel) -> None:
    [message] = parser.parse({}, json_body(telegram_message_update("/help")))
    assert isinstance(message, InboundMessage)
    assert (message.kind, message.text) == ("text", "/help")


def test_each_callback_query_is_unique(parser: TelegramChannel) -> None:
    buttons = {"y": "Sí", "n": "No"}
    first = parser.parse({}, json_body(telegram_callback_update("n", buttons=buttons)))
    second = parser.parse({}, json_body(telegram_callback_update("n", buttons=buttons)))
    assert isinstance(first[0], InboundMessage)
    assert first[0].text == "No"
    assert first[0].provider_id != second[0].provider_id


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"nope", "not JSON"),
        (b"{}", "update_id"),
        (b'{"update_id": "1"}', "update_id"),
        (json_body({"update_id": 1, "message": {"message_id": 1, "date": 0}}), "malformed"),
    ],
)
def test_malformed_updates_refused(parser: TelegramChannel, body: bytes, problem: str) -> None:
    with pytest.raises(BadPayload, match=problem):
        parser.parse({}, body)


# -- sending ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_call_at_construction_and_one_get_me(fake: FakeTelegram) -> None:
    built = TelegramChannel(token=TOKEN, secret_token=SECRET, api_url=fake.url)
    try:
        assert fake.requests == []
        first = await built.send(outbound(text="Hola"))
        second = await built.send(outbound(text="¿Seguís ahí?"))
    finally:
        await built.close()
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [
        "getMe", "sendMessage", "sendMessage"]
    assert (first, second) == (f"{CHAT_ID}:1", f"{CHAT_ID}:2")


@pytest.mark.asyncio
async def test_text_message(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.send(outbound(text="Tu pedido salió"))
    request = fake.requests[-1]
    params = request.json or request.form or {}
    assert request.path == f"/bot{TOKEN}/sendMessage"
    assert str(params["chat_id"]) == str(CHAT_ID)
    assert params["text"] == "Tu pedido salió"
    assert fake.sent[str(CHAT_ID)][0]["text"] == "Tu pedido salió"


@pytest.mark.asyncio
async def test_choices_are_an_inline_keyboard(fake: FakeTelegram, channel: TelegramChannel) -> None:
    choices = [Choice(id="cart_yes", title="Sí, ayudame"), Choice(id="cart_no", title="No")]
    await channel.send(outbound(text="¿Te ayudamos?", choices=choices))
    [sent] = fake.sent[str(CHAT_ID)]
    assert sent["reply_markup"] == {"inline_keyboard": [
        [{"text": "Sí, ayudame", "callback_data": "cart_yes"}],
        [{"text": "No", "callback_data": "cart_no"}],
    ]}


@pytest.mark.asyncio
async def test_template_is_sent_as_text(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.send(outbound(template=TemplateRef(name="pedido_enviado", params=["#1001"])))
    assert fake.sent[str(CHAT_ID)][0]["text"] == "pedido_enviado: #1001"


@pytest.mark.asyncio
async def test_answer_callback(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.answer_callback("cb:4382bfdwdsb323b2d9", text="¡Listo!")
    [answer] = fake.callback_answers
    assert answer["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert answer["text"] == "¡Listo!"


@pytest.mark.asyncio
async def test_flood_control_is_rate_limited(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.fail_next(status=429, retry_after=3)
    with pytest.raises(RateLimited) as caught:
        await channel.send(outbound(text="Hola"))
    assert (caught.value.code, caught.value.retry_after) == ("429", 3.0)
    assert await channel.send(outbound(text="Hola")) == f"{CHAT_ID}:1"


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.asyncio
async def test_server_errors_are_transient(
    fake: FakeTelegram, channel: TelegramChannel, status: int
) -> None:
    fake.fail_next(status=status)
    with pytest.raises(TransientSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert not isinstance(caught.value, RateLimited)


@pytest.mark.asyncio
async def test_bad_request_is_permanent(fake: FakeTelegram, channel: TelegramChannel) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(to="@nadie", text="Hola"))
    assert caught.value.code == "400"
    assert "chat not found" in caught.value.detail.lower()


@pytest.mark.asyncio
async def test_blocked_bot_is_permanent(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.blocked.add(str(CHAT_ID))
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(text="Hola"))
    assert caught.value.code == "403"


@pytest.mark.asyncio
async def test_wrong_token_is_permanent(fake: FakeTelegram) -> None:
    built = TelegramChannel(token="999:wrong", secret_token=SECRET, api_url=fake.url)
    try:
        with pytest.raises(PermanentSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "401"


@pytest.mark.asyncio
async def test_unreachable_api_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    built = TelegramChannel(token=TOKEN, secret_token=SECRET, api_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransientSendError) as caught:
            await built.send(outbound(text="Hola"))
    finally:
        await built.close()
    assert caught.value.code == "network"
