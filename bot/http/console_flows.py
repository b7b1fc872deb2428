"""The console's flow pages, the diagram route, and a customer's flow runs.

- ``GET /console/flows``: every flow with its runs, conversion rate and
  revenue for a period (7/30/90 days, or from/to dates);
- ``GET /console/flows/{name}``: the flow drawn with the period's counts
  (``bot.http.diagram``, inline SVG), a funnel per step and per variant,
  the outcomes, and the finished runs filtered by last step or outcome,
  each linking to the customer's conversation;
- ``GET /api/flows/{name}/diagram.svg?from=&to=``: the same picture alone
  (bearer token or session, like every ``/api`` route);
- :func:`customer_runs`: the customer panel's flow runs, active and finished,
  with their steps and where each stopped.

Figures come from the statistics counters, read as ``GET
/api/flows/{name}/stats`` reads them (``bot.runtime.flow_stats.period_figures``:
the ``flow_stats`` daily documents summed), never from scanning runs.
The pages only read; the console's own headers (CSP without inline
script or style) apply, which is why the SVG uses presentation attributes
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from markupsafe import Markup

from bot.core.flow_graph import problems
from bot.core.flows import Flow
from bot.http.agents import ACTOR
from bot.http.appkeys import CHANNELS, CLOCK, DATABASE, RUNTIME
from bot.http.common import json_error
from bot.http.console_i18n import texts
from bot.http.diagram import render_funnel, render_svg
from bot.http.stats_api import MAX_DAYS
from bot.infra.database import Database, find_in
from bot.runtime.flow_stats import period_figures

Doc = dict[str, Any]
PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
RUNS_LIMIT = 200
CUSTOMER_RUNS = 20


class BadPeriod(ValueError):
    """A period parameter that is not a date; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Period:
    """A range of whole UTC days, ``end`` exclusive; ``days`` when picked from the list."""

    start: datetime
    end: datetime
    days: int | None

    @property
    def first(self) -> str:
        return self.start.date().isoformat()

    @property
    def last(self) -> str:
        return (self.end - timedelta(days=1)).date().isoformat()

    def query(self) -> str:
        return f"days={self.days}" if self.days else f"from={self.first}&to={self.last}"


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value[:10]) if len(value) >= 10 else date.fromisoformat(value)
    except ValueError:
        raise BadPeriod(field, f"{value[:40]!r} is not a date (YYYY-MM-DD)") from None


def period(query: Any, now: datetime) -> Period:
    """``from``/``to`` (ISO dates, both inclusive) or ``days`` (7, 30, 90); else 30 days.

    Raises:
        BadPeriod: a field that is no date, a ``days`` not offered, or ``from`` after ``to``.
    """
    today = now.astimezone(UTC).date()
    first, last = query.get("from") or "", query.get("to") or ""
    if first or last:
        end_day = _day(last, "to") if last else today
        start_day = _day(first, "from") if first else end_day - timedelta(days=DEFAULT_DAYS - 1)
        if start_day > end_day:
            raise BadPeriod("from", "must not be after to")
        if (end_day - start_day).days + 1 > MAX_DAYS:
            raise BadPeriod("from", f"the period is at most {MAX_DAYS} days")
        days = None
    else:
        raw = query.get("days") or str(DEFAULT_DAYS)
        if not raw.isdigit() or int(raw) not in PERIODS:
            raise BadPeriod("days", f"must be one of {', '.join(map(str, PERIODS))}")
        days = int(raw)
        end_day, start_day = today, today - timedelta(days=days - 1)
    start = datetime.combine(start_day, time(), UTC)
    end = datetime.combine(end_day + timedelta(days=1), time(), UTC)
    return Period(start, end, days)


# ------------------------------------------------------------------ figures


async def period_stats(database: Database, flow: Flow, span: Period) -> Doc:
    """The contract's stats answer for ``flow`` over the period, as ``/api/flows`` reads it."""
    figures: Doc = await period_figures(database, flow, span.start.date(),
                                        (span.end - timedelta(days=1)).date())
    return figures


