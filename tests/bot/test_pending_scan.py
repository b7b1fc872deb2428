"""The decision pass reads a window of the pending queue, not all of it (bot.runtime.pending).

Reading "the first batch by seq" made the embedded database read every
pending input on every pass, so a backlog slowed the very passes that had
to drain it. These tests drive the scan on a real database and watch the
queries it sends (PyMongo command monitoring): after one full read that
finds a backlog, the passes ask for a bounded range of ``seq``; and the
order and completeness of what they return are those of the full query.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener, CommandStartedEvent

from bot.infra.database import INDEXES
from bot.runtime.inbox import make_item
from bot.runtime.pending import GRACE_SECONDS, LOOK_BACK_SECONDS, PendingScan, window_filter
from bot.testing import FlowHarness
from tests.support.batching import ECHO

BATCH = 10
HOUR_NS = 3600 * 10**9


class Finds(CommandListener):
    """The filters of the ``find`` commands sent on the inbox."""

    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "inbox":
            self.filters.append(event.command["filter"])

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


@pytest.fixture
async def watched(mongo_uri: str, db_name: str) -> AsyncIterator[tuple[Any, Finds]]:
    finds = Finds()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[finds])
    try:
        yield client[db_name].inbox, finds
    finally:
        await client.close()


def item(seq: int, kind: str = "message", state: str = "pending") -> dict[str, Any]:
    return {"_id": f"in-{seq}", "seq": seq, "kind": kind, "state": state}


async def passes(inbox: Any, scan: PendingScan, count: int) -> list[int]:
    """The seqs ``count`` passes hand out, each marking its batch done as a pass would."""
    seen: list[int] = []
    for _ in range(count):
        items = await scan.next()
        if not items:
            break
        seen += [i["seq"] for i in items]
        await inbox.update_many({"_id": {"$in": [i["_id"] for i in items]}},
                                {"$set": {"state": "done"}})
    return seen


async def drain(inbox: Any, scan: PendingScan) -> list[int]:
    """Every seq the scan hands out until it runs dry."""
    seen = await passes(inbox, scan, 100)
    assert not await scan.next(), "the scan never ran dry"
    return seen


async def test_a_backlog_is_read_in_bounded_windows_in_order(watched: Any) -> None:
    inbox, finds = watched
    start = time.time_ns() - HOUR_NS
    seqs = [start + n * 1_000_000 for n in range(5 * BATCH + 3)]
    await inbox.insert_many([item(s) for s in seqs])
    scan = PendingScan(inbox, BATCH)

    assert await drain(inbox, scan) == seqs
    bounded = [f for f in finds.filters if "$lt" in f.get("seq", {})]
    whole = [f for f in finds.filters if "seq" not in f]
    assert len(bounded) >= 5  # every pass after the first read a window
    # The first read, the one after the windows reached the recent past, drain's last check.
    assert len(whole) <= 3
    assert all(f["state"] == "pending" and "kind" not in f for f in finds.filters)


async def test_a_window_is_read_through_the_state_seq_index(db: Any) -> None:
    await db.inbox.create_indexes(INDEXES["inbox"])
    start = time.time_ns() - HOUR_NS
    await db.inbox.insert_many([item(start + n) for n in range(50)])
    plan = str(await db.inbox.find(window_filter(start, start + 10)).sort("seq", 1).explain())
    assert "state_seq" in plan and "COLLSCAN" not in plan, plan


async def test_an_input_left_pending_is_read_again_before_later_ones(watched: Any) -> None:
    inbox, _ = watched
    start = time.time_ns() - HOUR_NS
    seqs = [start + n * 1_000_000 for n in range(3 * BATCH)]
    await inbox.insert_many([item(s) for s in seqs])
    scan = PendingScan(inbox, BATCH)

    first = await scan.next()
    held = first[0]  # its customer is leased elsewhere: it stays pending
    await inbox.update_many({"_id": {"$in": [i["_id"] for i in first[1:]]}},
                            {"$set": {"state": "done"}})
    second = await scan.next()
    assert second[0]["_id"] == held["_id"]
    assert [i["seq"] for i in second[1:]] == seqs[BATCH:2 * BATCH - 1]


async def test_empty_stretches_and_fan_outs_are_stepped_over(watched: Any) -> None:
    inbox, _ = watched
    start = time.time_ns() - 5 * HOUR_NS
    early = [start + n * 1_000 for n in range(2 * BATCH)]
    late = [start + 3 * HOUR_NS + n * 1_000 for n in range(2 * BATCH)]
    fanouts = [start + 2 * HOUR_NS + n for n in range(3)]
    await inbox.insert_many([item(s) for s in early + late]
                            + [item(s, kind="fanout") for s in fanouts])
    scan = PendingScan(inbox, BATCH)

    assert await drain(inbox, scan) == early + late
    assert await inbox.count_documents({"kind": "fanout", "state": "pending"}) == 3


async def test_an_input_another_worker_stored_below_the_floor_is_found_by_the_look_back(
        watched: Any) -> None:
    inbox, _ = watched
    start = time.time_ns() - HOUR_NS
    seqs = [start + n * 1_000_000 for n in range(4 * BATCH)]
    await inbox.insert_many([item(s) for s in seqs])
    scan = PendingScan(inbox, BATCH)
    await passes(inbox, scan, 2)  # two passes: the floor is now past the start
    assert scan.floor is not None and scan.floor > start

    # Stored long after it arrived, by a worker that could not tell this one.
    await inbox.insert_one(item(start - 1))
    assert (await scan.next())[0]["seq"] != start - 1  # not looked for yet
    scan.looked_back_at -= LOOK_BACK_SECONDS  # the look back is due (time, not a sleep)
    assert (await scan.next())[0]["seq"] == start - 1


async def test_recent_inputs_are_always_looked_at_again(watched: Any) -> None:
    inbox, _ = watched
    now = time.time_ns()
    old = [now - HOUR_NS + n for n in range(2 * BATCH)]
    await inbox.insert_many([item(s) for s in old])
    scan = PendingScan(inbox, BATCH)
    await passes(inbox, scan, 1)
    # Inputs whose seq is in the grace period, stored after the pass moved on.
    recent = [now - int(GRACE_SECONDS * 1e9) // 2 + n for n in range(3)]
    await inbox.insert_many([item(s) for s in recent])

    assert await drain(inbox, scan) == old[BATCH:] + recent


async def test_an_input_this_process_stores_late_brings_the_floor_back(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        scan = h.runtime.processor.pending
        scan.floor = time.time_ns()  # as if the windows had moved on
        item = make_item(dedupe_id="sms:late", kind="message", source="sms",
                         keys=["phone:+5491100000001"], payload={})
        item["seq"] -= 60 * 10**9  # it took its seq a minute before it could be stored
        assert await h.runtime.inbox.accept(item)
        assert scan.floor == item["seq"]
        on_time = make_item(dedupe_id="sms:on-time", kind="message", source="sms",
                            keys=["phone:+5491100000002"], payload={})
        assert await h.runtime.inbox.accept(on_time)
        assert scan.floor == item["seq"]  # an input stored on time changes nothing
