"""Fuzzing (issue 17, part 3): generated bodies, headers and query strings on every route.

Every route the service serves gets Hypothesis-generated requests: the
webhooks correctly signed over malformed bodies (and now and then a forged
signature, a wrong content type or a mismatched topic), ``/events``, the
agent API (bodies, path ids and the query strings of ``GET
/api/conversations``), ``/admin/clock/advance``, the WhatsApp verification
``GET`` and the plain ``GET`` routes. Strategies come from
``tests/support/fuzzing.py``, shared with ``tests/test_fuzz_webhooks.py``.

Figures, per route and in all:

* **5xx answers** (must be 0): the contract answers bad input with 400/401/413.
* **crashes** (must be 0): ERROR records the service logged while the
  route ran: the 500 guard, a parser's "unreadable" guard, a decide or send
  loop error (:class:`stress.inprocess.ErrorLog`).
* **inputs lost** (must be 0): a request answered 2xx that should have
  stored an input, yet the inbox holds neither a new document from that
  request nor (for a duplicate) the input's provider id.

Each route runs on a fresh service and database; ``make test`` runs 500
cases per route (``tests/stress/test_fuzz_short.py``), ``make stress``
10,000. Hypothesis runs derandomized, so a run is reproducible.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from channels.email_links import LinkKind, make_token
from channels.email_routes import link_key
from stress.inprocess import ErrorLog, LoopService, Running, app_routes
from stress.report import Row
from tests.support.app import (
    ADMIN_TOKEN,
    EMAIL_INBOUND_SECRET,
    EVENTS_SECRET,
    PUBLIC_URL,
    SHOPIFY_SECRET,
    TG_SECRET,
    WA_SECRET,
    WA_VERIFY,
    WOO_SECRET,
    with_test_flows,
)
from tests.support.fuzzing import (
    HEADER_TEXT,
    ODD,
    ODD_TEXT,
    Json,
    bodies,
    load,
    mutated,
    query_params,
    store_bodies,
)
from tests.support.mongo import mongo
from tests.support.signing import (
    form_body,
    json_body,
    telegram_headers,
    twilio_signature,
    whatsapp_signature,
    whatsapp_text_webhook,
)
from tests.support.store_signing import events_headers, shopify_headers, woocommerce_headers

FULL_CASES = int(os.environ.get("FUZZ_FULL_CASES", "10000"))
SHORT_CASES = 500
# make test: 500 per route took ~160 s for 29 routes on the 2-core project
# machine (~10 ms a case, most of it the service and the embedded database
# deciding what was accepted), so the test suite runs 150 (FUZZ_CASES
# overrides); `python -m stress --short` runs 500, `make stress` 10,000.
TEST_CASES = int(os.environ.get("FUZZ_CASES", "150"))
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Call:
    """One generated request, and what a 2xx answer to it must have stored.

    ``stores``: the inbox ``source`` a 2xx means was accepted (None: the
    route stores nothing). ``ids``: provider ids one of which a duplicate's
    earlier copy has in its inbox id.
    """

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    params: tuple[tuple[str, str], ...] = ()
    stores: str | None = None
    ids: tuple[str, ...] = ()


@dataclass
class Context:
    """What routes need from the running service (an existing conversation)."""

    conversation: str = ""
    customer: str = ""
    link_key: bytes = b""  # signs e-mail links (channels.email_routes)


@dataclass(frozen=True)
class Route:
    """A fuzz target: its name in the table, its requests, and the app routes it covers.

    ``serves``: ``"METHOD /canonical/path"`` of every app route it reaches;
    when omitted, the name is the one route.
    """

    name: str
    calls: Callable[[Context], st.SearchStrategy[Call]]
    serves: tuple[str, ...] = ()


def covers(route: Route) -> tuple[str, ...]:
    return route.serves or (route.name,)


def served_routes() -> list[tuple[str, str]]:
    """``(method, path)`` of every route the app serves (HEAD mirrors of GETs left out)."""
    return app_routes()


@dataclass
class Tally:
    """What one route's run saw."""

    route: str
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    crashes: int = 0
    crash_summary: str = ""
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # a 2xx that should have been refused
    seconds: float = 0.0
    # (t0, t1, call, answer) of each 2xx that should have stored something
    accepted: list[tuple[datetime, datetime, Call, Any]] = field(default_factory=list)


