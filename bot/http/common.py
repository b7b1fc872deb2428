"""Middlewares every route shares: JSON errors, admin auth, metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

from bot.http.agents import ACTOR, TOKEN_ACTOR
from bot.http.appkeys import METRICS, SETTINGS
from bot.http.sessions import csrf_ok, current_session, session_actor
from bot.infra.settings import secret

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024
PROTECTED_PREFIXES = ("/api/", "/admin/")
# How long an input may take to be stored before the answer is 503. Below
# the shortest provider timeout (Shopify gives a webhook 5 s), so the
# provider hears "retry" rather than timing out; far above an insert's
# milliseconds, even under a burst (the load run's p99 is in README, "Stress").
INTAKE_SECONDS = 3.0


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """The one error shape of the service: ``{"error": "..."}``."""
    return web.json_response({"error": message, **extra}, status=status)


def database_unavailable() -> web.Response:
    """503: the input was not (known to be) stored, so the provider must retry."""
    return json_error(503, "database unavailable")


def bounded(request: web.Request) -> bool:
    """Whether a request gets at most ``INTAKE_SECONDS`` (inputs: every POST but /admin/)."""
    return request.method == "POST" and not request.path.startswith("/admin/")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as JSON; never let an exception crash a request.

    A database that is away (paused, partitioned, restarting) answers no
    socket error: the driver waits on the open connection indefinitely, and
    webhooks used to hang until it came back (10 s paused: 10 s hung, then
    200) or the provider gave up. So an input gets ``INTAKE_SECONDS`` to be
    stored; after that, or on the driver's connection errors, the answer is
    503 ``{"error": "database unavailable"}``, which every provider retries.
    An insert still in flight may land after the 503; the retry is then a
    duplicate, so nothing is acknowledged that was not stored and nothing
    stored is lost.
    """
    try:
        if not bounded(request):
            return await handler(request)
        timeout = asyncio.timeout(INTAKE_SECONDS)
        try:
            async with timeout:
                return await handler(request)
        except TimeoutError:
            if not timeout.expired():
                raise
            log.warning("%s %s: not stored within %g s; answered 503", request.method,
                        request.path, INTAKE_SECONDS)
            return database_unavailable()
    except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
        log.warning("%s %s: database unavailable (%s)", request.method, request.path,
                    type(exc).__name__)
        return database_unavailable()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == "application/json":
            raise
        message = exc.reason if exc.status != 413 else "body larger than 1 MiB (1048576 bytes)"
        return json_error(exc.status, message)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who may call ``/api/*`` and ``/admin/*``, recorded as the request's :class:`Actor`.

    - ``Authorization: Bearer ADMIN_TOKEN``: automation, with an admin's rights
      (an unset token locks this way in);
    - on ``/api/*`` only, a console session cookie: the signed-in agent. A
      change (any method but GET/HEAD) must also carry the session's CSRF
      token as ``X-CSRF-Token``, since browsers send cookies by themselves.
    """
    if request.path.startswith(PROTECTED_PREFIXES):
        given = request.headers.get("Authorization", "")
        if given or not request.path.startswith("/api/"):
            expected = secret(request.app[SETTINGS].admin_token)
            scheme, _, token = given.partition(" ")
            if (
                not expected
                or scheme.lower() != "bearer"
                or not hmac.compare_digest(token.strip().encode(), expected.encode())
            ):
                return json_error(401, "missing or wrong bearer token")
            request[ACTOR] = TOKEN_ACTOR
        else:
            actor = await session_actor(request)
            if actor is None:
                return json_error(401, "missing or wrong bearer token or session")
            if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
                    await current_session(request), request.headers.get("X-CSRF-Token")):
                return json_error(403, "missing or wrong X-CSRF-Token")
            request[ACTOR] = actor
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests and time them by route pattern (not by raw path)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route, request.method).observe(time.perf_counter() - started)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 naming the problem."""
    body = await request.read()
    try:
        return json.loads(body)
    except ValueError as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None
    except RecursionError:  # json's limit on nesting (a 1 MiB body can nest far deeper)
        raise bad_request("body is not JSON the service reads: nested too deeply") from None


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 whose body is the service's JSON error shape."""
    return web.HTTPBadRequest(
        text=json.dumps({"error": message}), content_type="application/json"
    )


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (``Z``), as every API answer writes times; a naive time counts as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_safe(value: Any) -> Any:
    """A stored value in JSON: times as ISO strings, other BSON values as text."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # ObjectId, Decimal128, ...
