"""Decisions and sends are batched across customers: round trips counted.

A pass over many customers' inputs takes all their leases in one write,
stores all their messages in one insert and commits all their states in one
write; the sender claims and settles a pass in two writes. Counted with
PyMongo's command monitoring, as the benchmarks count them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.decide import Outcome
from bot.core.inputs import CustomerInfo, StoreEvent
from bot.infra.clock import SystemClock
from bot.infra.metrics import Metrics
from bot.runtime.pacing import Pacer
from bot.runtime.processor import Processor
from bot.runtime.sender import RECIPIENTS_SWEEP, OutboxSender
from bot.testing import FlowHarness
from bot.types import Doc
from tests.support.batching import CUSTOMERS, ECHO, accept_replies, introduce, phone
from tests.support.monitoring import CommandLog


async def test_replies_of_many_customers_share_one_lease_one_insert_and_one_commit(
        mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await introduce(h, CUSTOMERS)
        await accept_replies(h, range(CUSTOMERS), "hola")
        log.commands.clear()
        assert await h.runtime.processor.inbox_pass() == CUSTOMERS
        # Customers: one read finds who the senders' phones belong to, one
        # write takes every lease (conditional on the version this process
        # committed, so no read of the documents), one write commits them all.
        assert log.count("customers") == {"find": 1, "update": 2}
        assert log.count("messages") == {"insert": 1}
        [insert] = log.on("messages")
        assert len(insert.command["documents"]) == 2 * CUSTOMERS  # inbound + reply each
        await h.runtime.drain()
        for n in range(CUSTOMERS):
            assert [s.text for s in h.to(f"c{n}")] == ["recibido: hola"]


async def test_a_pass_of_new_customers_creates_them_in_one_insert(mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await accept_replies(h, range(CUSTOMERS), "hola")  # nobody knows these phones yet
        log.commands.clear()
        assert await h.runtime.processor.inbox_pass() == CUSTOMERS
        # One read learns that nobody owns the phones, one insert creates the
        # customers (it used to be a read and an insert for each), then the
        # leases (and a read of the new documents) and the commit.
        assert log.count("customers") == {"find": 2, "insert": 1, "update": 2}
        [insert] = [c for c in log.on("customers") if c.command_name == "insert"]
        assert len(insert.command["documents"]) == CUSTOMERS
        await h.runtime.drain()
        for n in range(CUSTOMERS):
            assert [s.text for s in h.to(phone(n))] == ["recibido: hola"]


async def test_inputs_of_one_pass_sharing_a_key_name_one_new_customer(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        event = StoreEvent(id="evt-1", type="customer.created", occurred_at=h.clock.now(),
                           customer=CustomerInfo(id="shop-1", phone=phone(1)), data={},
                           source="test")
        await h.runtime.accept_store_event(event, "test:evt-1")
        await accept_replies(h, range(1, 2), "hola")  # the same phone, no store id
        await h.runtime.drain()
        customers = await h.database.customers.find({}, {"keys": 1}).to_list(None)
        assert len(customers) == 1
        assert set(customers[0]["keys"]) == {"store:shop-1", f"phone:{phone(1)}"}
        assert await h.database.inbox.count_documents({"state": "done"}) == 2


async def test_a_lone_reply_from_a_customer_decided_here_last_costs_three_round_trips(
        mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await introduce(h, 1)
        await accept_replies(h, range(1), "primera")
        await h.runtime.drain()
        await accept_replies(h, range(1), "segunda")
        log.commands.clear()
        assert await h.runtime.processor.inbox_pass() == 1
        # The decision's own round trips: lease (conditional on the version this
        # process committed, so no read), the messages, the commit.
        decision = log.count("customers") + log.count("messages")
        assert decision == {"update": 2, "insert": 1}, decision
        # Per pass, not per decision: the flow counters' one $inc bulk.
        assert log.count("flow_stats") == {"update": 1}
        await h.runtime.drain()
        assert [s.text for s in h.to("c0")] == ["recibido: primera", "recibido: segunda"]


async def test_a_customer_the_cache_had_no_bytes_left_for_is_read_again(mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await introduce(h, 2)
        await accept_replies(h, range(2), "primera")
        await h.runtime.drain()
        cache = h.runtime.processor.doc_cache
        assert len(cache) == 2
        # Room for about one and a half documents. c0's next commit keeps a
        # longer document (one more input done, one more step), so the bound
        # in bytes pushes c1 out although the cache holds only two entries.
        cache.max_bytes = cache.nbytes * 3 // 4
        await accept_replies(h, range(1), "segunda")
        await h.runtime.drain()
        assert len(cache) == 1
        await accept_replies(h, range(1, 2), "segunda")
        log.commands.clear()
        assert await h.runtime.processor.inbox_pass() == 1
        # The lease, then a read of its document (its phone is in the key cache).
        assert log.count("customers") == {"update": 2, "find": 1}
        await h.runtime.drain()
        assert [s.text for s in h.to("c1")] == ["recibido: primera", "recibido: segunda"]


async def test_a_customer_leased_elsewhere_waits_while_the_rest_of_the_chunk_goes_on(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 3)
        held = await h.customer_doc("c1")
        other_worker = {"owner": "elsewhere", "token": "theirs",
                        "until": datetime.now(UTC) + timedelta(minutes=5)}
        await h.database.customers.update_one({"_id": held["_id"]},
                                              {"$set": {"lease": other_worker}})
        await accept_replies(h, range(3), "hola")
        await h.runtime.drain()
        assert [len(h.to(f"c{n}")) for n in range(3)] == [1, 0, 1]
        pending = await h.database.inbox.count_documents({"state": "pending"})
        assert pending == 1  # c1's reply is kept, not lost

        # The other worker's lease runs out: the reply is decided, once.
        await h.database.customers.update_one(
            {"_id": held["_id"]}, {"$set": {"lease.until": datetime.now(UTC) - timedelta(1)}})
        await h.runtime.drain()
        assert [s.text for s in h.to("c1")] == ["recibido: hola"]
        assert await h.database.inbox.count_documents({"state": "pending"}) == 0


async def test_a_send_pass_claims_and_settles_its_messages_in_two_writes(
        mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await introduce(h, CUSTOMERS)
        await accept_replies(h, range(CUSTOMERS), "hola")
        await h.runtime.processor.inbox_pass()
        log.commands.clear()
        assert await h.runtime.sender.send_pass() == CUSTOMERS
        writes = [e for e in log.on("messages") if e.command_name == "update"]
        assert len(writes) == 2  # the claim (marked sending), the outcomes
        claim, outcome = (e.command["updates"] for e in writes)
        assert len(claim) == len(outcome) == CUSTOMERS
        assert all(u["u"][0]["$set"]["claim"]["$cond"][1]["$literal"]["sending"]
                   for u in claim)
        assert len(h.sent) == CUSTOMERS
        sent = await h.database.messages.count_documents({"status": "sent"})
        assert sent == CUSTOMERS
        assert await h.runtime.sender.send_pass() == 0


async def test_on_the_system_clock_paced_sends_are_planned_a_second_ahead_at_most(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 8)
        await accept_replies(h, range(8), "hola")
        await h.runtime.processor.inbox_pass()
        queued = await h.database.messages.find({"outbox": True}).sort("seq", 1).to_list(None)
        customers = {doc["_id"]: doc async for doc in h.database.customers.find()}
        clock = SystemClock()
        sender = OutboxSender(h.database, clock, h.runtime.channels, Metrics(),
                              {"sms": Pacer(2)}, None, h.runtime.inbox.accept)
        now = clock.now()
        plan = sender._plan(queued, customers, now)
        starts = [(start - now).total_seconds() for _, _, start in plan.sends]
        # A burst of two at once, then one every half second up to the horizon.
        assert starts == pytest.approx([0.0, 0.0, 0.5, 1.0], abs=0.01)
        assert [m["_id"] for m, _, _ in plan.sends] == [m["_id"] for m in queued[:4]]
        # The rest is neither claimed nor deferred: it stays queued, in order,
        # for a later pass, so no claim is held while a slow sender catches up.
        assert plan.ids == [m["_id"] for m in queued[:4]]
        assert plan.operations == []


async def test_the_sender_keeps_buckets_only_for_recipients_it_messaged_lately(
        mongo_uri: str) -> None:
    """A full bucket is a new one: idle ones go as the map grows, not only past 10,000.

    A sale's stream of new customers filled the map to 10,000 buckets per
    worker and kept it there; the load run's memory grew with it.
    """
    async with FlowHarness(mongo_uri, [ECHO], channels=("whatsapp",)) as h:
        sender = h.runtime.sender
        start = h.clock.now()
        for n in range(3 * RECIPIENTS_SWEEP):
            pacer = sender._recipient_pacer({"channel": "whatsapp", "to": phone(n)})
            assert pacer is not None and pacer.delay(start) == 0.0
        later = start + timedelta(minutes=1)  # every bucket has refilled (a 6 s gap)
        busy = sender._recipient_pacer({"channel": "whatsapp", "to": phone(0)})
        assert busy is not None
        for _ in range(3):
            busy.delay(later)  # a burst just now: that bucket is not full yet
        sender._forget_recipients(later)
        assert list(sender.recipients) == [("whatsapp", phone(0))]
        # The next sweep waits for the map to reach the floor again (amortized).
        assert sender.sweep_at == RECIPIENTS_SWEEP


async def test_two_senders_racing_over_one_outbox_send_each_message_once(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, CUSTOMERS)
        await accept_replies(h, range(CUSTOMERS), "hola")
        await h.runtime.processor.inbox_pass()
        other = OutboxSender(h.database, h.clock, h.runtime.channels, Metrics(),
                             {"sms": Pacer(0)}, None, h.runtime.inbox.accept)
        # Both read the same due messages; each claim is conditional, so
        # whichever writes second finds it changed fewer documents than planned
        # and sends only what it holds.
        await asyncio.gather(h.runtime.sender.send_pass(), other.send_pass())
        await asyncio.gather(h.runtime.sender.send_pass(), other.send_pass())
        assert sorted(s.to for s in h.sent) == sorted(phone(n) for n in range(CUSTOMERS))
        assert await h.database.messages.count_documents({"status": "sent"}) == CUSTOMERS
        assert await h.database.messages.count_documents({"outbox": True}) == 0


async def test_a_commit_whose_lease_was_lost_is_dropped_and_the_rest_of_the_chunk_lands(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 3)
        processor = h.runtime.processor
        ids = [(await h.customer_doc(f"c{n}"))["_id"] for n in range(3)]
        docs = await processor.lease_many(ids, "our-token")
        assert set(docs) == set(ids)
        # Our lease on c1 expires and another worker takes the customer.
        await h.database.customers.update_one(
            {"_id": ids[1]}, {"$set": {"lease": {"owner": "elsewhere", "token": "theirs"}}})
        decided: list[tuple[Doc, list[str], Outcome]] = []
        for customer_id in ids:
            doc = docs[customer_id]
            doc.pop("lease")
            doc["tags"] = ["decided here"]
            decided.append((doc, [], Outcome()))
        committed = await processor.commit_many(decided, "our-token")
        assert committed == {ids[0], ids[2]}
        stored = {doc["_id"]: doc async for doc in h.database.customers.find(
            {"_id": {"$in": ids}})}
        assert stored[ids[0]]["tags"] == stored[ids[2]]["tags"] == ["decided here"]
        assert "lease" not in stored[ids[0]]
        assert stored[ids[1]]["lease"]["token"] == "theirs"  # untouched
        assert stored[ids[1]].get("tags") != ["decided here"]


async def test_a_send_a_dead_worker_may_have_made_is_never_made_again(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 2)
        await accept_replies(h, range(2), "hola")
        await h.runtime.processor.inbox_pass()
        queued = await h.database.messages.find({"outbox": True}).sort("seq", 1).to_list(None)
        expired = datetime.now(UTC) - timedelta(seconds=1)
        # Worker A died after handing c0's reply to the provider (or not: unknown);
        # worker B died after claiming c1's reply, before handing it over.
        await h.database.messages.update_one({"_id": queued[0]["_id"]}, {"$set": {
            "claim": {"token": "dead-a", "until": expired, "sending": True}}})
        await h.database.messages.update_one({"_id": queued[1]["_id"]}, {"$set": {
            "claim": {"token": "dead-b", "until": expired}}})
        await h.runtime.drain()
        assert h.to("c0") == []
        assert [s.text for s in h.to("c1")] == ["recibido: hola"]
        lost = await h.database.messages.find_one({"_id": queued[0]["_id"]})
        assert lost is not None and lost["status"] == "failed"
        assert lost["error"].startswith("outcome unknown")
        assert "outbox" not in lost


async def test_two_workers_creating_the_same_new_customers_at_once_agree(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        mine = h.runtime.processor
        theirs = Processor(h.database, h.clock, mine.decider, mine.metrics)
        for round_ in range(3):
            lists = [[f"phone:+5491{round_}{n:07d}"] for n in range(40)]
            first, second = await asyncio.gather(mine.resolve_many(lists),
                                                 theirs.resolve_many(lists))
            assert first == second  # whoever lost an insert found the winner's customer
            stored = await h.database.customers.count_documents(
                {"keys": {"$in": [keys[0] for keys in lists]}})
            assert stored == len(lists)  # no customer twice
