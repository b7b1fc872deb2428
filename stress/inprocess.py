"""The whole service in this process, for the fuzz, consent and security parts.

The same app ``server.create_app`` builds for production, served by aiohttp's
test server on loopback, with the loopback provider fakes of ``tests/fakes``
and a real MongoDB wire-protocol server: ``MONGODB_URI`` when set, else the
embedded server in memory (as the test suite's session fixture). Requests
go through a real HTTP client, so routing, middlewares and body limits are
the ones a provider meets.

A part that drives Hypothesis runs each generated case with
``loop.run_until_complete``: Hypothesis calls a plain function per example,
and :class:`LoopService` keeps the app on its own event loop between those
calls (the runtime's background loops run whenever a case is awaited).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.test_utils import TestClient, TestServer

from bot.http.appkeys import DATABASE
from bot.infra.database import Database
from server import create_app
from tests.fakes.smtp import FakeSmtp
from tests.support.app import Fakes, Service, email_settings, make_settings

SERVICE_LOGGERS = ("chasqui", "bot", "channels", "store_events", "rules", "server",
                   "aiohttp.server", "aiohttp.web")


@dataclass
class Running:
    """A started service: its HTTP client, the provider fakes and the app."""

    service: Service
    fakes: Fakes
    app: web.Application

    @property
    def database(self) -> Database:
        return self.app[DATABASE]


@contextlib.asynccontextmanager
async def running(mongo_uri: str, **overrides: Any) -> AsyncIterator[Running]:
    """The service on a fresh database, with fakes; settings as the tests' plus ``overrides``."""
    fakes = Fakes()
    await fakes.start()
    relay = FakeSmtp().start()  # e-mail on too, so its routes are exercised like the others
    try:
        settings = make_settings(mongo_uri, f"s_{uuid.uuid4().hex[:12]}", fakes,
                                 **{**email_settings(relay), **overrides})
        app = create_app(settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield Running(Service(client), fakes, app)
        finally:
            await client.close()
    finally:
        relay.stop()
        await fakes.close()


def app_routes() -> list[tuple[str, str]]:
    """``(method, canonical path)`` of every route ``create_app`` registers, HEAD left out.

    Read off the router of an app that is built but not started (no
    database is reached), so a route added later is listed here at once.
    """
    app = create_app(make_settings("mongodb://127.0.0.1:1", "unused", Fakes()))
    found = {(route.method, route.resource.canonical) for route in app.router.routes()
             if route.method != "HEAD" and route.resource is not None}
    return sorted(found)


class LoopService:
    """A service kept on a private event loop, driven by synchronous code (Hypothesis)."""

    def __init__(self, mongo_uri: str, **overrides: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._context = running(mongo_uri, **overrides)
        self.running: Running = self.loop.run_until_complete(self._context.__aenter__())

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        try:
            self.run(self._context.__aexit__(None, None, None))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def __enter__(self) -> LoopService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client_error(record: logging.LogRecord) -> bool:
    """aiohttp's own 4xx for a request it could not parse (e.g. a URL over 8 KiB).

    aiohttp answers those 400 itself, before any handler, yet logs them at
    ERROR; they are the client's fault, not a crash of the service.
    """
    error = record.exc_info[1] if record.exc_info else None
    return isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500


class ErrorLog(logging.Handler):
    """Collects the service's ERROR records: each is a crash the service survived.

    A request handler's last-resort guard (500), a parser's unexpected
    failure (the "unreadable" guard) and a decide or send loop error all log
    at ERROR with the traceback; counting them counts crashes.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not _client_error(record):
            self.records.append(record)

    @contextlib.contextmanager
    def attached(self) -> Iterator[ErrorLog]:
        loggers = [logging.getLogger(name) for name in SERVICE_LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)

    def summary(self, limit: int = 3) -> str:
        """The first few distinct messages, for a failure report."""
        seen = list(dict.fromkeys(r.getMessage()[:200] for r in self.records))
        return "; ".join(seen[:limit])
