"""HTTP handlers for store webhooks: verify -> parse -> persist -> answer.

One handler serves every adapter in ``store_events.registry`` at the
adapter's ``path``. The body is stored (with the parsed events) before the
answer, so a store's retry after a lost answer is a duplicate, and nothing
acknowledged is lost; deciding happens afterwards in the runtime.

Each event is stamped with the service clock at intake (``received_at``),
here and not in the adapters, which stay pure: a store's own times count
as no later than that moment (:mod:`bot.core.store_clock`).

A signed body is never answered 500 for what it holds: what the service
cannot use or store is a 400 naming the field (the adapters, and
``bot.http.json_body`` under them); a parser bug is caught last
(:func:`_unreadable`): the body is kept, and the store is told without a 5xx.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.core.errors import BadPayload, BadSignature
from bot.core.store_clock import stamp_received
from bot.http.appkeys import RUNTIME, SETTINGS
from bot.http.common import json_error
from store_events.base import StoreAdapter
from store_events.registry import ADAPTER_CLASSES, build_adapters

log = logging.getLogger(__name__)
STORE_ADAPTERS: web.AppKey[dict[str, StoreAdapter]] = web.AppKey("store_adapters")


def _handler(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        adapter = request.app[STORE_ADAPTERS].get(name)
        if adapter is None:
            return json_error(503, f"the {name} endpoint is off: its webhook secret is not set")
        body = await request.read()
        headers = request.headers
        try:
            adapter.verify(headers, body)
        except BadSignature as exc:
            return json_error(401, str(exc))
        try:
            delivery = adapter.delivery_id(headers, body)
            topic = adapter.topic(headers, body)
            events = adapter.parse(headers, body)
        except BadPayload as exc:
            return json_error(400, str(exc))
        except Exception as exc:
            return await _unreadable(request, name, body, exc)
        runtime = request.app[RUNTIME]
        dedupe = f"{name}:delivery:{delivery}"
        raw = body.decode("utf-8", errors="replace")
        if events is None:
            new = await runtime.keep_ignored(dedupe, name, topic, raw)
            return web.json_response({"ignored": True} if new else {"duplicate": True})
        # Events are keyed by their own id: a store's retry carries the same
        # id, and so does a repeat that a store sends under a new delivery id
        # (WooCommerce re-sends "completed" on every later edit of an order).
        received = runtime.clock.now()
        try:
            results = [
                await runtime.accept_store_event(stamp_received(event, received),
                                                 f"{name}:{event.id}", raw if i == 0 else None)
                for i, event in enumerate(events)
            ]
        except BadPayload as exc:  # the database cannot hold it (bot.runtime.inbox)
            return json_error(400, str(exc))
        if results and not any(results):
            return web.json_response({"duplicate": True})
        if name == "events" and events:
            return web.json_response({"id": events[0].id}, status=202)
        return web.json_response({"ok": True, "events": len(events)})

    return handle


async def _unreadable(request: web.Request, name: str, body: bytes,
                      error: Exception) -> web.Response:
    """The last resort for a parser bug on a signed body: keep it, and answer without a 500.

    A retry would fail the same way, so Shopify and WooCommerce, which retry
    for hours, get 200 ignored-and-kept (as the channels do); ``/events`` is
    our integrator's, who is told with a 400 that the body was not read. The
    log names the route, the error and the kept id; never headers or secrets.
    """
    kept = f"{name}:unreadable:{hashlib.sha256(body).hexdigest()[:32]}"
    log.error("%s webhook: parsing failed unexpectedly (%s); body kept as %s",
              name, type(error).__name__, kept, exc_info=True)
    await request.app[RUNTIME].keep_ignored(kept, name, f"unreadable: {type(error).__name__}",
                                            body.decode("utf-8", errors="replace"))
    if name == "events":
        return json_error(400, f"body could not be read ({type(error).__name__}); "
                               f"it is kept for inspection as {kept}")
    return web.json_response({"ignored": True, "reason": "unreadable"})


async def _adapters_ctx(app: web.Application) -> AsyncIterator[None]:
    app[STORE_ADAPTERS] = build_adapters(app[SETTINGS])
    yield


def add_store_routes(app: web.Application) -> None:
    """A route per known adapter; adapters whose secret is unset answer 503."""
    app.cleanup_ctx.append(_adapters_ctx)
    for name, cls in ADAPTER_CLASSES.items():
        app.router.add_post(cls.path, _handler(name))
