"""HTTP handlers for store webhooks: verify -> parse -> persist -> answer.

One handler serves every adapter in ``store_events.registry`` at the
adapter's ``path``. The body is stored (with the parsed events) before the
answer, so a store's retry after a lost answer is a duplicate, and nothing
acknowledged is lost; deciding happens afterwards in the runtime.

Each event is stamped with the service clock at intake (``received_at``),
here and not in the adapters, which stay pure: a store's own times count
as no later than that moment (:mod:`store_events.store_clock`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.core.errors import BadPayload, BadSignature
from bot.http.appkeys import RUNTIME, STORE_ADAPTERS
from bot.http.common import json_error
from store_events.registry import ADAPTER_CLASSES, build_adapters
from store_events.store_clock import stamp_received


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
        results = [
            await runtime.accept_store_event(stamp_received(event, received), f"{name}:{event.id}",
                                             raw if i == 0 else None)
            for i, event in enumerate(events)
        ]
        if results and not any(results):
            return web.json_response({"duplicate": True})
        if name == "events" and events:
            return web.json_response({"id": events[0].id}, status=202)
        return web.json_response({"ok": True, "events": len(events)})

    return handle


async def _adapters_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    from bot.http.appkeys import SETTINGS

    app[STORE_ADAPTERS] = build_adapters(app[SETTINGS])
    yield


def add_store_routes(app: web.Application) -> None:
    """A route per known adapter; adapters whose secret is unset answer 503."""
    app.cleanup_ctx.append(_adapters_ctx)
    for name, cls in ADAPTER_CLASSES.items():
        app.router.add_post(cls.path, _handler(name))