# -- request builders ---------------------------------------------------------------------

_counter = iter(range(10**12))


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value else []


def _walk(doc: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def whatsapp_ids(body: bytes) -> tuple[str, ...]:
    """Message and status ids a WhatsApp body names (for the duplicate check)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    found: list[str] = []
    for entry in _items(_walk(doc, "entry")):
        for change in _items(_walk(entry, "changes")):
            for kind in ("messages", "statuses"):
                for item in _items(_walk(change, "value", kind)):
                    found += _strings(_walk(item, "id"))
    return tuple(found)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def telegram_ids(body: bytes) -> tuple[str, ...]:
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    found = [f"cb:{_walk(doc, 'callback_query', 'id')}"]
    for key in ("message", "edited_message"):
        found.append(f"{_walk(doc, key, 'chat', 'id')}:{_walk(doc, key, 'message_id')}")
    return tuple(found)


def _noise(draw: st.DrawFn, headers: dict[str, str], signature: str) -> dict[str, str]:
    """Now and then a forged signature, an odd content type or an extra header."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        headers[signature] = draw(HEADER_TEXT)
    elif kind == 1:
        headers["Content-Type"] = draw(st.sampled_from(
            ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
             "application/json; charset=latin-1", ""]))
    elif kind == 2:
        headers.pop(signature, None)
    elif kind == 3:
        headers[draw(st.sampled_from(["X-Extra", "Content-Encoding", "Accept"]))] = draw(
            HEADER_TEXT)
    return headers


def whatsapp_route() -> Route:
    fixtures = load("data/whatsapp")

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        _, body = draw(bodies(fixtures))
        headers = {"X-Hub-Signature-256": whatsapp_signature(WA_SECRET, body),
                   "Content-Type": "application/json"}
        return Call("POST", "/webhooks/whatsapp", _noise(draw, headers, "X-Hub-Signature-256"),
                    body, stores="whatsapp", ids=whatsapp_ids(body))

    return Route("POST /webhooks/whatsapp", calls)


def telegram_route() -> Route:
    fixtures = load("data/telegram")

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        _, body = draw(bodies(fixtures))
        headers = _noise(draw, telegram_headers(TG_SECRET), "X-Telegram-Bot-Api-Secret-Token")
        return Call("POST", "/webhooks/telegram", headers, body, stores="telegram",
                    ids=telegram_ids(body))

    return Route("POST /webhooks/telegram", calls)


def twilio_route(path: str, prefix: str) -> Route:
    fixtures = [(n, d) for n, d in load("data/twilio") if n.startswith(prefix)]

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        _, form = draw(mutated(fixtures, ODD_TEXT))
        form = {str(k): str(v) for k, v in form.items()}
        body = form_body(form)
        headers = {"X-Twilio-Signature": twilio_signature("twilio-token", PUBLIC_URL + path, form),
                   "Content-Type": "application/x-www-form-urlencoded"}
        if draw(st.integers(0, 7)) == 0:  # raw bytes under a signature of other fields
            body = draw(st.binary(max_size=200))
        ids = tuple(form[k] for k in ("MessageSid", "SmsSid", "SmsMessageSid") if form.get(k))
        return Call("POST", path, _noise(draw, headers, "X-Twilio-Signature"), body,
                    stores="sms", ids=ids)

    return Route(f"POST {path}", calls)


STORE_TOPICS = {
    "/webhooks/shopify": ["checkouts/create", "checkouts/update", "orders/create",
                          "orders/fulfilled", "customers/create", "customers/update",
                          "customers_marketing_consent/update", "products/update",
                          "app/uninstalled"],
    "/webhooks/woocommerce": ["order.created", "order.updated", "customer.created",
                              "customer.updated", "product.updated", "action.woocommerce"],
}


