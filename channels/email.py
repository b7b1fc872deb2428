"""E-mail through any SMTP relay, and customers' replies from an inbound-mail webhook.

Sending: one connection to ``SMTP_URL`` kept open between sends (aiosmtplib),
upgraded with STARTTLS whenever the relay offers it (``smtps://`` is TLS from
the start). Each e-mail is plain text plus an HTML alternative; its
``Message-ID`` is derived from our message id, so a send retried after a
relay timed out carries the same id and receiving servers can drop the copy.
Every link in it is tracked (``/t/{token}``: a click, then a redirect), the
HTML part has an open pixel (``/t/{token}`` too), a question's choices are
links that answer it in one click (``/r/{token}``), and a *marketing* e-mail
carries an unsubscribe link in both parts plus ``List-Unsubscribe`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), so mail
programs can show their own unsubscribe button. The links are signed
(``channels.email_links``) with the key ``channels.email_routes`` keeps.

The subject is the message's first line (cut to 78 characters), or the
template's name: flows write chat messages, and a chat message's first line
is what it is about.

Replies arrive at ``POST /webhooks/email`` from whatever turns mail into
HTTP (an inbound-parse service, a small MTA hook), signed like ``/events``
with ``EMAIL_INBOUND_SECRET``: JSON ``{"id", "from", "to", "subject",
"text", "in_reply_to"}``, and ``html`` beside them when the mail has an
HTML part (read when ``text`` is blank: some mail programs send HTML only;
``channels.email_html``). The quoted history under a reply is cut off, so a
"STOP" or an answer on the first line is what flows and keywords see.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import secrets
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.customers import identity_keys
from bot.core.errors import WebhookOff
from bot.core.inputs import ConsentChange, FailureMeaning, InboundMessage
from bot.infra.settings import secret
from channels.base import OutboundMessage, Parsed, WebhookAck
from channels.email_html import html_text
from channels.email_links import LinkKind, make_token, replace_urls
from channels.errors import (
    BadPayload,
    PermanentSendError,
    RateLimited,
    SendError,
    TransientSendError,
)
from channels.json_body import load_json
from store_events.base import check_signature, get_header
from store_events.phones import normalize_email

if TYPE_CHECKING:
    from bot.infra.settings import Settings

SIGNATURE_HEADER = "X-Signature-256"  # as POST /events
SUBJECT_MAX = 78  # RFC 5322's recommended line length
# Seconds the channel pauses on a relay's 421. SMTP has no Retry-After, and
# doubling backoff after a storm of them left mail queued for many minutes.
RELAY_PAUSE = 30.0
UNSUBSCRIBE_TEXT = "Para no recibir más correos como este / To unsubscribe"
# Reply codes whose refusal means the mailbox does not exist (RFC 5321 / 3463).
DEAD_MAILBOX = {550, 551, 553}
# A line that starts the quoted history under a reply ("On ... wrote:", "El ... escribió:").
QUOTE_START = re.compile(r"^\s*(>|(On|El|Em|Le|Am)\s.+(wrote|escribió|escreveu|a écrit|schrieb)"
                         r"\s*:\s*$|-{2,}\s*Original Message|_{5,})", re.IGNORECASE)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InboundEmail(BaseModel):
    """The body of ``POST /webhooks/email`` (fields beyond these are accepted and ignored)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=998, pattern=r"\S",
                    description="the e-mail's Message-ID: dedupe key (never blank)")
    from_: str = Field(alias="from", min_length=3, max_length=998)
    to: str | None = None
    subject: str | None = None
    text: str = ""
    html: str | None = Field(default=None, description=(
        "the HTML part; read when text is blank (a mail program that sends HTML only)"))
    in_reply_to: str | None = None


