"""SMS through Twilio's Messaging REST API, written against Twilio's documented scheme.

No Twilio SDK: a send is one form POST with HTTP basic auth, a webhook is a
form body signed with HMAC-SHA1 (``X-Twilio-Signature``), and keeping both in
one small module with aiohttp avoids a blocking SDK inside ``async def``.

SMS has no buttons or templates, so :func:`render` turns them into text:
choices become numbered lines ("1) Sí") under the text, and a template
becomes its name followed by its parameters ("name: p1, p2"; SMS templates
are not approved by anyone, the runtime is expected to send text instead).
The body is then cut to ``SMS_MAX_SEGMENTS`` segments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict

from bot.core.inputs import (
    ConsentChange,
    DeliveryState,
    DeliveryStatus,
    FailureMeaning,
    InboundKind,
    InboundMessage,
)
from bot.infra.settings import secret
from channels.base import Choice, OutboundMessage, Parsed, WebhookAck, phone_sender_keys
from channels.errors import (
    BadPayload,
    BadSignature,
    PermanentSendError,
    RateLimited,
    SendError,
    TransientSendError,
    parse_retry_after,
)
from channels.segments import count_segments, fit_segments

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_API_URL = "https://api.twilio.com"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# MessageStatus of a status callback -> ours; states not here are not reported.
STATES: dict[str, DeliveryState] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
}
# Twilio error codes -> our error classes; others fall back on the HTTP status.
# https://www.twilio.com/docs/api/errors
ERROR_CLASSES: dict[int, type[SendError]] = {
    20429: RateLimited,  # too many requests
    20500: TransientSendError,  # internal server error
    20503: TransientSendError,  # service unavailable
    20003: PermanentSendError,  # authentication failed
    20404: PermanentSendError,  # resource not found (wrong account)
    21211: PermanentSendError,  # invalid 'To' number
    21214: PermanentSendError,  # 'To' number cannot be reached
    21408: PermanentSendError,  # no permission to send to that region
    21602: PermanentSendError,  # body required
    21604: PermanentSendError,  # 'To' required
    21606: PermanentSendError,  # 'From' is not a valid sender
    21610: PermanentSendError,  # recipient unsubscribed (replied STOP)
    21612: PermanentSendError,  # cannot route between these numbers
    21614: PermanentSendError,  # 'To' is not a mobile number
    21617: PermanentSendError,  # body over 1600 characters
}
# What a code means for the customer beyond "this send failed" (bot.core.inputs.FailureMeaning).
ERROR_MEANINGS: dict[int, FailureMeaning] = {
    21211: "dead_address",  # not a valid phone number
    21614: "dead_address",  # not a mobile number: it cannot take SMS
    21610: "blocked",  # the recipient replied STOP: nothing goes out until they write again
}
# The same for the ErrorCode of an undelivered or failed status callback.
DELIVERY_MEANINGS: dict[str, FailureMeaning] = {
    **{str(code): meaning for code, meaning in ERROR_MEANINGS.items()},
    "30005": "dead_address",  # unknown destination handset: the number does not exist
    "30006": "dead_address",  # a landline or a carrier that cannot take SMS
}
# Descriptions of the delivery error codes a status callback carries (it sends only the code).
DELIVERY_ERRORS: dict[str, str] = {
    "21610": "Recipient unsubscribed",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmsTraits:
    """What the core asks of SMS (:class:`bot.core.channel.ChannelTraits`), no Twilio needed.

    Customers are reached at their phone; a sender is known by the number it
    wrote from. Senders are paced in segments, as carriers count them. A STOP
    takes effect at once, as carriers require, answered with one confirmation
    unless ``SMS_STOP_CONFIRMATION`` is off (Twilio's own handling answers).
    """

    name: ClassVar[str] = "sms"
    title: ClassVar[str] = "SMS"
    has_service_window: ClassVar[bool] = False
    optout_at_once: ClassVar[bool] = True
    recipient_gap: ClassVar[float] = 0.0  # carriers queue; the sender's own rate paces SMS

    def __init__(self, *, rate: float = 0.0, confirms_optout: bool = True) -> None:
        self.rate = rate
        self.confirms_optout = confirms_optout

    @classmethod
    def traits(cls, settings: Settings) -> SmsTraits:
        """The traits as the settings give them (``SMS_RATE``, ``SMS_STOP_CONFIRMATION``)."""
        return SmsTraits(rate=settings.sms_rate, confirms_optout=settings.sms_stop_confirmation)

    @staticmethod
    def address(customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return customer.get("phone"), None

    @staticmethod
    def sender_keys(message: InboundMessage | ConsentChange) -> list[str]:
        return phone_sender_keys(message)

    @staticmethod
    def pacing_cost(message: OutboundMessage) -> float:
        """Segments of the text: a long code is limited in segments per second."""
        return float(max(1, count_segments(message.text))) if message.text else 1.0

    @staticmethod
    def deep_link(customer_id: str) -> str | None:
        return None


class SmsChannel(SmsTraits):
    """SMS via Twilio behind the :class:`bot.core.channel.Channel` seam.

    Args:
        account_sid: the Twilio account (``AC...``); also the basic-auth user.
        auth_token: signs webhooks and authenticates sends.
        from_number: the sender number, E.164 (Messaging Services are not used).
        api_url: where Twilio's REST API is (a fake in tests).
        max_segments: sends are cut to fit this many segments.
        status_callback: the ``StatusCallback`` URL given with every send.
        clock: the time stamped on inbound messages and statuses, which carry none.
        rate, confirms_optout: the traits (:class:`SmsTraits`).
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_url: str = DEFAULT_API_URL,
        max_segments: int = 3,
        status_callback: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rate: float = 0.0,
        confirms_optout: bool = True,
    ) -> None:
        super().__init__(rate=rate, confirms_optout=confirms_optout)
        self.account_sid = account_sid
        self.from_number = from_number
        self.max_segments = max_segments
        self.status_callback = status_callback
        self.clock = clock
        self._auth_token = auth_token
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._basic_auth = f"Basic {credentials}"  # HTTP basic auth, as Twilio's REST API takes
        self._messages_url = (
            f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        )
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsChannel | None:
        """Build the channel, or None while TWILIO_ACCOUNT_SID/AUTH_TOKEN/FROM is missing."""
        sid, token = settings.twilio_account_sid, secret(settings.twilio_auth_token)
        if not (sid and token and settings.twilio_from):
            return None
        return cls(
            account_sid=sid,
            auth_token=token,
            from_number=settings.twilio_from,
            api_url=settings.twilio_api_url,
            max_segments=settings.sms_max_segments,
            status_callback=f"{settings.base_url}/webhooks/sms/status",
            rate=settings.sms_rate,
            confirms_optout=settings.sms_stop_confirmation,
        )

    # -- webhooks ---------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Check ``X-Twilio-Signature`` over ``url`` and the sorted POST parameters."""
        given = CIMultiDict(headers).get(SIGNATURE_HEADER)
        if not given:
            raise BadSignature(f"missing {SIGNATURE_HEADER}")
        params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        for candidate in _url_variants(url):
            expected = signature(self._auth_token, candidate, params)
            if hmac.compare_digest(expected.encode(), given.encode()):
                return
        raise BadSignature(f"{SIGNATURE_HEADER} does not match")

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """An inbound SMS/MMS, or a status callback (interim states give nothing)."""
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as error:
            raise BadPayload("body is not UTF-8 form data") from error
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        if not sid:
            raise BadPayload("not a Twilio messaging webhook: no MessageSid")
        status = form.get("MessageStatus")
        if status is not None and status.lower() != "received":
            return self._status(form, sid, status.lower())
        sender = form.get("From")
        if not sender:
            raise BadPayload("inbound message without From")
        text = form.get("Body", "")
        try:
            media = int(form.get("NumMedia") or 0)
        except ValueError as error:
            raise BadPayload(f"NumMedia is not a number: {form.get('NumMedia')!r}") from error
        kind: InboundKind = "media" if media > 0 and not text.strip() else "text"
        return [InboundMessage(channel="sms", provider_id=sid, sender=sender, kind=kind,
                               text=text, at=self.clock())]

    def _status(self, form: dict[str, str], sid: str, status: str) -> Parsed:
        state = STATES.get(status)
        if state is None:  # queued, sending, accepted, scheduled, canceled...
            return []
        code = form.get("ErrorCode") or None
        message = form.get("ErrorMessage") or (DELIVERY_ERRORS.get(code) if code else None)
        meaning = (DELIVERY_MEANINGS.get(code) if code and state in ("undelivered", "failed")
                   else None)
        return [DeliveryStatus(channel="sms", provider_id=sid, status=state,
                               recipient=form.get("To") or None, error_code=code,
                               error_message=message, meaning=meaning, at=self.clock())]

    def ack(self, parsed: Parsed) -> WebhookAck:
        """Empty TwiML: stored, and no automatic reply."""
        return WebhookAck(status=200, body=EMPTY_TWIML, content_type="text/xml")

    # -- sending ----------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> str:
        """POST the message to Twilio and return its ``SM...`` sid."""
        if not message.to:
            raise PermanentSendError("no_recipient", "SMS needs a phone number")
        data = {"To": message.to, "From": self.from_number,
                "Body": fit_segments(render(message), self.max_segments)}
        if self.status_callback:
            data["StatusCallback"] = self.status_callback
        session = self._client()
        try:
            async with session.post(
                self._messages_url, data=data, headers={"Authorization": self._basic_auth}
            ) as response:
                payload = await _json(response)
                if response.status >= 400:
                    raise map_error(response.status, payload, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientSendError("network", f"{type(error).__name__}: {error}") from error
        sid = payload.get("sid") if isinstance(payload, dict) else None
        if not isinstance(sid, str) or not sid:
            raise TransientSendError("bad_response", "Twilio answered without a message sid")
        return sid

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of url + sorted name+value pairs.

    Pairs are sorted by name then value, and a pair repeated (same name and
    value) counts once, as Twilio's own validators do.
    """
    data = url + "".join(f"{name}{value}" for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def render(message: OutboundMessage) -> str:
    """The SMS text of a message: numbered choices appended, a template as name and params."""
    if message.template is not None:
        return message.template.as_text()
    text = message.text or ""
    if not message.choices:
        return text
    lines = "\n".join(f"{n}) {choice.title}" for n, choice in enumerate(message.choices, 1))
    return f"{text}\n\n{lines}" if text else lines


def match_numbered_choice(text: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice a reply such as "2" or "2)" picks from choices rendered by :func:`render`."""
    number = text.strip().rstrip(").").strip()
    if number.isdigit() and 1 <= int(number) <= len(choices):
        return choices[int(number) - 1]
    return None


def map_error(status: int, payload: Any, retry_after: str | None = None) -> SendError:
    """Turn a Twilio error answer (``{"code", "message", "status"}``) into ours.

    The error carries the code's meaning from :data:`ERROR_MEANINGS`, if it has one.
    """
    body = payload if isinstance(payload, dict) else {}
    raw_code = body.get("code")
    code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
    detail = str(body.get("message") or f"HTTP {status}")
    cls = ERROR_CLASSES.get(code) if code is not None else None
    if status == 429:
        cls = RateLimited
    elif cls is None:
        cls = TransientSendError if status >= 500 else PermanentSendError
    label = str(code if code is not None else status)
    meaning = ERROR_MEANINGS.get(code) if code is not None else None
    if issubclass(cls, TransientSendError):
        return cls(label, detail, retry_after=parse_retry_after(retry_after), meaning=meaning)
    return cls(label, detail, meaning=meaning)



def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed (as Twilio's SDKs try)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    auth = parts.netloc.rpartition("@")[0]
    prefix = f"{auth}@" if auth else ""
    if parts.port is None and default is not None:
        other = f"{prefix}{host}:{default}"
    elif parts.port == default:
        other = f"{prefix}{host}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]


async def _json(response: aiohttp.ClientResponse) -> Any:
    """The response body as JSON, or None when it is not JSON."""
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None


__all__ = ["SmsChannel", "SmsTraits", "map_error", "match_numbered_choice", "render", "signature"]
