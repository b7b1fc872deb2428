"""WhatsApp through Meta's Cloud API, with pywa (``pywa_async``) for sends and validation.

Webhooks are verified here (``X-Hub-Signature-256``), parsed by
:mod:`channels.whatsapp_parse` (2026 format: every contact carries a
business-scoped ``user_id``, and a user with a username may come without a
phone number), and sends go through ``pywa_async.WhatsApp``. pywa has no
setting for the API address; the channel points pywa's httpx client at
``WHATSAPP_API_URL`` once pywa is built: the one place where that is done.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import httpx
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict
from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types.callback import Button, Section, SectionList, SectionRow
from pywa_async.types.sent_update import SentMessage
from pywa_async.types.templates import BodyText, TemplateLanguage

from bot.core.inputs import ConsentChange, FailureMeaning, InboundMessage
from bot.infra.settings import secret
from channels.base import OutboundMessage, Parsed, WebhookAck, phone_sender_keys
from channels.errors import (
    BadSignature,
    OutsideWindow,
    PermanentSendError,
    RateLimited,
    SendError,
    TransientSendError,
    parse_retry_after,
)
from channels.whatsapp_parse import ERROR_MEANINGS, parse_webhook

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_API_URL = "https://graph.facebook.com"
MAX_BUTTONS = 3  # reply buttons in one interactive message
MAX_ROWS = 10  # rows in one interactive list
BUTTON_TITLE_MAX = 20
ROW_TITLE_MAX = 24
CONNECTIONS = 32  # HTTP connections to the Graph API, all kept alive

# Cloud API error codes -> our error classes. Codes not here fall back on the
# HTTP status: 429 rate limited, 5xx (or is_transient) transient, else permanent.
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
ERROR_CLASSES: dict[int, type[SendError]] = {
    4: RateLimited,  # application-level API call limit
    80007: RateLimited,  # WhatsApp Business Account rate limit
    130429: RateLimited,  # throughput (messages per second) reached
    131048: RateLimited,  # spam rate limit
    131056: RateLimited,  # pair rate limit: too many messages to one user
    1: TransientSendError,  # unknown API error
    2: TransientSendError,  # API service temporarily unavailable
    131000: TransientSendError,  # something went wrong
    131016: TransientSendError,  # service unavailable
    131057: TransientSendError,  # account in maintenance mode
    133004: TransientSendError,  # server temporarily unavailable
    131047: OutsideWindow,  # more than 24 h since the customer's last message
    0: PermanentSendError,  # authentication exception
    3: PermanentSendError,  # capability or permissions
    10: PermanentSendError,  # permission denied
    100: PermanentSendError,  # invalid parameter
    190: PermanentSendError,  # access token expired or invalid
    368: PermanentSendError,  # temporarily blocked for policy violations
    131005: PermanentSendError,  # access denied
    131008: PermanentSendError,  # required parameter missing
    131009: PermanentSendError,  # parameter value invalid
    131021: PermanentSendError,  # recipient cannot be sender
    131026: PermanentSendError,  # message undeliverable
    131031: PermanentSendError,  # account locked
    131042: PermanentSendError,  # business eligibility / payment issue
    131049: PermanentSendError,  # per-user marketing limit ("healthy ecosystem engagement")
    131050: PermanentSendError,  # user stopped marketing messages
    131051: PermanentSendError,  # unsupported message type
    132000: PermanentSendError,  # template parameter count mismatch
    132001: PermanentSendError,  # template does not exist
    132005: PermanentSendError,  # template hydrated text too long
    132007: PermanentSendError,  # template format character policy violated
    132012: PermanentSendError,  # template parameter format mismatch
    132015: PermanentSendError,  # template paused
    132016: PermanentSendError,  # template disabled
    133010: PermanentSendError,  # phone number not registered
}
# What a code means for the customer beyond "this send failed" (bot.core.inputs.FailureMeaning):
# those a failed status may carry too (channels.whatsapp_parse), and the pair rate,
# which only a send answers with.
SEND_MEANINGS: dict[int, FailureMeaning] = {
    **ERROR_MEANINGS,  # 131026 dead_address, 131049 marketing_limit, 131050 opted_out
    131056: "pair_rate",  # this one user gets messages too fast; others are not held back
}
# Without a Retry-After, wait this long after these codes (pair rate: ~1 message / 6 s).
DEFAULT_RETRY_AFTER: dict[int, float] = {131056: 6.0}


def graph_base_url(api_url: str, api_version: str) -> str:
    """``{WHATSAPP_API_URL}/v{version}``: where pywa's requests go (a fake in tests)."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"WHATSAPP_API_URL must be an http(s) URL, got {api_url!r}")
    return f"{api_url.rstrip('/')}/v{api_version}"


