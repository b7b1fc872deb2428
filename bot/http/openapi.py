"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/openapi.json``.

Why a table and not introspection: aiohttp routes carry no types, and most
handlers check their bodies by hand (to name the field in a 400), so the
router alone cannot say what a route takes or answers. :data:`OPERATIONS`
says it once per route; the schemas themselves come from pydantic models
(the handlers' own request models, and ``bot.http.api_models`` for the
answers) through pydantic's JSON Schema generator, so a model and its
schema never disagree. ``tests/http/test_openapi.py`` keeps the table
honest: every route the router serves is in it (console pages aside), and
the running service's answers validate against it.

``bot/`` imports no edge (``tests/test_architecture.py``), so a body model
that lives in an edge (``channels.email.InboundEmail``) is handed in by
``server.create_app`` through ``edge_bodies``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bot.core.inputs import StoreEvent
from bot.http import api_models as m
from bot.http.agent_api import AgentMessageBody, AssignBody, TakeoverBody
from bot.http.agents import NewAgent
from bot.http.appkeys import SETTINGS
from bot.types import CONVERSATION_STATUSES, Doc

OPENAPI_PATH = "/api/openapi.json"
REF = "#/components/schemas/{model}"
# Who may call an operation: nobody in particular, the admin token, the admin
# token or a console session (``/api``), or a webhook's signature scheme.
Security = Literal["none", "admin", "api", "whatsappSignature", "twilioSignature",
                   "telegramSecret", "shopifyHmac", "woocommerceSignature", "eventsSignature",
                   "emailSignature"]

DESCRIPTION = """\
Chasqui's HTTP API: provider and store webhooks in, the agent, flow,
campaign and consent API, e-mail link routes, and operations endpoints.

Generated from the service's pydantic models (`bot/http/openapi.py`) and
checked against the running service by `tests/http/test_openapi.py`.
Answers may carry fields beyond those described (every answer object allows
additional properties). Times are ISO 8601 in UTC.

Left out: the agent console's HTML pages and their form posts (`/console`,
`/console/*`), which are for browsers, not integrators.

This document is itself under `/api`, so it needs the bearer `ADMIN_TOKEN`
(or a console session) like every other `/api` route.
"""

TAGS = (
    ("webhooks", "Messaging providers: WhatsApp, Twilio SMS, Telegram, inbound e-mail."),
    ("store events", "Store webhooks: the generic `/events`, Shopify, WooCommerce."),
    ("agents", "Conversations, customers and agent accounts."),
    ("flows", "The loaded flows, their statistics and runs."),
    ("campaigns", "Scheduled one-off marketing messages to a segment."),
    ("consent", "Proof of consent and its audit export."),
    ("e-mail links", "Opens, clicks and unsubscribes from e-mails (signed tokens; public)."),
    ("operations", "Health, metrics, the virtual clock and this document."),
)

