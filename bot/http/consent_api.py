"""Proof of consent over HTTP: a customer's ledger with its evidence, and an audit export.

- ``GET /api/customers/{id}/consent`` (``{id}`` the store's customer id, or
  the internal one, as ``GET /api/customers/{id}``): per channel, the current
  state and the ledger entry behind it, the whole ledger (oldest first, as
  recorded) with each entry's evidence, and every marketing message sent on
  that channel with the ledger entry that allowed it. The sender records that
  entry on each marketing send (``consent_entry``); a message sent before it
  did gets the entry that was in force then, marked ``"derived": true``
  (:func:`derive_entry`). At most :data:`MAX_SENDS` sends are read, the most
  recent ones, and ``truncated`` says whether there were more: a customer's
  history must never decide how much memory an answer takes.
- ``GET /api/consent.csv?from=&to=``: an audit export of a period, one row
  per ledger entry recorded in it (``recorded_at``) and one per marketing
  message sent in it (``sent_at``), streamed. The customers come through the
  multikey index on ``consent_ledger.recorded_at`` and the messages through
  the one on ``(marketing, sent_at)`` (``bot/infra/database.py``), so the
  export reads the period's documents, not the collections.

Auth is that of every ``/api`` route: the admin token or an agent's session.
Times are ISO 8601 in UTC; evidence is shown as stored, made JSON-safe.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from bot.core.customers import consent_entry
from bot.http.appkeys import CLOCK, DATABASE
from bot.http.common import iso, json_error, json_safe
from bot.http.csv_export import cell, stream_csv
from bot.infra.database import Database, find_in
from bot.types import Doc

MAX_SENDS = 1000  # marketing sends one proof lists (the most recent)
BATCH = 500  # documents the export reads before it looks up their customers
EVER = datetime(1, 1, 1, tzinfo=UTC)  # "sent at all": a range the (customer, ...) index serves
# The audit's columns, then what explains a row: a superseded entry (an older
# statement that did not change the state), a send's status, an entry derived
# for a send that predates ``consent_entry``, when an entry was recorded.
CSV_COLUMNS = ("record", "customer_id", "channel", "at", "entry", "state", "source", "evidence",
               "message_id", "flow", "step", "superseded", "status", "derived", "recorded_at")
SEND_FIELDS = {"customer": 1, "channel": 1, "flow": 1, "step": 1, "status": 1, "sent_at": 1,
               "consent_entry": 1}


class BadQuery(ValueError):
    """A query parameter the export cannot use; the message names it."""


def ledger(doc: Doc) -> list[Doc]:
    """The customer's ledger entries, each with its id (``cl<n>`` by place for old ones)."""
    return [{**entry, "id": entry.get("id") or f"cl{n}"}
            for n, entry in enumerate(doc.get("consent_ledger", []), start=1)]


def derive_entry(entries: Iterable[Doc], channel: str, sent_at: datetime) -> str | None:
    """The grant in force at ``sent_at`` on ``channel``, for a send that did not record one.

    The latest (by ``at``, then by place) non-superseded ``granted`` entry
    given no later than the send: what :func:`bot.core.customers.consent_entry`
    would have named then, unless a revocation came in between (then the
    send had no consent, and the proof still names the grant it went out on).
    """
    best: tuple[datetime, int, str] | None = None
    for place, entry in enumerate(entries):
        if (entry.get("channel") != channel or entry.get("state") != "granted"
                or entry.get("superseded")):
            continue
        at = entry.get("at")
        if not isinstance(at, datetime) or _utc(at) > _utc(sent_at):
            continue
        key = (_utc(at), place, str(entry["id"]))
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best is not None else None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def send_view(message: Doc, entries: list[Doc]) -> Doc:
    """One marketing send and the ledger entry that allowed it (derived for old messages)."""
    view: Doc = {"message_id": str(message["_id"]), "sent_at": iso(message.get("sent_at")),
                 "status": message.get("status"), "flow": message.get("flow"),
                 "step": message.get("step"), "consent_entry": message.get("consent_entry")}
    if view["consent_entry"] is None and isinstance(message.get("sent_at"), datetime):
        view["consent_entry"] = derive_entry(entries, message.get("channel") or "",
                                             message["sent_at"])
        view["derived"] = True
    return view


