"""The processor: inbox items and due waits -> decisions -> one commit per customer.

Per-customer serialisation is a lease on the customer document, taken and
read in one round trip (``find_one_and_update``), held by one worker while
it decides, and dropped by the conditional write that commits the new
state. Two events for one customer are therefore never decided at once, in
one process or across many on the same database; a worker that dies leaves a
lease that expires (``LEASE_SECONDS`` of wall time) and the work is picked
up again.

Exactly-once effects without transactions:
- the inputs a customer has processed are remembered in the document
  (``done_inputs``), committed with the state, so an input re-read after a
  crash is skipped;
- outbox messages are inserted *before* the commit, with ids derived from
  (customer, flow run, step): a decision replayed after a crash yields the
  same ids and the duplicate inserts are ignored;
- waits live in the customer document, so firing one and removing it is
  the same atomic write.

Round trips for a typical reply: lease+read (1), insert the timeline and
outbox messages (1), commit (1). Claiming inputs, marking them done and
updating conversation summaries are shared by the whole batch.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from bot import waits
from bot.clock import Clock
from bot.customers import add_keys, new_customer, pick_customer
from bot.database import Database
from bot.decide import Decider, Outcome
from bot.engine import RuleError
from bot.metrics import Metrics

log = logging.getLogger(__name__)
Doc = dict[str, Any]
LEASE_SECONDS = 30.0
BATCH = 500
CONCURRENCY = 16
DUPLICATE_KEY = 11000
STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4, "undelivered": 4}
STATUS_ATTEMPTS = 5


async def insert_ignoring_duplicates(collection: Any, docs: list[Doc]) -> None:
    """Insert documents whose ids may already exist (a replayed decision)."""
    if not docs:
        return
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise


@dataclass
class BatchResult:
    """What one pass of the processor did; the caller flushes it in batch."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    conversations: dict[tuple[str, str], Doc] = field(default_factory=dict)
    processed: int = 0


