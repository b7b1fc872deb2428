"""Outbound figures: messages per second from the outbox to WhatsApp, and round trips.

``python -m bench.outbound [--messages 5000] [--history 0]`` starts the
embedded database on an on-disk temporary directory (and uses ``MONGODB_URI``
as a second column when it is set), and the loopback WhatsApp Cloud API fake
(``tests.fakes.whatsapp.FakeWhatsApp``) in a child process on 127.0.0.1
(``python -m tests.fakes``), so this process's CPU is the sender's alone.

Set-up (not timed): ``--messages`` customers, each with WhatsApp marketing
consent and a message from a minute ago (the 24-hour window is open), and one
queued outbox message each, built by ``bot.core.compose.build_message`` exactly as
a decision builds it (every fourth one with two reply buttons, the rest plain
text), inserted in bulk. ``--history`` adds that many already-sent messages
to the ``messages`` collection first, as a service that has been running
would have.

Timed: the service's ``OutboxSender`` with one worker and pacing off
(``Pacer(0)``) calls ``send_pass()`` until nothing is left, sending through
the real ``WhatsAppChannel`` (pywa + httpx over aiohttp) to the fake.
Reported: messages per second; database round trips per message by command
(PyMongo command monitoring), with the server time of each; and the CPU time
of the sender's process and of the embedded server per message, which say
which of the two limits the rate (on two cores they also share the machine
with the fake). No pass starts
after ``--budget`` seconds: the rate is then what was sent by the end of the
last pass, and the run is marked incomplete.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.common import (
    EMBEDDED,
    EXTERNAL,
    CommandCounter,
    cpu_seconds,
    embedded_database,
    json_line,
    machine,
    phone,
    print_machine,
    print_table,
    server_pid,
    targets,
)
from bot.core.compose import SendPolicy, build_message
from bot.core.customers import add_keys, identity_keys, new_customer, record_consent
from bot.infra.clock import SystemClock
from bot.infra.database import Database, make_client
from bot.infra.embedded_db import free_port
from bot.infra.metrics import Metrics
from bot.runtime.inbox import next_seq
from bot.runtime.pacing import Pacer
from bot.runtime.sender import OutboxSender
from bot.types import Doc
from channels.base import OutboundMessage
from channels.whatsapp import WhatsAppChannel

CHUNK = 1000
BUTTONS_EVERY = 4


@contextlib.asynccontextmanager
async def database_for(target: str) -> AsyncIterator[tuple[str, int | None]]:
    """(uri, pid of the embedded server or None) for a target."""
    if target == EXTERNAL:
        yield os.environ["MONGODB_URI"], None
        return
    async with embedded_database() as server:
        assert server.process is not None
        yield server.uri, server_pid(server.process.pid)


def customer_and_message(index: int, policy: SendPolicy) -> tuple[Doc, Doc]:
    """A consented customer inside the 24-hour window, and one queued message for them."""
    now = SystemClock().now()
    doc = new_customer(identity_keys(store_id=f"o{index}", phone=phone(index)), now)
    add_keys(doc, [])
    record_consent(doc, "whatsapp", "granted", "bench", now, now)
    doc["last_in"]["whatsapp"] = now - timedelta(minutes=1)
    doc["conversations"]["whatsapp"] = {"status": "bot", "agent": None, "handoff_reason": None}
    choices = [("yes", "Sí"), ("no", "No")] if index % BUTTONS_EVERY == 0 else []
    message = build_message(
        doc, message_id=f"{doc['_id']}:bench_out:1:1", now=now, seq=next_seq(), policy=policy,
        text=f"Hola, tu pedido {index} ya salió. ¿Te avisamos cuando llegue?",
        choices=choices, template=None, fallback_template=None, channel="whatsapp",
        marketing=True, reply=False, flow="bench_out", run="bench_out:1", step="notice")
    if not message.get("outbox"):
        raise RuntimeError(f"the bench message would not be queued: {message.get('error')}")
    return doc, message


def history_message(index: int) -> Doc:
    """An old message that was already sent (not in the outbox)."""
    now = SystemClock().now() - timedelta(days=2)
    return {"_id": f"hist:{index}", "customer": f"c_hist{index % 500}",
            "conversation_id": f"c_hist{index % 500}:whatsapp", "channel": "whatsapp",
            "direction": "out", "to": phone(index), "text": "un mensaje de hace dos días",
            "choices": [], "template": None, "marketing": True, "flow": "bench_old",
            "at": now, "seq": next_seq(), "attempts": 1, "status": "delivered",
            "status_rank": 2, "provider_id": f"wamid.hist{index}", "sent_at": now,
            "status_history": [{"status": "queued", "at": now}, {"status": "sent", "at": now}]}


async def bench(uri: str, db_pid: int | None, args: argparse.Namespace) -> Doc:
    """Queue ``--messages`` messages in bulk, then time the sender until the outbox is empty."""
    counter = CommandCounter()
    client = make_client(uri, event_listeners=[counter])
    db_name = f"bench_outbound_{uuid.uuid4().hex[:8]}"
    database = Database(client, client[db_name])
    fake = await start_fake()
    channel = WhatsAppChannel(phone_id=fake.env["WHATSAPP_PHONE_ID"],
                              token=fake.env["WHATSAPP_TOKEN"],
                              app_secret="bench-app-secret", verify_token="bench-verify",
                              api_url=fake.env["WHATSAPP_API_URL"])
    reported: list[Doc] = []

    async def report(item: Doc) -> bool:  # the runtime passes inbox.accept: failures only
        reported.append(item)
        return True

    try:
        await database.ensure_indexes()
        started = time.perf_counter()
        for start in range(0, args.history, CHUNK):
            await database.messages.insert_many(
                [history_message(i) for i in range(start, min(start + CHUNK, args.history))])
        policy = SendPolicy(channels={"whatsapp": channel}, quiet_hours=False)
        for start in range(0, args.messages, CHUNK):
            pairs = [customer_and_message(i, policy)
                     for i in range(start, min(start + CHUNK, args.messages))]
            await database.customers.insert_many([doc for doc, _ in pairs], ordered=False)
            await database.messages.insert_many([msg for _, msg in pairs], ordered=False)
        setup_s = time.perf_counter() - started
        sender = OutboxSender(database, SystemClock(), {"whatsapp": channel}, Metrics(),
                              {"whatsapp": Pacer(0)}, None, report)
        passes, complete = 0, False
        cpu0 = cpu_seconds(), cpu_seconds(db_pid) if db_pid else None
        c0, t0 = counter.snapshot(), time.perf_counter()
        deadline = time.monotonic() + args.budget
        while time.monotonic() < deadline:  # a pass is never cut in the middle
            if not await sender.send_pass():
                complete = True
                break
            passes += 1
        c1, t1 = counter.snapshot(), time.perf_counter()
        cpu1 = cpu_seconds(), cpu_seconds(db_pid) if db_pid else None
        sent = await database.messages.count_documents({"flow": "bench_out", "status": "sent"})
        # The fake answers every request with a new message id.
        requests = len(await database.messages.distinct("provider_id", {"flow": "bench_out"}))
        channel_alone = await channel_cpu(channel, min(args.messages, 2000))
    finally:
        await channel.close()
        fake.stop()
        with contextlib.suppress(Exception):
            await client.drop_database(db_name)
        await client.close()
    seconds = t1 - t0
    counts = c1 - c0
    problems, slow = [], []
    if not complete:
        slow.append(f"{sent} of {args.messages} messages sent within the {args.budget:g}s budget")
    elif sent != args.messages:
        problems.append(f"the outbox is empty but {sent} of {args.messages} messages are sent")
    if reported:
        problems.append(f"{len(reported)} sends failed and were reported to flows")
    return {
        "messages": args.messages, "history": args.history, "setup_s": round(setup_s, 2),
        "sent": sent, "provider_requests": requests, "complete": complete,
        "send_passes": passes, "seconds": round(seconds, 3),
        "messages_per_s": round(sent / seconds, 1) if seconds > 0 else None,
        "round_trips_per_message": counts.per(sent),
        "server_ms_per_call": {name: round(counts.seconds[name] / calls * 1000, 2)
                               for name, calls in sorted(counts.calls.items()) if calls},
        "db_time_share": round(sum(counts.seconds.values()) / seconds, 2) if seconds else None,
        "cpu_s": {"sender": _spent(cpu0[0], cpu1[0]), "db_server": _spent(cpu0[1], cpu1[1])},
        "cpu_ms_per_message": {
            "channel_alone": channel_alone,
            "sender": _per_message(_spent(cpu0[0], cpu1[0]), sent),
            "db_server": _per_message(_spent(cpu0[1], cpu1[1]), sent)},
        "problems": problems, "over_budget": slow,
    }


@dataclass
class FakeProcess:
    """``python -m tests.fakes`` on free ports, and the variables it printed."""

    process: subprocess.Popen[str]
    env: dict[str, str]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def start_fake() -> FakeProcess:
    """Start the provider fakes in a child process; return once they listen."""
    ports = [str(free_port()) for _ in range(3)]
    process = subprocess.Popen(  # noqa: ASYNC220 (set-up, not timed)
        [sys.executable, "-m", "tests.fakes", "--whatsapp-port", ports[0],
         "--twilio-port", ports[1], "--telegram-port", ports[2]],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line[len("export "):].strip().partition("=")
            env[name] = value
        if line.startswith("# Ctrl-C"):
            return FakeProcess(process, env)
    process.kill()
    raise RuntimeError("the provider fakes did not start")


async def channel_cpu(channel: WhatsAppChannel, count: int) -> float | None:
    """CPU ms per message of ``WhatsAppChannel.send`` alone (pywa, httpx, aiohttp),
    no database: the floor of the sender's own cost per WhatsApp message."""
    messages = [OutboundMessage(id=f"alone-{i}", channel="whatsapp", to=phone(i),
                                text="Hola, ¿seguimos con tu carrito?") for i in range(count)]
    limit = asyncio.Semaphore(64)

    async def send(message: OutboundMessage) -> None:
        async with limit:
            await channel.send(message)

    before = cpu_seconds()
    await asyncio.gather(*(send(message) for message in messages))
    return _per_message(_spent(before, cpu_seconds()), count)


