"""Backtest figures: how fast a recorded history is replayed, and what memory it takes.

``python -m bench.backtest [--customers 5000] [--days 30]``
seeds the embedded database (an on-disk temporary directory) with the inbox
a store's month would leave: per customer a ``customer.created`` with SMS
consent and a ``checkout.started``; every fifth answers the cart question
"yes" two hours later, every third places the order a day later; arrival
times spread over ``--days`` days. Seeded directly, in bulk (not timed).

Timed: one side of ``python -m bot.backtest`` (``bot.backtest.side.run_side``,
the working tree's ``cart_recovery``) over the whole history, in this
process: inputs decided per second, waits fired, and the process's peak RSS
before and after, which shows that the replay's customers are on disk
(``bot.backtest.scratch``), not in memory. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import embedded_database, json_line, machine, print_machine, print_table
from bot.backtest.side import SideSpec, run_side
from bot.core.customers import identity_keys
from bot.core.inputs import CustomerInfo, InboundMessage, StoreEvent
from bot.infra.database import Database, make_client
from bot.infra.settings import Settings
from bot.runtime.inbox import make_item
from bot.types import Doc

INSERT_CHUNK = 5_000
CART = {"recovery_url": "https://shop.example/r", "total": "40.00", "currency": "ARS",
        "items": []}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def event(n: int, kind: str, at: datetime, phone: str, **data: Any) -> Doc:
    info = CustomerInfo(id=f"cus_{n}", phone=phone, first_name="Ana",
                        consents={"sms": True} if kind == "customer.created" else {})
    payload = StoreEvent(id=f"e{n}-{kind}", type=kind, occurred_at=at, customer=info,
                         data=data, source="bench").model_dump(mode="json")
    return make_item(dedupe_id=f"bench:e{n}-{kind}", kind="event", source="bench",
                     keys=identity_keys(store_id=f"cus_{n}", phone=phone), payload=payload)


def history(customers: int, start: datetime, days: int) -> list[Doc]:
    """The seeded inbox, decided (``state: done``), each item at its arrival time."""
    items: list[tuple[datetime, Doc]] = []
    spacing = timedelta(days=days) / customers
    for n in range(customers):
        at = start + spacing * n
        phone = f"+54911{n:08d}"
        items.append((at, event(n, "customer.created", at, phone)))
        items.append((at, event(n, "checkout.started", at, phone, checkout_id=f"k{n}", **CART)))
        if n % 5 == 0:
            reply_at = at + timedelta(hours=2)
            message = InboundMessage(channel="sms", provider_id=f"SM{n}", sender=phone,
                                     kind="text", text="sí", at=reply_at)
            items.append((reply_at, make_item(
                dedupe_id=f"sms:SM{n}", kind="message", source="sms",
                keys=identity_keys(phone=phone), payload=message.model_dump())))
        if n % 3 == 0:
            order_at = at + timedelta(days=1)
            items.append((order_at, event(n, "order.placed", order_at, phone, order_id=f"o{n}",
                                          checkout_id=f"k{n}", total="40.00", currency="ARS")))
    out = []
    for index, (at, item) in enumerate(sorted(items, key=lambda pair: pair[0])):
        out.append({**item, "state": "done", "received_at": at,
                    "seq": int(at.timestamp() * 1e9) + index})
    return out


async def run(args: argparse.Namespace) -> Doc:
    async with embedded_database() as server:
        settings = Settings(mongodb_uri=server.uri, mongodb_db="bench_backtest",
                            flows="cart_recovery", quiet_hours=False, twilio_account_sid="AC0",
                            twilio_auth_token="t", twilio_from="+15550000000",
                            cart_abandon_after=3600)
        client = make_client(server.uri, **server.client_options)
        try:
            database = Database(client, client[settings.mongodb_db])
            await database.ensure_indexes()
            end = datetime.now(UTC).replace(microsecond=0)
            start = end - timedelta(days=args.days)
            items = history(args.customers, start, args.days)
            for base in range(0, len(items), INSERT_CHUNK):
                await database.inbox.insert_many(items[base:base + INSERT_CHUNK])
            before = peak_rss_mb()
            t0 = time.perf_counter()
            answer = await run_side(settings, database, SideSpec(
                since=start - timedelta(days=1), start=start, end=end + timedelta(days=2),
                sources={}))
            seconds = time.perf_counter() - t0
        finally:
            await client.close()
    flow = answer["flows"]["cart_recovery"]
    return {"customers": args.customers, "inputs": answer["inputs"],
            "waits_fired": answer["waits_fired"], "seconds": round(seconds, 1),
            "inputs_per_s": round(answer["inputs"] / seconds),
            "decisions_per_s": round((answer["inputs"] + answer["waits_fired"]) / seconds),
            "runs_started": flow["runs"]["started"], "messages": flow["messages"],
            "orders": flow["conversions"]["orders"], "failed": answer["failed"],
            "peak_rss_mb": {"before": round(before, 1), "after": round(peak_rss_mb(), 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    started = machine()
    figures = asyncio.run(run(args))
    print_machine(started)
    print_table("Backtest: one side replayed (python -m bot.backtest)",
                ["customers", "inputs", "waits fired", "seconds", "inputs/s", "decisions/s",
                 "runs", "messages", "orders", "failed", "peak RSS MB (before -> after)"],
                [[figures["customers"], figures["inputs"], figures["waits_fired"],
                  figures["seconds"], figures["inputs_per_s"], figures["decisions_per_s"],
                  figures["runs_started"], figures["messages"], figures["orders"],
                  figures["failed"], f"{figures['peak_rss_mb']['before']} -> "
                                     f"{figures['peak_rss_mb']['after']}"]])
    print(json_line({"bench": "backtest", **figures}))


if __name__ == "__main__":
    main()
