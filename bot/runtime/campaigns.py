"""Scheduled campaigns at their time: every matching customer gets an inbox item.

A campaign (``POST /api/campaigns``) is a document in ``campaigns``. Once
its ``at`` has come, :func:`campaign_pass` (part of the decide loop,
``bot.runtime.loops``) walks the customers in ``_id`` order, a page at a
time, and writes one inbox item of kind ``campaign`` per customer in the
segment, id ``campaign:<campaign>:<customer>``. The customer's decision then
sends it like any marketing message (``Router.campaign``): consent, quiet
hours, the frequency cap, pacing and the outbox apply unchanged.

Why pages and a cursor: a store may have more customers than fit in memory,
and a pass must not hold the decide loop for long. A pass reads at most
``MAX_PAGES`` pages through one cursor (ordered by ``_id``, which the
primary key serves) and keeps only one page in memory; after each page the
campaign records the last ``_id`` it read. That checkpoint is a pipeline
update conditional on the cursor it started from, so a page is counted once
even if two workers (or a replay after a crash) expand it: the items are
inserted with their ids, and an existing one is a duplicate, never a second
message.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from bot.core.campaigns import BadCampaign, segment_from_json
from bot.core.customers import facts
from bot.core.segments import Segment
from bot.infra.database import Database
from bot.runtime.inbox import make_item
from bot.runtime.processor import insert_ignoring_duplicates
from bot.types import Doc

log = logging.getLogger(__name__)
PAGE = 500  # customers read (and held) at a time
MAX_PAGES = 20  # pages one pass expands; a bigger store continues in the next pass
DUE_STATES = ("scheduled", "expanding")
# What a segment reads of a customer (``bot.core.customers.facts``).
FACT_FIELDS = {"store_id": 1, "profile": 1, "tags": 1, "attrs": 1, "consents": 1, "flows": 1,
               "question": 1, "purchases": 1}


async def count_matching(database: Database, segment: Segment) -> int:
    """How many customers are in ``segment`` now (a dry run), one page in memory at a time."""
    matching = 0
    async for doc in database.customers.find({}, FACT_FIELDS).batch_size(PAGE):
        matching += segment(facts(doc))
    return matching


def campaign_item(campaign: Doc, customer: str) -> Doc:
    """One customer's inbox item: what the decision needs to send it, without a read."""
    return make_item(
        dedupe_id=f"campaign:{campaign['_id']}:{customer}", kind="campaign", source="campaign",
        keys=[f"id:{customer}"],
        payload={"id": campaign["_id"], "name": campaign["name"], "texts": campaign["texts"],
                 "template": campaign.get("template"), "channels": campaign.get("channels", [])})


async def _checkpoint(database: Database, campaign: Doc, before: Any, after: Any,
                      matched: int, scanned: int, done: bool, now: datetime) -> None:
    """Record a page: the cursor moves from ``before`` to ``after``, if still at ``before``."""
    ours = {"$eq": [{"$ifNull": ["$cursor", None]}, {"$literal": before}]}

    def moved(value: Any, field: str) -> Doc:
        return {"$cond": [ours, value, f"${field}"]}

    changes: Doc = {
        "cursor": moved({"$literal": after}, "cursor"),
        "matched": moved({"$add": [{"$ifNull": ["$matched", 0]}, matched]}, "matched"),
        "scanned": moved({"$add": [{"$ifNull": ["$scanned", 0]}, scanned]}, "scanned"),
        "status": moved("expanded" if done else "expanding", "status"),
    }
    if done:
        changes["expanded_at"] = moved({"$literal": now}, "expanded_at")
    await database.campaigns.bulk_write([UpdateOne({"_id": campaign["_id"]},
                                                   [{"$set": changes}])])


async def expand(database: Database, campaign: Doc, now: datetime) -> tuple[int, bool]:
    """Expand up to ``MAX_PAGES`` pages of customers: (items written, whether it is done)."""
    try:
        segment = segment_from_json(campaign["segment"], campaign["at"])
    except BadCampaign as exc:  # checked at creation; only a hand-edited document gets here
        log.error("campaign %s: %s; not sent", campaign["_id"], exc)
        await database.campaigns.update_one({"_id": campaign["_id"]},
                                            {"$set": {"status": "failed", "error": str(exc)}})
        return 0, True
    cursor_at = campaign.get("cursor")
    query: Doc = {"_id": {"$gt": cursor_at}} if cursor_at is not None else {}
    written, pages = 0, 0
    items: list[Doc] = []
    scanned, last = 0, cursor_at
    cursor = database.customers.find(query, FACT_FIELDS).sort("_id", 1).batch_size(PAGE)
    try:
        async for doc in cursor:
            scanned += 1
            last = doc["_id"]
            if segment(facts(doc)):
                items.append(campaign_item(campaign, doc["_id"]))
            if scanned == PAGE:
                await insert_ignoring_duplicates(database.inbox, items)
                await _checkpoint(database, campaign, cursor_at, last, len(items), scanned,
                                  False, now)
                written += len(items)
                pages += 1
                cursor_at, items, scanned = last, [], 0
                if pages >= MAX_PAGES:
                    return written, False
    finally:
        await cursor.close()
    await insert_ignoring_duplicates(database.inbox, items)
    await _checkpoint(database, campaign, cursor_at, last, len(items), scanned, True, now)
    return written + len(items), True


async def campaign_pass(database: Database, now: datetime) -> int:
    """Expand the campaigns whose time has come.

    Returns the items written plus the campaigns left half-expanded, so that
    the loop runs again while any work is left (0: nothing to do).
    """
    due = await database.campaigns.find(
        {"status": {"$in": list(DUE_STATES)}, "at": {"$lte": now}}).to_list(10)
    progress = 0
    for campaign in due:
        written, done = await expand(database, campaign, now)
        progress += written + (not done)
    return progress


async def next_campaign(database: Database) -> datetime | None:
    """When the earliest scheduled campaign is due (virtual-time ``advance`` steps to it)."""
    first = await database.campaigns.find(
        {"status": {"$in": list(DUE_STATES)}, "at": {"$exists": True}}, {"at": 1},
    ).sort("at", 1).to_list(1)
    return first[0]["at"] if first else None
