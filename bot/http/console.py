"""The agent console at ``/console``: server-rendered pages, a little plain JS.

Pages are Jinja2 templates (``templates/``), rendered with autoescaping;
``static/console.js`` (an ES module, no build step, nothing fetched from
outside) adds the live updates. Every change an agent makes is a form
``POST`` carrying the session's CSRF token, and goes through the same
functions as the agent API (``bot.http.agent_api``): stored as an input,
decided by the decide loop, answered with a redirect back to the page.

Live updates (``GET /console/events``, Server-Sent Events) come from the
database itself: once a second the stream reads the newest conversation
summary change, the number waiting and, on a conversation page, the
statuses of its latest messages; when any of that changed the page
re-fetches the affected fragment. One source of truth, whichever worker
wrote.

Customer data never goes in a URL: searching is a ``POST`` (the filters in
the query string are status, channel and agent only), and conversation URLs
carry the internal customer id. Every ``/console`` response carries a
strict Content-Security-Policy (no inline script or style), ``X-Frame-Options:
DENY``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.http import agent_api
from bot.http.agents import ACTOR, LANGS, Actor, agents, find_agent, verify_password
from bot.http.appkeys import CHANNELS, CLOCK, DATABASE, SETTINGS
from bot.http.console_flows import add_flow_routes, customer_runs
from bot.http.console_i18n import LANGS as LANG_NAMES
from bot.http.console_i18n import texts
from bot.http.console_views import (
    STATUSES,
    Filters,
    customer_panel,
    duration,
    fmt_time,
    inbox_rows,
    search_customers,
    timeline_items,
    window_left,
)
from bot.http.sessions import (
    SESSION,
    clear_failures,
    close_session,
    csrf_ok,
    current_session,
    locked_for,
    open_session,
    record_failure,
    session_actor,
)
from bot.types import Doc

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HERE = Path(__file__).parent
LIVE_SECONDS = 1.0
HEARTBEAT_EVERY = 15  # live polls between keep-alive comments
STREAMS: web.AppKey[set[asyncio.Event]] = web.AppKey("console_streams")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "object-src 'none'")


# ------------------------------------------------------------------ plumbing


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the console's headers, on pages, fragments, streams, files."""
    if request.path == "/console" or request.path.startswith("/console/"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not request.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "no-store"


def render(request: web.Request, name: str, context: Doc, status: int = 200) -> web.Response:
    who = request.get(ACTOR)
    session = request.get(SESSION) or {}
    base = {"t": texts(who.lang if who else None), "me": who, "csrf": session.get("csrf", ""),
            "langs": LANG_NAMES, "statuses": STATUSES,
            "channels": list(request.app[CHANNELS].values()),
            "duration": duration, "fmt_time": fmt_time}
    return aiohttp_jinja2.render_template(name, request, {**base, **context}, status=status)


def signed_in(handler: Handler) -> Handler:
    """Pages for signed-in agents: else to the sign-in page; every POST checks CSRF."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        who = await session_actor(request)
        if who is None:
            if request.method == "GET" and not request.path.startswith("/console/events"):
                raise web.HTTPSeeOther("/console/login")
            return web.json_response({"error": "not signed in"}, status=401)
        request[ACTOR] = who
        session = await current_session(request)
        if request.method == "POST":
            form = await request.post()
            if not csrf_ok(session, _field(form, "csrf")):
                return render(request, "error.html", {"message": texts(who.lang)["bad_csrf"]},
                              status=403)
        return await handler(request)
    return wrapped


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------ sign-in


async def login_page(request: web.Request) -> web.StreamResponse:
    if await session_actor(request) is not None:
        raise web.HTTPSeeOther("/console")
    session = await current_session(request)
    response = web.Response()
    if session is None:
        session = await open_session(request, response, agent=None)
    page = render(request, "login.html", {"error": None, "email": ""})
    page.cookies.update(response.cookies)
    return page


async def login(request: web.Request) -> web.StreamResponse:
    """Check CSRF, the slow-down, then the password; a new session on success."""
    form = await request.post()
    email = (_field(form, "email") or "").strip().lower()
    password = _field(form, "password") or ""
    session = await current_session(request)
    t = texts(None)
    if not csrf_ok(session, _field(form, "csrf")):
        return render(request, "login.html", {"error": t["bad_csrf"], "email": email},
                      status=403)
    database, now = request.app[DATABASE], request.app[CLOCK].now()
    wait = await locked_for(database, email, request.remote, now)
    if wait > 0:
        return render(request, "login.html", {
            "error": t["locked"].format(seconds=int(wait + 0.999)), "email": email},
            status=429)
    account = await find_agent(database, email) if email else None
    if not await verify_password(account.get("password_hash") if account else None,
                                 password) or account is None:
        await record_failure(database, email, request.remote, now)
        return render(request, "login.html", {"error": t["bad_login"], "email": email},
                      status=401)
    await clear_failures(database, email)
    response = web.HTTPSeeOther("/console")
    await close_session(request, response)  # the anonymous one: never promoted
    await open_session(request, response, agent=account["email"])
    raise response


@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/console/login")
    await close_session(request, response)
    raise response


@signed_in
async def set_language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    lang = _field(form, "lang")
    who: Actor = request[ACTOR]
    if lang in LANGS:
        await agents(request.app[DATABASE]).update_one({"_id": who.email},
                                                       {"$set": {"lang": lang}})
    back = _field(form, "back") or "/console"
    raise web.HTTPSeeOther(back if back.startswith("/console") else "/console")


# ------------------------------------------------------------------ inbox


async def _inbox_context(request: web.Request, search: str | None) -> Doc:
    database, now = request.app[DATABASE], request.app[CLOCK].now()
    channels = request.app[CHANNELS]
    filters = Filters.from_query(request.query, channels)
    ids = None
    if search:
        ids = await search_customers(database, search, request.app[SETTINGS].default_country)
    rows = await inbox_rows(database, now, request[ACTOR].email, filters, channels, ids)
    waiting = await database.conversations.count_documents({"status": "needs_agent"})
    return {"rows": rows, "filters": filters, "search": search or "", "waiting": waiting,
            "agents": [a["email"] async for a in agents(database).find({}, {"email": 1})]}


@signed_in
async def inbox(request: web.Request) -> web.StreamResponse:
    return render(request, "inbox.html", await _inbox_context(request, None))


@signed_in
async def search(request: web.Request) -> web.StreamResponse:
    """A search is a POST: a name, phone or e-mail never lands in a URL or access log."""
    form = await request.post()
    return render(request, "inbox.html", await _inbox_context(request, _field(form, "q")))


@signed_in
async def inbox_fragment(request: web.Request) -> web.StreamResponse:
    return render(request, "_rows.html", await _inbox_context(request, None))


# ------------------------------------------------------------------ a conversation


async def _conversation_context(request: web.Request) -> Doc:
    database, now = request.app[DATABASE], request.app[CLOCK].now()
    doc = await database.conversations.find_one({"_id": request.match_info["id"]})
    if doc is None:
        raise web.HTTPNotFound()
    customer = await database.customers.find_one({"_id": doc["customer"]}) or {
        "_id": doc["customer"]}
    messages = await database.messages.find({"conversation_id": doc["_id"]}).sort(
        "seq", -1).to_list(500)
    messages.reverse()
    who: Actor = request[ACTOR]
    held_by = agent_api.holder(doc)
    window = window_left(customer, request.app[CHANNELS].get(doc["channel"]), now)
    return {
        "c": doc, "live_conversation": doc["_id"], "customer": customer_panel(customer),
        "runs": await customer_runs(database, customer),
        "items": timeline_items(messages, customer, doc["channel"]),
        "held_by": held_by, "read_only": bool(held_by) and held_by != who.email
        and not who.is_admin,
        "window": window, "window_text": duration(window) if window else None,
        "template_only": window == 0.0, "templates": agent_api.declared_templates(request),
        "agents": [a["email"] async for a in agents(database).find({}, {"email": 1})],
        "waiting": await database.conversations.count_documents({"status": "needs_agent"}),
    }


@signed_in
async def conversation(request: web.Request) -> web.StreamResponse:
    return render(request, "conversation.html", await _conversation_context(request))


@signed_in
async def conversation_part(request: web.Request) -> web.StreamResponse:
    part = request.match_info["part"]
    if part not in ("timeline", "state"):
        raise web.HTTPNotFound()
    return render(request, f"_{part}.html", await _conversation_context(request))


@signed_in
async def act(request: web.Request) -> web.StreamResponse:
    """takeover, reply, template, assign, release, close: as the agent API does them."""
    action = request.match_info["action"]
    doc = await request.app[DATABASE].conversations.find_one({"_id": request.match_info["id"]})
    if doc is None:
        raise web.HTTPNotFound()
    form = await request.post()
    who: Actor = request[ACTOR]
    try:
        if action == "takeover":
            await agent_api.do_takeover(request, doc, who)
        elif action == "assign":
            await agent_api.do_assign(request, doc, who, _field(form, "agent") or "")
        elif action == "release":
            await agent_api.do_release(request, doc, who)
        elif action == "close":
            await agent_api.do_close(request, doc, who)
        elif action in ("reply", "template"):
            params = [p.strip() for p in (_field(form, "params") or "").split("|") if p.strip()]
            body = agent_api._parse(agent_api.AgentMessageBody, {
                "text": (_field(form, "text") or "").strip() or None,
                "template": _field(form, "template") if action == "template" else None,
                "template_params": params})
            await agent_api.do_message(request, doc, who, body)
        else:
            raise web.HTTPNotFound()
    except web.HTTPException as exc:
        if exc.status == 404:
            raise
        message = exc.text or exc.reason
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(message)["error"]
        return render(request, "error.html", {"message": message,
                                              "back": f"/console/c/{doc['_id']}"},
                      status=exc.status)
    raise web.HTTPSeeOther(f"/console/c/{doc['_id']}")


# ------------------------------------------------------------------ live


def _fingerprint(docs: list[Doc], fields: tuple[str, ...]) -> str:
    return ";".join("|".join(str(d.get(f)) for f in fields) for d in docs)


SUMMARY_FIELDS = ("_id", "status", "agent", "handoff_reason", "last_message", "updated_at")


async def live_state(request: web.Request, conversation_id: str | None) -> Doc:
    """What the open page shows that may change: a few small indexed reads.

    Fingerprints, not times alone: on the virtual clock (tests, demos) two
    changes can carry the same ``updated_at``.
    """
    database = request.app[DATABASE]
    newest = await database.conversations.find({}, dict.fromkeys(SUMMARY_FIELDS, 1)).sort(
        "updated_at", -1).to_list(50)
    state: Doc = {
        "waiting": await database.conversations.count_documents({"status": "needs_agent"}),
        "inbox": _fingerprint(newest, SUMMARY_FIELDS),
    }
    if conversation_id:
        latest = await database.messages.find(
            {"conversation_id": conversation_id}, {"status": 1}).sort("seq", -1).to_list(30)
        summary = await database.conversations.find_one({"_id": conversation_id},
                                                        dict.fromkeys(SUMMARY_FIELDS, 1))
        state["conversation"] = _fingerprint([summary or {}], SUMMARY_FIELDS) + "#" + (
            _fingerprint(latest, ("_id", "status")))
    return state


@signed_in
async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one ``change`` event whenever the live state differs."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    stop = asyncio.Event()
    request.app[STREAMS].add(stop)
    conversation_id = request.query.get("c") or None
    last: Doc | None = None
    quiet = 0
    try:
        while not stop.is_set():
            state = await live_state(request, conversation_id)
            if state != last:
                await response.write(f"event: change\ndata: {json.dumps(state)}\n\n".encode())
                last, quiet = state, 0
            elif (quiet := quiet + 1) >= HEARTBEAT_EVERY:
                await response.write(b": keep-alive\n\n")
                quiet = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LIVE_SECONDS):
                    await stop.wait()
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        request.app[STREAMS].discard(stop)
    return response


async def stop_streams(app: web.Application) -> None:
    """``on_shutdown``: end open event streams so shutdown does not wait for them."""
    for stop in app[STREAMS].copy():
        stop.set()


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console")


def add_console_routes(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=jinja2.select_autoescape(default=True),
                         undefined=jinja2.StrictUndefined)
    app[STREAMS] = set()
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(stop_streams)
    app.router.add_get("/console", inbox)
    app.router.add_get("/console/", root)
    app.router.add_get("/console/login", login_page)
    app.router.add_post("/console/login", login)
    app.router.add_post("/console/logout", logout)
    app.router.add_post("/console/lang", set_language)
    app.router.add_post("/console/search", search)
    app.router.add_get("/console/rows", inbox_fragment)
    app.router.add_get("/console/events", events)
    app.router.add_get("/console/c/{id}", conversation)
    app.router.add_get("/console/c/{id}/part/{part}", conversation_part)
    app.router.add_post("/console/c/{id}/{action}", act)
    add_flow_routes(app, signed_in)
    app.router.add_static("/console/static/", HERE / "static", append_version=True)