class WhatsAppTraits:
    """What the core asks of WhatsApp (:class:`bot.core.channel.ChannelTraits`), no Meta needed.

    Customers are reached at their phone or, for a username user without
    one, at their business-scoped user id; a sender is known by both. Outside
    the 24-hour service window only an approved template may go out.
    """

    name: ClassVar[str] = "whatsapp"
    title: ClassVar[str] = "WhatsApp"
    has_service_window: ClassVar[bool] = True
    optout_at_once: ClassVar[bool] = False
    recipient_gap: ClassVar[float] = 6.0  # Meta's pair rate: about one message per user every 6 s
    confirms_optout: ClassVar[bool] = True

    def __init__(self, *, rate: float = 0.0) -> None:
        self.rate = rate

    @classmethod
    def traits(cls, settings: Settings) -> WhatsAppTraits:
        """The traits as the settings give them (``WHATSAPP_RATE``)."""
        return WhatsAppTraits(rate=settings.whatsapp_rate)

    @staticmethod
    def address(customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return customer.get("phone"), customer.get("wa_user_id")

    @staticmethod
    def sender_keys(message: InboundMessage | ConsentChange) -> list[str]:
        return phone_sender_keys(message)

    @staticmethod
    def pacing_cost(message: OutboundMessage) -> float:
        return 1.0

    @staticmethod
    def deep_link(customer_id: str) -> str | None:
        return None


class WhatsAppChannel(WhatsAppTraits):
    """The WhatsApp Cloud API behind the :class:`bot.core.channel.Channel` seam.

    Sends use pywa so payload shapes (interactive buttons, lists, templates)
    follow a maintained library, while verification, parsing and the error
    table stay ours: the runtime only ever sees ``bot.core.inputs`` models and
    ``channels.errors`` exceptions.

    Args:
        phone_id: the business phone number id messages are sent from.
        token: the system-user access token.
        app_secret: the app secret that signs webhooks.
        verify_token: the token Meta echoes in the subscription handshake.
        api_url: where the Graph API is (a fake in tests).
        api_version: the Graph API version in request paths.
        list_button: label of the button that opens an interactive list.
        rate: the sender's pace in messages per second (:class:`WhatsAppTraits`).
    """

    def __init__(
        self,
        *,
        phone_id: str,
        token: str,
        app_secret: str,
        verify_token: str,
        api_url: str = DEFAULT_API_URL,
        api_version: str = "21.0",
        list_button: str = "Ver opciones",
        rate: float = 0.0,
    ) -> None:
        super().__init__(rate=rate)
        self.phone_id = phone_id
        self.list_button = list_button
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token
        base_url = graph_base_url(api_url, api_version)
        # pywa speaks httpx; aiohttp carries the bytes. httpx's own pool
        # (httpcore) spent most of the sender's CPU on bookkeeping with a
        # chunk of sends in flight; the aiohttp transport is the one the
        # OpenAI and Anthropic SDKs offer for the same reason. Every
        # connection is kept alive between chunks.
        transport = AiohttpTransport(limits=httpx.Limits(
            max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS))
        self._http = httpx.AsyncClient(transport=transport, timeout=15.0)
        # No verify_token / app_secret / callback_url / server: pywa then registers
        # nothing and makes no call at construction; we only use it to send.
        self._wa = WhatsApp(
            phone_id=phone_id,
            token=token,
            session=self._http,
            api_version=api_version,
            validate_updates=False,
        )
        # pywa points its client at graph.facebook.com when it is built, and only
        # then (it has no setting for the address): point it at WHATSAPP_API_URL.
        self._http.base_url = httpx.URL(base_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppChannel | None:
        """Build the channel, or None while any WHATSAPP_* credential is missing."""
        phone_id = settings.whatsapp_phone_id
        token = secret(settings.whatsapp_token)
        app_secret = secret(settings.whatsapp_app_secret)
        verify_token = secret(settings.whatsapp_verify_token)
        if not (phone_id and token and app_secret and verify_token):
            return None
        return cls(
            phone_id=phone_id,
            token=token,
            app_secret=app_secret,
            verify_token=verify_token,
            api_url=settings.whatsapp_api_url,
            api_version=settings.whatsapp_api_version,
            rate=settings.whatsapp_rate,
        )

    # -- webhooks ---------------------------------------------------------------

    def verify_handshake(self, mode: str | None, token: str | None, challenge: str | None) -> str:
        """Answer Meta's ``GET`` subscription check: the challenge, or :class:`BadSignature`."""
        if mode != "subscribe":
            raise BadSignature("hub.mode must be 'subscribe'")
        if token is None or not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            raise BadSignature("hub.verify_token does not match")
        return challenge or ""

    def verify(self, headers: Mapping[str, str], body: bytes, url: str = "") -> None:
        """Check ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of body>``; raise BadSignature."""
        given = CIMultiDict(headers).get(SIGNATURE_HEADER)
        if not given:
            raise BadSignature(f"missing {SIGNATURE_HEADER}")
        algorithm, _, digest = given.partition("=")
        expected = hmac.new(self._app_secret, body, hashlib.sha256).hexdigest()
        if algorithm != "sha256" or not hmac.compare_digest(expected, digest.lower()):
            raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """Inbound messages and delivery statuses of a verified webhook (pure)."""
        return parse_webhook(body, self._wa)

    def ack(self, parsed: Parsed) -> WebhookAck:
        """Meta only needs a fast 200."""
        return WebhookAck(status=200, body='{"ok": true}', content_type="application/json")

    # -- sending ----------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> str:
        """Send text, text with choices (buttons up to 3, else a list) or a template.

        Returns:
            The ``wamid`` of the sent message.
        """
        to = _recipient(message)
        sent: SentMessage
        try:
            if message.template is not None:
                template = message.template
                sent = await self._wa.send_template(
                    to=to,
                    name=template.name,
                    language=_template_language(template.language),
                    # pywa 4.5 declares BodyText.params without @staticmethod, so mypy
                    # reads the first parameter as ``self``.
                    params=([BodyText.params(*template.params)]  # type: ignore[arg-type]
                            if template.params else None),
                )
            elif message.text is None:
                raise PermanentSendError("empty", "an outbound message needs text or a template")
            elif message.choices:
                sent = await self._wa.send_message(
                    to=to, text=message.text, buttons=self._keyboard(message)
                )
            else:
                sent = await self._wa.send_message(to=to, text=message.text)
        except WhatsAppError as error:
            raise map_error(error) from error
        except httpx.TransportError as error:  # connect, read, timeouts
            raise TransientSendError("network", f"{type(error).__name__}: {error}") from error
        return sent.id

    def _keyboard(self, message: OutboundMessage) -> list[Button] | SectionList:
        """Reply buttons for up to 3 choices, one list section for up to 10."""
        choices = message.choices
        if len(choices) <= MAX_BUTTONS:
            return [Button(title=_clip(c.title, BUTTON_TITLE_MAX), callback_data=c.id)
                    for c in choices]
        if len(choices) > MAX_ROWS:
            raise PermanentSendError(
                "too_many_choices", f"{len(choices)} choices; a list takes at most {MAX_ROWS}"
            )
        rows = [SectionRow(title=_clip(c.title, ROW_TITLE_MAX), callback_data=c.id)
                for c in choices]
        section = Section(title=_clip(self.list_button, ROW_TITLE_MAX), rows=rows)
        return SectionList(button_title=_clip(self.list_button, BUTTON_TITLE_MAX),
                           sections=[section])

    async def close(self) -> None:
        """Close the HTTP client (and the transport under it)."""
        await self._http.aclose()


def map_error(error: WhatsAppError) -> SendError:
    """Turn a Cloud API error into ours, through :data:`ERROR_CLASSES` then the HTTP status.

    The error carries the code's meaning from :data:`SEND_MEANINGS`, if it has one.
    """
    code = int(error.code)
    status = error.status_code
    detail = error.details or error.message or ""
    retry_after = retry_after_seconds(error.raw_response) or DEFAULT_RETRY_AFTER.get(code)
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        if status == 429:
            cls = RateLimited
        elif status is None or status >= 500 or error.is_transient:
            cls = TransientSendError
        else:
            cls = PermanentSendError
    meaning = SEND_MEANINGS.get(code)
    if issubclass(cls, TransientSendError):
        return cls(str(code), detail, retry_after=retry_after, meaning=meaning)
    return cls(str(code), detail, meaning=meaning)


def retry_after_seconds(response: httpx.Response | None) -> float | None:
    """The ``Retry-After`` of a response in seconds (delta or HTTP date), if any."""
    return parse_retry_after(response.headers.get("Retry-After")) if response is not None else None


def _recipient(message: OutboundMessage) -> str:
    """The Cloud API recipient: the phone's digits (wa_id form), else the BSUID."""
    to = message.to.strip()
    if to.startswith("+") or to.isdigit():
        return "".join(ch for ch in to if ch.isdigit())
    if to:
        return to
    if message.to_user_id:
        return message.to_user_id
    raise PermanentSendError("no_recipient", "the message has neither a phone nor a user id")


def _template_language(code: str) -> TemplateLanguage:
    """pywa's language member for a code such as "es" or "pt_BR"."""
    wanted = code.replace("-", "_").lower()
    for member in TemplateLanguage:
        if str(member.value).lower() == wanted:
            return member
    raise PermanentSendError("template_language", f"unknown template language {code!r}")


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with "…", as WhatsApp refuses longer titles."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
