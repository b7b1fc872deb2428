"""Telegram through the Bot API, with python-telegram-bot for sends and update parsing.

A Telegram chat is not a phone number: it is linked to a customer when the
customer opens ``https://t.me/<bot>?start=<token>`` (:func:`deep_link`), which
arrives here as kind "start" with that token. The token is the customer's id
plus a short HMAC keyed with ``TELEGRAM_SECRET_TOKEN`` (:func:`make_token`),
so it cannot be guessed for another customer and needs no table; the
channel's :meth:`TelegramTraits.sender_keys` reads it back. Choices are inline keyboard
buttons whose ``callback_data`` is the choice id; a tap arrives as a
``callback_query`` and becomes kind "choice". Telegram has no templates: a
template is sent as text ("name: p1, p2").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from multidict import CIMultiDict
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.core.customers import identity_keys
from bot.core.inputs import ConsentChange, InboundKind, InboundMessage
from bot.infra.settings import secret
from channels.base import OutboundMessage, Parsed, WebhookAck
from channels.errors import (
    BadPayload,
    BadSignature,
    PermanentSendError,
    RateLimited,
    SendError,
    TransientSendError,
)
from channels.json_body import load_json

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_URL = "https://api.telegram.org"
MEDIA_FIELDS = ("photo", "document", "audio", "voice", "video", "video_note", "sticker",
                "animation", "location", "contact")
START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALLBACK_PREFIX = "cb:"  # provider ids of inline-button taps (callback queries)

# Opt in to python-telegram-bot's timedelta time periods, its announced default for the
# next major version; without it, every RetryAfter it builds emits a deprecation warning
# (an error under ``-W error``). An explicit PTB_TIMEDELTA in the environment wins.
os.environ.setdefault("PTB_TIMEDELTA", "true")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def deep_link(bot_username: str, token: str) -> str:
    """``https://t.me/<bot>?start=<token>``; Telegram allows 1-64 of ``A-Z a-z 0-9 _ -``."""
    if not START_PAYLOAD.fullmatch(token):
        raise ValueError(f"a start token must be 1-64 characters of A-Z, a-z, 0-9, _ or -: "
                         f"{token!r}")
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


def _mac(customer_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:16]


def make_token(customer_id: str, secret: str) -> str:
    """The ``/start`` token of a customer: their id and an HMAC, within Telegram's 64 characters."""
    return f"{customer_id}-{_mac(customer_id, secret)}"


def read_token(token: str, secret: str) -> str | None:
    """The customer id a token names, or None when it is forged or malformed."""
    customer_id, _, mac = token.rpartition("-")
    if not customer_id or not secret:
        return None
    return customer_id if hmac.compare_digest(mac, _mac(customer_id, secret)) else None