SECURITY_SCHEMES: Doc = {
    "adminToken": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer ADMIN_TOKEN`: an admin's rights. "
                                  "With ADMIN_TOKEN unset every such call answers 401."},
    "consoleSession": {"type": "apiKey", "in": "cookie", "name": "chasqui_session",
                       "description": "An agent's console session (`/api/*` only); a change "
                                      "(any method but GET) also needs `X-CSRF-Token`."},
    "whatsappSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256",
                          "description": "`sha256=<hex HMAC-SHA256 of the raw body, key "
                                         "WHATSAPP_APP_SECRET>`"},
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
                        "description": "Twilio's HMAC-SHA1 scheme over PUBLIC_URL + path and "
                                       "the sorted form fields, key TWILIO_AUTH_TOKEN"},
    "telegramSecret": {"type": "apiKey", "in": "header",
                       "name": "X-Telegram-Bot-Api-Secret-Token",
                       "description": "TELEGRAM_SECRET_TOKEN, as set with setWebhook"},
    "shopifyHmac": {"type": "apiKey", "in": "header", "name": "X-Shopify-Hmac-Sha256",
                    "description": "base64 HMAC-SHA256 of the raw body, key "
                                   "SHOPIFY_WEBHOOK_SECRET"},
    "woocommerceSignature": {"type": "apiKey", "in": "header", "name": "X-WC-Webhook-Signature",
                             "description": "base64 HMAC-SHA256 of the raw body, key "
                                            "WOOCOMMERCE_WEBHOOK_SECRET"},
    "eventsSignature": {"type": "apiKey", "in": "header", "name": "X-Signature-256",
                        "description": "`sha256=<hex HMAC-SHA256 of the raw body, key "
                                       "STORE_EVENTS_SECRET>`"},
    "emailSignature": {"type": "apiKey", "in": "header", "name": "X-Signature-256",
                       "description": "`sha256=<hex HMAC-SHA256 of the raw body, key "
                                      "EMAIL_INBOUND_SECRET>`"},
}

SECURITY: dict[Security, list[Doc]] = {
    "none": [],
    "admin": [{"adminToken": []}],
    "api": [{"adminToken": []}, {"consoleSession": []}],
    "whatsappSignature": [{"whatsappSignature": []}],
    "twilioSignature": [{"twilioSignature": []}],
    "telegramSecret": [{"telegramSecret": []}],
    "shopifyHmac": [{"shopifyHmac": []}],
    "woocommerceSignature": [{"woocommerceSignature": []}],
    "eventsSignature": [{"eventsSignature": []}],
    "emailSignature": [{"emailSignature": []}],
}


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter."""

    name: str
    where: Literal["path", "query", "header"]
    description: str
    schema: Doc = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Reply:
    """One status's answer: JSON models (any of them), or other media types with a schema."""

    description: str
    models: tuple[type[BaseModel], ...] = ()
    media: tuple[tuple[str, Doc], ...] = ()
    headers: Doc | None = None


@dataclass(frozen=True)
class Body:
    """A request body: a model's JSON, or another media type with a schema."""

    model: type[BaseModel] | None = None
    media: str = "application/json"
    schema: Doc | None = None
    description: str = ""
    required: bool = True
    edge: str | None = None  # looked up in ``edge_bodies`` (a model bot/ may not import)


@dataclass(frozen=True)
class Operation:
    method: Literal["get", "post"]
    path: str
    summary: str
    tag: str
    security: Security
    replies: Mapping[int, Reply]
    params: tuple[Param, ...] = ()
    body: Body | None = None
    description: str = ""


def error(description: str) -> Reply:
    return Reply(description, (m.ErrorBody,))


def provider(name: str, url: str) -> Doc:
    """A provider's own payload: described by name, not schema (it is the provider's)."""
    return {"type": "object", "description": f"{name}'s own payload: see {url}"}


TEXT: Doc = {"type": "string"}
ID = Param("id", "path", "the conversation id", required=True)
CUSTOMER = Param("id", "path", "the store's customer id (or the internal one)", required=True)
FLOW = Param("name", "path", "the flow's name", required=True)
TOKEN = Param("token", "path", "the signed token of the e-mail link", required=True)
DAY: Doc = {"type": "string", "format": "date"}
FROM = Param("from", "query", "first day (ISO date, UTC), default 30 days before `to`", DAY)
TO = Param("to", "query", "last day (ISO date, UTC), included; default today", DAY)
RUN_FILTERS = (Param("step", "query", "only runs whose last step is this"),
               Param("outcome", "query", "only runs that ended with this outcome"), FROM, TO)
LIMIT = Param("limit", "query", "runs per page, 1 to 1000 (default 100)",
              {"type": "integer", "minimum": 1, "maximum": 1000})
CURSOR = Param("cursor", "query", "`next` of the previous page")
TWIML: Doc = {"type": "string", "description": "empty TwiML: no automatic reply"}
TWILIO_FORM = provider("Twilio", "https://www.twilio.com/docs/messaging/guides/webhook-request")
CHALLENGE = Reply("wrong hub.verify_token or hub.mode", media=(("text/plain", TEXT),))

NOT_FOUND = error("no such conversation")
CHANGES = {401: error("missing or wrong bearer token or session"),
           403: error("the conversation is held by another agent, or a session without "
                      "its X-CSRF-Token"),
           404: NOT_FOUND, 503: error("database unavailable: not stored, retry")}
SIGNED = {401: error("bad or missing signature"), 413: error("body larger than 1 MiB"),
          503: error("the endpoint is off (its secret is unset), or the database is "
                     "unavailable: retry")}

OPERATIONS: tuple[Operation, ...] = (
    # -- operations
    Operation("get", "/healthz", "Whether the service and its database answer", "operations",
              "none", {200: Reply("the database answered a ping within 1 s", (m.Health,)),
                       503: Reply("the database did not answer", (m.Health,))}),
    Operation("get", "/metrics", "Prometheus metrics", "operations", "none",
              {200: Reply("Prometheus text exposition format",
                          media=(("text/plain", TEXT),))}),
    Operation("post", "/admin/clock/advance", "Move the virtual clock and run what fell due",
              "operations", "admin",
              {200: Reply("the time after every due wait ran and its sends were attempted",
                          (m.ClockNow,)),
               400: error("seconds: a number >= 0 (at most 100 years) is required"),
               401: error("missing or wrong bearer token"),
               404: error("the clock is not virtual (CLOCK=virtual enables this)"),
               413: error("body larger than 1 MiB")},
              body=Body(m.ClockAdvance)),
    Operation("get", OPENAPI_PATH, "This document (OpenAPI 3.1)", "operations", "api",
              {200: Reply("the OpenAPI document", media=(("application/json",
                                                          {"type": "object"}),)),
               401: error("missing or wrong bearer token or session")}),
    # -- webhooks
    Operation("get", "/webhooks/whatsapp", "Meta's webhook verification handshake", "webhooks",
              "none",
              {200: Reply("hub.challenge, echoed", media=(("text/plain", TEXT),)),
               403: CHALLENGE, 503: error("the WhatsApp channel is off")},
              params=(Param("hub.mode", "query", "`subscribe`"),
                      Param("hub.verify_token", "query", "WHATSAPP_VERIFY_TOKEN"),
                      Param("hub.challenge", "query", "echoed when the token matches"))),
    Operation("post", "/webhooks/whatsapp", "WhatsApp Cloud API webhook (messages, statuses)",
              "webhooks", "whatsappSignature",
              {200: Reply("stored (or ignored and kept)", (m.ProviderAck, m.Ignored)),
               400: error("a body that is not a WhatsApp webhook"), **SIGNED},
              body=Body(schema=provider("Meta", "https://developers.facebook.com/docs/"
                                                "whatsapp/cloud-api/webhooks/components"))),
    Operation("post", "/webhooks/sms", "Twilio inbound SMS", "webhooks", "twilioSignature",
              {200: Reply("stored (or ignored and kept)", (m.Ignored,),
                          media=(("text/xml", TWIML),)),
               400: error("a form that is not a Twilio webhook"), **SIGNED},
              body=Body(media="application/x-www-form-urlencoded", schema=TWILIO_FORM)),
    Operation("post", "/webhooks/sms/status", "Twilio delivery status callback", "webhooks",
              "twilioSignature",
              {200: Reply("stored (or ignored and kept)", (m.Ignored,),
                          media=(("text/xml", TWIML),)),
               400: error("a form that is not a Twilio status callback"), **SIGNED},
              body=Body(media="application/x-www-form-urlencoded", schema=TWILIO_FORM)),
    Operation("post", "/webhooks/telegram", "Telegram Bot API update (webhook mode)",
              "webhooks", "telegramSecret",
              {200: Reply("stored; a tapped button is answered in the reply",
                          (m.ProviderAck, m.TelegramCallbackAnswer, m.Ignored)),
               400: error("a body that is not a Telegram update"), **SIGNED},
              body=Body(schema=provider("Telegram", "https://core.telegram.org/bots/api#update"))),
    Operation("post", "/webhooks/email", "A customer's e-mail reply, from an inbound relay",
              "webhooks", "emailSignature",
              {200: Reply("stored (or ignored and kept)", (m.ProviderAck, m.Ignored)),
               400: error("a body that is not an inbound e-mail; names the field"), **SIGNED},
              body=Body(edge="/webhooks/email",
                        schema={"type": "object", "description": "the inbound e-mail"})),
    # -- store events
    Operation("post", "/events", "A store event in the generic shape", "store events",
              "eventsSignature",
              {202: Reply("stored; it will be decided", (m.EventAccepted,)),
               200: Reply("a repeated id: nothing changed", (m.Duplicate, m.Ignored)),
               400: error("not an event; names the field"), **SIGNED},
              body=Body(StoreEvent, description="`id`, `type`, `occurred_at` and "
                                                "`customer.id` are required; other fields "
                                                "are kept")),
    Operation("post", "/webhooks/shopify", "Shopify webhook", "store events", "shopifyHmac",
              {200: Reply("stored, a duplicate, or a topic not handled (kept)",
                          (m.StoreAck, m.Duplicate, m.Ignored)),
               400: error("a body the topic's mapping cannot use; names the field"), **SIGNED},
              params=(Param("X-Shopify-Topic", "header", "e.g. `orders/create`", required=True),
                      Param("X-Shopify-Webhook-Id", "header", "dedupe key", required=True)),
              body=Body(schema=provider("Shopify", "https://shopify.dev/docs/api/webhooks"))),
    Operation("post", "/webhooks/woocommerce", "WooCommerce webhook", "store events",
              "woocommerceSignature",
              {200: Reply("stored, a duplicate, or a topic not handled (kept)",
                          (m.StoreAck, m.Duplicate, m.Ignored)),
               400: error("a body the topic's mapping cannot use; names the field"), **SIGNED},
              params=(Param("X-WC-Webhook-Topic", "header", "e.g. `order.created`"),
                      Param("X-WC-Webhook-Delivery-ID", "header", "dedupe key")),
              body=Body(schema=provider("WooCommerce", "https://woocommerce.github.io/"
                                                       "woocommerce-rest-api-docs/#webhooks"))),
    # -- agents
    Operation("get", "/api/conversations", "Conversations, newest activity first", "agents",
              "api",
              {200: Reply("the conversations", (m.ConversationList,)),
               400: error("a bad status or limit"),
               401: error("missing or wrong bearer token or session")},
              params=(Param("status", "query", "only conversations with this status",
                            {"type": "string", "enum": list(CONVERSATION_STATUSES)}),
                      Param("customer_id", "query", "only this customer's conversations"),
                      Param("limit", "query", "at most this many (1 to 500, default 100)",
                            {"type": "integer"}))),
    Operation("get", "/api/conversations/{id}", "A conversation with its message timeline",
              "agents", "api",
              {200: Reply("`C` plus its messages, oldest first", (m.ConversationDetail,)),
               401: error("missing or wrong bearer token or session"), 404: NOT_FOUND},
              params=(ID,)),
    Operation("post", "/api/conversations/{id}/takeover", "An agent takes the conversation over",
              "agents", "api",
              {200: Reply("`C` as the takeover leaves it", (m.Conversation,)),
               400: error("agent: required with the bearer token"),
               413: error("body larger than 1 MiB"), **CHANGES},
              params=(ID,), body=Body(TakeoverBody)),
    Operation("post", "/api/conversations/{id}/messages",
              "An agent's message to the customer, on the conversation's channel", "agents",
              "api",
              {202: Reply("`M` as queued", (m.Message,)),
               400: error("text (or an approved template) is required"),
               413: error("body larger than 1 MiB"), **CHANGES},
              params=(ID,), body=Body(AgentMessageBody)),
    Operation("post", "/api/conversations/{id}/release", "The bot answers the conversation again",
              "agents", "api", {200: Reply("`C` as the release leaves it", (m.Conversation,)),
                                **CHANGES}, params=(ID,)),
    Operation("post", "/api/conversations/{id}/assign", "Give the conversation to an agent",
              "agents", "api",
              {200: Reply("`C` as the assignment leaves it", (m.Conversation,)),
               400: error("agent: no agent has this e-mail"),
               413: error("body larger than 1 MiB"), **CHANGES},
              params=(ID,), body=Body(AssignBody)),
    Operation("post", "/api/conversations/{id}/close", "Close the conversation", "agents", "api",
              {200: Reply("`C` with status closed", (m.Conversation,)), **CHANGES},
              params=(ID,)),
    Operation("post", "/api/agents", "Create an agent account (admins)", "agents", "api",
              {201: Reply("the account (never its password)", (m.AgentAccount,)),
               400: error("a bad field, named"), 401: CHANGES[401],
               403: error("only admins create agents"),
               409: error("an agent with this e-mail exists"),
               413: error("body larger than 1 MiB"), 503: CHANGES[503]},
              body=Body(NewAgent)),
    Operation("get", "/api/customers/{id}", "A customer: profile, consents, active flows",
              "agents", "api",
              {200: Reply("the customer", (m.Customer,)), 401: CHANGES[401],
               404: error("no such customer")},
              params=(CUSTOMER,)),
    # -- consent
    Operation("get", "/api/customers/{id}/consent", "A customer's proof of consent",
              "consent", "api",
              {200: Reply("per channel: state, ledger with evidence, marketing sends",
                          (m.ConsentProof,)),
               401: CHANGES[401], 404: error("no such customer")},
              params=(CUSTOMER,)),
    Operation("get", "/api/consent.csv", "Audit export of a period's consent entries and sends",
              "consent", "api",
              {200: Reply("one row per ledger entry, then per marketing send",
                          media=(("text/csv", TEXT),)),
               400: error("from: required, or a bad date"), 401: CHANGES[401]},
              params=(Param("from", "query", "ISO date or date-time with offset",
                            required=True),
                      Param("to", "query", "ISO date (included) or date-time; default now"))),
    # -- flows
    Operation("get", "/api/flows", "The loaded flows", "flows", "api",
              {200: Reply("the flows", (m.FlowList,)), 401: CHANGES[401]}),
    Operation("get", "/api/flows/{name}/stats", "A flow's figures over a period", "flows", "api",
              {200: Reply("runs, steps, conversions (and variants)", (m.FlowStats,)),
               400: error("a bad date, or a period over 366 days"), 401: CHANGES[401],
               404: error("no such flow")},
              params=(FLOW, FROM, TO)),
    Operation("get", "/api/flows/{name}/runs", "The runs that ended in a period, a page at a time",
              "flows", "api",
              {200: Reply("where each customer stopped", (m.FlowRuns,)),
               400: error("a bad filter, named"), 401: CHANGES[401],
               404: error("no such flow")},
              params=(FLOW, *RUN_FILTERS, LIMIT, CURSOR)),
    Operation("get", "/api/flows/{name}/runs.csv", "The same runs as CSV, every page", "flows",
              "api",
              {200: Reply("id, customer_id, started_at, ended_at, last_step, outcome",
                          media=(("text/csv", TEXT),)),
               400: error("a bad filter, named"), 401: CHANGES[401],
               404: error("no such flow")},
              params=(FLOW, *RUN_FILTERS)),
    Operation("get", "/api/flows/{name}/diagram.svg", "The flow's diagram with a period's counts",
              "flows", "api",
              {200: Reply("the diagram", media=(("image/svg+xml", TEXT),)),
               400: error("a bad period"), 401: CHANGES[401],
               404: error("no such flow, or one without declared steps")},
              params=(FLOW, FROM, TO, Param("days", "query", "the last 7, 30 or 90 days",
                                            {"type": "integer", "enum": [7, 30, 90]}))),
    Operation("get", "/api/flows/{name}/versions", "Every version of the flow that ran",
              "flows", "api",
              {200: Reply("the versions, the most recently started first", (m.FlowVersions,)),
               401: CHANGES[401], 404: error("no such flow")},
              params=(FLOW,)),
    Operation("get", "/api/flows/{name}/versions/{version}", "The source a version ran",
              "flows", "api",
              {200: Reply("the flow module's source", media=(("text/x-python", TEXT),)),
               401: CHANGES[401], 404: error("no such flow, version or kept source")},
              params=(FLOW, Param("version", "path", "a version of the flow", required=True))),
    # -- campaigns
    Operation("post", "/api/campaigns", "Schedule a campaign, or count its segment (dry run)",
              "campaigns", "api",
              {201: Reply("scheduled", (m.CampaignCreated,)),
               200: Reply("dry run: the customers in the segment now", (m.CampaignCount,)),
               400: error("a bad field, named (e.g. segment.all[1].spent_over)"),
               401: CHANGES[401], 403: error("only admins create campaigns"),
               413: error("body larger than 1 MiB"), 503: CHANGES[503]},
              body=Body(m.CampaignBody)),
    Operation("get", "/api/campaigns/{id}", "A campaign and its counts", "campaigns", "api",
              {200: Reply("the campaign", (m.Campaign,)), 401: CHANGES[401],
               404: error("no such campaign")},
              params=(Param("id", "path", "the campaign id", required=True),)),
    # -- e-mail links
    Operation("get", "/t/{token}", "An e-mail open (pixel) or click (redirect)", "e-mail links",
              "none",
              {200: Reply("an open: a 1x1 GIF", media=(("image/gif", {"type": "string",
                                                                      "contentEncoding":
                                                                      "binary"}),)),
               302: Reply("a click: to the link's target",
                          headers={"Location": {"schema": TEXT}}),
               404: error("unknown link, or e-mail is off")},
              params=(TOKEN,)),
    Operation("get", "/r/{token}", "An answer link's page: the choice and one button "
              "(a GET never answers)", "e-mail links", "none",
              {200: Reply("a page with one button", media=(("text/html", TEXT),)),
               404: Reply("unknown link", media=(("text/html", TEXT),))},
              params=(TOKEN,)),
    Operation("post", "/r/{token}", "Answer a question with the link's choice (the page's "
              "button): stored as the customer's choice, the first answer per e-mail counts",
              "e-mail links", "none",
              {200: Reply("a page saying it is recorded (or was already)",
                          media=(("text/html", TEXT),)),
               404: error("unknown link"), 503: CHANGES[503]},
              params=(TOKEN,)),
    Operation("get", "/u/{token}", "The unsubscribe page (a GET never unsubscribes)",
              "e-mail links", "none",
              {200: Reply("a page with one button", media=(("text/html", TEXT),)),
               404: Reply("unknown link", media=(("text/html", TEXT),))},
              params=(TOKEN,)),
    Operation("post", "/u/{token}", "Unsubscribe: RFC 8058 one-click, or the page's button",
              "e-mail links", "none",
              {200: Reply("one-click: JSON; the page's button: a page saying it is done",
                          (m.Unsubscribed,), media=(("text/html", TEXT),)),
               404: error("unknown link"), 503: CHANGES[503]},
              params=(TOKEN,),
              body=Body(media="application/x-www-form-urlencoded", required=False,
                        schema={"type": "object",
                                "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                                "description": "`List-Unsubscribe=One-Click` from mail "
                                               "programs (RFC 8058); empty from the page"})),
)


# ---------------------------------------------------------------- the document


def _body_model(op: Operation,
                edge_bodies: Mapping[str, type[BaseModel]]) -> type[BaseModel] | None:
    """The model of the operation's body: its own, or the edge's it names (if handed in)."""
    if op.body is None:
        return None
    if op.body.edge is not None:
        return edge_bodies.get(op.body.edge)
    return op.body.model


def _models(edge_bodies: Mapping[str, type[BaseModel]]) -> list[type[BaseModel]]:
    """Every model the operations name, once each, in table order."""
    found: list[type[BaseModel]] = []
    for op in OPERATIONS:
        candidates = [model for reply in op.replies.values() for model in reply.models]
        body = _body_model(op, edge_bodies)
        if body is not None:
            candidates.append(body)
        found += [model for model in candidates if model not in found]
    return found


def _content(schemas: Mapping[type[BaseModel], Doc], reply: Reply) -> Doc:
    content: Doc = {}
    if reply.models:
        refs = [schemas[model] for model in reply.models]
        content["application/json"] = {"schema": refs[0] if len(refs) == 1 else {"anyOf": refs}}
    for media, schema in reply.media:
        content[media] = {"schema": schema}
    return content


def _operation(op: Operation, schemas: Mapping[type[BaseModel], Doc],
               edge_bodies: Mapping[str, type[BaseModel]]) -> Doc:
    doc: Doc = {"summary": op.summary, "tags": [op.tag],
                "operationId": re.sub(r"[^a-z0-9]+", "_", f"{op.method}_{op.path}").strip("_"),
                "security": SECURITY[op.security], "responses": {}}
    if op.description:
        doc["description"] = op.description
    if op.params:
        doc["parameters"] = [
            {"name": p.name, "in": p.where, "description": p.description,
             "required": p.required or p.where == "path", "schema": p.schema}
            for p in op.params]
    if op.body is not None:
        model = _body_model(op, edge_bodies)
        schema = schemas[model] if model is not None else op.body.schema or {"type": "object"}
        body: Doc = {"required": op.body.required, "content": {op.body.media: {"schema": schema}}}
        if op.body.description:
            body["description"] = op.body.description
        doc["requestBody"] = body
    for status, reply in sorted(op.replies.items()):
        answer: Doc = {"description": reply.description}
        content = _content(schemas, reply)
        if content:
            answer["content"] = content
        if reply.headers:
            answer["headers"] = reply.headers
        doc["responses"][str(status)] = answer
    return doc


def build_document(base_url: str,
                   edge_bodies: Mapping[str, type[BaseModel]] | None = None) -> Doc:
    """The OpenAPI 3.1 document, servers pointing at ``base_url`` (``PUBLIC_URL``)."""
    edges = dict(edge_bodies or {})
    models = _models(edges)
    refs, defs = models_json_schema([(model, "validation") for model in models],
                                    ref_template=REF)
    schemas = {model: refs[(model, "validation")] for model in models}
    paths: Doc = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas, edges)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Chasqui", "version": "1", "description": DESCRIPTION},
        "servers": [{"url": base_url}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }


def add_openapi_route(app: web.Application,
                      edge_bodies: Mapping[str, type[BaseModel]] | None = None) -> None:
    """Serve the document at :data:`OPENAPI_PATH`, built at the first request and kept."""
    built: list[bytes] = []

    async def openapi_json(request: web.Request) -> web.Response:
        if not built:
            document = build_document(request.app[SETTINGS].base_url, edge_bodies)
            built.append(json.dumps(document, indent=1).encode())
        return web.Response(body=built[0], content_type="application/json")

    app.router.add_get(OPENAPI_PATH, openapi_json)
