"""What the console pages show, read from what the core already stores.

Nothing here writes: the inbox rows come from the ``conversations``
summaries (plus the customers' names and the last messages, one query
each), a conversation page from its ``messages`` timeline and the
customer's document (flow steps, agent actions, consents).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers

from bot.core.channel import ChannelTraits
from bot.core.compose import WINDOW
from bot.infra.database import Database, find_in
from bot.types import Doc

INBOX_LIMIT = 200
TIMELINE_LIMIT = 500
STATUSES = ("needs_agent", "agent", "bot", "closed")
TICKS = {"queued": "🕓", "sending": "🕓", "sent": "✓", "delivered": "✓✓", "read": "✓✓",
         "failed": "✗", "skipped": "⊘"}


@dataclass
class Filters:
    status: str | None = None
    channel: str | None = None
    agent: str | None = None

    @classmethod
    def from_query(cls, query: Any, channels: Collection[str]) -> Filters:
        """``channels``: the names a filter may take (the configured channels)."""
        status = query.get("status") if query.get("status") in STATUSES else None
        channel = query.get("channel") if query.get("channel") in channels else None
        return cls(status=status, channel=channel, agent=(query.get("agent") or None))

    def mongo(self) -> Doc:
        found: Doc = {}
        if self.status:
            found["status"] = self.status
        if self.channel:
            found["channel"] = self.channel
        if self.agent:
            found["agent"] = self.agent
        return found


def duration(seconds: float | None) -> str:
    """A short human duration: 45 s, 12 min, 3 h 05, 30 h 10, 2 d."""
    if seconds is None or seconds < 0:
        return "—"
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:  # "24 h 00" reads better than "1 d" for the WhatsApp window
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d}"
    return f"{int(seconds // 86400)} d"


def customer_name(customer: Doc) -> str:
    profile = customer.get("profile") or {}
    name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
    return name or customer.get("phone") or customer.get("email") or customer.get("_id", "?")


def window_left(customer: Doc, channel: ChannelTraits | None, now: datetime) -> float | None:
    """Seconds the channel's 24-hour service window stays open.

    None on a channel without one (or one no longer configured), 0 when closed.
    """
    if channel is None or not channel.has_service_window:
        return None
    last_in: datetime | None = (customer.get("last_in") or {}).get(channel.name)
    if last_in is None:
        return 0.0
    return max((last_in + WINDOW - now).total_seconds(), 0.0)


async def search_customers(database: Database, text: str, country: str) -> list[str]:
    """Ids of the customers a search names: an e-mail, a phone, or part of a name.

    E-mails and phones are looked up by their identity key (indexed); a name
    is matched anywhere in the first or last name (a scan, capped).
    """
    text = text.strip()
    if not text:
        return []
    keys: list[str] = []
    if "@" in text:
        keys.append(f"email:{text.lower()}")
    else:
        try:
            number = phonenumbers.parse(text, country)
            if phonenumbers.is_possible_number(number):
                keys.append("phone:" + phonenumbers.format_number(
                    number, phonenumbers.PhoneNumberFormat.E164))
        except phonenumbers.NumberParseException:
            pass
    if keys:
        found = await database.customers.find({"keys": {"$in": keys}}, {"_id": 1}).to_list(50)
        if found:
            return [doc["_id"] for doc in found]
    pattern = {"$regex": _escape(text), "$options": "i"}
    found = await database.customers.find(
        {"$or": [{"profile.first_name": pattern}, {"profile.last_name": pattern}]},
        {"_id": 1}).to_list(50)
    return [doc["_id"] for doc in found]


def _escape(text: str) -> str:
    return "".join("\\" + c if c in r".^$*+?()[]{}|\/" else c for c in text)


async def inbox_rows(database: Database, now: datetime, me: str | None, filters: Filters,
                     channels: Mapping[str, ChannelTraits],
                     customers: list[str] | None = None) -> list[Doc]:
    """The inbox: needs_agent first (longest waiting first), then mine, then the rest.

    ``channels``: the configured channels, which say whether a row has a window.
    """
    query = filters.mongo()
    if customers is not None:
        query["customer"] = {"$in": customers}
    docs = await database.conversations.find(query).sort("updated_at", -1).to_list(INBOX_LIMIT)
    people = {doc["_id"]: doc async for doc in find_in(
        database.customers, "_id", {d["customer"] for d in docs},
        {"profile": 1, "phone": 1, "email": 1, "last_in": 1})}
    last = {doc["_id"]: doc async for doc in find_in(
        database.messages, "_id", [d["last_message"] for d in docs if d.get("last_message")],
        {"text": 1, "direction": 1, "at": 1, "status": 1})}
    rows = []
    for doc in docs:
        customer = people.get(doc["customer"], {"_id": doc["customer"]})
        message = last.get(doc.get("last_message")) or {}
        waiting_since = message.get("at") if message.get("direction") == "in" else None
        if doc.get("status") == "needs_agent":
            candidates = [t for t in (waiting_since, doc.get("updated_at")) if t]
            waiting_since = min(candidates) if candidates else None
        rows.append({
            "id": doc["_id"], "name": customer_name(customer), "channel": doc["channel"],
            "status": doc.get("status", "bot"), "agent": doc.get("agent"),
            "last_text": (message.get("text") or "")[:120],
            "last_direction": message.get("direction"),
            "waiting": duration((now - waiting_since).total_seconds())
            if waiting_since and doc.get("status") != "closed" else "—",
            "waiting_since": waiting_since,
            "window": window_left(customer, channels.get(doc["channel"]), now),
            "mine": bool(me) and doc.get("status") == "agent" and doc.get("agent") == me,
        })

    def rank(row: Doc) -> tuple[int, float]:
        if row["status"] == "needs_agent":
            since = row["waiting_since"]
            return 0, since.timestamp() if since else 0.0
        return (1 if row["mine"] else 2), 0.0
    rows.sort(key=rank)  # stable: newest activity first within mine and the rest
    for row in rows:
        row["window_text"] = duration(row["window"]) if row["window"] else None
    return rows


def timeline_items(messages: list[Doc], customer: Doc, channel: str) -> list[Doc]:
    """Messages, flow steps and agent actions of one conversation, in time order."""
    items: list[Doc] = []
    for m in messages:
        items.append({"kind": "message", "at": m.get("at"), "id": m["_id"],
                      "direction": m.get("direction"), "text": m.get("text"),
                      "status": m.get("status"), "tick": TICKS.get(m.get("status") or "", ""),
                      "error": m.get("error"), "agent": m.get("agent"), "flow": m.get("flow"),
                      "template": (m.get("template") or {}).get("name")})
    for name, run in (customer.get("flows") or {}).items():
        for step in run.get("history", []):
            items.append({"kind": "step", "at": step.get("at"), "flow": name,
                          "step": step.get("step"), "outcome": step.get("outcome"),
                          "reason": step.get("reason")})
    state = (customer.get("conversations") or {}).get(channel) or {}
    for action in state.get("actions", []):
        if action.get("action") != "message":  # the message itself is on the timeline
            items.append({"kind": "action", "at": action.get("at"), **action})
    items.sort(key=lambda i: i["at"].timestamp() if isinstance(i["at"], datetime) else 0.0)
    return items


def customer_panel(customer: Doc) -> Doc:
    """Consents with source and time, tags, attributes, active flows, orders."""
    return {
        "name": customer_name(customer), "phone": customer.get("phone"),
        "email": customer.get("email"),
        "consents": [{"channel": ch, **entry} for ch, entry in
                     sorted((customer.get("consents") or {}).items())],
        "tags": customer.get("tags", []),
        "attrs": sorted((customer.get("attrs") or {}).items()),
        "flows": [{"name": name, "step": run.get("step"), "started_at": run.get("started_at")}
                  for name, run in sorted((customer.get("flows") or {}).items())],
        "last_order_at": customer.get("last_order_at"),
    }


def fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else "—"

