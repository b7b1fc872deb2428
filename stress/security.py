"""Security checks (issue 17, part 6), each over what the app really has.

* **Auth on every route.** The routes are read off the app's router, so a
  route added later is checked at once: every ``/api/*`` and ``/admin/*``
  route answers 401 without a bearer, with a wrong one and with the right
  token under another scheme; every webhook (``/webhooks/*``, ``/events``)
  answers 401 to a body signed with the wrong secret and to one not signed
  at all; the WhatsApp verification answers 403 to a wrong token; console
  pages send a visitor without a session to the sign-in page (or 401).
  Any route outside :data:`PUBLIC` and those families must refuse too.
* **Constant-time comparisons.** An AST pass over the modules that check
  signatures, tokens and passwords (``channels/``, ``store_events/``,
  ``bot/http/``): no ``==``/``!=`` whose operand
  names a signature, token, secret, digest, MAC, password or CSRF value
  (a literal on the other side is allowed), and every one of those modules
  that compares such values calls ``hmac.compare_digest`` /
  ``secrets.compare_digest``.
* **Nothing secret in the logs.** A scenario at INFO through the service
  (signed webhooks from customers' phones, store events with phones, the
  admin token on the agent API, a Telegram deep link, the WhatsApp
  handshake, provider errors naming the number) with every record
  captured; then the text is searched for every secret and token in the
  settings and every full phone number of the scenario (with or without
  ``+``). Logging is configured as ``server.main`` does.
* **Cross-site form posts to the console.** When the console is served: a
  sign-in without the form's CSRF value opens no session, and every console
  ``POST`` sent with a signed-in session but no CSRF value (what a
  cross-site form can do) answers 403. Without the console the row says
  "not applicable".
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import server
from channels.email_links import make_token
from stress.harness import RUN_LOGS, RunLogs
from stress.inprocess import Running, app_routes, running
from stress.report import Row
from tests.support.app import (
    ADMIN_TOKEN,
    EVENTS_SECRET,
    PUBLIC_URL,
    SHOPIFY_SECRET,
    TG_SECRET,
    WA_SECRET,
    WA_VERIFY,
    WOO_SECRET,
    customer_event,
)
from tests.support.mongo import mongo
from tests.support.signing import (
    json_body,
    signed_twilio,
    telegram_headers,
    telegram_message_update,
    twilio_inbound_form,
    whatsapp_signature,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
)
from tests.support.store_signing import (
    events_headers,
    load_fixture,
    shopify_headers,
    woocommerce_headers,
)

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"GET /healthz", "GET /metrics", "GET /console/login", "POST /console/login",
          "GET /console/static"}
WRONG = "wrong-secret"
# The console's cookies are Secure behind an https PUBLIC_URL, and the test
# client speaks plain HTTP, so the console is checked with a plain one.
PLAIN_URL = "http://127.0.0.1"
# Modules that verify signatures, tokens and passwords.
CHECKED_SOURCES = ("channels", "store_events", "bot/http")
SECRET_NAME = re.compile(r"sig|signature|token|secret|digest|hmac|(^|_)mac$|password|csrf|hash",
                         re.IGNORECASE)


@dataclass
class Result:
    """One check: how many cases it covered and what failed."""

    checked: int = 0
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, failure: str) -> None:
        self.checked += 1
        if not ok:
            self.failures.append(failure)


# -- auth on every route ------------------------------------------------------------------


def _signed_wrong(path: str) -> dict[str, str]:
    """Headers as the provider sends them, but signed with the wrong secret."""
    body = _webhook_body(path)
    if path == "/webhooks/whatsapp":
        return {"X-Hub-Signature-256": whatsapp_signature(WRONG, body)}
    if path == "/webhooks/telegram":
        return telegram_headers(WRONG)
    if path.startswith("/webhooks/sms"):
        return signed_twilio(WRONG, PUBLIC_URL + path, twilio_inbound_form("hola"))[1]
    if path == "/webhooks/shopify":
        return shopify_headers(WRONG, body, "orders/create", uuid.uuid4().hex)
    if path == "/webhooks/woocommerce":
        return woocommerce_headers(WRONG, body, "order.created", uuid.uuid4().hex)
    return events_headers(WRONG, body)


def _webhook_body(path: str) -> bytes:
    if path.startswith("/webhooks/sms"):
        return signed_twilio(WRONG, PUBLIC_URL + path, twilio_inbound_form("hola"))[0]
    if path == "/webhooks/whatsapp":
        return json_body(whatsapp_text_webhook("hola"))
    if path == "/webhooks/telegram":
        return json_body(telegram_message_update("hola"))
    if path == "/webhooks/shopify":
        return load_fixture("shopify/orders_create.json")
    if path == "/webhooks/woocommerce":
        return load_fixture("woocommerce/order_created.json")
    return json_body(customer_event("evt_sec", "customer.created", "2026-11-24T10:00:00Z"))


def _fill(template: str, conversation: str) -> str:
    """Real ids and names in the path, so a missing check is not hidden by a 404."""
    path = (template.replace("{id}", conversation).replace("{action}", "takeover")
            .replace("{part}", "timeline").replace("{name}", "sunset"))
    return re.sub(r"\{[^}]+\}", "x", path)  # a parameter added later


ANY_BODY = json_body({"agent": "Mallory", "text": "hola", "seconds": 0, "email": "m@x.example",
                      "name": "M", "role": "admin", "password": "p" * 12})


async def check_auth(run: Running) -> Result:
    """Every route of the router refuses a caller without the right credentials."""
    result = Result()
    client = run.service.client
    await run.service.whatsapp(whatsapp_text_webhook("hola"))
    await run.service.advance(0)
    conversation = (await run.service.api("GET", "/api/conversations"))["conversations"][0]["id"]
    for method, template in app_routes():
        name = f"{method} {template}"
        path = _fill(template, conversation)
        if name in PUBLIC or template.startswith("/console/static"):
            continue
        if template.startswith(("/api/", "/admin/")):
            for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                            {"Authorization": "Bearer "}, {"Authorization": f"Basic {ADMIN_TOKEN}"},
                            {"Authorization": ADMIN_TOKEN}):
                response = await client.request(method, path, data=ANY_BODY, headers={
                    **headers, "Content-Type": "application/json"}, allow_redirects=False)
                result.expect(response.status == 401,
                              f"{name} answered {response.status} to {headers or 'no header'}")
        elif method == "POST" and (template.startswith("/webhooks/") or template == "/events"):
            body = _webhook_body(template)
            for headers in (_signed_wrong(template), {"Content-Type": "application/json"}):
                response = await client.post(path, data=body, headers=headers)
                result.expect(response.status == 401,
                              f"{name} answered {response.status} to a bad signature "
                              f"({sorted(headers)})")
        elif template in ("/t/{token}", "/r/{token}", "/u/{token}"):
            # An e-mail's links: the token is the credential. One signed with
            # another key (a changed target, address or answer) is not honoured.
            for kind in ("open", "click", "answer", "unsubscribe"):
                token = make_token(WRONG.encode() * 4, kind, m="m1", c="c1", a="a@x.example",
                                   p="<p@x>", u="https://evil.example/", i="yes", t="Sí")
                response = await client.request(method, template.replace("{token}", token),
                                                data=b"List-Unsubscribe=One-Click",
                                                allow_redirects=False)
                result.expect(response.status == 404, f"{name} answered {response.status} "
                              f"to a {kind} link signed with another key")
        elif name == "GET /webhooks/whatsapp":
            for token in (WA_VERIFY + "x", "", WA_VERIFY.upper()):
                response = await client.get(path, params={
                    "hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"})
                result.expect(response.status == 403, f"{name} answered {response.status} "
                              f"to verify token {token!r}")
        else:  # the console, and any route nobody classified: refused without a session
            response = await client.request(method, path, data=b"csrf=x",
                                            allow_redirects=False, headers={
                                                "Content-Type":
                                                    "application/x-www-form-urlencoded"})
            to_login = response.status in (302, 303) and response.headers.get(
                "Location", "").startswith("/console")  # the sign-in page, or on to it
            if response.content_type == "text/event-stream":
                response.close()
            result.expect(to_login or response.status in (401, 403),
                          f"{name} answered {response.status} without a session")
    return result


# -- constant-time comparisons ------------------------------------------------------------


def _sources() -> Iterator[Path]:
    for entry in CHECKED_SOURCES:
        path = ROOT / entry
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _names(node: ast.AST) -> list[str]:
    """The identifiers an operand mentions (names, attributes, called functions)."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.append(sub.attr)
    return found


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Tuple | ast.List | ast.Set)
        and all(isinstance(e, ast.Constant) for e in node.elts))


