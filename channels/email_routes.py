"""The routes e-mail links lead to: ``GET /t/{token}`` (opens, clicks), ``/r/{token}``
(answers) and ``/u/{token}`` (unsubscribe).

- An **open** (the HTML part's pixel) answers a 1x1 GIF; a **click** answers
  a redirect to the link's target. Either counts as the message read (a
  delivery status, so step statistics and ``watch(..., until="read")``
  see it) and reaches the customer's flows as an event, ``email.opened``
  (the first open of a message) or ``email.clicked`` (the first click on
  each link, ``data.url``). Storing them is best effort: a customer who
  clicks is redirected even while the database is away.
- **Answers**: a question's choices are links (``/r/{token}``, one per
  choice). ``GET`` shows the choice with a button, ``POST`` (the button)
  stores it as the customer's message on e-mail, kind ``choice`` with the
  choice's id, exactly what a tapped button is on WhatsApp or Telegram, so
  a flow's ``answer`` needs nothing new (a double opt-in confirmed by one
  click, an NPS score). One answer per e-mail: the first counts. An answer
  also counts as the message read, as a click does.
- **Unsubscribe**: ``POST /u/{token}`` (RFC 8058's one-click, sent by mail
  programs with ``List-Unsubscribe=One-Click``, or the button of the page
  ``GET /u/{token}`` shows) revokes e-mail marketing for the address the
  e-mail went to, recorded in the consent ledger as ``email:unsubscribe_link``.
  It is stored before it is answered. A GET never unsubscribes: link
  scanners fetch every link in a mail.

The signing key lives in the database (``meta``, one document), made at
the first start: every worker signs and checks with the same key, and links
in e-mails already sent keep working across restarts.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from bot.core.errors import BadSignature
from bot.core.inputs import (
    ConsentChange,
    CustomerInfo,
    DeliveryStatus,
    InboundMessage,
    StoreEvent,
)
from bot.http.appkeys import CHANNELS, CLOCK, DATABASE, RUNTIME
from bot.http.common import json_error
from bot.infra.database import Database
from channels.email import EmailChannel
from channels.email_links import LinkKind, click_id, read_token

log = logging.getLogger(__name__)

KEY_ID = "email_link_key"
# The smallest transparent GIF (1x1).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0"}
PAGE_HEADERS = {**NO_STORE, "Content-Security-Policy": "default-src 'none'; style-src "
                "'unsafe-inline'; form-action 'self'", "X-Frame-Options": "DENY"}


async def link_key(database: Database) -> bytes:
    """The key that signs e-mail links, made on first use and shared by every worker."""
    meta = database.db.get_collection("meta", write_concern=database.write_concern)
    found = await meta.find_one({"_id": KEY_ID})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):  # another worker's first: theirs it is
            await meta.insert_one({"_id": KEY_ID, "key": secrets.token_bytes(32)})
        found = await meta.find_one({"_id": KEY_ID})
    assert found is not None
    return bytes(found["key"])


def _channel(request: web.Request) -> EmailChannel | None:
    channel = request.app[CHANNELS].get("email")
    return channel if isinstance(channel, EmailChannel) else None


async def track(request: web.Request) -> web.StreamResponse:
    """An open or a click: recorded (best effort), then the pixel or the redirect."""
    channel = _channel(request)
    if channel is None:
        return json_error(404, "e-mail is off")
    try:
        kind, fields = read_token(channel.link_key, request.match_info["token"])
    except BadSignature:
        return json_error(404, "unknown link")
    if kind not in ("open", "click") or not fields.get("m") or (
            kind == "click" and not fields.get("u")):
        return json_error(404, "unknown link")
    try:
        await _record(request, kind, fields)
    except Exception:  # the database away: the customer still gets the page
        log.warning("e-mail %s of message %s not recorded", kind, fields.get("m"),
                    exc_info=True)
    if kind == "click":
        try:
            redirect = web.HTTPFound(fields["u"], headers=NO_STORE)
        except ValueError:  # only our own signed targets get here, and they parse
            return json_error(404, "unknown link")
        raise redirect
    return web.Response(body=PIXEL, content_type="image/gif", headers=NO_STORE)


async def _record(request: web.Request, kind: str, fields: dict[str, str]) -> None:
    runtime = request.app[RUNTIME]
    now = request.app[CLOCK].now()
    if fields.get("p"):
        await runtime.accept_channel_input("email", DeliveryStatus(
            channel="email", provider_id=fields["p"], status="read",
            recipient=fields.get("a"), at=now))
    customer = fields.get("c")
    if not customer:
        return
    if kind == "click":
        event_id = f"email:clicked:{fields['m']}:{click_id(fields['u'])}"
        event = StoreEvent(id=event_id, type="email.clicked", occurred_at=now,
                           customer=CustomerInfo(id=customer), source="email",
                           data={"message_id": fields["m"], "url": fields["u"]})
    else:
        event_id = f"email:opened:{fields['m']}"
        event = StoreEvent(id=event_id, type="email.opened", occurred_at=now,
                           customer=CustomerInfo(id=customer), source="email",
                           data={"message_id": fields["m"]})
    await runtime.accept_customer_event(customer, event, event_id)


def _fields(request: web.Request, wanted: LinkKind, *needed: str) -> dict[str, str] | None:
    """The fields of the request's token when it is a ``wanted`` link carrying ``needed``."""
    channel = _channel(request)
    if channel is None:
        return None
    try:
        kind, fields = read_token(channel.link_key, request.match_info["token"])
    except BadSignature:
        return None
    return fields if kind == wanted and all(fields.get(name) for name in needed) else None