class TelegramTraits:
    """What the core asks of Telegram (:class:`bot.core.channel.ChannelTraits`), no bot needed.

    Customers are reached at the chat linked to them; a sender is known by
    its chat, and a ``/start`` token signed with ``link_secret`` names the
    customer the chat belongs to (best key first).

    Args:
        rate: the bot's pace in messages per second.
        bot_username: the bot in deep links (``TELEGRAM_BOT_USERNAME``).
        link_secret: the key of start tokens (``TELEGRAM_SECRET_TOKEN``); with
            none, tokens are neither made nor read.
    """

    name: ClassVar[str] = "telegram"
    title: ClassVar[str] = "Telegram"
    has_service_window: ClassVar[bool] = False
    optout_at_once: ClassVar[bool] = False
    recipient_gap: ClassVar[float] = 1.0  # Telegram: about one message per second per chat
    confirms_optout: ClassVar[bool] = True

    def __init__(self, *, rate: float = 0.0, bot_username: str = "chasqui_bot",
                 link_secret: str = "") -> None:
        self.rate = rate
        self.bot_username = bot_username
        self._link_secret = link_secret

    @classmethod
    def traits(cls, settings: Settings) -> TelegramTraits:
        """The traits as the settings give them."""
        return TelegramTraits(rate=settings.telegram_rate,
                              bot_username=settings.telegram_bot_username,
                              link_secret=secret(settings.telegram_secret_token))

    @staticmethod
    def address(customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return customer.get("telegram_chat"), None

    def sender_keys(self, message: InboundMessage | ConsentChange) -> list[str]:
        keys = identity_keys(telegram_chat=message.sender)
        if isinstance(message, InboundMessage) and message.start_token:
            customer_id = read_token(message.start_token, self._link_secret)
            if customer_id:
                keys.insert(0, f"id:{customer_id}")
        return keys

    @staticmethod
    def pacing_cost(message: OutboundMessage) -> float:
        return 1.0

    def deep_link(self, customer_id: str) -> str | None:
        """``https://t.me/<bot>?start=<token>`` for the customer; None without a secret.

        None too for an id that does not fit a start parameter (never one of
        ours, ``c_<hex>``): a link Telegram would refuse is no link.
        """
        if not self._link_secret:
            return None
        try:
            return deep_link(self.bot_username, make_token(customer_id, self._link_secret))
        except ValueError:
            return None


class TelegramChannel(TelegramTraits):
    """A Telegram bot behind the :class:`bot.core.channel.Channel` seam.

    Construction makes no call; the first send initializes the bot once
    (``getMe``), as python-telegram-bot expects.

    Args:
        token: the bot token from BotFather.
        secret_token: the ``secret_token`` given to ``setWebhook``, echoed in each webhook.
        api_url: where the Bot API is (a fake in tests).
        clock: the time stamped on callback queries, which carry none.
        rate, bot_username: the traits (:class:`TelegramTraits`); start tokens
            are signed with ``secret_token``.
    """

    def __init__(
        self,
        *,
        token: str,
        secret_token: str,
        api_url: str = DEFAULT_API_URL,
        clock: Callable[[], datetime] = _utcnow,
        rate: float = 0.0,
        bot_username: str = "chasqui_bot",
    ) -> None:
        super().__init__(rate=rate, bot_username=bot_username, link_secret=secret_token)
        self.clock = clock
        self._secret_token = secret_token
        base = api_url.rstrip("/")
        self._requests = (HTTPXRequest(connection_pool_size=1),
                          HTTPXRequest(connection_pool_size=16))
        self.bot = Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            get_updates_request=self._requests[0],
            request=self._requests[1],
        )
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel | None:
        """Build the channel, or None while TELEGRAM_BOT_TOKEN or _SECRET_TOKEN is missing."""
        token = secret(settings.telegram_bot_token)
        secret_token = secret(settings.telegram_secret_token)
        if not (token and secret_token):
            return None
        return cls(token=token, secret_token=secret_token, api_url=settings.telegram_api_url,
                   rate=settings.telegram_rate, bot_username=settings.telegram_bot_username)

    # -- webhooks ---------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes, url: str = "") -> None:
        """Check ``X-Telegram-Bot-Api-Secret-Token`` (constant time)."""
        given = CIMultiDict(headers).get(SECRET_HEADER)
        if not given or not hmac.compare_digest(given.encode(), self._secret_token.encode()):
            raise BadSignature(f"{SECRET_HEADER} does not match")

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """A message (text, /start, media) or a callback query; other updates give nothing."""
        data = load_json(body)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise BadPayload("not a Telegram update: no integer update_id")
        _check_dates(data)
        try:
            update = Update.de_json(data, self.bot)
            if update.callback_query is not None:
                return self._callback(update.callback_query)
            if update.message is not None:
                return self._message(update.message)
        except (OverflowError, OSError) as error:  # a date _check_dates did not know
            raise BadPayload(f"malformed Telegram update: a date is out of range "
                             f"({type(error).__name__}: {error})") from error
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
            problem = f"{type(error).__name__}: {error}"
            raise BadPayload(f"malformed Telegram update: {problem}") from error
        return []  # edits, channel posts, membership changes...

    def _message(self, message: Message) -> Parsed:
        chat_id = message.chat.id  # a message without a chat is malformed

        def inbound(kind: InboundKind, text: str, token: str | None = None) -> Parsed:
            user = message.from_user
            return [InboundMessage(
                channel="telegram",
                provider_id=f"{chat_id}:{message.message_id}",
                sender=str(chat_id),
                kind=kind,
                text=text,
                start_token=token,
                profile_name=user.full_name if user is not None else None,
                at=message.date,
            )]

        text = message.text
        if text is not None:
            command, _, payload = text.partition(" ")
            if command.split("@", 1)[0] == "/start":
                return inbound("start", text, payload.strip() or None)
            return inbound("text", text)
        if any(getattr(message, name, None) for name in MEDIA_FIELDS):
            return inbound("media", message.caption or "")
        return []  # service messages (members joined, pinned...)

    def _callback(self, query: CallbackQuery) -> Parsed:
        if query.data is None:  # game callbacks carry no data
            return []
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        title = _button_title(message, query.data) if isinstance(message, Message) else None
        return [InboundMessage(
            channel="telegram",
            provider_id=f"{CALLBACK_PREFIX}{query.id}",
            sender=str(chat_id),
            kind="choice",
            text=title or query.data,
            choice_id=query.data,
            profile_name=query.from_user.full_name,
            at=self.clock(),
        )]

    def ack(self, parsed: Parsed) -> WebhookAck:
        """A 2xx; for a tapped inline button, one that also answers the tap.

        Until a callback query is answered, the customer's app shows a spinner
        on the button. Telegram lets a webhook's reply carry one Bot API call
        (``{"method": ...}``), so the answer costs no request of its own and
        goes out as soon as the tap is stored.
        """
        taps = [item for item in parsed if isinstance(item, InboundMessage)
                and item.provider_id.startswith(CALLBACK_PREFIX)]
        if len(taps) == 1:  # one update per webhook: at most one tap
            query_id = taps[0].provider_id.removeprefix(CALLBACK_PREFIX)
            body = json.dumps({"method": "answerCallbackQuery", "callback_query_id": query_id})
            return WebhookAck(status=200, body=body, content_type="application/json")
        return WebhookAck(status=200, body='{"ok": true}', content_type="application/json")

    # -- sending ----------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> str:
        """Send text (choices as an inline keyboard); returns ``"<chat_id>:<message_id>"``."""
        markup = None
        if message.choices:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(c.title, callback_data=c.id)] for c in message.choices]
            )
        text = render(message)
        if not text:
            raise PermanentSendError("empty", "an outbound message needs text or a template")
        try:
            await self._initialize()
            sent = await self.bot.send_message(
                chat_id=_chat_id(message.to), text=text, reply_markup=markup
            )
        except TelegramError as error:
            raise map_error(error) from error
        return f"{sent.chat.id}:{sent.message_id}"

    async def answer_callback(self, callback_id: str, text: str | None = None) -> None:
        """Stop the tapped button's spinner (``answerCallbackQuery``); ``cb:`` ids accepted."""
        try:
            await self._initialize()
            await self.bot.answer_callback_query(callback_id.removeprefix(CALLBACK_PREFIX),
                                                 text=text)
        except TelegramError as error:
            raise map_error(error) from error

    async def _initialize(self) -> None:
        """``Bot.initialize()`` (one ``getMe``) before the first call, once."""
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True

    async def close(self) -> None:
        """Shut the bot down and close its HTTP clients."""
        await self.bot.shutdown()
        for request in self._requests:
            await request.shutdown()
        self._ready = False