def store_route(path: str, folder: str, source: str) -> Route:
    fixtures = load(folder)

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        name, body = draw(store_bodies(fixtures))
        delivery = f"fuzz-{next(_counter)}"
        if path == "/webhooks/shopify":
            head, _, tail = name.rpartition("_")
            topic = draw(st.one_of(st.just(f"{head}/{tail}"), st.just(f"{head}/{tail}"),
                                   st.sampled_from(STORE_TOPICS[path]), HEADER_TEXT))
            headers = shopify_headers(SHOPIFY_SECRET, body, topic, delivery)
            signature = "X-Shopify-Hmac-Sha256"
        elif path == "/webhooks/woocommerce":
            resource, event = name.split("_")[:2]
            topic = draw(st.one_of(st.just(f"{resource}.{event}"), st.just(f"{resource}.{event}"),
                                   st.sampled_from(STORE_TOPICS[path]), HEADER_TEXT))
            headers = woocommerce_headers(WOO_SECRET, body, topic, delivery)
            signature = "X-WC-Webhook-Signature"
        else:
            headers = events_headers(EVENTS_SECRET, body)
            signature = "X-Signature-256"
        return Call("POST", path, _noise(draw, headers, signature), body, stores=source)

    return Route(f"POST {path}", calls)


EMAIL_REPLIES: list[tuple[str, Json]] = [
    ("reply", {"id": "<CAF1@mail.example>", "from": "Ana <ana@example.com>",
               "to": "shop@tienda.example", "subject": "Re: hola", "in_reply_to": "<x@y>",
               "text": "sí\n\nEl lun, Tienda escribió:\n> ¿Seguís?"}),
    ("bare", {"id": "m-1", "from": "ana@example.com", "text": "STOP"}),
    # HTML only (channels.email_html): mutations reach the HTML reader.
    ("html", {"id": "<h-1@mail.example>", "from": "ana@example.com", "text": "",
              "html": "<div dir='ltr'>STOP<br></div><div class='gmail_quote'>"
                      "<blockquote>hola</blockquote></div><![if !mso]>x<![endif]>"}),
]


def email_route() -> Route:
    """Customers' replies by e-mail: signed like ``/events``, bodies mutated."""
    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        _, body = draw(store_bodies(EMAIL_REPLIES))
        headers = _noise(draw, events_headers(EMAIL_INBOUND_SECRET, body), "X-Signature-256")
        return Call("POST", "/webhooks/email", headers, body, stores="email",
                    ids=_email_ids(body))

    return Route("POST /webhooks/email", calls)


def _email_ids(body: bytes) -> tuple[str, ...]:
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    return tuple(_strings(_walk(doc, "id")))


LINK_KINDS: list[LinkKind] = ["open", "click", "answer", "unsubscribe"]
LINK_ROUTES = [("GET", "/t/"), ("GET", "/r/"), ("POST", "/r/"), ("GET", "/u/"), ("POST", "/u/")]


def email_links_route() -> Route:
    """Opens, clicks, answers and unsubscribes with links the service itself signed, odd
    fields inside (what a message's text could put there), and forged or cut tokens."""
    fields = st.dictionaries(st.sampled_from(["m", "c", "a", "p", "u", "i", "t"]), st.one_of(
        ODD_TEXT, st.sampled_from(["https://shop.example/p?x=1&y=2", "http://[", "ana@x.example",
                                   "javascript:alert(1)", "//evil.example", ""])), max_size=5)

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        kind: LinkKind = draw(st.sampled_from(LINK_KINDS))
        chosen = draw(fields)
        token = make_token(ctx.link_key, kind, **chosen)
        mangle = draw(st.integers(0, 5))
        if mangle == 0:
            token = token[:draw(st.integers(0, len(token)))]
        elif mangle == 1:
            token = quote(draw(ODD_TEXT), safe="") or "x"
        method, path = draw(st.sampled_from(LINK_ROUTES))
        body, headers = b"", {}
        if method == "POST" and draw(st.booleans()):
            body = b"List-Unsubscribe=One-Click"
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        # Only an unsubscribe or an answer is stored before it is answered; opens and
        # clicks are best effort.
        stores = "email" if method == "POST" and mangle > 1 else None
        # One of each per message is kept (its inbox id names the message).
        what = "answer" if path == "/r/" else "unsubscribe"
        return Call(method, path + token, headers, body, stores=stores,
                    ids=(f"email:{what}:{chosen.get('m', '')}",))

    return Route("GET/POST /t/{token}, /r/{token}, /u/{token}", calls,
                 tuple(f"{method} {path}{{token}}" for method, path in LINK_ROUTES))


