"""Scheduled campaigns over HTTP: create one (or count its audience first), and follow it.

- ``POST /api/campaigns``: ``{name, segment, text | texts, template?,
  channels?, at, dry_run?}`` (``bot.core.campaigns`` says what each holds).
  ``dry_run: true`` answers ``{"matching": N}``, the customers in the
  segment now, and writes nothing. Otherwise the campaign is stored and the
  answer is 201 ``{"id", "status": "scheduled", "at"}``; at ``at`` the
  decide loop expands it (``bot.runtime.campaigns``).
- ``GET /api/campaigns/{id}``: the campaign, its ``status`` (``scheduled``,
  ``expanding``, ``expanded``) and ``counts``: ``matched`` (customers in the
  segment when it was expanded), ``queued`` (decided, waiting in the outbox,
  e.g. for quiet hours to end), ``sent`` (handed to the provider, delivered
  or read), ``failed``, and ``skipped`` by reason (``consent``,
  ``frequency_cap``, ``window``, ... as ``bot.core.policy.REASON_CODES``).

Auth is that of every ``/api`` route; creating one takes an admin (the
``ADMIN_TOKEN`` or an admin's session), 403 otherwise. A bad body answers 400 naming the
field (``segment.all[1].spent_over: ...``), an unknown id 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from bot.core.campaigns import BadCampaign, parse_campaign, segment_from_json
from bot.core.policy import reason_code
from bot.http.agents import ACTOR
from bot.http.appkeys import CLOCK, DATABASE, RUNTIME
from bot.http.common import iso, json_error, read_json
from bot.infra.database import Database
from bot.runtime.campaigns import count_matching
from bot.types import Doc

SENT = ("sent", "delivered", "read")
FAILED = ("failed", "undelivered")


async def create_campaign(request: web.Request) -> web.Response:
    """``POST /api/campaigns``: admins only (a message to many customers), 201 or a count."""
    who = request[ACTOR]
    if not who.is_admin:
        return json_error(403, "only admins create campaigns")
    body = await read_json(request)
    now = request.app[CLOCK].now()
    database: Database = request.app[DATABASE]
    try:
        campaign = parse_campaign(body, now, list(request.app[RUNTIME].channels))
    except BadCampaign as exc:
        return json_error(400, str(exc))
    if campaign.dry_run:
        matching = await count_matching(database, segment_from_json(campaign.segment, now))
        return web.json_response({"matching": matching})
    doc: Doc = {
        "_id": f"cmp_{uuid.uuid4().hex[:16]}", "name": campaign.name,
        "segment": campaign.segment, "texts": campaign.texts, "template": campaign.template,
        "channels": campaign.channels, "at": campaign.at, "status": "scheduled",
        "created_at": now, "created_by": who.email or who.name,
        "matched": 0, "scanned": 0,
    }
    await database.campaigns.insert_one(doc)
    return web.json_response({"id": doc["_id"], "status": "scheduled", "at": iso(doc["at"])},
                             status=201)


async def message_counts(database: Database, campaign: str) -> Doc:
    """The campaign's messages by status, skipped ones by reason (through its index)."""
    counts: Doc = {"queued": 0, "sent": 0, "failed": 0, "skipped": {}}
    groups = database.messages.aggregate([
        {"$match": {"campaign": campaign}},
        {"$group": {"_id": {"status": "$status", "error": "$error"}, "n": {"$sum": 1}}}])
    async for group in await groups:
        status, n = group["_id"].get("status"), group["n"]
        if status == "skipped":
            reason = reason_code(group["_id"].get("error"))
            counts["skipped"][reason] = counts["skipped"].get(reason, 0) + n
        elif status in SENT:
            counts["sent"] += n
        elif status in FAILED:
            counts["failed"] += n
        elif status == "queued" or status == "sending":
            counts["queued"] += n
    return counts


async def show_campaign(request: web.Request) -> web.Response:
    database: Database = request.app[DATABASE]
    doc = await database.campaigns.find_one({"_id": request.match_info["id"]})
    if doc is None:
        return json_error(404, "no such campaign")
    counts: dict[str, Any] = {"matched": doc.get("matched", 0),
                              **await message_counts(database, doc["_id"])}
    return web.json_response({
        "id": doc["_id"], "name": doc["name"], "status": doc["status"], "at": iso(doc["at"]),
        "segment": doc["segment"], "texts": doc["texts"], "template": doc.get("template"),
        "channels": doc.get("channels", []), "created_at": iso(doc.get("created_at")),
        "expanded_at": iso(doc.get("expanded_at")), "counts": counts,
        **({"error": doc["error"]} if doc.get("error") else {})})


def add_campaign_routes(app: web.Application) -> None:
    app.router.add_post("/api/campaigns", create_campaign)
    app.router.add_get("/api/campaigns/{id}", show_campaign)
