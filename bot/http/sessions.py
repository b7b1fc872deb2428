"""Console sessions, CSRF tokens and the slow-down of failed sign-ins.

A session is a random token in a cookie (``HttpOnly; SameSite=Strict;
Path=/``, plus ``Secure`` when ``PUBLIC_URL`` is https). The database keeps
only its SHA-256 (``sessions._id``), so a leaked database holds no usable
cookie. Each session has its own CSRF token, which every console form
carries in a hidden field and every session-authenticated ``POST /api/*``
sends as ``X-CSRF-Token``; ``SameSite=Strict`` alone does not protect
browsers that ignore it.

The sign-in page opens an anonymous session (no agent) so its form has a
CSRF token too; a successful sign-in replaces it with a new one (a token
known before sign-in must not become a signed-in session).

Failed sign-ins are counted per e-mail and per client address in
``login_failures``. Past a few free attempts each new failure locks further
attempts for twice as long as the last (1 s, 2 s, 4 s ... up to 15 min), on
the service clock; while locked, even the right password is refused without
being checked. A success clears the e-mail's count (not the address's, or
one known account would reset an attacker's address). Counts older than an
hour start again.

Times are the service clock (the virtual clock in tests), so expiry and
lock-outs are tested without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from aiohttp import web
from pymongo.asynchronous.collection import AsyncCollection

from bot.http.agents import Actor, actor_of, find_agent
from bot.http.appkeys import CLOCK, DATABASE, SETTINGS
from bot.infra.database import Database
from bot.types import Doc

COOKIE = "chasqui_session"
SESSION_LIFETIME = timedelta(hours=12)
ANONYMOUS_LIFETIME = timedelta(hours=1)
FREE_FAILURES = {"email": 3, "ip": 20}  # a shared office address gets more room
MAX_LOCK = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=1)
SESSION = web.RequestKey("session", dict)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sessions(database: Database) -> AsyncCollection[Doc]:
    # A lost session only means signing in again: no journal sync needed.
    return database.unjournaled("sessions")


def failures(database: Database) -> AsyncCollection[Doc]:
    return database.unjournaled("login_failures")


def secure_cookies(request: web.Request) -> bool:
    return request.app[SETTINGS].base_url.startswith("https://")


def set_cookie(request: web.Request, response: web.StreamResponse, token: str,
               lifetime: timedelta) -> None:
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), path="/",
                        httponly=True, samesite="Strict", secure=secure_cookies(request))


async def current_session(request: web.Request) -> Doc | None:
    """The request's unexpired session (signed in or anonymous), read once per request."""
    if SESSION in request:
        return request[SESSION] or None
    token = request.cookies.get(COOKIE)
    found: Doc | None = None
    if token:
        found = await sessions(request.app[DATABASE]).find_one({"_id": _hash(token)})
        if found is not None and found["expires_at"] <= request.app[CLOCK].now():
            found = None
    request[SESSION] = found or {}
    return found


async def session_actor(request: web.Request) -> Actor | None:
    """The signed-in agent behind the request's cookie, if any (and still an account)."""
    session = await current_session(request)
    if not session or not session.get("agent"):
        return None
    doc = await find_agent(request.app[DATABASE], session["agent"])
    return actor_of(doc) if doc is not None else None


async def open_session(request: web.Request, response: web.StreamResponse,
                       agent: str | None) -> Doc:
    """A new session (anonymous when ``agent`` is None), its cookie set on ``response``."""
    token = secrets.token_urlsafe(32)
    now = request.app[CLOCK].now()
    lifetime = SESSION_LIFETIME if agent else ANONYMOUS_LIFETIME
    doc: Doc = {"_id": _hash(token), "agent": agent, "csrf": secrets.token_urlsafe(32),
                "created_at": now, "expires_at": now + lifetime}
    database = request.app[DATABASE]
    await sessions(database).insert_one(doc)
    # Expired sessions go at each new one: one indexed delete, no sweeper task.
    await sessions(database).delete_many({"expires_at": {"$lte": now}})
    set_cookie(request, response, token, lifetime)
    request[SESSION] = doc
    return doc


async def close_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        await sessions(request.app[DATABASE]).delete_one({"_id": _hash(token)})
    response.del_cookie(COOKIE, path="/")
    request[SESSION] = {}


def csrf_ok(session: Doc | None, given: str | None) -> bool:
    """True when ``given`` is this session's CSRF token (compared in constant time)."""
    if not session or not given or not session.get("csrf"):
        return False
    return hmac.compare_digest(given.encode(), str(session["csrf"]).encode())


# ------------------------------------------------------------------ slow-down


def failure_keys(email: str, ip: str | None) -> list[tuple[str, str]]:
    return [("email", f"email:{email.strip().lower()}"), ("ip", f"ip:{ip or 'unknown'}")]


async def locked_for(database: Database, email: str, ip: str | None,
                     now: datetime) -> float:
    """Seconds until a sign-in for ``email`` from ``ip`` may be tried again (0: now)."""
    ids = [key for _, key in failure_keys(email, ip)]
    wait = 0.0
    async for doc in failures(database).find({"_id": {"$in": ids}}):
        until = doc.get("locked_until")
        if until is not None and until > now:
            wait = max(wait, (until - now).total_seconds())
    return wait


async def record_failure(database: Database, email: str, ip: str | None,
                         now: datetime) -> None:
    """Count a failed sign-in; past the free attempts, lock for a doubling time."""
    collection = failures(database)
    for kind, key in failure_keys(email, ip):
        doc = await collection.find_one({"_id": key}) or {}
        last = doc.get("last_at")
        count = 1 if last is None or now - last > FAILURE_MEMORY else doc.get("count", 0) + 1
        over = count - FREE_FAILURES[kind]
        update: Doc = {"count": count, "last_at": now}
        if over > 0:
            update["locked_until"] = now + min(timedelta(seconds=2 ** (over - 1)), MAX_LOCK)
        await collection.update_one({"_id": key}, {"$set": update}, upsert=True)


async def clear_failures(database: Database, email: str) -> None:
    await failures(database).delete_one({"_id": failure_keys(email, None)[0][1]})
