"""Chasqui's HTTP entry point: ``create_app(settings)`` and ``main()``.

Wiring only: routes, middlewares and long-lived resources (database, runtime
loops, provider clients) as ``cleanup_ctx`` generators, torn down in reverse
order. Handlers live next to what they serve (``bot/http/``,
``channels/webhooks.py``, ``store_events/webhooks.py``). This is where the
edges are wired in: ``bot/`` imports no provider or store, and the runtime
gets the registry's channels through the ``CHANNELS`` app key.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from bot.http.appkeys import CLOCK, DATABASE, METRICS, RUNTIME, SETTINGS
from bot.http.common import (
    INTAKE_SECONDS,
    MAX_BODY,
    auth_middleware,
    error_middleware,
    json_error,
    metrics_middleware,
    read_json,
)
from bot.infra.clock import VirtualClock, make_clock
from bot.infra.database import open_database
from bot.infra.flow_config import FlowConfigError, select_flows
from bot.infra.malloc import keep_large_blocks_out_of_the_heap
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings, format_settings_error

log = logging.getLogger("chasqui")
MAX_ADVANCE = 100 * 365 * 86400  # seconds one clock advance may move


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers a ping within ``INTAKE_SECONDS``, else 503.

    The same time an input gets to be stored before it is answered 503, so
    ``/healthz`` and the webhooks agree on when the database is away. It was
    1 s, and the fuzz saw one ping take longer while nothing else failed: a
    load balancer would have taken a working service out.
    """
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), timeout=INTAKE_SECONDS)
    except Exception:
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def advance_clock(request: web.Request) -> web.Response:
    """Move virtual time and run everything that fell due (404 unless ``CLOCK=virtual``)."""
    clock = request.app[CLOCK]
    if not isinstance(clock, VirtualClock):
        return json_error(404, "the clock is not virtual (set CLOCK=virtual)")
    body = await read_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return json_error(400, "seconds: a number >= 0 is required")
    if seconds > MAX_ADVANCE:  # datetimes end at year 9999; a fuzz run found the 500
        return json_error(400, f"seconds: at most {MAX_ADVANCE} (100 years) at a time")
    now = await request.app[RUNTIME].advance(float(seconds))
    return web.json_response({"now": now.isoformat().replace("+00:00", "Z")})


def create_app(settings: Settings) -> web.Application:
    """The whole service as an aiohttp application (used by ``main`` and tests)."""
    from bot.http.agent_api import add_api_routes
    from bot.http.campaigns_api import add_campaign_routes
    from bot.http.consent_api import add_consent_routes
    from bot.http.console import add_console_routes
    from bot.http.openapi import add_openapi_route
    from bot.http.stats_api import add_stats_routes
    from bot.runtime.loops import runtime_context
    from channels.email import InboundEmail
    from channels.webhooks import add_channel_routes
    from store_events.webhooks import add_store_routes

    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[CLOCK] = make_clock(settings.clock)
    app[METRICS] = Metrics()

    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_database(settings) as database:
            app[DATABASE] = database
            yield

    app.cleanup_ctx.append(database_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/clock/advance", advance_clock)
    add_channel_routes(app)  # also opens the channels (cleanup_ctx)
    add_store_routes(app)
    add_api_routes(app)
    add_stats_routes(app)
    add_consent_routes(app)
    add_campaign_routes(app)
    add_openapi_route(app, {"/webhooks/email": InboundEmail})  # an edge's body model
    add_console_routes(app)
    app.cleanup_ctx.append(runtime_context)  # last: it needs the database and channels
    return app


def listen(host: str, port: int) -> socket.socket:
    """The HTTP socket, bound and listening, before anything else starts.

    The embedded database picks a free port while the app starts. When the
    HTTP port was bound only after that, the database sometimes took
    ``PORT`` itself: the service died with "address already in use" while
    health checks reached the database. Holding the port first makes the two
    distinct by construction; requests arriving before start-up finishes
    wait in the backlog.
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address, family=family, backlog=128)


# Libraries whose INFO lines carry secrets: aiohttp's access log has query
# strings (WhatsApp's hub.verify_token), httpx logs every URL it calls and
# the Bot API's URLs hold the Telegram bot token (stress/security.py found it).
QUIET_LOGGERS = ("aiohttp.access", "httpx")


def quiet_loggers() -> None:
    """Only warnings from the libraries of :data:`QUIET_LOGGERS`, whatever ``LOG_LEVEL`` is."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main() -> None:
    """Read the environment, validate it, and serve until SIGINT/SIGTERM."""
    try:
        settings = Settings()
    except ValidationError as exc:
        print(format_settings_error(exc), file=sys.stderr)
        raise SystemExit(2) from None
    try:
        select_flows(settings)  # the flow settings file, checked before anything starts
    except FlowConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_loggers()
    keep_large_blocks_out_of_the_heap()
    try:
        sock = listen(settings.host, settings.port)
    except OSError as exc:
        print(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)
        raise SystemExit(1) from None
    log.info("starting chasqui on %s:%s — %s", settings.host, settings.port,
             settings.enabled_summary())
    # run_app handles SIGINT and SIGTERM: it stops accepting, lets in-flight
    # requests finish (shutdown_timeout), then runs the cleanup contexts,
    # which stop the runtime loops and the embedded database.
    web.run_app(create_app(settings), sock=sock, shutdown_timeout=10, print=None)


if __name__ == "__main__":
    main()