class Processor:
    """Decides inbox items and due waits, customer by customer."""

    def __init__(self, database: Database, clock: Clock, decider: Decider,
                 metrics: Metrics) -> None:
        self.db = database
        self.clock = clock
        self.decider = decider
        self.metrics = metrics
        self.owner = uuid.uuid4().hex
        self.key_cache: OrderedDict[str, str] = OrderedDict()
        self.semaphore = asyncio.Semaphore(CONCURRENCY)

    # ------------------------------------------------------------------ passes

    async def inbox_pass(self) -> int:
        """Decide a batch of pending inputs; returns how many were handled."""
        items = await self.db.inbox.find({"state": "pending"}).sort("seq", 1).to_list(BATCH)
        if not items:
            return 0
        statuses = [item for item in items if item["kind"] == "status"]
        decisions = [item for item in items if item["kind"] != "status"]
        handled = await self.apply_statuses(statuses) if statuses else 0
        groups: dict[str, list[Doc]] = {}
        for item in decisions:
            groups.setdefault(item["ckey"] or item["_id"], []).append(item)
        result = BatchResult()
        await asyncio.gather(*(self._guarded(self.process_group(group, result))
                               for group in groups.values()))
        await self.flush(result)
        return handled + result.processed

    async def due_pass(self) -> int:
        """Fire the waits of a batch of customers that are due now."""
        now = self.clock.now()
        due = await self.db.customers.find(
            {"next_due": {"$lte": now}}, {"_id": 1}).to_list(BATCH)
        if not due:
            return 0
        result = BatchResult()
        await asyncio.gather(*(self._guarded(self.process_customer(doc["_id"], [], result))
                               for doc in due))
        await self.flush(result)
        return result.processed

    async def _guarded(self, work: Any) -> None:
        async with self.semaphore:
            try:
                await work
            except Exception:
                log.exception("processing failed; it will be retried")

    # --------------------------------------------------------------- customers

    async def process_group(self, items: list[Doc], result: BatchResult) -> None:
        """All pending inputs of one identity key, in arrival order."""
        customer_id = await self.resolve(items[0]["keys"])
        await self.process_customer(customer_id, items, result)

    async def resolve(self, keys: list[str]) -> str:
        """The id of the customer these keys name, creating one if none does."""
        direct = next((key[3:] for key in keys if key.startswith("id:")), None)
        if direct is not None:
            return direct
        cached = self.key_cache.get(keys[0])
        if cached is not None:
            return cached
        while True:
            candidates = await self.db.customers.find(
                {"keys": {"$in": keys}}, {"keys": 1}).to_list(20)
            found = pick_customer(candidates, keys)
            if found is not None:
                self._remember(keys[0], found["_id"])
                return str(found["_id"])
            owned = {key for doc in candidates for key in doc.get("keys", [])}
            doc = new_customer([key for key in keys if key not in owned], self.clock.now())
            add_keys(doc, [])
            try:
                await self.db.customers.insert_one(doc)
            except DuplicateKeyError:
                continue  # created concurrently by another input: look again
            self._remember(keys[0], doc["_id"])
            return str(doc["_id"])

    def _remember(self, key: str, customer_id: str) -> None:
        self.key_cache[key] = customer_id
        self.key_cache.move_to_end(key)
        while len(self.key_cache) > 50_000:
            self.key_cache.popitem(last=False)

    async def lease(self, customer_id: str) -> Doc | None:
        """Take the customer's lease and read the document, in one round trip."""
        wall = datetime.now(UTC)
        return await self.db.customers.find_one_and_update(
            {"_id": customer_id, "$or": [{"lease": None}, {"lease.until": {"$lt": wall}}]},
            {"$set": {"lease": {"owner": self.owner,
                                "until": wall + timedelta(seconds=LEASE_SECONDS)}}},
            return_document=ReturnDocument.AFTER,
        )

    async def process_customer(self, customer_id: str, items: list[Doc],
                               result: BatchResult) -> None:
        """Lease, decide every input (then due waits), write messages, commit."""
        doc = await self.lease(customer_id)
        if doc is None:
            return  # another worker has this customer now; the items stay pending
        doc.pop("lease", None)
        outcome = Outcome()
        now = self.clock.now()
        done = set(doc.get("done_inputs", []))
        for item in sorted(items, key=lambda i: i["seq"]):
            if item["_id"] in done:
                result.done.append(item["_id"])
                continue
            before = copy.deepcopy(doc)
            try:
                add_keys(doc, [k for k in item["keys"] if not k.startswith("id:")])
                outcome.extend(self.decider.apply_input(doc, item, now))
                result.done.append(item["_id"])
                self.metrics.decisions.labels("ok").inc()
            except (RuleError, ValidationError, ValueError, KeyError, RuntimeError) as exc:
                doc = before
                log.warning("input %s failed: %s", item["_id"], exc)
                result.failed[item["_id"]] = str(exc)[:2000]
                self.metrics.decisions.labels("failed").inc()
        if doc.get("next_due") is not None and doc["next_due"] <= now:
            before = copy.deepcopy(doc)
            try:
                outcome.extend(self.decider.fire_due(doc, now))
            except (RuleError, ValueError, KeyError, RuntimeError) as exc:
                log.warning("waits of %s failed: %s", customer_id, exc)
                doc = before
                waits.take_due(doc, now)  # drop them, so they do not fail forever
        await self.commit(doc, outcome)
        result.processed += len(items) + outcome.fired
        self.metrics.waits_fired.inc(outcome.fired)
        for flow, step in outcome.steps:
            self.metrics.flow_steps.labels(flow, step).inc()
        for channel in outcome.channels:
            result.conversations[(doc["_id"], channel)] = self.conversation_summary(
                doc, channel, outcome, now)

    async def commit(self, doc: Doc, outcome: Outcome) -> None:
        """Messages first (idempotent ids), then the state, conditional on our lease."""
        await insert_ignoring_duplicates(self.db.messages, outcome.messages)
        await insert_ignoring_duplicates(self.db.codes, outcome.codes)
        await insert_ignoring_duplicates(self.db.flow_runs, outcome.finished_runs)
        doc["v"] = doc.get("v", 0) + 1
        written = await self.db.customers.replace_one(
            {"_id": doc["_id"], "lease.owner": self.owner}, doc)
        if written.matched_count == 0:
            log.warning("lease on customer %s expired before commit; decision dropped",
                        doc["_id"])

    def conversation_summary(self, doc: Doc, channel: str, outcome: Outcome,
                             now: datetime) -> Doc:
        state = doc.get("conversations", {}).get(channel, {})
        last = next((m for m in reversed(outcome.messages) if m.get("channel") == channel), None)
        summary: Doc = {
            "customer": doc["_id"], "customer_id": doc.get("store_id") or doc["_id"],
            "channel": channel, "status": state.get("status", "bot"),
            "agent": state.get("agent"), "handoff_reason": state.get("handoff_reason"),
            "updated_at": now,
        }
        if last is not None:
            summary["last_message"] = last["_id"]
        return summary

    # ------------------------------------------------------------------- flush

    async def flush(self, result: BatchResult) -> None:
        """Write what a pass decided about inputs and conversations, in batch."""
        if result.done:
            await self.db.inbox.update_many(
                {"_id": {"$in": result.done}}, {"$set": {"state": "done"}})
        for item_id, error in result.failed.items():
            await self.db.inbox.update_one(
                {"_id": item_id}, {"$set": {"state": "failed", "error": error}})
        if result.conversations:
            await self.db.conversations.bulk_write([
                UpdateOne({"_id": f"{customer}:{channel}"}, {"$set": summary}, upsert=True)
                for (customer, channel), summary in result.conversations.items()
            ], ordered=False)

    # ----------------------------------------------------------------- statuses

    async def apply_statuses(self, items: list[Doc]) -> int:
        """Delivery statuses update the timeline in one bulk write, no decision.

        A status that arrives before the send recorded the provider's id is
        tried again on later passes, then kept as done.
        """
        operations: list[UpdateOne] = []
        for item in items:
            status = item["payload"]
            entry = {"status": status["status"], "at": status["at"]}
            if status.get("error_code"):
                entry["error"] = f"{status['error_code']}: {status.get('error_message') or ''}"
            match = {"provider_id": status["provider_id"], "channel": status["channel"]}
            operations.append(UpdateOne(match, {"$push": {"status_history": entry}}))
            rank = STATUS_RANK.get(status["status"], 0)
            update: Doc = {"status": status["status"], "status_rank": rank}
            if "error" in entry:
                update["error"] = entry["error"]
            operations.append(UpdateOne({**match, "status_rank": {"$lt": rank}},
                                        {"$set": update}))
        written = await self.db.messages.bulk_write(operations, ordered=True)
        done, retry = [], []
        if written.matched_count >= len(items):
            done = [item["_id"] for item in items]
        else:
            # Find which statuses matched nothing (rare: only early ones).
            known = {doc["provider_id"] async for doc in self.db.messages.find(
                {"provider_id": {"$in": [i["payload"]["provider_id"] for i in items]}},
                {"provider_id": 1})}
            for item in items:
                if item["payload"]["provider_id"] in known or item.get(
                        "attempts", 0) + 1 >= STATUS_ATTEMPTS:
                    done.append(item["_id"])
                else:
                    retry.append(item["_id"])
        if done:
            await self.db.inbox.update_many({"_id": {"$in": done}}, {"$set": {"state": "done"}})
        if retry:
            # Unmatched statuses were pushed nowhere; try them again next pass.
            await self.db.inbox.update_many({"_id": {"$in": retry}}, {"$inc": {"attempts": 1}})
        return len(done)