async def find_customer(database: Database, customer_id: str) -> Doc | None:
    """By the store's id, else by the internal one (as ``GET /api/customers/{id}``)."""
    doc = await database.customers.find_one({"keys": f"store:{customer_id}"})
    if doc is None:
        doc = await database.customers.find_one({"_id": customer_id})
    return doc


async def recent_sends(database: Database, customer: str) -> tuple[list[Doc], bool]:
    """The customer's most recent marketing sends (oldest first) and whether more exist.

    The filter names exactly the fields of the ``customer_marketing_sent``
    index (the embedded server uses an index only then).
    """
    found = await database.messages.find(
        {"customer": customer, "marketing": True, "sent_at": {"$gte": EVER}}, SEND_FIELDS,
    ).sort("sent_at", -1).limit(MAX_SENDS + 1).to_list(None)
    return found[:MAX_SENDS][::-1], len(found) > MAX_SENDS


async def customer_consent(request: web.Request) -> web.Response:
    database = request.app[DATABASE]
    doc = await find_customer(database, request.match_info["id"])
    if doc is None:
        return json_error(404, "no such customer")
    entries = ledger(doc)
    sends, truncated = await recent_sends(database, doc["_id"])
    consents = doc.get("consents", {})
    names = [*consents, *(e.get("channel") for e in entries), *(s.get("channel") for s in sends)]
    channels: Doc = {}
    for channel in sorted({str(name) for name in names if name}):
        current = consents.get(channel) or {}
        channels[channel] = {
            "state": current.get("state"), "source": current.get("source"),
            "at": iso(current.get("at")), "entry": consent_entry(doc, channel),
            "ledger": [json_safe(e) for e in entries if e.get("channel") == channel],
            "marketing_sends": [send_view(s, entries) for s in sends
                                if s.get("channel") == channel],
        }
    return web.json_response({"customer_id": doc.get("store_id") or doc["_id"],
                              "channels": channels, "truncated": truncated})


# ------------------------------------------------------------------- export