def _compare_digest_calls(tree: ast.AST) -> int:
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.Call)
               and isinstance(node.func, ast.Attribute) and node.func.attr == "compare_digest")


def compare_findings(source: str, name: str) -> list[str]:
    """Each ``==``/``!=`` in ``source`` between secret-looking values (no literal side)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq) or _is_literal(left) or _is_literal(right):
                continue
            secret_like = [n for n in _names(left) + _names(right) if SECRET_NAME.search(n)]
            if secret_like:
                found.append(f"{name}:{node.lineno}: `{ast.unparse(node)}` compares "
                             f"{secret_like} with {type(op).__name__}")
    return found


def check_constant_time() -> tuple[Result, int]:
    """``==`` on secret-looking values (failures), and compare_digest call sites (count)."""
    result = Result()
    digests = 0
    for path in _sources():
        source = path.read_text()
        digests += _compare_digest_calls(ast.parse(source, str(path)))
        result.checked += 1
        result.failures += compare_findings(source, str(path.relative_to(ROOT)))
    return result, digests


# -- nothing secret in the logs -----------------------------------------------------------


class Capture(logging.Handler):
    """Every record at INFO and above, formatted as ``server.main`` formats them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))

    def service_lines(self) -> list[str]:
        """The service's lines; the provider fakes (``tests.*``) play the other side."""
        return [line for name, line in self.lines if not name.startswith("tests.")]