AGENT_BODIES: list[tuple[str, Json]] = [
    ("messages", {"text": "Hola, soy Lucía", "agent": "Lucía"}),
    ("takeover", {"agent": "Lucía"}), ("release", {})]


def agent_post_route() -> Route:
    payloads = st.one_of(mutated(AGENT_BODIES), st.tuples(
        st.sampled_from([name for name, _ in AGENT_BODIES]), ODD))

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        action, payload = draw(payloads)
        body = json_body(payload) if draw(st.integers(0, 9)) else draw(st.binary(max_size=100))
        headers = {**AUTH, "Content-Type": "application/json"}
        return Call("POST", f"/api/conversations/{ctx.conversation}/{action}", headers, body,
                    stores="agent")

    return Route("POST /api/conversations/{id}/{takeover,messages,release}", calls, tuple(
        f"POST /api/conversations/{{id}}/{action}" for action, _ in AGENT_BODIES))


def list_route() -> Route:
    known = {"status": st.sampled_from(["bot", "needs_agent", "agent", "closed"]),
             "customer_id": st.sampled_from(["cus_1", "c_x", ""]),
             "limit": st.sampled_from(["1", "0", "-5", "500", "501", "1e3", "10**9",
                                       str(2**64), " 3", "3.5"])}

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        params = draw(query_params(known))
        return Call("GET", "/api/conversations", dict(AUTH), params=tuple(params))

    return Route("GET /api/conversations?query", calls, ("GET /api/conversations",))


_segment = st.one_of(ODD_TEXT, st.sampled_from(["..", ".", "%00", "c_" + "0" * 20, "null"]))


def path_id_route() -> Route:
    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        segment = draw(st.one_of(_segment, st.just(ctx.conversation), st.just(ctx.customer)))
        template = draw(st.sampled_from(["/api/conversations/{}", "/api/customers/{}"]))
        path = template.format(quote(segment, safe="") or "%20")
        return Call("GET", path, dict(AUTH), params=tuple(draw(query_params({}))))

    return Route("GET /api/conversations/{id}, /api/customers/{id}", calls,
                 ("GET /api/conversations/{id}", "GET /api/customers/{id}"))


def advance_route() -> Route:
    seconds = st.one_of(ODD, st.integers(0, 3 * 86400), st.floats(0, 86400),
                        st.sampled_from([10**8, 10**9, 10**10, 2**63, 1e18, 1e300, -0.0]))

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        payload = draw(st.one_of(st.fixed_dictionaries({"seconds": seconds}),
                                 mutated([("advance", {"seconds": 60})])
                                 .map(lambda pair: pair[1]), ODD))
        body = json_body(payload) if draw(st.integers(0, 9)) else draw(st.binary(max_size=60))
        return Call("POST", "/admin/clock/advance", {**AUTH, "Content-Type": "application/json"},
                    body)

    return Route("POST /admin/clock/advance", calls)


def handshake_route() -> Route:
    known = {"hub.mode": st.sampled_from(["subscribe", "unsubscribe", ""]),
             "hub.verify_token": st.sampled_from([WA_VERIFY, WA_VERIFY + "x", ""]),
             "hub.challenge": ODD_TEXT}

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        return Call("GET", "/webhooks/whatsapp", params=tuple(draw(query_params(known))))

    return Route("GET /webhooks/whatsapp?hub.*", calls, ("GET /webhooks/whatsapp",))


def plain_get_route() -> Route:
    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        path = draw(st.sampled_from(["/healthz", "/metrics"]))
        headers = {draw(st.sampled_from(["Accept", "Authorization", "X-Forwarded-For"])):
                   draw(HEADER_TEXT)}
        return Call("GET", path, headers, params=tuple(draw(query_params({}))))

    return Route("GET /healthz, /metrics", calls, ("GET /healthz", "GET /metrics"))


FORM_FIELDS = ["email", "password", "csrf", "csrf_token", "text", "agent", "lang", "q",
               "name", "role", "status"]


