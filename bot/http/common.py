"""Middlewares every route shares: JSON errors, admin auth, metrics."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.http.appkeys import METRICS, SETTINGS
from bot.infra.settings import secret

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024
PROTECTED_PREFIXES = ("/api/", "/admin/")


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """The one error shape of the service: ``{"error": "..."}``."""
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as JSON; never let an exception crash a request."""
    try:
        return await handler(request)
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
    """Bearer ``ADMIN_TOKEN`` on ``/api/*`` and ``/admin/*``; unset token locks them."""
    if request.path.startswith(PROTECTED_PREFIXES):
        expected = secret(request.app[SETTINGS].admin_token)
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(token.strip().encode(), expected.encode())
        ):
            return json_error(401, "missing or wrong bearer token")
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