def render(message: OutboundMessage) -> str:
    """The text of a message; a template becomes its name and parameters."""
    if message.template is not None:
        return message.template.as_text()
    return message.text or ""


def map_error(error: TelegramError) -> SendError:
    """Turn a python-telegram-bot error into ours."""
    if isinstance(error, RetryAfter):
        return RateLimited("429", error.message, retry_after=_retry_after(error))
    if isinstance(error, ChatMigrated):
        return PermanentSendError("chat_migrated", f"new chat id {error.new_chat_id}")
    if isinstance(error, BadRequest):  # a NetworkError subclass: test it first
        return PermanentSendError("400", error.message)
    if isinstance(error, Forbidden):
        return PermanentSendError("403", error.message)
    if isinstance(error, InvalidToken):
        return PermanentSendError("401", error.message)
    if isinstance(error, NetworkError):  # includes TimedOut and HTTP 5xx
        return TransientSendError("network", error.message)
    return TransientSendError("telegram", error.message)


def _retry_after(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        # reading retry_after as a number warns until PTB_TIMEDELTA becomes the default
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chat_id(to: str) -> int | str:
    """A numeric chat id as int; ``@channelname`` as it is."""
    stripped = to.strip()
    try:
        return int(stripped)
    except ValueError:
        if not stripped:
            raise PermanentSendError("no_recipient", "Telegram needs a chat id") from None
        return stripped


def _check_dates(update: dict[str, object]) -> None:
    """Refuse a ``date`` or ``*_date`` that no datetime can hold, naming where it is.

    python-telegram-bot turns each of them into a datetime and fails with
    OverflowError, OSError or ValueError on Unix times such as ±2**63. The
    walk is iterative: a 1 MiB body can nest deeper than Python's recursion.
    """
    stack: list[tuple[str, object]] = [("", update)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                path = f"{where}.{key}" if where else str(key)
                if (key == "date" or str(key).endswith("_date")) and isinstance(
                        child, int | float) and not isinstance(child, bool):
                    try:
                        datetime.fromtimestamp(child, tz=UTC)
                    except (OverflowError, OSError, ValueError) as error:
                        raise BadPayload(
                            f"{path}: not a Unix time in range: {child!r}") from error
                stack.append((path, child))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(value))


def _button_title(message: Message, data: str) -> str | None:
    """The title of the inline button that carried ``data``, if the message still shows it."""
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None
