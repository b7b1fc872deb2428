"""HTTP handlers for provider webhooks: verify -> parse -> persist -> answer.

One handler serves every channel; the provider's message and status ids
make the inbox keys, so a webhook Meta or Twilio retries is stored once.
Decisions happen after the answer, so a slow rule never makes a provider
time out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.core.errors import BadPayload, BadSignature, WebhookOff
from bot.http.appkeys import CHANNELS, CLOCK, RUNTIME, SETTINGS
from bot.http.common import json_error
from channels.email_routes import add_email_routes
from channels.registry import build_channels
from channels.whatsapp import WhatsAppChannel

log = logging.getLogger(__name__)

ROUTES = {
    "/webhooks/whatsapp": "whatsapp",
    "/webhooks/sms": "sms",
    "/webhooks/sms/status": "sms",
    "/webhooks/telegram": "telegram",
    "/webhooks/email": "email",
}


def _off(name: str) -> web.Response:
    return json_error(503, f"the {name} channel is off: its settings are incomplete")


def _handler(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        channel = request.app[CHANNELS].get(name)
        if channel is None:
            return _off(name)
        body = await request.read()
        url = request.app[SETTINGS].base_url + request.path_qs
        try:
            channel.verify(request.headers, body, url)
        except BadSignature as exc:
            return json_error(401, str(exc))
        except WebhookOff as exc:
            return json_error(503, str(exc))
        runtime = request.app[RUNTIME]
        try:
            parsed = channel.parse(request.headers, body)
        except BadPayload as exc:
            return json_error(400, str(exc))
        except Exception as exc:
            # A parser bug, not a bad body: the webhook is authentic (signed)
            # and a retry would fail the same way, so it is kept for
            # inspection and answered so the provider stops retrying. The log
            # names the route, error and kept id; never headers or secrets.
            kept = f"{name}:unreadable:{_digest(body)}"
            log.error("%s webhook: parsing failed unexpectedly (%s); body kept as %s",
                      name, type(exc).__name__, kept, exc_info=True)
            await runtime.keep_ignored(kept, name, f"unreadable: {type(exc).__name__}",
                                       _text(body))
            return web.json_response({"ignored": True, "reason": "unreadable"})
        if not parsed:
            # Nothing the service handles (an unsupported message type, a
            # system notice): kept for inspection, answered so it is not retried.
            await runtime.keep_ignored(f"{name}:ignored:{_digest(body)}", name, "unhandled",
                                       _text(body))
            return web.json_response({"ignored": True})
        await asyncio.gather(*(runtime.accept_channel_input(name, item) for item in parsed))
        ack = channel.ack(parsed)
        return web.Response(status=ack.status, text=ack.body, content_type=ack.content_type)

    return handle


def _digest(body: bytes) -> str:
    """A kept body's id: the same body posted again is a duplicate."""
    return hashlib.sha256(body).hexdigest()[:32]


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


async def whatsapp_handshake(request: web.Request) -> web.Response:
    """Meta's GET verification: echo ``hub.challenge`` when the token matches."""
    channel = request.app[CHANNELS].get("whatsapp")
    if not isinstance(channel, WhatsAppChannel):
        return _off("whatsapp")
    query = request.query
    if any(len(query.getall(name, ())) > 1
           for name in ("hub.mode", "hub.verify_token", "hub.challenge")):
        # Meta sends each once; a repeat could pair the right token with another
        # challenge (which one counts is ambiguous), so the request is refused.
        return web.Response(status=403, text="verification failed: a hub.* parameter repeats")
    try:
        challenge = channel.verify_handshake(
            query.get("hub.mode", ""), query.get("hub.verify_token", ""),
            query.get("hub.challenge", ""))
    except BadSignature:
        return web.Response(status=403, text="verification failed")
    return web.Response(text=challenge)


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    app[CHANNELS] = build_channels(app[SETTINGS])
    for channel in app[CHANNELS].values():
        if hasattr(channel, "clock"):  # inbound times on the service's clock (virtual in tests)
            channel.clock = app[CLOCK].now
    try:
        yield
    finally:
        for channel in app[CHANNELS].values():
            await channel.close()


def add_channel_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_channels_ctx)
    app.router.add_get("/webhooks/whatsapp", whatsapp_handshake)
    for path, name in ROUTES.items():
        app.router.add_post(path, _handler(name))
    add_email_routes(app)  # after _channels_ctx: its context needs the channels