def generic_route(method: str, template: str) -> Route:
    """A route with no strategy of its own: odd path ids, query strings and bodies.

    Routes added to the app later (the console, new API routes) are fuzzed
    this way at once, with the admin bearer and without, until a dedicated
    strategy replaces it.
    """
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]

    @st.composite
    def calls(draw: st.DrawFn, ctx: Context) -> Call:
        path = template
        for name in names:
            value = draw(st.one_of(_segment, st.just(ctx.conversation)))
            path = path.replace("{" + name + "}", quote(value, safe="") or "%20")
        headers = dict(AUTH) if draw(st.booleans()) else {}
        kind = draw(st.integers(0, 2))
        body = b""
        if method == "POST" and kind == 0:
            body = json_body(draw(ODD))
            headers["Content-Type"] = "application/json"
        elif method == "POST" and kind == 1:
            form = draw(st.dictionaries(st.sampled_from(FORM_FIELDS), ODD_TEXT, max_size=4))
            body = form_body(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif method == "POST":
            body = draw(st.binary(max_size=200))
        return Call(method, path, headers, body, params=tuple(draw(query_params({}))))

    return Route(f"{method} {template} (generic)", calls, (f"{method} {template}",))


def routes() -> list[Route]:
    """Every route the app serves: a dedicated strategy, else :func:`generic_route`."""
    dedicated = _dedicated()
    covered = {name for route in dedicated for name in covers(route)}
    generic = [generic_route(method, path) for method, path in served_routes()
               if f"{method} {path}" not in covered]
    return dedicated[:-1] + generic + dedicated[-1:]


def _dedicated() -> list[Route]:
    return [
        whatsapp_route(), telegram_route(),
        twilio_route("/webhooks/sms", "inbound"), twilio_route("/webhooks/sms/status", "status"),
        store_route("/webhooks/shopify", "fixtures/shopify", "shopify"),
        store_route("/webhooks/woocommerce", "fixtures/woocommerce", "woocommerce"),
        store_route("/events", "fixtures/events", "events"),
        agent_post_route(), list_route(), path_id_route(), handshake_route(), plain_get_route(),
        email_route(), email_links_route(),
        advance_route(),  # last, and on its own service: it moves the clock far ahead
    ]


# -- running a route ----------------------------------------------------------------------


async def _attempt(running: Running, call: Call, tally: Tally) -> None:
    t0 = datetime.now(UTC)
    response = await running.service.client.request(
        call.method, call.path, headers=call.headers, data=call.body or None,
        params=list(call.params) or None, allow_redirects=False)
    if response.content_type == "text/event-stream":
        response.close()  # a stream that stays open: its status is the answer
        text = ""
    else:  # bytes: an answer may be an image (an e-mail's open pixel)
        text = (await response.read()).decode("utf-8", errors="replace")
    t1 = datetime.now(UTC)
    tally.cases += 1
    tally.statuses[response.status] += 1
    if response.status >= 500:
        tally.server_errors.append(f"{response.status} {text[:200]} for {call.method} "
                                   f"{call.path} {call.body[:300]!r}")
    if call.path == "/webhooks/whatsapp" and call.method == "GET" and response.status == 200:
        _check_handshake(call, text, tally)
    if 200 <= response.status < 300 and call.stores:
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text
        tally.accepted.append((t0, t1, call, answer))


def _check_handshake(call: Call, text: str, tally: Tally) -> None:
    """A 200 handshake must have had the right token and echo the challenge."""
    last = dict(call.params)
    if last.get("hub.verify_token") != WA_VERIFY or text != last.get("hub.challenge", ""):
        tally.wrong.append(f"handshake answered 200 {text[:80]!r} to {call.params!r}")


async def _prepare(running: Running) -> Context:
    """One conversation to aim the agent API at, and the key of e-mail links."""
    await running.service.whatsapp(whatsapp_text_webhook("hola"))
    await running.service.advance(0)
    listed = await running.service.api("GET", "/api/conversations")
    first = listed["conversations"][0]
    return Context(conversation=first["id"], customer=first["customer_id"] or "",
                   link_key=await link_key(running.database))


async def _check_stored(running: Running, tally: Tally) -> None:
    """Every 2xx that should have stored an input did (see the module docstring)."""
    docs = await running.database.inbox.find({}, {"received_at": 1, "kind": 1}).to_list(None)
    parents = {d["_id"] for d in docs if d.get("kind") == "fanout"}
    own = sorted((_utc(d["received_at"]), str(d["_id"])) for d in docs
                 if not any(str(d["_id"]).startswith(f"{p}:") for p in parents)
                 and d.get("kind") != "send_failure")
    times = [t for t, _ in own]
    every_id = "\n".join(i for _, i in own)
    for t0, t1, call, answer in tally.accepted:
        start = bisect.bisect_left(times, t0.replace(microsecond=t0.microsecond // 1000 * 1000))
        if start < len(times) and times[start] <= t1 + timedelta(milliseconds=1):
            continue  # something new was stored by this request
        if isinstance(answer, dict) and answer.get("duplicate") is True:
            continue  # a store's explicit duplicate
        if (isinstance(answer, dict) and str(answer.get("id", "")).startswith("agent:")
                and answer["id"].removeprefix("agent:") in every_id):
            continue
        digest = hashlib.sha256(call.body).hexdigest()[:32]
        if digest in every_id or any(i and i in every_id for i in call.ids):
            continue  # an earlier copy of the same input (a provider's retry)
        tally.lost.append(f"answered {answer!r:.120} but nothing stored: {call.method} "
                          f"{call.path} {call.body[:300]!r}")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def run_route(mongo_uri: str, route: Route, cases: int) -> Tally:
    """``cases`` generated requests on a fresh service; the tally of what they got."""
    tally = Tally(route.name)
    started = time.perf_counter()
    errors = ErrorLog()
    with errors.attached(), LoopService(mongo_uri, **with_test_flows()) as loop:
        context = loop.run(_prepare(loop.running))

        @settings(max_examples=cases, derandomize=True, database=None, deadline=None,
                  print_blob=False, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(call=route.calls(context))
        def drive(call: Call) -> None:
            loop.run(_attempt(loop.running, call, tally))

        drive()
        if not route.name.startswith("POST /admin/clock/advance"):  # its clock is far ahead
            loop.run(loop.running.service.advance(0))  # decide what was accepted
        loop.run(_check_stored(loop.running, tally))
    tally.crashes = len(errors.records)
    tally.crash_summary = errors.summary()
    tally.seconds = time.perf_counter() - started
    return tally


def run_all(mongo_uri: str, cases: int) -> list[Tally]:
    return [run_route(mongo_uri, route, cases) for route in routes()]


def rows(tallies: list[Tally], cases: int) -> list[Row]:
    """The figures of the table: per route the cases run, then the three totals."""
    out = [Row(f"fuzz {t.route}: cases ({t.seconds:.0f} s)", f"{t.cases:,}",
               f">= {cases:,}", t.cases >= cases) for t in tallies]
    total_5xx = sum(len(t.server_errors) for t in tallies)
    crashes = sum(t.crashes for t in tallies)
    lost = sum(len(t.lost) for t in tallies)
    wrong = sum(len(t.wrong) for t in tallies)
    out += [
        Row("fuzz: 5xx answers", str(total_5xx), "0", total_5xx == 0),
        Row("fuzz: crashes (errors logged by the service)", str(crashes), "0", crashes == 0),
        Row("fuzz: inputs answered 2xx but not stored", str(lost), "0", lost == 0),
        Row("fuzz: verification handshakes answered 200 without the right token",
            str(wrong), "0", wrong == 0),
    ]
    # Which route failed, and how (the first example), so a failure can be replayed:
    # the cases are derandomized, the same on every run.
    out += [Row(f"fuzz {line.split(': ', 1)[0]}: what failed",
                line.split(": ", 1)[1][:400].replace("|", "/").replace("\n", " "), "", False)
            for line in failures(tallies)]
    return out


def failures(tallies: list[Tally]) -> list[str]:
    """A line per route that failed, with the first examples (for a test's message)."""
    lines = []
    for t in tallies:
        if t.server_errors or t.crashes or t.lost or t.wrong:
            lines.append(f"{t.route}: {len(t.server_errors)} 5xx {t.server_errors[:2]}; "
                         f"{t.crashes} crashes ({t.crash_summary}); {len(t.lost)} lost "
                         f"{t.lost[:2]}; {len(t.wrong)} wrongly accepted {t.wrong[:2]}")
    return lines


def run(short: bool) -> list[Row]:
    cases = SHORT_CASES if short else FULL_CASES
    with mongo() as uri:
        tallies = run_all(uri, cases)
    return rows(tallies, cases)


__all__ = ["Call", "Route", "Tally", "failures", "routes", "rows", "run", "run_route"]