PHONES = ("+5491122334455", "+5491155667788", "+5491166778899")


async def _scenario(run: Running) -> list[str]:
    """Traffic that carries every kind of secret and phone; returns what must not be logged."""
    service, fakes = run.service, run.fakes
    ana, bea, cai = PHONES
    await service.event(customer_event("evt_1", "checkout.started", "2026-01-01T10:00:00Z",
                                       phone=ana, consents={"whatsapp": True, "sms": True},
                                       checkout_id="k1", recovery_url="https://s.example/r/k1",
                                       total=120, currency="ARS", items=[]))
    await service.event(customer_event("evt_2", "customer.created", "2026-01-01T10:00:00Z",
                                       customer_id="cus_2", phone=bea, consents={"sms": True}))
    await service.whatsapp(whatsapp_text_webhook("Hola", phone=ana))
    await service.sms(twilio_inbound_form("hola", from_=bea))
    await service.sms(twilio_inbound_form("STOP", from_=cai))
    fakes.twilio.fail_next(400, code=21211, message=f"The 'To' number {bea} is not a valid "
                           "phone number.")
    fakes.whatsapp.fail_next(500)
    await service.advance(3 * 3600)
    customer = await service.api("GET", "/api/customers/cus_1")
    link_token = str(customer.get("telegram_link", "")).rpartition("start=")[2]
    await service.telegram(telegram_message_update(f"/start {link_token}"))
    await service.telegram(telegram_message_update("hola"))
    for message_id in list(fakes.whatsapp.ids)[:3]:
        await service.whatsapp(whatsapp_status_webhook(message_id, "read", phone=ana))
    conversations = (await service.api("GET", "/api/conversations"))["conversations"]
    for conversation in conversations[:2]:
        path = f"/api/conversations/{conversation['id']}"
        await service.api("POST", f"{path}/takeover", json={"agent": "Lucía"})
        await service.api("POST", f"{path}/messages", expect=202, json={"text": "hola"})
        await service.api("POST", f"{path}/release")
    await service.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1158201444"})
    await service.client.get("/api/conversations",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"})
    await service.advance(26 * 3600)
    secrets = [ADMIN_TOKEN, WA_SECRET, WA_VERIFY, TG_SECRET, EVENTS_SECRET, SHOPIFY_SECRET,
               WOO_SECRET, fakes.whatsapp.token, fakes.twilio.auth_token, fakes.telegram.token,
               link_token]
    return [s for s in secrets if s] + [p for phone in PHONES for p in (phone, phone[1:])]


async def check_logs(mongo_uri: str) -> tuple[Result, int, int]:
    """The scenario's log lines searched for secrets and full phone numbers.

    Returns the result, the service's lines checked, and every line captured
    (the fakes' included: proof that the capture saw the scenario).
    """
    capture = Capture()
    root = logging.getLogger()
    quieted = [logging.getLogger(name) for name in server.QUIET_LOGGERS]
    saved = [(logger, logger.level) for logger in (root, *quieted)]
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    server.quiet_loggers()  # as server.main() does
    try:
        async with running(mongo_uri) as run:
            forbidden = await _scenario(run)
    finally:
        root.removeHandler(capture)
        for logger, level in saved:
            logger.setLevel(level)
    result = Result()
    for line in capture.service_lines():
        found = [s for s in forbidden if s in line]
        result.expect(not found, f"{_redact(found)} in: {_redact(found, line)[:300]}")
    return result, len(capture.service_lines()), len(capture.lines)


def _redact(found: list[str], line: str | None = None) -> str:
    """Name what leaked without printing it whole (the report itself is logged)."""
    if line is None:
        return ", ".join(f"{s[:3]}…{s[-2:]}" for s in found)
    for secret in found:
        line = line.replace(secret, f"<{secret[:3]}…{secret[-2:]}>")
    return line


# The customers' numbers of the crash, fault and load traffic (``stress.harness.Traffic``):
# any of them whole, with or without "+", is a leak; a masked one is not.
TRAFFIC_PHONE = re.compile(r"(?<!\d)\+?54911\d{8}(?!\d)")


def check_run_logs(logs: RunLogs = RUN_LOGS) -> tuple[Result, int, int]:
    """The other parts' server logs (INFO) searched for their secrets and full phone numbers.

    Returns the result, the files and the lines read. The crash, fault and
    load parts run before this one and leave every server's log in
    :data:`stress.harness.RUN_LOGS`; run alone, there is nothing to read.
    """
    result = Result()
    files = logs.files()
    lines = 0
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            lines += 1
            found = [s for s in logs.secrets if s in line]
            phones = TRAFFIC_PHONE.findall(line)
            result.expect(not found and not phones,
                          f"{path.name}: {_redact(found + phones, line)[:300]}")
    return result, len(files), lines


# -- console: cross-site form posts -------------------------------------------------------


CSRF_FIELD = re.compile(r'name="csrf"\s+value="([^"]+)"')


async def check_console(run: Running) -> Result | None:
    """None without a console; else sign-in and every console POST without CSRF refused."""
    posts = [path for method, path in app_routes()
             if method == "POST" and path.startswith("/console/")]
    if "/console/login" not in posts:
        return None
    client = run.service.client
    result = Result()
    email, password = "agente@tienda.example", "una clave larga 123"
    await run.service.api("POST", "/api/agents", expect=201, json={
        "email": email, "name": "Agente", "role": "agent", "password": password})
    # A cross-site form cannot read the page, so it has no CSRF value.
    for extra in ({}, {"csrf": "forged"}):
        response = await client.post("/console/login", allow_redirects=False, data={
            "email": email, "password": password, **extra},
            headers={"Origin": "https://evil.example"})
        result.expect(response.status == 403 and "/console" not in response.headers.get(
            "Location", ""), f"sign-in without CSRF answered {response.status}")
        probe = await client.get("/console", allow_redirects=False)
        result.expect(probe.status in (302, 303), "a sign-in without CSRF opened a session")
    page = await (await client.get("/console/login")).text()
    token = CSRF_FIELD.search(page)
    result.expect(token is not None, "the sign-in form has no csrf field")
    response = await client.post("/console/login", allow_redirects=False, data={
        "email": email, "password": password, "csrf": token.group(1) if token else ""})
    result.expect(response.status == 303, f"a proper sign-in answered {response.status}")
    await run.service.whatsapp(whatsapp_text_webhook("hola"))
    await run.service.advance(0)
    conversation = (await run.service.api("GET", "/api/conversations"))["conversations"][0]["id"]
    for template in posts:
        if template == "/console/login":
            continue
        path = _fill(template, conversation)
        response = await client.post(path, allow_redirects=False,
                                     data={"text": "hola", "lang": "en", "q": "ana"},
                                     headers={"Origin": "https://evil.example"})
        result.expect(response.status == 403,
                      f"POST {template} without CSRF, signed in, answered {response.status}")
    return result


# -- the table ------------------------------------------------------------------------------


async def _run_async(mongo_uri: str) -> list[Row]:
    async with running(mongo_uri) as run:
        auth = await check_auth(run)
    async with running(mongo_uri, public_url=PLAIN_URL) as run:
        console = await check_console(run)
    logs, lines, _ = await check_logs(mongo_uri)
    constant, digests = check_constant_time()
    rows = [
        Row(f"security: requests without valid auth or signature accepted ({auth.checked} "
            "requests, every route of the router)", str(len(auth.failures)), "0",
            not auth.failures),
        Row(f"security: `==` on signatures/tokens ({constant.checked} modules, "
            f"{digests} compare_digest calls)", str(len(constant.failures)), "0",
            not constant.failures),
        Row(f"security: secrets or full phone numbers in INFO logs ({lines} service lines)",
            str(len(logs.failures)), "0", not logs.failures),
    ]
    run_logs, files, run_lines = check_run_logs()
    if files:
        rows.append(Row(f"security: secrets or full phone numbers in the whole run's server "
                        f"logs at INFO ({files} logs, {run_lines} lines)",
                        str(len(run_logs.failures)), "0", not run_logs.failures))
    else:
        rows.append(Row("security: the whole run's server logs", "none (no server part ran "
                        "before this one)", "", None))
    if console is None:
        rows.append(Row("security: console refuses cross-site form posts",
                        "not applicable until the console lands", "", None))
    else:
        rows.append(Row(f"security: console cross-site form posts accepted "
                        f"({console.checked} checks)", str(len(console.failures)), "0",
                        not console.failures))
    return rows


def details(mongo_uri: str) -> list[str]:
    """Every failure of every check, for a test's message or a debugging run."""
    async def collect() -> list[str]:
        async with running(mongo_uri) as run:
            auth = await check_auth(run)
        async with running(mongo_uri, public_url=PLAIN_URL) as run:
            console = await check_console(run)
        logs, _, _ = await check_logs(mongo_uri)
        return (auth.failures + (console.failures if console else []) + logs.failures
                + check_constant_time()[0].failures)
    return asyncio.run(collect())


def run(short: bool) -> list[Row]:
    with mongo() as uri:
        return asyncio.run(_run_async(uri))


__all__ = ["Result", "check_auth", "check_console", "check_constant_time", "check_logs",
           "details", "run"]
