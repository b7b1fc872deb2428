"""Runtime figures: reply throughput, round trips per reply, wait lateness, RSS.

``python -m bench.runtime [--customers 1000] [--waits 10000] [--runs 20000]``
starts the embedded database on an on-disk temporary directory (as the service
does) and, when ``MONGODB_URI`` is set, runs everything again on that server.
Each section runs in a fresh child process (``--section``), so the RSS figure
is that of a process that did nothing else and no section inherits another's
caches. The runtime is the service's own (``bot.runtime.loops.Runtime``), built as
``bot.testing.FlowHarness`` builds it: real inbox, processor, engine, waits
and outbox; the only stand-in is the provider (``CollectingChannel`` on
``sms``), with pacing off.

Set-up (not timed) is the same in every section: one customer is taken into
the section's flow by the runtime itself, and its document and timeline are
cloned in bulk (``insert_many``) for the other customers, with the ids that
derive from the customer rewritten (``bench.common.clone_customer``). Every
firing and every reply then goes through the real runtime.

1. Replies per second: ``--customers`` customers wait for the first answer
   of a two-step survey (``bench.common.SURVEY``). Timed: every customer's
   first reply is accepted (``accept_channel_input``, all at once), decided
   (``decide_once`` until idle) and sent (``drain``); then the second reply of
   those whose first was decided.
2. Round trips per reply: PyMongo command monitoring counts each command the
   runtime's client sends in each timed round, by name, divided by the
   replies decided; split into intake (inbox writes), decide and send.
3. Lateness of ``--waits`` waits due at one instant T: the runtime runs its
   real background loops on the system clock (scheduler polling included).
   Lateness of a wait = its message's ``at`` (when it was decided) or the time
   the channel was handed it (``CollectingChannel``), minus T.
4. RSS with ``--runs`` active flow runs, each with an open question (7-day
   timeout, ``bench.common.HOLD``); then ``--sample`` of them reply. VmRSS of
   the bench process, and of the embedded server (a separate process), before
   and after.

Every timed phase stops after ``--budget`` seconds, so a slow runtime cannot
hold the bench for long: what was done by then is reported, marked
incomplete, with its rate (and waits not fired by then count as later than
the budget in the lateness percentiles). Each run prints tables and, last,
one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    EXTERNAL,
    HOLD,
    SURVEY,
    WAIT_TEXT,
    WAITER,
    BenchRuntime,
    Counts,
    clone_customer,
    cpu_seconds,
    embedded_database_sync,
    json_line,
    machine,
    open_runtime,
    percentile,
    phone,
    print_machine,
    print_table,
    rss_mb,
    server_pid,
    targets,
)
from bot.core.flows import Flow
from bot.core.inputs import CustomerInfo, InboundMessage, StoreEvent
from bot.infra.clock import SystemClock
from bot.runtime.loops import Runtime
from bot.types import Doc

SECTIONS = ("replies", "waits", "rss")
INSERT_CHUNK = 1000
TEMPLATE = 99_999_999  # the index of the customer the runtime itself takes into a flow
ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 900


# ------------------------------------------------------------------ set-up

async def template_customer(env: BenchRuntime, flow: Flow, loops: bool) -> tuple[Doc, list[Doc]]:
    """One customer taken into ``flow`` by the runtime, with their timeline."""
    event = StoreEvent(id=f"{flow.name}-template", type=flow.triggers[0],
                       occurred_at=env.clock.now(),
                       customer=CustomerInfo(id=f"b{TEMPLATE}", phone=phone(TEMPLATE)),
                       source="bench")
    await env.runtime.accept_store_event(event, f"bench:{event.id}")
    if not loops:
        await env.runtime.drain()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        doc = await env.database.customers.find_one(
            {"keys": f"store:b{TEMPLATE}", f"flows.{flow.name}": {"$exists": True}})
        if doc is not None:
            messages = await env.database.messages.find(
                {"customer": doc["_id"]}).to_list(None)
            return doc, messages
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the runtime did not start {flow.name} for the template customer")


async def clone_customers(env: BenchRuntime, flow: Flow, count: int, loops: bool = False,
                          due: Callable[[], datetime] | None = None) -> datetime | None:
    """The template customer plus ``count`` clones; returns the due time used, if any."""
    template, messages = await template_customer(env, flow, loops)
    when = due() if due is not None else None
    for start in range(0, count, INSERT_CHUNK):
        docs: list[Doc] = []
        timeline: list[Doc] = []
        for index in range(start, min(start + INSERT_CHUNK, count)):
            doc, copies = clone_customer(template, messages, index, TEMPLATE, when)
            docs.append(doc)
            timeline += copies
        await env.database.customers.insert_many(docs, ordered=False)
        if timeline:
            await env.database.messages.insert_many(timeline, ordered=False)
    return when


# ------------------------------------------------------------------ phases

async def decide_until(runtime: Runtime, deadline: float) -> tuple[int, bool]:
    """``decide_once`` until idle or the deadline; (passes, finished)."""
    passes = 0
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            done = await asyncio.wait_for(runtime.decide_once(), remaining)
        except TimeoutError:
            break
        if not done:
            return passes, True
        passes += 1
    return passes, False


async def send_all(runtime: Runtime) -> None:
    while await runtime.sender.send_pass():
        pass


def db_share(counts: Counts, seconds: float) -> float | None:
    """Server time of the commands over wall time (above 1 when they overlap)."""
    return round(sum(counts.seconds.values()) / seconds, 2) if seconds > 0 else None


def server_ms(counts: Counts) -> dict[str, float]:
    """Average server time per command, in milliseconds, by command name."""
    return {name: round(counts.seconds[name] / calls * 1000, 2)
            for name, calls in sorted(counts.calls.items()) if calls}


async def reply_round(env: BenchRuntime, round_id: str, indexes: list[int], text: str,
                      budget: float, db_pid: int | None) -> Doc:
    """Accept one reply from each customer at once, decide, send; timed and counted.

    Deciding stops at ``budget`` seconds; replies not decided by then are set
    aside (inbox state ``bench_abandoned``) so they do not leak into the next
    round. Each decided reply sends exactly one message, which is how they
    are counted.
    """
    runtime, counter = env.runtime, env.counter
    now = env.clock.now()
    messages = [InboundMessage(channel="sms", provider_id=f"{round_id}-{i}", sender=phone(i),
                               kind="text", text=text, at=now) for i in indexes]
    n = len(messages)
    sent_before = len(env.sent)
    cpu0 = cpu_seconds(), cpu_seconds(db_pid) if db_pid else None
    c0, t0 = counter.snapshot(), time.perf_counter()
    accepted = await asyncio.gather(*(runtime.accept_channel_input("sms", message)
                                      for message in messages))
    c1, t1 = counter.snapshot(), time.perf_counter()
    passes, finished = await decide_until(runtime, time.monotonic() + budget)
    c2, t2 = counter.snapshot(), time.perf_counter()
    cpu2 = cpu_seconds(), cpu_seconds(db_pid) if db_pid else None
    if not finished:
        await env.database.inbox.update_many({"state": "pending"},
                                             {"$set": {"state": "bench_abandoned"}})
    await send_all(runtime)
    c3, t3 = counter.snapshot(), time.perf_counter()
    decided = len(env.sent) - sent_before
    # A pass cut at the deadline may have committed every decision already.
    complete = finished or decided == n
    return {
        "replies": n, "accepted": sum(accepted), "decided": decided, "complete": complete,
        "seconds": round(t3 - t0, 3), "intake_s": round(t1 - t0, 3),
        "decide_s": round(t2 - t1, 3), "send_s": round(t3 - t2, 3), "decide_passes": passes,
        "replies_per_s": round(decided / (t3 - t0), 1),
        "decided_per_s": round(decided / (t2 - t1), 1),
        "round_trips": {"total": (c3 - c0).per(decided), "intake": (c1 - c0).per(decided),
                        "decide": (c2 - c1).per(decided), "send": (c3 - c2).per(decided)},
        "server_ms_per_call": {"decide": server_ms(c2 - c1), "send": server_ms(c3 - c2)},
        "db_time_share": {"total": db_share(c3 - c0, t3 - t0),
                          "decide": db_share(c2 - c1, t2 - t1)},
        "cpu_s_intake_decide": {"bench": spent(cpu0[0], cpu2[0]),
                                "db_server": spent(cpu0[1], cpu2[1])},
    }


def spent(before: float | None, after: float | None) -> float | None:
    return round(after - before, 2) if before is not None and after is not None else None


async def customers_at(env: BenchRuntime, question: str) -> list[int]:
    """Indexes of the bench customers whose pending question is ``question``."""
    docs = await env.database.customers.find(
        {"question.name": question}, {"store_id": 1}).to_list(None)
    return sorted(int(d["store_id"][1:]) for d in docs if d["store_id"] != f"b{TEMPLATE}")


# ---------------------------------------------------------------- sections

async def section_replies(args: argparse.Namespace) -> Doc:
    n = args.customers
    async with open_runtime(args.uri, [SURVEY], SystemClock(), loops=False,
                            name="bench_replies") as env:
        if args.no_stats:  # to measure what the flow counters cost (bench.stats)
            env.runtime.processor.stats = env.runtime.sender.stats = False
        started = time.perf_counter()
        await clone_customers(env, SURVEY, n)
        setup_s = time.perf_counter() - started
        waiting = await customers_at(env, "q1")
        first = await reply_round(env, "r1", waiting, "4", args.budget, args.db_pid)
        answered = await customers_at(env, "q2")
        second = await reply_round(env, "r2", answered, "Que lleguen más rápido", args.budget,
                                    args.db_pid)
        finished = await env.database.flow_runs.count_documents({"flow": SURVEY.name})
    problems, slow = [], []
    if len(waiting) != n:
        problems.append(f"{len(waiting)} customers waiting for q1 after set-up, expected {n}")
    for name, result in (("first", first), ("second", second)):
        if not result["complete"]:
            slow.append(f"{name} replies: only {result['decided']} of {result['replies']} "
                        f"decided within the {args.budget:g}s budget")
    if second["complete"] and finished != second["decided"]:
        problems.append(f"{finished} runs finished, expected {second['decided']}")
    return {"customers": n, "setup_s": round(setup_s, 2), "first": first, "second": second,
            "runs_finished": finished, "problems": problems, "over_budget": slow}


def lateness(values: list[float], expected: int) -> Doc:
    """p50/p99/max over ``expected`` waits; those missing count as later than any seen."""
    padded = values + [math.inf] * (expected - len(values))

    def cell(value: float) -> float | None:
        return None if math.isinf(value) or math.isnan(value) else round(value, 3)

    return {"min": cell(min(padded, default=math.nan)), "p50": cell(percentile(padded, 50)),
            "p99": cell(percentile(padded, 99)), "max": cell(max(padded, default=math.nan))}


async def section_waits(args: argparse.Namespace) -> Doc:
    n = args.waits
    lead = args.lead if args.lead is not None else 2.0 + n / 1000
    async with open_runtime(args.uri, [WAITER], SystemClock(), loops=True,
                            name="bench_waits") as env:
        started = time.perf_counter()
        due = await clone_customers(env, WAITER, n, loops=True,
                                    due=lambda: env.clock.now() + timedelta(seconds=lead))
        assert due is not None
        setup_s = time.perf_counter() - started
        margin = (due - env.clock.now()).total_seconds()
        if margin < 0.25:
            raise RuntimeError(f"setting up {n} waits ended {-margin:.1f}s after they fell "
                               f"due; give a longer --lead than {lead:g}s")
        c0 = env.counter.snapshot()
        cpu0 = cpu_seconds(), cpu_seconds(args.db_pid) if args.db_pid else None
        deadline = time.monotonic() + margin + args.budget
        # The runtime's own loops do the work; the bench only looks at the collected sends.
        while len(env.sent) < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        c1 = env.counter.snapshot()
        cpu1 = cpu_seconds(), cpu_seconds(args.db_pid) if args.db_pid else None
        by_deadline = list(env.sent)
        # Nothing new starts after the budget (the pass in progress finishes,
        # as on any stop, but what it sends is not counted).
        await env.runtime.stop()
        docs = await env.database.messages.find(
            {"flow": WAITER.name, "direction": "out"}, {"at": 1}).to_list(None)
    decided = [late for d in docs if (late := (d["at"] - due).total_seconds()) <= args.budget]
    # When the channel took each message (CollectingChannel records the clock's time).
    sent = [(s.at - due).total_seconds() for s in by_deadline if s.text == WAIT_TEXT]
    complete = len(sent) == n
    elapsed = max(sent) if complete else args.budget
    slow = [] if complete else [
        f"only {len(sent)} of {n} waits were sent within {args.budget:g}s of T "
        f"(extrapolated drain time {n / max(len(sent), 1) * args.budget:,.0f}s)"]
    return {
        "waits": n, "setup_s": round(setup_s, 2), "lead_s": round(lead, 2),
        "idle_before_T_s": round(margin, 2), "decided": len(decided), "sent": len(sent),
        "complete": complete, "decided_lateness_s": lateness(decided, n),
        "sent_lateness_s": lateness(sent, n),
        "drain_s": round(elapsed, 3) if complete else None,
        "waits_per_s": round(len(sent) / elapsed, 1) if elapsed > 0 else None,
        "round_trips_per_wait": (c1 - c0).per(len(sent)),
        "server_ms_per_call": server_ms(c1 - c0), "over_budget": slow,
        "cpu_s": {"bench": spent(cpu0[0], cpu1[0]), "db_server": spent(cpu0[1], cpu1[1])},
        "cpu_ms_per_wait": per_wait_ms(cpu0, cpu1, len(sent)),
    }


def per_wait_ms(before: tuple[float | None, float | None],
                after: tuple[float | None, float | None], sent: int) -> Doc:
    """CPU per wait fired and sent, for the service and the database server.

    The service's share bounds the lateness from below: one worker cannot
    decide and send ``n`` waits in less than ``n`` times it, however fast
    the database is.
    """
    if not sent or before[0] is None or after[0] is None:
        return {}
    service = (after[0] - before[0]) * 1000 / sent
    figures: Doc = {"service": round(service, 2)}
    if before[1] is not None and after[1] is not None:
        figures["db_server"] = round((after[1] - before[1]) * 1000 / sent, 2)
    return figures


async def section_rss(args: argparse.Namespace) -> Doc:
    runs = args.runs
    db_pid = args.db_pid
    rss: Doc = {"start": rss_mb()}
    async with open_runtime(args.uri, [HOLD], SystemClock(), loops=False,
                            name="bench_rss") as env:
        rss["runtime_started"] = rss_mb()
        started = time.perf_counter()
        await clone_customers(env, HOLD, runs - 1)
        setup_s = time.perf_counter() - started
        active = await env.database.customers.count_documents(
            {f"flows.{HOLD.name}": {"$exists": True}})
        rss["before"] = rss_mb()
        db_before = rss_mb(db_pid) if db_pid else None
        sample = max(1, min(args.sample, runs - 1))
        step = max(1, (runs - 1) // sample)
        indexes = list(range(0, runs - 1, step))[:sample]
        result = await reply_round(env, "hold", indexes, "Sí", args.budget, db_pid)
        rss["after"] = rss_mb()
        rss["peak"] = rss_mb(field="VmHWM")
        db_after = rss_mb(db_pid) if db_pid else None
        key_cache = len(env.runtime.processor.key_cache)
    problems, slow = [], []
    if active != runs:
        problems.append(f"{active} active runs after set-up, expected {runs}")
    if not result["complete"]:
        slow.append(f"only {result['decided']} of {len(indexes)} replies decided within "
                    f"the {args.budget:g}s budget")
    return {"runs": runs, "active_runs": active, "sample": len(indexes),
            "setup_s": round(setup_s, 2), "rss_mb": rss,
            "db_server_rss_mb": {"before": db_before, "after": db_after}, "pass": result,
            "key_cache_entries": key_cache, "problems": problems, "over_budget": slow}


SECTION_RUNNERS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, Doc]]] = {
    "replies": section_replies, "waits": section_waits, "rss": section_rss}


# ------------------------------------------------------------------ parent

def run_child(section: str, uri: str, args: argparse.Namespace, db_pid: int | None) -> Doc:
    """Run one section in a fresh process and return its JSON result."""
    command = [sys.executable, "-m", "bench.runtime", "--section", section, "--uri", uri,
               "--customers", str(args.customers), "--waits", str(args.waits),
               "--runs", str(args.runs), "--sample", str(args.sample),
               "--budget", str(args.budget)]
    if args.lead is not None:
        command += ["--lead", str(args.lead)]
    if args.no_stats:
        command.append("--no-stats")
    if db_pid is not None:
        command += ["--db-pid", str(db_pid)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT}s"}
    elapsed = round(time.perf_counter() - started, 1)
    sys.stderr.write(done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit code {done.returncode}: {tail}", "wall_s": elapsed}
    result: Doc = json.loads(lines[-1])
    result["wall_s"] = elapsed
    return result


def wait_idle(pid: int, limit: float = 60.0) -> float:
    """Wait until the embedded server stops using CPU; returns the seconds waited.

    A phase cut short at its budget leaves commands queued on the server,
    which it works through even after the client is gone: the next section
    must not start under that load.
    """
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < limit:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if before is None or now is None or now - before < 0.05:
            break
        before = now
    return round(time.monotonic() - started, 1)


@contextlib.contextmanager
def database_for(target: str) -> Iterator[tuple[str, int | None]]:
    """(uri, pid of the embedded server or None) for a target."""
    if target == EXTERNAL:
        yield os.environ["MONGODB_URI"], None
        return
    with embedded_database_sync() as server:
        assert server.process is not None
        yield server.uri, server_pid(server.process.pid)


def get(result: Doc, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


Results = dict[str, dict[str, Doc]]
Spec = list[tuple[str, tuple[str, ...]]]


def _rows(results: Results, section: str, spec: Spec) -> list[list[Any]]:
    return [[label, *(get(results[t][section], *path) for t in results)] for label, path in spec]


def _round_spec(key: str, number: int) -> Spec:
    return [
        (f"reply {number}: decided / replies", (key, "decided")),
        ("  decided within the budget", (key, "complete")),
        ("  replies/s (accept+decide+send)", (key, "replies_per_s")),
        ("  decided/s (decide only)", (key, "decided_per_s")),
        ("  intake s", (key, "intake_s")),
        ("  decide s", (key, "decide_s")),
        ("  send s", (key, "send_s")),
        ("  DB server time / wall (decide)", (key, "db_time_share", "decide")),
        ("  CPU s, bench process (intake+decide)", (key, "cpu_s_intake_decide", "bench")),
        ("  CPU s, embedded server (intake+decide)", (key, "cpu_s_intake_decide", "db_server")),
    ]


def table_replies(results: Results, args: argparse.Namespace) -> None:
    print_table(
        f"1. Inbound replies: {args.customers:,} customers in a two-step survey (sms, "
        f"CollectingChannel, pacing off); all replies accepted at once, then drained; "
        f"budget {args.budget:g}s per round", ["", *results],
        _rows(results, "replies", [
            ("waited for the server to go idle first (s)", ("waited_for_idle_server_s",)),
            ("set-up: clone + insert (s, not timed)", ("setup_s",)),
            ("customers", ("customers",)),
            *_round_spec("first", 1), *_round_spec("second", 2)]))


def table_round_trips(results: Results) -> None:
    rounds = [(t, key, number) for t in results for key, number in (("first", 1), ("second", 2))]

    def cells(*path: str) -> list[Any]:
        return [get(results[t]["replies"], key, *path) for t, key, _ in rounds]

    def names(*path: str) -> list[str]:
        return sorted({name for t, key, _ in rounds
                       for name in get(results[t]["replies"], key, *path) or {}} - {"total"})

    rows = [[name, *cells("round_trips", "total", name)]
            for name in names("round_trips", "total")]
    rows += [["TOTAL per reply", *cells("round_trips", "total", "total")],
             ["  intake (inbox insert_many)", *cells("round_trips", "intake", "total")],
             ["  decide", *cells("round_trips", "decide", "total")],
             ["  send (outbox -> channel)", *cells("round_trips", "send", "total")]]
    rows += [[f"server ms per {name} (decide)", *cells("server_ms_per_call", "decide", name)]
             for name in names("server_ms_per_call", "decide")]
    print_table("2. Database round trips per inbound reply, by command (target: 3 or fewer)",
                ["", *(f"{t} reply {number}" for t, _, number in rounds)], rows)


def table_waits(results: Results, args: argparse.Namespace) -> None:
    print_table(
        f"3. {args.waits:,} waits due at the same instant T (system clock, real loops); "
        f"seconds after T, '-' = not fired within the {args.budget:g}s budget", ["", *results],
        _rows(results, "waits", [
            ("waited for the server to go idle first (s)", ("waited_for_idle_server_s",)),
            ("waits sent", ("sent",)),
            ("set-up: clone + insert (s)", ("setup_s",)),
            ("decided: p50", ("decided_lateness_s", "p50")),
            ("decided: p99", ("decided_lateness_s", "p99")),
            ("decided: max", ("decided_lateness_s", "max")),
            ("sent: first", ("sent_lateness_s", "min")),
            ("sent: p50", ("sent_lateness_s", "p50")),
            ("sent: p99", ("sent_lateness_s", "p99")),
            ("sent: max = total drain time", ("sent_lateness_s", "max")),
            ("waits fired+sent per second", ("waits_per_s",)),
            ("round trips per wait", ("round_trips_per_wait", "total")),
            ("CPU s, set-up end to budget end: bench process", ("cpu_s", "bench")),
            ("CPU s, set-up end to budget end: embedded server", ("cpu_s", "db_server")),
            ("CPU ms per wait: the service (bench process)", ("cpu_ms_per_wait", "service")),
            ("CPU ms per wait: embedded server", ("cpu_ms_per_wait", "db_server")),
        ]))


def table_rss(results: Results, args: argparse.Namespace) -> None:
    print_table(
        f"4. Memory with {args.runs:,} active flow runs (open question, 7-day timeout), "
        f"then a pass of replies from {args.sample:,} of them (MB)", ["", *results],
        _rows(results, "rss", [
            ("waited for the server to go idle first (s)", ("waited_for_idle_server_s",)),
            ("set-up: clone + insert (s)", ("setup_s",)),
            ("active runs", ("active_runs",)),
            ("bench process RSS at start", ("rss_mb", "start")),
            ("  runtime started", ("rss_mb", "runtime_started")),
            ("  runs created (before the pass)", ("rss_mb", "before")),
            ("  after the pass", ("rss_mb", "after")),
            ("  peak (VmHWM)", ("rss_mb", "peak")),
            ("embedded server RSS before the pass", ("db_server_rss_mb", "before")),
            ("embedded server RSS after the pass", ("db_server_rss_mb", "after")),
            ("pass: replies decided", ("pass", "decided")),
            ("pass: decided within the budget", ("pass", "complete")),
            ("pass: replies/s (accept+decide+send)", ("pass", "replies_per_s")),
            ("pass: round trips per decided reply", ("pass", "round_trips", "total", "total")),
            ("processor key cache entries", ("key_cache_entries",)),
        ]))


def report(results: Results, sections: list[str], args: argparse.Namespace) -> None:
    """The tables of the sections that ran, one column per database; then the notes.

    ``OVER BUDGET`` says a figure is a rate over a phase cut short (slowness);
    ``PROBLEM`` says something went wrong (a crash, or a count that does not
    add up), and makes the exit code 1.
    """
    if "replies" in sections:
        table_replies(results, args)
        table_round_trips(results)
    if "waits" in sections:
        table_waits(results, args)
    if "rss" in sections:
        table_rss(results, args)
    for target, by_section in results.items():
        for section, result in by_section.items():
            for note in result.get("over_budget", []):
                print(f"OVER BUDGET [{target} / {section}]: {note}")
            for problem in result.get("problems", []) + (
                    [result["error"]] if "error" in result else []):
                print(f"PROBLEM [{target} / {section}]: {problem}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000,
                        help="customers answering the survey at once (default 1000)")
    parser.add_argument("--waits", type=int, default=10_000,
                        help="waits falling due at the same instant (default 10000)")
    parser.add_argument("--runs", type=int, default=20_000,
                        help="active flow runs for the memory figure (default 20000)")
    parser.add_argument("--sample", type=int, default=2000,
                        help="how many of --runs reply in the memory pass (default 2000)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds each timed phase may take before it is cut short "
                             "and reported as incomplete (default 20)")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from the template customer to T, enough to insert the "
                             "clones (default 2 + waits/1000)")
    parser.add_argument("--no-stats", action="store_true",
                        help="replies without the flow counters (bench.stats compares)")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--db-pid", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.section:  # a child: one section on --uri, one JSON line
        # Cutting a pass short at the budget cancels the processor's gathered
        # coroutines before they start; Python then warns they were never awaited.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        print(json_line(asyncio.run(SECTION_RUNNERS[args.section](args))))
        return 0
    sections = args.only or list(SECTIONS)
    started = machine()
    results: Results = {}
    for target in targets():
        results[target] = {}
        with database_for(target) as (uri, db_pid):
            for section in sections:
                idle = wait_idle(db_pid) if db_pid else None
                sys.stderr.write(f"[bench.runtime] {target}: {section}...\n")
                results[target][section] = run_child(section, uri, args, db_pid)
                results[target][section]["waited_for_idle_server_s"] = idle
                sys.stderr.write(f"[bench.runtime] {target}: {section} took "
                                 f"{results[target][section].get('wall_s')}s\n")
    report(results, sections, args)
    print_machine(started)
    print(json_line({"bench": "runtime", "machine": {**machine(), "at_start": started},
                     "sizes": {"customers": args.customers, "waits": args.waits,
                               "runs": args.runs, "sample": args.sample,
                               "budget_s": args.budget},
                     "results": results}))
    failed = any("error" in r or r.get("problems") for t in results.values() for r in t.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