def _unsubscribe_fields(request: web.Request) -> dict[str, str] | None:
    return _fields(request, "unsubscribe", "a", "m")


def _answer_fields(request: web.Request) -> dict[str, str] | None:
    return _fields(request, "answer", "a", "m", "i")


async def answer_page(request: web.Request) -> web.Response:
    """The choice a link stands for, with one button: a GET never answers (link scanners)."""
    fields = _answer_fields(request)
    if fields is None:
        return _page(404, "Enlace desconocido / Unknown link", "")
    title = fields.get("t") or fields["i"]
    form = (f'<form method="post"><p>{html.escape(_masked(fields["a"]))}</p>'
            f'<button type="submit">{html.escape(title)}</button></form>')
    return _page(200, "Tu respuesta / Your answer", form)


async def answer(request: web.Request) -> web.Response:
    """The page's button: the choice reaches the customer's flows as a tapped button would.

    Stored before it is answered, as the customer's message on e-mail
    (kind ``choice``), deduplicated per e-mail: the first answer to a
    message counts; another click on it changes nothing.
    """
    fields = _answer_fields(request)
    if fields is None:
        return json_error(404, "unknown link")
    message = InboundMessage(
        channel="email", provider_id=f"answer:{fields['m']}", sender=fields["a"],
        kind="choice", text=fields.get("t") or fields["i"], choice_id=fields["i"],
        at=request.app[CLOCK].now())
    runtime = request.app[RUNTIME]
    first = await runtime.accept_channel_input("email", message)
    if first and fields.get("p"):
        # Answered means read, as a click does (images, so the open pixel, are
        # often off). Best effort, like a click's: the answer is stored already.
        try:
            await runtime.accept_channel_input("email", DeliveryStatus(
                channel="email", provider_id=fields["p"], status="read",
                recipient=fields["a"], at=message.at))
        except Exception:
            log.warning("the read of answered message %s not recorded", fields["m"],
                        exc_info=True)
    said = ("¡Gracias! Recibimos tu respuesta. / Thank you: your answer is in." if first else
            "Ya teníamos tu respuesta a este correo. / This e-mail was already answered.")
    return _page(200, "Listo / Done", f"<p>{html.escape(said)}</p>")


async def unsubscribe_page(request: web.Request) -> web.Response:
    """A page with one button: a GET itself never unsubscribes (link scanners follow links)."""
    fields = _unsubscribe_fields(request)
    if fields is None:
        return _page(404, "Enlace desconocido / Unknown link", "")
    form = (f'<form method="post"><p>{html.escape(_masked(fields["a"]))}</p>'
            '<button type="submit">Darme de baja / Unsubscribe</button></form>')
    return _page(200, "¿Dejar de recibir estos correos? / Stop these e-mails?", form)


async def unsubscribe(request: web.Request) -> web.Response:
    """One-click (RFC 8058) or the page's button: e-mail marketing revoked, stored first."""
    fields = _unsubscribe_fields(request)
    if fields is None:
        return json_error(404, "unknown link")
    one_click = (await request.post()).get("List-Unsubscribe") == "One-Click"
    change = ConsentChange(
        channel="email", provider_id=f"unsubscribe:{fields['m']}", sender=fields["a"],
        state="revoked", via="unsubscribe_link", at=request.app[CLOCK].now(),
        detail="one-click unsubscribe (List-Unsubscribe-Post)" if one_click
        else "unsubscribe page")
    await request.app[RUNTIME].accept_channel_input("email", change)
    if one_click:
        return web.json_response({"unsubscribed": True}, headers=NO_STORE)
    return _page(200, "Listo / Done",
                 "<p>No vas a recibir más correos como este. / "
                 "You will not get e-mails like this any more.</p>")


def _masked(address: str) -> str:
    """``a***@example.com``: the page says which address without showing it whole."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _page(status: int, title: str, body: str) -> web.Response:
    text = (f'<!doctype html><html lang="es"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head><body style=\"font-family:sans-serif;"
            f'max-width:32rem;margin:3rem auto;padding:0 1rem"><h1>{html.escape(title)}</h1>'
            f"{body}</body></html>")
    return web.Response(status=status, text=text, content_type="text/html",
                        headers=PAGE_HEADERS)


async def _link_key_ctx(app: web.Application) -> AsyncIterator[None]:
    """Give the e-mail channel (when it is on) the key every worker signs links with."""
    channel = app[CHANNELS].get("email")
    if isinstance(channel, EmailChannel):
        channel.link_key = await link_key(app[DATABASE])
    yield


def add_email_routes(app: web.Application) -> None:
    """The link routes, and the key's loading (after the channels are built)."""
    app.cleanup_ctx.append(_link_key_ctx)
    app.router.add_get("/t/{token}", track)
    app.router.add_get("/r/{token}", answer_page)
    app.router.add_post("/r/{token}", answer)
    app.router.add_get("/u/{token}", unsubscribe_page)
    app.router.add_post("/u/{token}", unsubscribe)