def conversion_rate(stats: Doc) -> str:
    started = int((stats.get("runs") or {}).get("started") or 0)
    orders = int((stats.get("conversions") or {}).get("orders") or 0)
    return f"{Decimal(100 * orders) / started:.1f}%" if started else "—"


def _flows(request: web.Request) -> dict[str, Flow]:
    flows: dict[str, Flow] = request.app[RUNTIME].flows
    return flows


def _flow(request: web.Request) -> Flow:
    flow = _flows(request).get(request.match_info["name"])
    if flow is None:
        raise web.HTTPNotFound()
    return flow


# ------------------------------------------------------------------ runs


async def conversation_links(database: Database, customers: set[str],
                             channels: list[str]) -> dict[str, str]:
    """Customer (internal id) -> their most recently updated conversation's id.

    A conversation's id is ``<customer>:<channel>``: one read by ``_id``.
    """
    ids = [f"{customer}:{channel}" for customer in customers for channel in channels]
    found: dict[str, tuple[datetime, str]] = {}
    async for doc in find_in(database.conversations, "_id", ids,
                             {"customer": 1, "updated_at": 1}):
        customer = str(doc.get("customer") or doc["_id"].rsplit(":", 1)[0])
        at = doc.get("updated_at") or datetime.min.replace(tzinfo=UTC)
        if customer not in found or found[customer][0] < at:
            found[customer] = (at, doc["_id"])
    return {customer: cid for customer, (_, cid) in found.items()}


def _last_step(history: list[Doc]) -> str | None:
    return str(history[-1].get("step")) if history else None


async def finished_runs(database: Database, flow: Flow, span: Period, step: str | None,
                        outcome: str | None, channels: list[str]) -> list[Doc]:
    """The latest runs that ended in the period, newest first, by last step or outcome.

    The embedded server reads every document a filter matches before any
    limit, so the period is read backwards in time slices (1 h, then 4x
    longer while few runs turn up) through the index naming the filter's
    fields (``bot.infra.database``), until :data:`RUNS_LIMIT` are found.
    """
    query: Doc = {"flow": flow.name}
    if outcome:
        query["outcome"] = outcome
    if step:
        query["last_step"] = step
    docs: list[Doc] = []
    hi, width = span.end, timedelta(hours=1)
    while hi > span.start and len(docs) < RUNS_LIMIT:
        lo = max(hi - width, span.start)
        batch = await database.flow_runs.find(
            {**query, "ended_at": {"$gte": lo, "$lt": hi}},
            {"customer": 1, "run": 1, "started_at": 1, "ended_at": 1, "outcome": 1,
             "last_step": 1, "history.step": 1}).to_list(None)
        docs += sorted(batch, key=lambda d: d["ended_at"], reverse=True)
        hi, width = lo, width * 4
    rows = [{"id": doc["_id"], "customer": doc.get("customer"), "run": doc.get("run"),
             "started_at": doc.get("started_at"), "ended_at": doc.get("ended_at"),
             "outcome": doc.get("outcome"),
             "last_step": doc.get("last_step") or _last_step(doc.get("history") or [])}
            for doc in docs[:RUNS_LIMIT]]
    links = await conversation_links(database, {str(r["customer"]) for r in rows}, channels)
    for row in rows:
        row["conversation"] = links.get(str(row["customer"]))
    return rows


async def customer_runs(database: Database, customer: Doc) -> list[Doc]:
    """The customer's flow runs, active first, then finished (newest first), with their steps.

    Active runs are in the customer's document; finished ones in
    ``flow_runs``, read by the ``by_customer`` index.
    """
    runs = [{"flow": name, "run": run.get("run"), "started_at": run.get("started_at"),
             "ended_at": None, "outcome": None, "active": True,
             "steps": [h.get("step") for h in run.get("history") or []],
             "stopped_at": run.get("step")}
            for name, run in sorted((customer.get("flows") or {}).items())]
    done = await database.flow_runs.find(
        {"customer": customer["_id"]},
        {"flow": 1, "run": 1, "started_at": 1, "ended_at": 1, "outcome": 1,
         "history.step": 1}).to_list(500)
    done.sort(key=lambda d: d.get("ended_at") or datetime.min.replace(tzinfo=UTC),
              reverse=True)
    for doc in done[:CUSTOMER_RUNS]:
        history = doc.get("history") or []
        runs.append({"flow": doc.get("flow"), "run": doc.get("run"),
                     "started_at": doc.get("started_at"), "ended_at": doc.get("ended_at"),
                     "outcome": doc.get("outcome"), "active": False,
                     "steps": [h.get("step") for h in history],
                     "stopped_at": _last_step(history)})
    return runs


