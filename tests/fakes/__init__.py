"""Loopback fakes of the messaging providers' HTTP APIs.

Each fake is a real aiohttp server on 127.0.0.1 that answers like the
provider's documented API (routes, status codes, success and error bodies),
records what it received, and can be told to fail the next calls. Channels
are pointed at it through ``WHATSAPP_API_URL`` / ``TWILIO_API_URL`` /
``TELEGRAM_API_URL``, so tests exercise the real client code end to end.

Usage::

    fake = FakeWhatsApp(token="t", phone_id="123")
    await fake.start()                      # or: async with FakeWhatsApp(...) as fake:
    settings = Settings(..., whatsapp_api_url=fake.url)
    fake.fail_next(status=429, code=130429, retry_after=1)
    ...
    assert fake.requests[-1].json["type"] == "interactive"
    assert fake.sent["5491122334455"][0]["text"]["body"] == "Hola"
    await fake.close()

The fakes live in :mod:`tests.fakes.whatsapp`, :mod:`tests.fakes.twilio` and
:mod:`tests.fakes.telegram`; this module holds what they share.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web

HIDDEN_HEADERS = frozenset({"authorization"})
log = logging.getLogger("tests.fakes")


@dataclass
class RecordedRequest:
    """One request a fake received, parsed; credentials are left out.

    Attributes:
        method: the HTTP method.
        path: the URL path, e.g. ``/v21.0/123/messages``.
        query: the query parameters.
        headers: the request headers except ``Authorization``.
        json: the body parsed as JSON, when it was JSON.
        form: the body parsed as form fields (urlencoded or multipart), when it was a form.
        authorized: whether the credentials were the right ones.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] | None = None
    authorized: bool = False


@dataclass
class Failure:
    """A scripted failure: answer the next matching calls with this error."""

    status: int
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    times: int = 1
    only: str | None = None  # e.g. a Telegram method name; None matches every call
    delay: float = 0.0  # seconds before answering; with status 0 the call then succeeds


@dataclass
class _Parsed:
    json: Any = None
    form: dict[str, str] | None = None
    raw: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


class FakeProvider:
    """What every fake shares: the server's lifecycle, the records and the failure script.

    Subclasses add their routes in :meth:`routes` and answer scripted failures
    in their provider's error format with :meth:`error_response`.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.sent: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ids: list[str] = []  # provider ids of accepted messages (for status webhooks)
        self.url = ""
        self._failures: deque[Failure] = deque()
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The provider's routes (overridden)."""
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port) and return the base URL, also in ``.url``."""
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def reset(self) -> None:
        """Forget what was received and any failures still scripted."""
        self.requests.clear()
        self.sent.clear()
        self.ids.clear()
        self._failures.clear()

    # -- failures ----------------------------------------------------------------

    def clear_failures(self) -> None:
        """Drop the failures still scripted (the next calls succeed)."""
        self._failures.clear()

    def _script(self, failure: Failure) -> None:
        self._failures.append(failure)

    def _take_failure(self, name: str = "") -> Failure | None:
        """The failure for this call, if one is scripted (consuming one of its ``times``)."""
        for failure in self._failures:
            if failure.only is None or failure.only == name:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def slow_next(self, seconds: float, times: int = 1, only: str | None = None) -> None:
        """Answer the next ``times`` calls normally, but only after ``seconds``.

        Longer than the client's own timeout, this is a provider that times
        out: a client that gave up meanwhile finds nothing recorded as sent
        (a real provider may have sent it; the fake keeps the honest case).
        """
        self._script(Failure(0, delay=seconds, times=times, only=only))

    async def _scripted(self, request: web.Request, name: str = "") -> Failure | None:
        """The scripted error to answer this call with, after any scripted delay.

        None means: answer normally. A slow call whose client went away while
        it waited is answered with an error nobody reads, and is not recorded.
        """
        failure = self._take_failure(name)
        if failure is None:
            return None
        if failure.delay:
            await asyncio.sleep(failure.delay)
            transport = request.transport
            if transport is None or transport.is_closing():
                return Failure(499, message="client closed the connection")
        return failure if failure.status else None

    # -- recording ---------------------------------------------------------------

    async def _record(self, request: web.Request, authorized: bool) -> RecordedRequest:
        parsed = await _parse_body(request)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k: v for k, v in request.headers.items() if k.lower() not in HIDDEN_HEADERS},
            json=parsed.json,
            form=parsed.form,
            authorized=authorized,
        )
        self.requests.append(record)
        log.info("%s %s %s", record.method, record.path,
                 json.dumps(record.json if record.json is not None else record.form,
                            ensure_ascii=False))
        return record


async def _parse_body(request: web.Request) -> _Parsed:
    """The body as JSON or form fields, whatever the client sent."""
    if not request.can_read_body:
        return _Parsed()
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        form = await request.post()
        return _Parsed(form={k: v if isinstance(v, str) else "<file>" for k, v in form.items()})
    raw = await request.read()
    if ctype == "application/x-www-form-urlencoded":
        return _Parsed(form=dict(parse_qsl(raw.decode(), keep_blank_values=True)), raw=raw)
    try:
        return _Parsed(json=json.loads(raw), raw=raw)
    except ValueError:
        return _Parsed(raw=raw)