def _per_message(seconds: float | None, messages: int) -> float | None:
    return round(seconds / messages * 1000, 3) if seconds is not None and messages else None


def _spent(before: float | None, after: float | None) -> float | None:
    return round(after - before, 2) if before is not None and after is not None else None


def report(results: dict[str, Doc], args: argparse.Namespace) -> None:
    names = list(results)

    def value(target: str, *path: str) -> Any:
        item: Any = results[target]
        for key in path:
            item = item.get(key) if isinstance(item, dict) else None
        return item

    spec: list[tuple[str, tuple[str, ...]]] = [
        ("messages queued", ("messages",)),
        ("older sent messages in the collection", ("history",)),
        ("set-up: bulk insert (s, not timed)", ("setup_s",)),
        ("messages sent", ("sent",)),
        ("requests the fake received", ("provider_requests",)),
        ("all sent within the budget", ("complete",)),
        ("send passes", ("send_passes",)),
        ("seconds", ("seconds",)),
        ("messages/s", ("messages_per_s",)),
        ("DB server time / wall", ("db_time_share",)),
        ("CPU s, sender process", ("cpu_s", "sender")),
        ("CPU s, embedded server", ("cpu_s", "db_server")),
        ("CPU ms per message, sender", ("cpu_ms_per_message", "sender")),
        ("  of which the channel alone (pywa+httpx)", ("cpu_ms_per_message", "channel_alone")),
        ("CPU ms per message, embedded server", ("cpu_ms_per_message", "db_server")),
    ]
    print_table(
        f"Outbox -> WhatsAppChannel -> loopback FakeWhatsApp: {args.messages:,} messages, "
        f"one worker, pacing off", ["", *names],
        [[label, *(value(t, *path) for t in names)] for label, path in spec])
    commands = sorted({name for t in names
                       for name in value(t, "round_trips_per_message") or {}} - {"total"})
    rows: list[list[Any]] = [[name, *(value(t, "round_trips_per_message", name) for t in names)]
                             for name in commands]
    rows.append(["TOTAL per message",
                 *(value(t, "round_trips_per_message", "total") for t in names)])
    rows += [[f"server ms per {name}", *(value(t, "server_ms_per_call", name) for t in names)]
             for name in commands]
    print_table("Database round trips per message sent, by command", ["", *names], rows)
    for target in names:
        for note in results[target].get("over_budget") or []:
            print(f"OVER BUDGET [{target}]: {note}")
        for problem in (results[target].get("problems") or []) + (
                [results[target]["error"]] if "error" in results[target] else []):
            print(f"PROBLEM [{target}]: {problem}")


async def run(args: argparse.Namespace) -> dict[str, Doc]:
    results: dict[str, Doc] = {}
    for target in targets():
        sys.stderr.write(f"[bench.outbound] {target}...\n")
        try:
            async with database_for(target) as (uri, db_pid):
                results[target] = await bench(uri, db_pid, args)
        except Exception as exc:  # report the other target anyway
            results[target] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbound",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000,
                        help="messages queued in the outbox (default 5000)")
    parser.add_argument("--history", type=int, default=0,
                        help="already-sent messages in the collection beforehand (default 0)")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="no send pass starts after this many seconds (default 120)")
    args = parser.parse_args(argv)
    started = machine()
    results = asyncio.run(run(args))
    report(results, args)
    print_machine(started)
    print(json_line({"bench": "outbound", "machine": {**machine(), "at_start": started},
                     "sizes": {"messages": args.messages, "history": args.history,
                               "budget_s": args.budget},
                     "databases": [EMBEDDED, *([EXTERNAL] if EXTERNAL in results else [])],
                     "results": results}))
    failed = any("error" in r or r.get("problems") for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