# ------------------------------------------------------------------ handlers


def _render(request: web.Request, name: str, context: Doc, status: int = 200) -> web.Response:
    from bot.http.console import render  # console.py wires this module: imported late

    return render(request, name, context, status)


def _bad_period(request: web.Request, exc: BadPeriod) -> web.Response:
    return _render(request, "error.html", {"message": str(exc), "back": request.path},
                   status=400)


async def flows_page(request: web.Request) -> web.StreamResponse:
    try:
        span = period(request.query, request.app[CLOCK].now())
    except BadPeriod as exc:
        return _bad_period(request, exc)
    database = request.app[DATABASE]
    rows = []
    for name, flow in sorted(_flows(request).items()):
        stats = await period_stats(database, flow, span)
        rows.append({"name": name, "description": flow.description,
                     "marketing": flow.marketing, "stats": stats,
                     "rate": conversion_rate(stats)})
    return _render(request, "flows.html", {"rows": rows, "period": span, "periods": PERIODS})


async def flow_page(request: web.Request) -> web.StreamResponse:
    flow = _flow(request)
    try:
        span = period(request.query, request.app[CLOCK].now())
    except BadPeriod as exc:
        return _bad_period(request, exc)
    database = request.app[DATABASE]
    stats = await period_stats(database, flow, span)
    t = texts(request[ACTOR].lang)
    labels = {name: t[name] for name in ("reached", "delivered", "read", "replied")}
    step = request.query.get("step") or None
    outcome = request.query.get("outcome") or None
    outcomes = sorted(set((stats.get("runs") or {}).get("ended") or {}))
    funnels = [(None, Markup(render_funnel(flow, stats, f"{flow.name}: {t['funnel']}",
                                           labels)))]
    for variant, figures in sorted((stats.get("variants") or {}).items()):
        funnels.append((variant, Markup(render_funnel(
            flow, figures, f"{flow.name} · {variant}: {t['funnel']}", labels))))
    channels: list[str] = list(request.app[CHANNELS].keys())
    return _render(request, "flow.html", {
        "flow": flow, "stats": stats, "period": span, "periods": PERIODS,
        "rate": conversion_rate(stats),
        "diagram": Markup(render_svg(flow, stats)) if not problems(flow) else None,
        "funnels": funnels, "outcomes": outcomes, "steps": list(flow.steps),
        "runs": await finished_runs(database, flow, span, step, outcome, channels),
        "step": step, "outcome": outcome,
    })


async def diagram_svg(request: web.Request) -> web.StreamResponse:
    """``GET /api/flows/{name}/diagram.svg``: the picture with the period's counts."""
    flow = _flows(request).get(request.match_info["name"])
    if flow is None:
        return json_error(404, f"no flow named {request.match_info['name']!r}")
    if problems(flow):
        return json_error(404, f"flow {flow.name!r} declares no drawable steps")
    try:
        span = period(request.query, request.app[CLOCK].now())
    except BadPeriod as exc:
        return json_error(400, str(exc))
    stats = await period_stats(request.app[DATABASE], flow, span)
    return web.Response(text=render_svg(flow, stats), content_type="image/svg+xml",
                        headers={"Content-Security-Policy": "default-src 'none'",
                                 "X-Content-Type-Options": "nosniff",
                                 "Cache-Control": "no-store"})


def add_flow_routes(app: web.Application, signed_in: Any) -> None:
    """Wired by ``bot.http.console.add_console_routes``; ``signed_in`` guards the pages."""
    app.router.add_get("/console/flows", signed_in(flows_page))
    app.router.add_get("/console/flows/{name}", signed_in(flow_page))
    app.router.add_get("/api/flows/{name}/diagram.svg", diagram_svg)