def parse_moment(query: Any, name: str, *, end: bool = False) -> datetime | None:
    """``name`` as a UTC datetime: an ISO date (its midnight; as ``to``, the next one,
    so the day is included) or an ISO date-time with an offset."""
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
        except (ValueError, OverflowError):
            raise BadQuery(f"{name}: {raw!r} is not an ISO date or date-time") from None
    # A "+01:00" offset arrives as " 01:00" when the "+" was not URL-encoded.
    head, _, tail = text.rpartition(" ")
    moment = _datetime(text) or (_datetime(f"{head}+{tail}") if head else None)
    if moment is None:
        raise BadQuery(f"{name}: {raw!r} is not an ISO date or date-time")
    if moment.tzinfo is None:
        raise BadQuery(f"{name}: {raw!r} needs a UTC offset (e.g. Z or -03:00)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadQuery(f"{name}: {raw!r} is out of range") from None


def _datetime(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def export_period(query: Any, now: datetime) -> tuple[datetime, datetime]:
    """``[from, to)`` of the export: ``from`` required; ``to`` by default includes now
    (times are stored to the millisecond)."""
    start = parse_moment(query, "from")
    if start is None:
        raise BadQuery("from: required (an ISO date or date-time)")
    stop = parse_moment(query, "to", end=True) or now + timedelta(milliseconds=1)
    if start >= stop:
        raise BadQuery(f"from: {iso(start)} is not before to: {iso(stop)}")
    return start, stop


def _row(**cells: Any) -> list[str]:
    return [cell(cells.get(column)) for column in CSV_COLUMNS]


def _compact(value: Any) -> str | None:
    return json.dumps(json_safe(value), separators=(",", ":"), ensure_ascii=False) \
        if value else None


async def consent_rows(database: Database, start: datetime,
                       stop: datetime) -> AsyncIterator[list[str]]:
    """A row per ledger entry recorded in ``[start, stop)``.

    The filter is a range on the multikey ``consent_ledger.recorded_at``: a
    customer matches when one entry is in range (MongoDB may match one whose
    entries straddle it), so the entries are filtered again here.
    """
    cursor = database.customers.find(
        {"consent_ledger.recorded_at": {"$gte": start, "$lt": stop}},
        {"store_id": 1, "consent_ledger": 1}, batch_size=BATCH)
    async for doc in cursor:
        customer_id = doc.get("store_id") or doc["_id"]
        for entry in ledger(doc):
            recorded = entry.get("recorded_at")
            if not isinstance(recorded, datetime) or not start <= _utc(recorded) < stop:
                continue
            yield _row(record="consent", customer_id=customer_id, channel=entry.get("channel"),
                       at=iso(entry.get("at")), entry=entry["id"], state=entry.get("state"),
                       source=entry.get("source"), evidence=_compact(entry.get("evidence")),
                       superseded="true" if entry.get("superseded") else None,
                       recorded_at=iso(recorded))


async def send_rows(database: Database, start: datetime,
                    stop: datetime) -> AsyncIterator[list[str]]:
    """A row per marketing message sent in ``[start, stop)``, read ``BATCH`` at a time.

    Each batch's customers are read once (their store id, and the ledger
    only when a message predates ``consent_entry`` and its entry is derived).
    """
    cursor = database.messages.find(
        {"marketing": True, "sent_at": {"$gte": start, "$lt": stop}}, SEND_FIELDS,
        batch_size=BATCH)
    batch: list[Doc] = []
    async for message in cursor:
        batch.append(message)
        if len(batch) >= BATCH:
            for row in await _send_batch(database, batch):
                yield row
            batch = []
    for row in await _send_batch(database, batch):
        yield row


async def _send_batch(database: Database, messages: list[Doc]) -> list[list[str]]:
    if not messages:
        return []
    ids = {m["customer"] for m in messages}
    need_ledger = {m["customer"] for m in messages if m.get("consent_entry") is None}
    projection: Doc = {"store_id": 1, **({"consent_ledger": 1} if need_ledger else {})}
    customers = {doc["_id"]: doc
                 async for doc in find_in(database.customers, "_id", sorted(ids), projection)}
    rows = []
    for message in messages:
        doc = customers.get(message["customer"]) or {"_id": message["customer"]}
        view = send_view(message, ledger(doc))
        rows.append(_row(record="send", customer_id=doc.get("store_id") or doc["_id"],
                         channel=message.get("channel"), at=view["sent_at"],
                         entry=view["consent_entry"], message_id=view["message_id"],
                         flow=view["flow"], step=view["step"], status=view["status"],
                         derived="true" if view.get("derived") else None))
    return rows


async def consent_csv(request: web.Request) -> web.StreamResponse:
    """The period's consent entries, then its marketing sends, as CSV, streamed."""
    try:
        start, stop = export_period(request.query, request.app[CLOCK].now())
    except BadQuery as exc:
        return json_error(400, str(exc))
    database = request.app[DATABASE]
    name = f"consent-{start:%Y%m%dT%H%M%SZ}-{stop:%Y%m%dT%H%M%SZ}.csv"

    async def rows() -> AsyncIterator[list[str]]:
        for part in (consent_rows(database, start, stop), send_rows(database, start, stop)):
            async for row in part:
                yield row

    return await stream_csv(request, name, CSV_COLUMNS, rows())


def add_consent_routes(app: web.Application) -> None:
    app.router.add_get("/api/customers/{id}/consent", customer_consent)
    app.router.add_get("/api/consent.csv", consent_csv)
