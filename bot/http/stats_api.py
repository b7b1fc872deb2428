"""Flow statistics over HTTP: the flows, a period's figures, the runs and where they stopped.

- ``GET /api/flows``: the loaded flows, each with its ``version`` (a declared
  one, or the hash of its module's source: ``bot.core.stats.flow_version``);
- ``GET /api/flows/{name}/stats?from=&to=``: the period's figures, summed from
  the daily counters (``bot.core.stats``), at most 366 days of documents per
  version and variant, never a scan of runs; beyond the contract's fields,
  ``transitions`` (``[{"from", "to", "count"}]``, every move of the runs,
  left out when a day of the period was counted before they were), which
  the diagram draws as exact edge counts;
- ``GET /api/flows/{name}/runs?step=&outcome=&from=&to=&limit=&cursor=``: the
  runs that ended in the period (``flow_runs``), oldest first, a page at a
  time; ``next`` is the cursor of the following page (None on the last);
- ``GET /api/flows/{name}/runs.csv?...``: the same runs as CSV, every page;
- ``GET /api/flows/{name}/versions``: every version of the flow a worker ran
  (``bot.runtime.flow_versions``), the most recently started first, and
  ``GET /api/flows/{name}/versions/{version}`` the source it ran.

Dates are ISO days (``2026-03-09``), in UTC like the counters' days, both
included; the default is the last 30 days up to today. A bad date answers
400 naming it, an unknown flow 404. Auth is that of every ``/api`` route.

The embedded server reads every document a filter matches before applying a
limit (even with no sort), so a page of runs is read in time slices that
adapt to how dense the runs are (:func:`runs_page`): each query matches a
few pages' worth at most, through the index that names the filter's fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from bot.core.flows import Flow
from bot.core.stats import flow_version
from bot.http.appkeys import CLOCK, DATABASE, RUNTIME
from bot.http.common import iso, json_error
from bot.http.csv_export import cell, stream_csv
from bot.infra.database import Database
from bot.runtime.flow_stats import period_figures
from bot.runtime.flow_versions import find_version, versions
from bot.types import Doc

DEFAULT_DAYS = 30
MAX_DAYS = 366
PAGE, MAX_PAGE = 100, 1000
FIRST_SLICE = timedelta(hours=1)  # the first time slice a page of runs is read in
MAX_SLICES = 60  # queries one page may take (a sparse period grows the slice 4x each)
CSV_COLUMNS = ("id", "customer_id", "started_at", "ended_at", "last_step", "outcome")


class BadQuery(ValueError):
    """A query parameter the routes cannot use; the message names it."""


def parse_day(query: Any, name: str) -> date | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{name}: {raw!r} is not an ISO date (YYYY-MM-DD)") from None


def period(query: Any, today: date) -> tuple[date, date]:
    """The ``from`` and ``to`` days asked for (both included), the last 30 days by default."""
    first, last = parse_day(query, "from"), parse_day(query, "to")
    if last is None:
        last = max(today, first) if first is not None else today
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadQuery(f"from: {first.isoformat()} is after to: {last.isoformat()}")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadQuery(f"from: the period is at most {MAX_DAYS} days")
    return first, last


def flow_or_404(request: web.Request) -> Flow:
    flows: dict[str, Flow] = request.app[RUNTIME].flows
    flow = flows.get(request.match_info["name"])
    if flow is None:
        raise web.HTTPNotFound(text='{"error": "no such flow"}', content_type="application/json")
    return flow


def today(request: web.Request) -> date:
    return request.app[CLOCK].now().astimezone(UTC).date()


# ------------------------------------------------------------------- routes


async def list_flows(request: web.Request) -> web.Response:
    flows: dict[str, Flow] = request.app[RUNTIME].flows
    return web.json_response({"flows": [
        {"name": flow.name, "description": flow.description, "triggers": list(flow.triggers),
         "marketing": flow.marketing, "version": flow_version(flow)}
        for _, flow in sorted(flows.items())]})


async def flow_stats(request: web.Request) -> web.Response:
    flow = flow_or_404(request)
    try:
        first, last = period(request.query, today(request))
    except BadQuery as exc:
        return json_error(400, str(exc))
    return web.json_response(await period_figures(request.app[DATABASE], flow, first, last))


async def flow_versions(request: web.Request) -> web.Response:
    flow = flow_or_404(request)
    running = flow_version(flow)
    return web.json_response({"flow": flow.name, "versions": [
        {"version": doc["version"], "first_seen": iso(doc["first_seen"]),
         "last_seen": iso(doc["last_seen"]), "running": doc["version"] == running,
         "source": bool(doc.get("source"))}
        for doc in await versions(request.app[DATABASE], flow.name)]})


async def flow_version_source(request: web.Request) -> web.Response:
    flow = flow_or_404(request)
    wanted = request.match_info["version"]
    found = await find_version(request.app[DATABASE], flow.name, wanted)
    if found is None or not found.get("source"):
        return json_error(404, f"no source kept for version {wanted!r} of {flow.name}")
    return web.Response(text=found["source"], content_type="text/x-python")


class RunQuery:
    """The runs filter of a request: flow, optional step and outcome, period, page."""

    def __init__(self, request: web.Request, flow: Flow) -> None:
        query = request.query
        first, last = period(query, today(request))
        self.start = datetime.combine(first, time(), UTC)
        self.end = datetime.combine(last + timedelta(days=1), time(), UTC)
        self.filter: Doc = {"flow": flow.name}
        for name, field in (("outcome", "outcome"), ("step", "last_step")):
            value = query.get(name)
            if value:
                self.filter[field] = value  # the key order names the index (database.py)
        try:
            self.limit = int(query.get("limit", PAGE))
        except ValueError:
            raise BadQuery("limit: must be a whole number") from None
        if not 1 <= self.limit <= MAX_PAGE:
            raise BadQuery(f"limit: must be from 1 to {MAX_PAGE}")
        self.after: datetime | None = None
        cursor = query.get("cursor")
        if cursor:
            try:
                self.after = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
            except ValueError:
                raise BadQuery("cursor: not a cursor this route gave") from None
            if self.after.tzinfo is None:
                raise BadQuery("cursor: not a cursor this route gave")


async def runs_page(database: Database, query: RunQuery) -> tuple[list[Doc], datetime | None]:
    """One page of runs, oldest first, and the cursor after it (None: no more).

    Reads time slices ``[lo, hi)`` through the index of the filter's fields:
    a slice that found few runs makes the next one 4x longer, one that found
    many makes it shorter, so a query never matches much more than a page.
    A page never ends inside a group of runs that ended at the same
    millisecond, so the cursor (``ended_at`` after it) skips none.
    """
    found: list[Doc] = []
    lo, exclusive = (query.after, True) if query.after is not None else (query.start, False)
    width = FIRST_SLICE
    for _ in range(MAX_SLICES):
        if lo >= query.end or len(found) > query.limit:
            break
        hi = min(lo + width, query.end)
        bounds = {"$gt" if exclusive else "$gte": lo, "$lt": hi}
        batch = await database.flow_runs.find({**query.filter, "ended_at": bounds}).to_list(None)
        found += sorted(batch, key=lambda run: (run["ended_at"], str(run["_id"])))
        lo, exclusive = hi, False
        if len(batch) <= query.limit // 2:
            width *= 4
        elif len(batch) > 4 * query.limit:
            width /= 4
    if len(found) <= query.limit:
        if lo >= query.end:
            return found, None
        # Out of slices: every run before ``lo`` was read, so go on from there.
        return found, found[-1]["ended_at"] if found else lo - timedelta(milliseconds=1)
    cut = query.limit
    while cut < len(found) and found[cut]["ended_at"] == found[cut - 1]["ended_at"]:
        cut += 1
    page = found[:cut]
    return page, page[-1]["ended_at"]


def run_view(run: Doc) -> Doc:
    history = run.get("history") or []
    last_step = run.get("last_step") or (history[-1]["step"] if history else None)
    return {"id": run.get("run") or str(run["_id"]),
            "customer_id": run.get("customer_id") or run.get("customer"),
            "started_at": iso(run.get("started_at")), "ended_at": iso(run.get("ended_at")),
            "last_step": last_step, "outcome": run.get("outcome")}


async def flow_runs(request: web.Request) -> web.Response:
    flow = flow_or_404(request)
    try:
        query = RunQuery(request, flow)
    except BadQuery as exc:
        return json_error(400, str(exc))
    page, after = await runs_page(request.app[DATABASE], query)
    return web.json_response({"runs": [run_view(run) for run in page],
                              "next": iso(after) if after is not None else None})


async def all_runs(database: Database, query: RunQuery) -> AsyncIterator[Doc]:
    while True:
        page, after = await runs_page(database, query)
        for run in page:
            yield run_view(run)
        if after is None:
            return
        query.after = after


async def flow_runs_csv(request: web.Request) -> web.StreamResponse:
    """Every run of the period (filters as ``/runs``) as CSV, streamed page by page."""
    flow = flow_or_404(request)
    try:
        query = RunQuery(request, flow)
    except BadQuery as exc:
        return json_error(400, str(exc))
    query.limit = MAX_PAGE

    async def rows() -> AsyncIterator[list[str]]:
        async for run in all_runs(request.app[DATABASE], query):
            yield [cell(run[column]) for column in CSV_COLUMNS]

    return await stream_csv(request, f"{flow.name}-runs.csv", CSV_COLUMNS, rows())


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/flows", list_flows)
    app.router.add_get("/api/flows/{name}/stats", flow_stats)
    app.router.add_get("/api/flows/{name}/runs", flow_runs)
    app.router.add_get("/api/flows/{name}/runs.csv", flow_runs_csv)
    app.router.add_get("/api/flows/{name}/versions", flow_versions)
    app.router.add_get("/api/flows/{name}/versions/{version}", flow_version_source)
