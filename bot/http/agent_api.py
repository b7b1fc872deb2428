"""The agent API: conversations, takeover/release, agent messages, customers.

Reads come straight from the ``conversations`` summaries and the
``messages`` timeline. Every change (takeover, an agent's message, release)
goes through the runtime as an input like any other, so it is serialised
with the bot's own decisions on that customer and recorded in the timeline.

A change is answered as soon as its input is stored, never after running
the decide loop in the request: under a backlog that loop can be busy for
seconds with inputs that arrived first. The answer describes what the
input will do once decided (see :func:`accepted_view`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.http.agents import (
    ACTOR,
    TOKEN_ACTOR,
    Actor,
    EmailTaken,
    NewAgent,
    create_agent,
    find_agent,
    public_view,
)
from bot.http.appkeys import CHANNELS, CLOCK, DATABASE, RUNTIME
from bot.http.common import bad_request, iso, json_error, json_safe, read_json
from bot.types import CONVERSATION_STATUSES, Doc


class TakeoverBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    # Required with the ADMIN_TOKEN; with a session it is the signed-in agent.
    agent: str | None = Field(default=None, min_length=1, max_length=100)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    agent: str = Field(min_length=3, max_length=254)  # an agent's e-mail


class AgentMessageBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    # Optional: by default the message is signed by the agent who took the
    # conversation over (the contract's body is only the text).
    agent: str | None = Field(default=None, min_length=1, max_length=100)
    # An approved template (one a flow declares): what may go out on
    # WhatsApp after the 24-hour window has closed.
    template: str | None = Field(default=None, min_length=1, max_length=512)
    template_params: list[str] = Field(default_factory=list, max_length=10)


def message_view(doc: Doc) -> Doc:
    """``M`` of the contract (plus channel, choices and the reason a message was not sent)."""
    return {
        "id": doc["_id"], "direction": doc["direction"], "text": doc.get("text"),
        "at": iso(doc.get("at")), "status": doc.get("status"), "agent": doc.get("agent"),
        "flow": doc.get("flow"), "channel": doc.get("channel"),
        "choices": doc.get("choices", []), "template": doc.get("template"),
        "error": doc.get("error"),
        "status_history": [{**h, "at": iso(h.get("at")) if isinstance(h.get("at"), datetime)
                            else h.get("at")} for h in doc.get("status_history", [])],
    }


def conversation_view(doc: Doc, last: Doc | None) -> Doc:
    """``C`` of the contract."""
    return {
        "id": doc["_id"], "customer_id": doc.get("customer_id"), "channel": doc["channel"],
        "status": doc.get("status", "bot"), "agent": doc.get("agent"),
        "handoff_reason": doc.get("handoff_reason"),
        "last_message": message_view(last) if last else None,
        "updated_at": iso(doc.get("updated_at")),
    }


def _parse(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_request(f"{field}: {first['msg']}") from None


async def list_conversations(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    query: Doc = {}
    status = request.query.get("status")
    if status:
        if status not in CONVERSATION_STATUSES:
            return json_error(400, f"status must be one of {', '.join(CONVERSATION_STATUSES)}")
        query["status"] = status
    if request.query.get("customer_id"):
        query["customer_id"] = request.query["customer_id"]
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 500)
    except ValueError:
        return json_error(400, "limit must be a whole number")
    docs = await database.conversations.find(query).sort("updated_at", -1).to_list(limit)
    last_ids = [d["last_message"] for d in docs if d.get("last_message")]
    last = {m["_id"]: m async for m in database.messages.find({"_id": {"$in": last_ids}})}
    return web.json_response({"conversations": [
        conversation_view(d, last.get(d.get("last_message"))) for d in docs]})


async def _conversation(request: web.Request) -> Doc:
    conversation_id = request.match_info["id"]
    doc = await request.app[DATABASE].conversations.find_one({"_id": conversation_id})
    if doc is None:
        raise web.HTTPNotFound(text='{"error": "no such conversation"}',
                               content_type="application/json")
    return doc


async def accepted_view(request: web.Request, doc: Doc, **change: Any) -> Doc:
    """``C`` as an accepted takeover or release leaves it, before it is decided.

    The customer document is the one source of truth for a conversation's
    status, and the ``conversations`` summary is the decision's copy of it,
    written only by the processor. So the request does not write the
    summary itself; it answers with the summary as the decision will write
    it (``change``: the status, agent and reason the action sets). The
    decision applies exactly that, normally within milliseconds; with a
    backlog, after the customer's inputs that arrived first, so a GET in
    between may still show the previous status.
    """
    database = request.app[DATABASE]
    last = await database.messages.find_one({"_id": doc.get("last_message")}) if doc.get(
        "last_message") else None
    return conversation_view({**doc, **change, "updated_at": request.app[CLOCK].now()}, last)


async def get_conversation(request: web.Request) -> web.Response:
    doc = await _conversation(request)
    database = request.app[DATABASE]
    messages = await database.messages.find(
        {"conversation_id": doc["_id"]}).sort("seq", 1).to_list(2000)
    view = conversation_view(doc, messages[-1] if messages else None)
    view["messages"] = [message_view(m) for m in messages]
    view["actions"] = await conversation_actions(request, doc)
    return web.json_response(view)


async def conversation_actions(request: web.Request, doc: Doc) -> list[Doc]:
    """Who took over, assigned, released, closed or wrote, and when (newest last)."""
    customer = await request.app[DATABASE].customers.find_one(
        {"_id": doc["customer"]}, {f"conversations.{doc['channel']}.actions": 1}) or {}
    actions = customer.get("conversations", {}).get(doc["channel"], {}).get("actions", [])
    return [{**a, "at": iso(a.get("at"))} for a in actions]


def actor(request: web.Request) -> Actor:
    """Who is asking (set by ``auth_middleware``; the token's actor outside it)."""
    found: Actor = request.get(ACTOR, TOKEN_ACTOR)  # Request.get is not typed by key
    return found


def forbidden(message: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=json.dumps({"error": message}),
                             content_type="application/json")


def holder(doc: Doc) -> str | None:
    """The agent holding a conversation, if one does."""
    return doc.get("agent") if doc.get("status") == "agent" else None


def ensure_may_change(who: Actor, doc: Doc) -> None:
    """A conversation another agent holds is read-only to agents (not to admins)."""
    held_by = holder(doc)
    if held_by and not who.is_admin and held_by != who.email:
        raise forbidden(f"the conversation is held by {held_by}; "
                        "only they or an admin may change it")


def acting_agent(who: Actor, named: str | None) -> str | None:
    """The agent an action is taken as: a session acts as itself unless it is an admin's."""
    if who.via == "session" and named and named != who.email and not who.is_admin:
        raise forbidden("an agent acts only as themselves")
    return named or who.email


async def do_takeover(request: web.Request, doc: Doc, who: Actor,
                      named: str | None = None) -> Doc:
    ensure_may_change(who, doc)
    agent = acting_agent(who, named)
    if agent is None:
        raise bad_request("agent: Field required")
    await request.app[RUNTIME].agent_action(doc["customer"], doc["channel"], "takeover",
                                            agent=agent, by=who.label)
    return await accepted_view(request, doc, status="agent", agent=agent)


async def do_assign(request: web.Request, doc: Doc, who: Actor, email: str) -> Doc:
    """Give the conversation to an agent: admins always; agents unless another holds it."""
    ensure_may_change(who, doc)
    account = await find_agent(request.app[DATABASE], email)
    if account is None:
        raise bad_request("agent: no agent has this e-mail")
    await request.app[RUNTIME].agent_action(doc["customer"], doc["channel"], "assign",
                                            agent=account["email"], by=who.label)
    return await accepted_view(request, doc, status="agent", agent=account["email"])


async def do_release(request: web.Request, doc: Doc, who: Actor) -> Doc:
    ensure_may_change(who, doc)
    await request.app[RUNTIME].agent_action(doc["customer"], doc["channel"], "release",
                                            by=who.label)
    return await accepted_view(request, doc, status="bot", agent=None, handoff_reason=None)


async def do_close(request: web.Request, doc: Doc, who: Actor) -> Doc:
    ensure_may_change(who, doc)
    await request.app[RUNTIME].agent_action(doc["customer"], doc["channel"], "close",
                                            by=who.label)
    return await accepted_view(request, doc, status="closed", agent=None)


def declared_templates(request: web.Request) -> list[str]:
    """The approved templates: those the loaded flows declare (``Flow.templates``)."""
    flows = request.app[RUNTIME].flows.values()
    return sorted({name for flow in flows for name in flow.templates.values()})


async def takeover(request: web.Request) -> web.Response:
    doc = await _conversation(request)
    body = _parse(TakeoverBody, await read_json(request))
    return web.json_response(await do_takeover(request, doc, actor(request), body.agent))


async def assign(request: web.Request) -> web.Response:
    doc = await _conversation(request)
    body = _parse(AssignBody, await read_json(request))
    return web.json_response(await do_assign(request, doc, actor(request), body.agent))


async def release(request: web.Request) -> web.Response:
    doc = await _conversation(request)
    return web.json_response(await do_release(request, doc, actor(request)))


async def close(request: web.Request) -> web.Response:
    doc = await _conversation(request)
    return web.json_response(await do_close(request, doc, actor(request)))


async def create_agent_route(request: web.Request) -> web.Response:
    """``POST /api/agents``: admins only; 201 with the account (never its hash)."""
    if not actor(request).is_admin:
        return json_error(403, "only admins create agents")
    body = _parse(NewAgent, await read_json(request))
    try:
        doc = await create_agent(request.app[DATABASE], body, request.app[CLOCK].now())
    except EmailTaken:
        return json_error(409, f"email: an agent with {body.email} exists")
    return web.json_response(public_view(doc), status=201)


async def agent_message(request: web.Request) -> web.Response:
    """202 with ``M`` as queued, as soon as the input is stored.

    The decision gives the message the id ``agent:<input id>`` (``bot.core.decide``)
    and signs it with the body's agent, else the conversation's; the answer
    uses the same id, so a later GET of the conversation shows this message
    with its outcome (sent, or skipped with the reason, e.g. outside
    WhatsApp's 24-hour window).
    """
    doc = await _conversation(request)
    body = _parse(AgentMessageBody, await read_json(request))
    queued = await do_message(request, doc, actor(request), body)
    return web.json_response(message_view(queued), status=202)


async def do_message(request: web.Request, doc: Doc, who: Actor, body: AgentMessageBody) -> Doc:
    """Store an agent's message (text or approved template); ``M`` as queued."""
    ensure_may_change(who, doc)
    agent = acting_agent(who, body.agent)
    template: Doc | None = None
    if body.template is not None:
        if body.template not in declared_templates(request):
            raise bad_request("template: not one of the approved templates the flows declare")
        customer = await request.app[DATABASE].customers.find_one(
            {"_id": doc["customer"]}, {"profile.locale": 1}) or {}
        template = {"name": body.template, "params": body.template_params,
                    "language": (customer.get("profile") or {}).get("locale") or "es"}
    elif body.text is None:
        raise bad_request("text: Field required")
    text = body.text or f"[{body.template}]"
    input_id = await request.app[RUNTIME].agent_action(
        doc["customer"], doc["channel"], "message", agent=agent, text=text, by=who.label,
        template=template)
    at = request.app[CLOCK].now()
    return {
        "_id": f"agent:{input_id}", "direction": "out", "text": text, "at": at,
        "status": "queued", "agent": agent or doc.get("agent") or "agent", "flow": None,
        "channel": doc["channel"], "template": template,
        "status_history": [{"status": "queued", "at": at}],
    }


async def get_customer(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    customer_id = request.match_info["id"]
    doc = await database.customers.find_one({"keys": f"store:{customer_id}"})
    if doc is None:
        doc = await database.customers.find_one({"_id": customer_id})
    if doc is None:
        return json_error(404, "no such customer")
    profile = doc.get("profile", {})
    body: Doc = {
        "id": doc.get("store_id") or doc["_id"], "internal_id": doc["_id"],
        "phone": doc.get("phone"), "email": doc.get("email"),
        "first_name": profile.get("first_name"), "last_name": profile.get("last_name"),
        "locale": profile.get("locale"), "timezone": profile.get("timezone"),
        "birthday": profile.get("birthday"), "tags": doc.get("tags", []),
        "attrs": doc.get("attrs", {}),
        "consents": {ch: {"state": e["state"], "source": e["source"], "at": iso(e["at"])}
                     for ch, e in doc.get("consents", {}).items()},
        "consent_ledger": [json_safe(e) for e in doc.get("consent_ledger", [])],
        "active_flows": [{"flow": name, "step": run.get("step"),
                          "started_at": iso(run.get("started_at"))}
                         for name, run in sorted(doc.get("flows", {}).items())],
        "conversations": {ch: c.get("status") for ch, c in doc.get("conversations", {}).items()},
    }
    for name, channel in request.app[CHANNELS].items():
        link = channel.deep_link(doc["_id"])  # e.g. Telegram's /start link: "telegram_link"
        if link is not None:
            body[f"{name}_link"] = link
    return web.json_response(body)


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/conversations", list_conversations)
    app.router.add_get("/api/conversations/{id}", get_conversation)
    app.router.add_post("/api/conversations/{id}/takeover", takeover)
    app.router.add_post("/api/conversations/{id}/messages", agent_message)
    app.router.add_post("/api/conversations/{id}/release", release)
    app.router.add_post("/api/conversations/{id}/assign", assign)
    app.router.add_post("/api/conversations/{id}/close", close)
    app.router.add_post("/api/agents", create_agent_route)
    app.router.add_get("/api/customers/{id}", get_customer)