class EmailTraits:
    """What the core asks of e-mail, no relay needed.

    Customers are reached at their e-mail address; a sender is known by it.
    An unsubscribe (the link, or "STOP" in a reply) takes effect at once,
    without a confirmation e-mail: RFC 8058 asks for none, and one more
    e-mail to someone who just left is the wrong message.
    """

    name: ClassVar[str] = "email"
    title: ClassVar[str] = "E-mail"
    has_service_window: ClassVar[bool] = False
    optout_at_once: ClassVar[bool] = True
    confirms_optout: ClassVar[bool] = False
    recipient_gap: ClassVar[float] = 0.0

    def __init__(self, *, rate: float = 0.0) -> None:
        self.rate = rate

    @classmethod
    def traits(cls, settings: Settings) -> EmailTraits:
        return EmailTraits(rate=settings.email_rate)

    @staticmethod
    def address(customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return customer.get("email"), None

    @staticmethod
    def sender_keys(message: InboundMessage | ConsentChange) -> list[str]:
        return identity_keys(email=message.sender)

    @staticmethod
    def pacing_cost(message: OutboundMessage) -> float:
        return 1.0

    @staticmethod
    def deep_link(customer_id: str) -> str | None:
        return None


class EmailChannel(EmailTraits):
    """E-mail behind the :class:`bot.core.channel.Channel` seam.

    Args:
        smtp_url: ``smtp://user:password@host:port`` or ``smtps://...``.
        sender: the ``From`` header ("Store <shop@example.com>").
        public_url: where ``/t/`` and ``/u/`` links point (``PUBLIC_URL``).
        inbound_secret: signs ``POST /webhooks/email``; empty: replies are refused.
        link_key: signs the links (the service sets the database's key at start).
        tls_context: trust for the relay's certificate (tests pass their own CA).
        clock: the time stamped on replies (the service's clock).
        rate: the trait (:class:`EmailTraits`).
    """

    def __init__(self, *, smtp_url: str, sender: str, public_url: str,
                 inbound_secret: str = "", link_key: bytes | None = None,
                 tls_context: ssl.SSLContext | None = None,
                 clock: Callable[[], datetime] = _utcnow, rate: float = 0.0) -> None:
        super().__init__(rate=rate)
        url = urlsplit(smtp_url)
        self.host = url.hostname or "localhost"
        self.tls = url.scheme == "smtps"
        self.port = url.port or (465 if self.tls else 25)
        self._username = unquote(url.username) if url.username else None
        self._password = unquote(url.password) if url.password else None
        self.sender = sender
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        self.public_url = public_url.rstrip("/")
        self._inbound_secret = inbound_secret
        self.link_key = link_key or secrets.token_bytes(32)
        self.tls_context = tls_context
        self.clock = clock
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel | None:
        """Build the channel, or None while ``SMTP_URL`` or ``EMAIL_FROM`` is unset."""
        smtp_url = secret(settings.smtp_url)
        if not (smtp_url and settings.email_from):
            return None
        return cls(smtp_url=smtp_url, sender=settings.email_from, public_url=settings.base_url,
                   inbound_secret=secret(settings.email_inbound_secret),
                   rate=settings.email_rate)

    # -- replies ------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        """Check ``X-Signature-256: sha256=<hex>`` over the raw body (as ``/events``)."""
        if not self._inbound_secret:
            raise WebhookOff("EMAIL_INBOUND_SECRET is not set: replies by e-mail are off")
        check_signature(self._inbound_secret, body,
                        get_header(headers, SIGNATURE_HEADER), header_name=SIGNATURE_HEADER,
                        encoding="hex")

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        """A customer's reply, its quoted history cut off."""
        payload = load_json(body)
        if not isinstance(payload, dict):
            raise BadPayload("the body must be a JSON object")
        try:
            mail = InboundEmail.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise BadPayload(f"{where}: {first['msg']}") from None
        name, raw_address = parseaddr(mail.from_)
        address = normalize_email(raw_address)
        if address is None:
            raise BadPayload(f"from: not an e-mail address: {mail.from_[:100]!r}")
        return [InboundMessage(channel=self.name, provider_id=mail.id, sender=address,
                               text=reply_text(mail.text if mail.text.strip()
                                               else html_text(mail.html or "")),
                               profile_name=name or None,
                               at=self.clock())]

    def ack(self, parsed: Parsed) -> WebhookAck:
        return WebhookAck(status=200, body='{"ok": true}')

    # -- sending ------------------------------------------------------------------

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The e-mail for ``message``: headers, plain text and HTML, links signed."""
        if not message.to:
            raise PermanentSendError("no_recipient", "e-mail needs an address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = formataddr(("", message.to))
        mail["Subject"] = subject(message)
        mail["Message-ID"] = self.message_id(message)
        fields = {"m": message.id, "c": message.customer or "", "a": message.to,
                  "p": mail["Message-ID"]}
        unsubscribe = (self.link("unsubscribe", fields, path="u") if message.marketing
                       else None)
        if unsubscribe:
            mail["List-Unsubscribe"] = f"<{unsubscribe}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

        def track(url: str) -> str:
            return self.link("click", {**fields, "u": url})

        # A question's choices are links too: a click answers it (``/r/{token}``),
        # as a tap on a button does elsewhere; replying with the words still works.
        answers = [(choice.title, self.link("answer", {**fields, "i": choice.id,
                                                        "t": choice.title[:100]}, path="r"))
                   for choice in message.choices] if message.template is None else []
        main = body_text(message) if not answers else message.text or ""
        text = replace_urls(main, track)
        if answers:
            listed = "\n".join(f"{n}) {title}: {url}" for n, (title, url) in enumerate(answers, 1))
            text = f"{text}\n\n{listed}" if text else listed
        footer = f"\n\n--\n{UNSUBSCRIBE_TEXT}: {unsubscribe}" if unsubscribe else ""
        mail.set_content(text + footer)
        mail.add_alternative(body_html(main, track, self.link("open", fields), unsubscribe,
                                       answers), subtype="html")
        return mail

    def link(self, kind: LinkKind, fields: dict[str, str], path: str = "t") -> str:
        return f"{self.public_url}/{path}/{make_token(self.link_key, kind, **fields)}"

    def message_id(self, message: OutboundMessage) -> str:
        """A ``Message-ID`` that is the same for every attempt at ``message``."""
        digest = hashlib.sha256(message.id.encode()).hexdigest()[:32]
        return f"<{digest}@{self.domain}>"

    async def send(self, message: OutboundMessage) -> str:
        """Hand the e-mail to the relay; returns its ``Message-ID`` (the provider id)."""
        mail = self.compose(message)
        async with self._lock:  # one connection, one transaction at a time
            try:
                client = await self._connected()
                await client.send_message(mail)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._drop()
                raise refused(exc.recipients[0].code if exc.recipients else 550,
                              exc.recipients[0].message if exc.recipients else "") from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._drop()
                raise refused(exc.code, exc.message) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop()
                raise TransientSendError("network", type(exc).__name__) from exc
        return str(mail["Message-ID"])

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, use_tls=self.tls,
                                 start_tls=None if not self.tls else False,
                                 username=self._username, password=self._password,
                                 tls_context=self.tls_context, timeout=15)
        await client.connect()
        self._client = client
        return client

    async def _drop(self) -> None:
        """Forget the connection after an error: the next send opens a fresh one."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


def refused(code: int, detail: str) -> SendError:
    """An SMTP reply code as our error: 4xx retried later, 5xx recorded as failed.

    ``detail`` is the relay's text, which names no credential.
    """
    label = str(code)
    text = (detail or "").strip()[:300]
    if code == 421:  # "closing the channel" / "slow down": the relay names no time
        return RateLimited(label, text, retry_after=RELAY_PAUSE)
    if 400 <= code < 500:
        return TransientSendError(label, text)
    meaning: FailureMeaning | None = "dead_address" if code in DEAD_MAILBOX else None
    return PermanentSendError(label, text, meaning=meaning)


def subject(message: OutboundMessage) -> str:
    """The first line of the text (or the template's name), cut to ``SUBJECT_MAX``."""
    first = next((line.strip() for line in body_text(message).splitlines() if line.strip()), "")
    if len(first) > SUBJECT_MAX:
        first = first[:SUBJECT_MAX - 1].rstrip() + "…"
    return first or "…"


def body_text(message: OutboundMessage) -> str:
    """The message as text: choices as numbered lines, a template as its name and values."""
    if message.template is not None:
        return message.template.as_text()
    text = message.text or ""
    lines = "\n".join(f"{n}) {choice.title}" for n, choice in enumerate(message.choices, 1))
    return f"{text}\n\n{lines}" if text and lines else text or lines


def body_html(text: str, track: Callable[[str], str], pixel: str,
              unsubscribe: str | None, answers: list[tuple[str, str]] | None = None) -> str:
    """The HTML alternative: the text escaped, links tracked, the choices as
    links that answer (``answers``: title, link), the open pixel last."""
    def anchor(url: str) -> str:
        # ``url`` arrives escaped (it was found in escaped text): unescape, track, escape.
        target = html.escape(track(html.unescape(url)), quote=True)
        return f'<a href="{target}">{url}</a>'

    escaped = replace_urls(html.escape(text, quote=False), anchor)
    body = escaped.replace("\n", "<br>\n")
    choices = "".join(
        f'<li><a href="{html.escape(url, quote=True)}">{html.escape(title)}</a></li>'
        for title, url in answers or [])
    listed = f"<ol>{choices}</ol>" if choices else ""
    footer = (f'<p style="font-size:small;color:#666"><a href="'
              f'{html.escape(unsubscribe, quote=True)}">{html.escape(UNSUBSCRIBE_TEXT)}</a></p>'
              if unsubscribe else "")
    return (f"<!doctype html><html><body><p>{body}</p>{listed}{footer}"
            f'<img src="{html.escape(pixel, quote=True)}" width="1" height="1" alt="">'
            "</body></html>")


def reply_text(text: str) -> str:
    """A reply without the history quoted under it (the whole text if nothing is left)."""
    kept: list[str] = []
    for line in text.splitlines():
        if QUOTE_START.match(line):
            break
        kept.append(line)
    reply = "\n".join(kept).strip()
    return reply or text.strip()


__all__ = ["EmailChannel", "EmailTraits", "InboundEmail", "body_html", "body_text", "refused",
           "reply_text", "subject"]
