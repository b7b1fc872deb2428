"""Flow statistics figures: reading a period, listing runs, and what recording costs.

``python -m bench.stats [--runs 1000000] [--days 90] [--listed 1000000] [--rounds 2]``
uses the embedded database on an on-disk temporary directory (and
``MONGODB_URI`` too when set, for the read and list sections).

1. ``read``: a flow's counters as they are after ``--runs`` runs spread over
   ``--days`` days (one daily document per day, every step with every
   counter, three currencies; nine other flows alongside), seeded directly.
   Timed: ``bot.runtime.flow_stats.period_figures`` for the whole period, the
   stats route's work (two indexed reads and the sum). Target: under 200 ms.
2. ``list``: ``--listed`` finished runs in ``flow_runs`` over the same days,
   seeded in bulk. Timed: ``runs_page`` (the runs route) for the first page
   of the last 30 days, a page filtered by outcome, one by step, and the
   page after a cursor in the middle of the period.
3. ``cost``: ``bench.runtime --only replies`` (1,000 customers answering a
   two-step survey, decided and sent) with the counters on and off
   (``--no-stats``), ``--rounds`` times each, interleaved. Target: the
   counters cost under 5 % of the decided replies per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from pathlib import Path

from bench.common import (
    EMBEDDED,
    EXTERNAL,
    embedded_database,
    json_line,
    machine,
    print_machine,
    print_table,
)
from bot.core.stats import Counters
from bot.http.stats_api import RunQuery, runs_page
from bot.infra.database import Database, make_client
from bot.runtime.flow_stats import period_figures, write_counters
from bot.types import Doc
from rules.cart_recovery import FLOW

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("started", "interested", "link", "question", "faq", "why", "reason", "thanks_reason",
         "reminder", "thanks", "handoff_notice", "close")
OUTCOMES = ("purchased", "declined", "no_reply", "link_sent", "expired", "chat_done")
SKIPS = ("consent", "quiet_hours", "frequency_cap", "window", "agent")
CURRENCIES = ("ARS", "BRL", "USD")
INSERT_CHUNK = 10_000


def seeded_counters(flow: str, runs: int, days: int, end: date) -> Counters:
    """The counters ``runs`` runs of a flow leave over ``days`` days (as the service writes)."""
    counters = Counters()
    per_day = runs // days
    run = {"flow": flow, "version": "bench", "variant": None}
    for offset in range(days):
        at = datetime.combine(end - timedelta(days=offset), day_time(12), UTC)
        counters.add(run, at, "runs.started", per_day)
        counters.add(run, None, "runs.started", per_day)
        for n, outcome in enumerate(OUTCOMES):
            counters.add(run, at, f"runs.ended.{outcome}", per_day // (n + 2))
            counters.add(run, None, f"runs.ended.{outcome}", per_day // (n + 2))
        for n, step in enumerate(STEPS):
            reached = per_day // (n + 1)
            for name, share in (("reached", 1), ("sent", 1), ("delivered", 2), ("read", 3),
                                ("replied", 4), ("failed", 50)):
                counters.add(run, at, f"steps.{step}.{name}", reached // share)
            for skip in SKIPS:
                counters.add(run, at, f"steps.{step}.skipped.{skip}", reached // 100)
        counters.add(run, at, "conversions.orders", per_day // 10)
        for currency in CURRENCIES:
            counters.add(run, at, f"revenue.{currency}", Decimal(per_day) * Decimal("12.34"))
    return counters


def ms(seconds: list[float]) -> Doc:
    values = sorted(s * 1000 for s in seconds)
    return {"min": round(values[0], 1), "p50": round(statistics.median(values), 1),
            "max": round(values[-1], 1)}


async def section_read(database: Database, args: argparse.Namespace) -> Doc:
    today = datetime.now(UTC).date()
    started = time.perf_counter()
    await write_counters(database, seeded_counters(FLOW.name, args.runs, args.days, today))
    for n in range(9):
        await write_counters(database, seeded_counters(f"other_{n}", args.runs // 10,
                                                       args.days, today))
    setup = time.perf_counter() - started
    first = today - timedelta(days=args.days - 1)
    times = []
    figures: Doc = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        figures = await period_figures(database, FLOW, first, today)
        times.append(time.perf_counter() - t0)
    problems = []
    if figures["runs"]["started"] != (args.runs // args.days) * args.days:
        problems.append(f"summed {figures['runs']['started']} runs started")
    return {"setup_s": round(setup, 1), "documents": await database.flow_stats.count_documents(
                {}), "runs_started": figures["runs"]["started"], "ms": ms(times),
            "problems": problems}


class Query(RunQuery):
    """A runs query without a request (the route builds the same from its parameters)."""

    def __init__(self, first: date, last: date, limit: int = 100, **filters: str) -> None:
        self.start = datetime.combine(first, day_time(), UTC)
        self.end = datetime.combine(last + timedelta(days=1), day_time(), UTC)
        self.filter = {"flow": FLOW.name, **filters}
        self.limit = limit
        self.after = None


async def section_list(database: Database, args: argparse.Namespace) -> Doc:
    now = datetime.now(UTC)
    start = now - timedelta(days=args.days)
    spacing = (now - start) / max(args.listed, 1)
    started = time.perf_counter()
    for base in range(0, args.listed, INSERT_CHUNK):
        docs = []
        for n in range(base, min(base + INSERT_CHUNK, args.listed)):
            ended = start + spacing * n
            docs.append({"_id": f"c{n}:cart_recovery:1", "customer": f"c{n}",
                         "customer_id": f"cus_{n}", "flow": FLOW.name, "run": "cart_recovery:1",
                         "started_at": ended - timedelta(hours=30), "ended_at": ended,
                         "outcome": OUTCOMES[n % len(OUTCOMES)],
                         "last_step": STEPS[n % len(STEPS)], "history": []})
        await database.flow_runs.insert_many(docs, ordered=False)
    setup = time.perf_counter() - started
    today = now.date()
    month = today - timedelta(days=29)
    middle = Query(today - timedelta(days=args.days), today)
    middle.after = start + (now - start) / 2
    cases = {"first page, last 30 days": Query(month, today),
             "outcome=no_reply": Query(month, today, outcome="no_reply"),
             "step=reminder": Query(month, today, last_step="reminder"),
             "outcome and step": Query(month, today, outcome="no_reply", last_step="reminder"),
             "after a cursor mid-period": middle}
    figures: Doc = {}
    for name, query in cases.items():
        times, size = [], 0
        for _ in range(args.repeat):
            after = query.after
            t0 = time.perf_counter()
            page, _ = await runs_page(database, query)
            times.append(time.perf_counter() - t0)
            query.after, size = after, len(page)
        figures[name] = {"ms": ms(times), "runs": size}
    return {"setup_s": round(setup, 1), "listed": args.listed, "pages": figures}


def section_cost(args: argparse.Namespace) -> Doc:
    """Decided replies per second with and without the counters, interleaved runs."""
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for mode in ("on", "off"):
            command = [sys.executable, "-m", "bench.runtime", "--only", "replies",
                       "--customers", str(args.customers)]
            if mode == "off":
                command.append("--no-stats")
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                  timeout=1800, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
            result = json.loads(lines[-1])["results"][EMBEDDED]["replies"]
            for key in ("first", "second"):
                rates[mode].append(result[key]["decided_per_s"])
            sys.stderr.write(f"[bench.stats] cost: counters {mode}: "
                             f"{[result[k]['decided_per_s'] for k in ('first', 'second')]}\n")
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return {"decided_per_s": {"on": rates["on"], "off": rates["off"]},
            "median": {"on": on, "off": off},
            "cost_pct": round((off - on) / off * 100, 1) if off else None}


async def run_database(uri: str, args: argparse.Namespace, sections: list[str]) -> Doc:
    client = make_client(uri)
    name = f"bench_stats_{os.getpid()}"
    database = Database(client, client[name])
    results: Doc = {}
    try:
        await database.ensure_indexes()
        if "read" in sections:
            results["read"] = await section_read(database, args)
        if "list" in sections:
            results["list"] = await section_list(database, args)
    finally:
        await client.drop_database(name)
        await client.close()
    return results


async def run_all(args: argparse.Namespace, sections: list[str]) -> dict[str, Doc]:
    results: dict[str, Doc] = {}
    async with embedded_database() as server:
        results[EMBEDDED] = await run_database(server.uri, args, sections)
    if os.environ.get("MONGODB_URI"):
        results[EXTERNAL] = await run_database(os.environ["MONGODB_URI"], args, sections)
    return results


def report(results: dict[str, Doc], args: argparse.Namespace) -> None:
    targets = [t for t in results if t != "cost"]
    if any("read" in results[t] for t in targets):
        rows = [[label, *(results[t].get("read", {}).get(key, {}).get(sub)
                          if sub else results[t].get("read", {}).get(key) for t in targets)]
                for label, key, sub in (("documents in flow_stats", "documents", None),
                                        ("runs started, summed", "runs_started", None),
                                        ("ms, min", "ms", "min"), ("ms, p50", "ms", "p50"),
                                        ("ms, max", "ms", "max"))]
        print_table(f"1. Stats of a flow over {args.days} days after {args.runs:,} runs "
                    f"(target: under 200 ms)", ["", *targets], rows)
    if any("list" in results[t] for t in targets):
        listing = [t for t in targets if "list" in results[t]]
        names = list(results[listing[0]]["list"]["pages"])
        rows = [[f"{name}: ms p50 / max (runs)", *(
            f"{results[t]['list']['pages'][name]['ms']['p50']} / "
            f"{results[t]['list']['pages'][name]['ms']['max']} "
            f"({results[t]['list']['pages'][name]['runs']})" for t in listing)]
            for name in names]
        rows.append(["set-up: insert the runs (s, not timed)",
                     *(results[t]["list"]["setup_s"] for t in listing)])
        print_table(f"2. A page of runs (limit 100) among {args.listed:,} finished runs",
                    ["", *listing], rows)
    if "cost" in results:
        cost = results["cost"]
        print_table("3. Decided replies per second, counters on and off (target: < 5 % cost)",
                    ["", EMBEDDED], [["counters on (each round)", cost.get("decided_per_s",
                                                                         {}).get("on")],
                                     ["counters off (each round)", cost.get("decided_per_s",
                                                                          {}).get("off")],
                                     ["median on / off", cost.get("median")],
                                     ["cost %", cost.get("cost_pct")],
                                     ["error", cost.get("error")]])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stats",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs the counters hold")
    parser.add_argument("--days", type=int, default=90, help="days they are spread over")
    parser.add_argument("--listed", type=int, default=1_000_000,
                        help="finished runs in flow_runs for the list section")
    parser.add_argument("--repeat", type=int, default=20, help="timed reads of each kind")
    parser.add_argument("--customers", type=int, default=1000, help="for the cost section")
    parser.add_argument("--rounds", type=int, default=2, help="cost runs each way")
    parser.add_argument("--only", choices=("read", "list", "cost"), action="append")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sections = args.only or ["read", "list", "cost"]
    started = machine()
    results: dict[str, Doc] = asyncio.run(run_all(args, sections)) if (
        {"read", "list"} & set(sections)) else {}
    if "cost" in sections:
        results["cost"] = section_cost(args)
    report(results, args)
    print_machine(started)
    print(json_line({"bench": "stats", "machine": {**machine(), "at_start": started},
                     "sizes": vars(args), "results": results}))
    failed = bool(results.get("cost", {}).get("error")) or any(
        section.get("problems") for target, sections in results.items() if target != "cost"
        for section in sections.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
