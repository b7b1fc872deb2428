"""What the benchmarks share: the database, round-trip counting, RSS, tables, bench flows.

- :func:`embedded_database` starts the embedded server (``secantusdb``) on an
  on-disk temporary directory, as the service does with ``DATA_DIR``, and
  removes it afterwards.
- :class:`CommandCounter` is a PyMongo ``CommandListener``: every command the
  client sends is one round trip to the database, counted by name (``find``,
  ``findAndModify``, ``insert``, ``update``, ...) with its server time.
- :func:`open_runtime` builds the service's real :class:`bot.runtime.loops.Runtime`
  the way :class:`bot.testing.FlowHarness` does (a ``Database``, a clock,
  :class:`bot.testing.CollectingChannel` channels, pacing off), on a fresh
  database that is dropped on exit.
- The bench flows (durable_rules rulesets + :class:`bot.core.flows.Flow`): a
  two-step survey, a single wait, and a question held open for days.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from bot.core import waits
from bot.core.commands import after, ask, days, exit_flow, hours, send, set_attr
from bot.core.flows import Flow
from bot.core.inputs import ChannelName
from bot.flows import m, ruleset, when_all
from bot.infra.clock import Clock
from bot.infra.database import Database, make_client
from bot.infra.embedded_db import EmbeddedMongo
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings
from bot.runtime.loops import Runtime
from bot.testing import CollectingChannel, Sent, build_traits
from bot.types import Doc

EMBEDDED = "embedded"
EXTERNAL = "MONGODB_URI"

# --------------------------------------------------------------------- flows

SURVEY_Q1 = "¿Del 1 al 5, cómo fue tu compra?"
SURVEY_Q2 = "¿Qué podríamos mejorar?"
SURVEY_THANKS = "¡Gracias por responder!"
SURVEY = Flow("bench_survey", triggers=("bench.survey",), marketing=False,
              description="bench: ask q1 -> reply -> ask q2 -> reply -> thanks, exit")

with ruleset("bench_survey"):

    @when_all(m.type == "bench.survey")
    def survey_start(c: Any) -> None:
        ask(c, SURVEY_Q1, name="q1", choices=[str(n) for n in range(1, 6)], timeout=days(2))

    @when_all((m.type == "message") & (m.question == "q1"))
    def survey_q1(c: Any) -> None:
        set_attr(c, "bench_score", c.m.choice or c.m.text)
        ask(c, SURVEY_Q2, name="q2", timeout=days(2))

    @when_all((m.type == "message") & (m.question == "q2"))
    def survey_q2(c: Any) -> None:
        send(c, SURVEY_THANKS)
        exit_flow(c, "answered")

    @when_all(m.type == "timeout")
    def survey_timeout(c: Any) -> None:
        exit_flow(c, "timeout")


WAIT_TEXT = "Tu recordatorio"
WAITER = Flow("bench_wait", triggers=("bench.wait",), marketing=False,
              description="bench: trigger -> after(1 h) -> send, exit")

with ruleset("bench_wait"):

    @when_all(m.type == "bench.wait")
    def wait_start(c: Any) -> None:
        after(c, hours(1), {"type": "bench.due"})

    @when_all(m.type == "bench.due")
    def wait_due(c: Any) -> None:
        send(c, WAIT_TEXT)
        exit_flow(c, "sent")


HOLD_TEXT = "¿Te ayudamos con algo más?"
HOLD = Flow("bench_hold", triggers=("bench.hold",), marketing=False,
            description="bench: ask with a 7-day timeout; a reply gets thanks and exits")

with ruleset("bench_hold"):

    @when_all(m.type == "bench.hold")
    def hold_start(c: Any) -> None:
        ask(c, HOLD_TEXT, name="hold", choices=[("yes", "Sí"), ("no", "No")], timeout=days(7))

    @when_all((m.type == "message") & (m.question == "hold"))
    def hold_reply(c: Any) -> None:
        send(c, "Gracias, te escribimos pronto")
        exit_flow(c, "answered")

    @when_all(m.type == "timeout")
    def hold_timeout(c: Any) -> None:
        exit_flow(c, "timeout")


def phone(index: int) -> str:
    """A distinct E.164-looking phone number per bench customer."""
    return f"+54911{index:08d}"


# ------------------------------------------------------------------ database

def targets() -> list[str]:
    """The databases to run on: the embedded one, and ``MONGODB_URI`` when set."""
    return [EMBEDDED, EXTERNAL] if os.environ.get("MONGODB_URI") else [EMBEDDED]


@contextlib.asynccontextmanager
async def embedded_database() -> AsyncIterator[EmbeddedMongo]:
    """The embedded server on a temporary directory on disk, removed afterwards."""
    storage = tempfile.mkdtemp(prefix="chasqui-bench-")
    server = EmbeddedMongo(os.path.join(storage, "db"))
    try:
        await server.start()
        yield server
    finally:
        await server.astop()
        shutil.rmtree(storage, ignore_errors=True)


@contextlib.contextmanager
def embedded_database_sync() -> Iterator[EmbeddedMongo]:
    """:func:`embedded_database` for a synchronous caller (a parent of bench processes)."""
    import asyncio

    storage = tempfile.mkdtemp(prefix="chasqui-bench-")
    server = EmbeddedMongo(os.path.join(storage, "db"))
    try:
        asyncio.run(server.start())
        yield server
    finally:
        server.stop()
        shutil.rmtree(storage, ignore_errors=True)


@dataclass
class Counts:
    """Commands (round trips) by name, and their server time in seconds."""

    calls: Counter[str] = field(default_factory=Counter)
    micros: Counter[str] = field(default_factory=Counter)  # whole, as the driver reports them

    @property
    def seconds(self) -> defaultdict[str, float]:
        return defaultdict(float, {name: micros / 1e6 for name, micros in self.micros.items()})

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.calls - other.calls, self.micros - other.micros)

    def per(self, n: int) -> dict[str, float]:
        """Round trips per unit (e.g. per reply), by command name, plus ``total``."""
        n = max(n, 1)
        result = {name: round(count / n, 3) for name, count in sorted(self.calls.items())}
        result["total"] = round(self.total / n, 3)
        return result


class CommandCounter(monitoring.CommandListener):
    """Counts every command a client sends (one command = one round trip)."""

    IGNORED = frozenset({"endSessions"})

    def __init__(self) -> None:
        self.counts = Counts()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.counts.calls[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.counts.micros[event.command_name] += event.duration_micros

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.counts.micros[event.command_name] += event.duration_micros

    def snapshot(self) -> Counts:
        return Counts(Counter(self.counts.calls), Counter(self.counts.micros))


# ------------------------------------------------------------------- runtime

@dataclass
class BenchRuntime:
    """A runtime on its own database, with what the benches look at."""

    client: AsyncMongoClient[Doc]
    database: Database
    runtime: Runtime
    sent: list[Sent]
    counter: CommandCounter
    clock: Clock


@contextlib.asynccontextmanager
async def open_runtime(uri: str, flows: Sequence[Flow], clock: Clock, *, loops: bool,
                       channels: tuple[ChannelName, ...] = ("sms",),
                       name: str = "bench") -> AsyncIterator[BenchRuntime]:
    """The service's runtime built as ``FlowHarness`` builds it, pacing off.

    The database (``<name>_<random>``) is created with every index and dropped
    on exit; ``loops`` starts the real decide and send loops.
    """
    counter = CommandCounter()
    client = make_client(uri, event_listeners=[counter])
    db_name = f"{name}_{uuid.uuid4().hex[:8]}"
    database = Database(client, client[db_name])
    runtime: Runtime | None = None
    try:
        await database.ensure_indexes()
        settings = Settings(mongodb_uri=uri, mongodb_db=db_name, whatsapp_rate=0, sms_rate=0,
                            telegram_rate=0)
        sent: list[Sent] = []
        collecting = {name: CollectingChannel(traits, clock, sent)
                      for name, traits in build_traits(settings, channels).items()}
        runtime = Runtime(settings, database, clock, Metrics(), collecting,
                          {flow.name: flow for flow in flows})
        runtime.start(loops=loops)
        yield BenchRuntime(client, database, runtime, sent, counter, clock)
    finally:
        if runtime is not None:
            await runtime.stop()
        with contextlib.suppress(Exception):
            await client.drop_database(db_name)
        await client.close()


def _rename(value: Any, renames: dict[str, str]) -> Any:
    """``value`` with every string occurrence of each key replaced by its value."""
    if isinstance(value, str):
        for old, new in renames.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: _rename(item, renames) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename(item, renames) for item in value]
    return value  # numbers, datetimes, None: immutable


def clone_customer(template: Doc, messages: list[Doc], index: int, template_index: int,
                   due: datetime | None = None) -> tuple[Doc, list[Doc]]:
    """A copy of a customer (and their timeline) the runtime wrote, for customer ``index``.

    The ids that derive from the customer (``_id``, keys, store id, phone,
    message ids) are rewritten; ``due`` moves every flow wait to that time.
    """
    new_id = f"c_{uuid.uuid4().hex[:20]}"
    renames = {template["_id"]: new_id, phone(template_index): phone(index),
               f"b{template_index}": f"b{index}"}
    doc = _rename(template, renames)
    doc["done_inputs"] = []
    if due is not None:
        for wait in doc.get("waits", []):
            if wait.get("flow"):
                wait["due"] = due
        waits.refresh(doc)
    return doc, [_rename(message, renames) for message in messages]


# --------------------------------------------------------------------- facts

def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float | None:
    """A process's resident set size (``VmRSS``, or ``VmHWM``: its peak) in MB.

    None when the process or the field cannot be read.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def server_pid(guard_pid: int) -> int:
    """The embedded server's own pid: the service starts it behind a guard
    process (``bot.infra.db_guard``), whose one child it is. Falls back to the
    guard's pid when /proc does not tell."""
    try:
        with open(f"/proc/{guard_pid}/task/{guard_pid}/children", encoding="ascii") as file:
            children = file.read().split()
    except OSError:
        return guard_pid
    return int(children[0]) if children else guard_pid


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time a process has used so far, None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                      if line.startswith("model name")), "")
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def print_machine(started: dict[str, Any]) -> None:
    """One line of machine facts; the load average says whether others shared the CPUs."""
    now = machine()
    print(f"\nmachine: {now['nproc']} CPUs ({now['cpu']}), Python {now['python']}; "
          f"1-minute load average {started['load_average_1m']} when the bench started (work "
          f"of the last minute; other work lowers every figure), {now['load_average_1m']} "
          f"at its end (the bench included)")


def fmt(value: Any) -> str:
    """A table cell: thousands separators, sensible decimals, '-' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3f}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table (markdown-friendly) on stdout."""
    cells = [[fmt(cell) if i else str(cell) for i, cell in enumerate(row)] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
          + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True)))
              + " |")
    sys.stdout.flush()


def json_line(payload: dict[str, Any]) -> str:
    """The final machine-readable line of a bench run."""
    return json.dumps(payload, default=str, sort_keys=True)
