"""The processor: inbox items and due waits -> decisions -> one commit per customer.

Per-customer serialisation is a lease on the customer document, taken by a
conditional write, held by one worker while it decides, and dropped by the
conditional write that commits the new state. Two events for one customer
are therefore never decided at once, in one process or across many on the
same database; a worker that dies leaves a lease that expires
(``LEASE_SECONDS`` of wall time) and the work is picked up again.

Exactly-once effects without transactions:
- the inputs a customer has processed are remembered in the document
  (``done_inputs``), committed with the state, so an input re-read after a
  crash is skipped;
- outbox messages are inserted *before* the commit, with ids derived from
  (customer, flow run, step): a decision replayed after a crash yields the
  same ids and the duplicate inserts are ignored;
- waits live in the customer document, so firing one and removing it is
  the same atomic write.

Everything is done for a chunk of customers at once (``CHUNK``): one write
takes all their leases, one insert stores all their new messages, one bulk
write commits all their states. A lone reply from a customer this process
decided last costs those three round trips (plus one read when the document
is not cached); a busy pass shares them among up to ``CHUNK`` customers.
Claiming inputs, marking them done and updating conversation summaries are
likewise one write per pass, and a pass's new customers are created in one
insert. The inputs a pass reads are a window of the queue
(``bot.runtime.pending``), so a backlog does not make each pass slower.

Durability (see ``bot.infra.database``): the commit of a chunk is durable when it
returns, records included (one journal sync for the chunk), so a decision
whose inputs are then marked done survives a crash of the database; the
conversation summaries of a pass likewise. Leases and done marks are
written without a sync of their own (``Database.unjournaled`` says why
losing one is harmless).

Providers' delivery receipts are inbox items too, but they are never
decided: a pass hands them to ``bot.runtime.receipts``.

Flow statistics (``bot.core.stats``) are counted from what a pass committed
(the decisions' outcomes, the receipts it applied, the orders it decided)
and written in one ``bulk_write`` of ``$inc`` per pass, merged by counter
document (``bot.runtime.flow_stats``): one round trip per pass, not per
decision. Attributing a pass's orders to flow runs reads their messages'
delivery in one more query, only when the pass has an order to attribute.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from pydantic import ValidationError
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from bot.core import stats, waits
from bot.core.customers import KEY_FIELDS, add_keys, new_customer, pick_customer
from bot.core.decide import Decider, Outcome
from bot.core.engine import RuleError
from bot.infra.clock import Clock
from bot.infra.database import Database, find_in, update_each
from bot.infra.metrics import Metrics
from bot.runtime.doc_cache import DocCache
from bot.runtime.flow_stats import count_conversions, write_counters
from bot.runtime.inbox import UNENCODABLE
from bot.runtime.pending import PendingScan
from bot.runtime.receipts import apply_receipts
from bot.types import LEGACY_KINDS, Doc

log = logging.getLogger(__name__)
LEASE_SECONDS = 30.0
BATCH = 500
NO_IDENTITY = "no identity key (store id, phone, e-mail or chat) to find its customer by"
CHUNK = 100  # customers per lease and commit write
# The caches are bounded so a worker's memory stays flat under any number of
# customers and however long their histories grow (the load run's RSS figure).
DOC_CACHE_SIZE = 2_000  # customers decided here last, kept to skip reading them...
DOC_CACHE_BYTES = 4 * 2**20  # ...in at most this many bytes (documents grow to ~10 KB)
KEY_CACHE_SIZE = 20_000  # identity keys -> customer ids (~200 bytes each)
DUPLICATE_KEY = 11000


def freeze(doc: Doc) -> bytes:
    """A customer document as bytes: a copy nothing can change, and small to keep."""
    return pickle.dumps(doc, pickle.HIGHEST_PROTOCOL)


def thaw(blob: bytes) -> Doc:
    """The document :func:`freeze` made (only our own bytes are ever loaded)."""
    doc: Doc = pickle.loads(blob)
    return doc


def snapshot(doc: Doc) -> Doc:
    """A deep copy of a customer document, for rollback.

    A pickle round trip, in C: ~2.5x faster than ``copy.deepcopy`` on a
    customer document, which made a quarter of a decision's CPU.
    """
    return thaw(freeze(doc))


def is_receipt(item: Doc) -> bool:
    """A provider's delivery receipt (under today's name or an earlier one)?

    Any other kind is decided, an unknown one too: the decider fails it, so
    it is marked failed instead of stopping every pass.
    """
    return LEGACY_KINDS.get(item["kind"], item["kind"]) == "receipt"


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
    counters: stats.Counters = field(default_factory=stats.Counters)
    orders: list[Doc] = field(default_factory=list)  # to attribute to flow runs


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
        self.doc_cache = DocCache(DOC_CACHE_SIZE, DOC_CACHE_BYTES)
        self.pending = PendingScan(database.inbox, BATCH)
        # Flow statistics: on in the service; the bench switches them off to
        # measure what they cost. ATTRIBUTION_DAYS is set by the runtime.
        self.stats = True
        self.attribution = timedelta(days=5)
        # Where failures that receipts report go (the runtime's inbox); None: nowhere.
        self.report: Callable[[Doc], Awaitable[bool]] | None = None
        # Awaited before each chunk: holds decisions while storing inputs is
        # strained (the runtime's Inbox.make_way); None: never held.
        self.make_way: Callable[[], Awaitable[bool]] | None = None

    # ------------------------------------------------------------------ passes

    async def inbox_pass(self) -> int:
        """Decide a batch of pending inputs; returns how many were handled."""
        # A window of the queue (bot.runtime.pending), fan-outs left out: they
        # are expanded by the runtime's fanout pass, never decided here.
        items = await self.pending.next()
        if not items:
            return 0
        receipts = [item for item in items if is_receipt(item)]
        decisions = [item for item in items if not is_receipt(item)]
        result = BatchResult()
        handled = await apply_receipts(self.db, receipts, self.clock.now(),
                                       result.counters if self.stats else None, self.report)
        groups: dict[str, list[Doc]] = {}
        for item in decisions:
            if not item.get("keys"):
                # Nobody to decide it for: failed on its own, never the whole pass
                # (it used to raise in ``resolve`` and stop every pass after it).
                result.failed[item["_id"]] = NO_IDENTITY
                continue
            groups.setdefault(item["ckey"] or item["_id"], []).append(item)
        customers = await self.resolve_many([group[0]["keys"] for group in groups.values()])
        work: dict[str, list[Doc]] = {}
        for customer, group in zip(customers, groups.values(), strict=True):
            work.setdefault(customer, []).extend(group)
        await self.process(list(work.items()), result)
        await self.flush(result)
        return handled + result.processed

    async def due_pass(self) -> int:
        """Fire the waits of a batch of customers that are due now."""
        now = self.clock.now()
        # limit(): the embedded server reads fewer of the due documents
        # (500 of 20,000 due: 440 ms instead of 640 ms) than when the driver
        # just stops reading at BATCH.
        due = await self.db.customers.find(
            {"next_due": {"$lte": now}}, {"_id": 1}).limit(BATCH).to_list(BATCH)
        if not due:
            return 0
        result = BatchResult()
        await self.process([(doc["_id"], []) for doc in due], result)
        await self.flush(result)
        return result.processed

    async def process(self, work: list[tuple[str, list[Doc]]], result: BatchResult) -> None:
        """Decide ``work`` (customer id, inputs) a chunk of customers at a time."""
        for start in range(0, len(work), CHUNK):
            if self.make_way is not None and await self.make_way():
                self.metrics.intake_yields.inc()
            try:
                await self.process_chunk(work[start:start + CHUNK], result)
            except Exception:
                log.exception("processing failed; it will be retried")

    # --------------------------------------------------------------- customers

    async def resolve_many(self, key_lists: list[list[str]]) -> list[str]:
        """The customers these key lists name, creating the missing ones together.

        A pass of new customers (a sale's first checkouts, a campaign's
        replies) used to cost a read and an insert per customer; now one read
        per ``IN_CHUNK`` keys learns who exists and one ``insert_many``
        creates the rest. The lists are matched in order, each against the
        stored customers *and* the ones created for earlier lists, so two
        inputs that share a key (an order's store id and phone, then a reply
        from that phone) name one new customer, as one at a time would. A
        customer another worker created meanwhile fails its insert (unique
        ``keys``); its lists are then resolved one at a time.
        """
        found: list[str | None] = [self._known(keys) for keys in key_lists]
        unknown = [index for index, customer in enumerate(found) if customer is None]
        if not unknown:
            return [customer for customer in found if customer is not None]
        wanted = {key for index in unknown for key in key_lists[index]}
        candidates = [doc async for doc in find_in(self.db.customers, "keys", wanted,
                                                   {"keys": 1})]
        owned = {key for doc in candidates for key in doc.get("keys", [])}
        created: list[Doc] = []
        for index in unknown:
            keys = key_lists[index]
            match = pick_customer(candidates, keys)
            if match is None:
                match = new_customer([key for key in keys if key not in owned], self.clock.now())
                add_keys(match, [])
                owned.update(match["keys"])
                candidates.append(match)
                created.append(match)
            found[index] = str(match["_id"])
        failed = await self.insert_new(created)
        for index in unknown:
            if found[index] in failed:
                found[index] = await self.resolve(key_lists[index])
            else:
                self._remember(key_lists[index][0], str(found[index]))
        return [str(customer) for customer in found]

    def _known(self, keys: list[str]) -> str | None:
        """The customer named by an ``id:`` key or by a first key seen before, if any."""
        direct = next((key[3:] for key in keys if key.startswith("id:")), None)
        return direct if direct is not None else self.key_cache.get(keys[0])

    async def insert_new(self, docs: list[Doc]) -> set[str]:
        """Insert new customers in one write; the ids of those another worker beat us to."""
        if not docs:
            return set()
        try:
            await self.db.customers.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return {docs[error["index"]]["_id"] for error in errors}
        return set()

    async def resolve(self, keys: list[str]) -> str:
        """The id of the customer these keys name, creating one if none does (one at a time)."""
        known = self._known(keys)
        if known is not None:
            return known
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

    def _remember(self, key: str, customer: str) -> None:
        self.key_cache[key] = customer
        self.key_cache.move_to_end(key)
        while len(self.key_cache) > KEY_CACHE_SIZE:
            self.key_cache.popitem(last=False)

    async def lease_many(self, ids: list[str], token: str) -> dict[str, Doc]:
        """Take the leases of a chunk of customers and get their documents.

        One ``bulk_write`` of pipeline updates, each on ``_id`` alone with its
        condition (lease free or expired) inside a ``$cond``: the embedded
        server scans the collection for a filter on ``_id`` plus anything
        else, and for every ``findAndModify`` whatever its filter. For a
        customer this process committed last, the lease is also conditional
        on the version it committed (``v``), which proves the cached copy
        current. When every lease was taken and every copy is cached, that is
        the only round trip; otherwise one ``find`` reads the documents and
        the ones carrying our token are ours.
        """
        wall = datetime.now(UTC)
        lease = {"owner": self.owner, "token": token,
                 "until": wall + timedelta(seconds=LEASE_SECONDS)}
        free: Doc = {"$or": [{"$eq": [{"$ifNull": ["$lease", None]}, None]},
                             {"$lt": ["$lease.until", wall]}]}
        cached = {customer: entry for customer in ids
                  if (entry := self.doc_cache.take(customer)) is not None}
        operations = []
        for customer in ids:
            condition = free
            if customer in cached:
                condition = {"$and": [free, {"$eq": ["$v", cached[customer][0]]}]}
            operations.append(UpdateOne({"_id": customer}, [{"$set": {"lease": {
                "$cond": [condition, {"$literal": lease}, "$lease"]}}}]))
        written = await self.db.unjournaled("customers").bulk_write(operations, ordered=False)
        if written.modified_count == len(ids):
            docs = {customer: thaw(blob) for customer, (_, blob) in cached.items()}
            unread = [customer for customer in ids if customer not in cached]
        else:
            docs, unread = {}, ids
        async for doc in find_in(self.db.customers, "_id", unread):
            if (doc.get("lease") or {}).get("token") == token:
                docs[doc["_id"]] = doc
        for doc in docs.values():
            doc["lease"] = {"token": token}
        return docs

    def _cache(self, doc: Doc) -> None:
        """Keep a copy of what we committed (bounded: the hot customers only)."""
        self.doc_cache.keep(doc["_id"], doc.get("v", 0), freeze(doc))

    async def release(self, ids: list[str], token: str) -> None:
        """Give leases back without writing (the decision failed)."""
        if ids:
            drop = [{"$set": {"lease": {
                "$cond": [{"$eq": ["$lease.token", token]}, "$$REMOVE", "$lease"]}}}]
            await update_each(self.db.unjournaled("customers"), ids, drop)

    async def process_chunk(self, work: list[tuple[str, list[Doc]]],
                            result: BatchResult) -> None:
        """Lease, decide every customer's inputs (then due waits), write, commit.

        Round trips for the whole chunk: the leases (one, two when documents
        must be read), one insert per kind of record produced (timeline and
        outbox messages, finished runs, codes) and one bulk commit.
        """
        token = uuid.uuid4().hex
        docs = await self.lease_many([customer for customer, _ in work], token)
        decided: list[tuple[Doc, list[str], Outcome]] = []
        failed_inputs: dict[str, dict[str, str]] = {}
        failed_ids: list[str] = []
        for customer, items in work:
            doc = docs.get(customer)
            if doc is None:
                continue  # another worker has this customer now; the items stay pending
            doc.pop("lease")
            try:
                done, failed, outcome = self.decide_all(doc, items)
            except Exception:
                log.exception("deciding for customer %s failed; it will be retried",
                              customer)
                failed_ids.append(customer)
                continue
            failed_inputs[customer] = failed
            decided.append((doc, done, outcome))
        try:
            committed = await self.commit_many(decided, token)
        except Exception:
            await self.release([doc["_id"] for doc, _, _ in decided] + failed_ids, token)
            raise
        await self.release(failed_ids, token)
        now = self.clock.now()
        for doc, done, outcome in decided:
            if doc["_id"] not in committed:
                continue
            # Only now, with the decision committed, may the inputs count as done.
            result.done += done
            result.failed.update(failed_inputs[doc["_id"]])
            result.processed += len(done) + len(failed_inputs[doc["_id"]]) + outcome.fired
            self.metrics.waits_fired.inc(outcome.fired)
            if self.stats:
                stats.from_outcome(result.counters, outcome.stats, outcome.messages, now)
                result.orders += [fact for fact in outcome.stats if fact["kind"] == "order"]
            for flow, step in outcome.steps:
                self.metrics.flow_steps.labels(flow, step).inc()
            for channel in outcome.channels:
                result.conversations[(doc["_id"], channel)] = self.conversation_summary(
                    doc, channel, outcome, now)

    def decide_all(self, doc: Doc, items: list[Doc]) -> tuple[list[str], dict[str, str], Outcome]:
        """Decide the inputs in arrival order, then the due waits (pure, in memory)."""
        outcome = Outcome()
        now = self.clock.now()
        already = set(doc.get("done_inputs", []))
        done: list[str] = []
        failed: dict[str, str] = {}
        for item in sorted(items, key=lambda i: i["seq"]):
            if item["_id"] in already:
                done.append(item["_id"])
                continue
            before = snapshot(doc)
            try:
                add_keys(doc, [k for k in item["keys"] if not k.startswith("id:")])
                decided = self.decider.apply_input(doc, item, now)
                decided.stats += self.stats_facts(item, before, doc, now)
                self.check_storable(doc, decided)
                outcome.extend(decided)
                done.append(item["_id"])
                self.metrics.decisions.labels("ok").inc()
            except (RuleError, ValidationError, ValueError, KeyError, RuntimeError) as exc:
                doc.clear()
                doc.update(before)
                log.warning("input %s failed: %s", item["_id"], exc)
                failed[item["_id"]] = str(exc)[:2000]
                self.metrics.decisions.labels("failed").inc()
        if doc.get("next_due") is not None and doc["next_due"] <= now:
            before = snapshot(doc)
            try:
                fired = self.decider.fire_due(doc, now)
                self.check_storable(doc, fired)
                outcome.extend(fired)
            except (RuleError, ValueError, KeyError, RuntimeError) as exc:
                log.warning("waits of %s failed: %s", doc["_id"], exc)
                doc.clear()
                doc.update(before)
                waits.take_due(doc, now)  # drop them, so they do not fail forever
        return done, failed, outcome

    def check_storable(self, doc: Doc, decided: Outcome) -> None:
        """Raise ValueError unless the database can hold what one decision produced.

        The commit writes a chunk of customers at once, and the driver
        encodes the whole chunk before sending it: a document BSON cannot
        encode (a store's checkout id with a NUL became a key of the
        customer's checkouts, found by the fuzz run) failed every customer's
        commit in the chunk, on every pass, forever. Encoding the decision's
        documents here (about as costly as the snapshot taken before it)
        fails that one input instead, and names why.
        """
        codec = self.db.db.codec_options
        try:
            bson.encode(doc, codec_options=codec)
            for record in (*decided.messages, *decided.codes, *decided.finished_runs):
                bson.encode(record, codec_options=codec)
        except UNENCODABLE as exc:
            raise ValueError(f"the decision cannot be stored: {exc}"[:500]) from exc

    def stats_facts(self, item: Doc, before: Doc, after: Doc, now: datetime) -> list[Doc]:
        """Facts only the processor sees (``bot.core.stats.input_facts``), when counting."""
        return stats.input_facts(item, before, after, now) if self.stats else []

    async def commit_many(self, decided: list[tuple[Doc, list[str], Outcome]],
                          token: str) -> set[str]:
        """Records first (idempotent ids), then the states, where we still hold the lease.

        Each state write replaces the document only when its lease token is
        still ours (a pipeline ``$cond`` on an ``_id``-only filter, see
        :meth:`lease_many`); replacing it also drops the lease. Returns the
        ids committed.
        """
        if not decided:
            return set()
        for doc, _, outcome in decided:
            # The version this commit gives the customer: the sender leaves a
            # message queued until the customer's document has reached it, so a
            # message inserted before its commit is never judged on the state
            # before its decision (e.g. a reply on a window not yet opened).
            for message in outcome.messages:
                message["v"] = doc.get("v", 0) + 1
        # The records without a journal sync of their own: the commit below
        # is durable when it returns, and so then is everything written before it.
        for name, records in (
                ("messages", [m for _, _, outcome in decided for m in outcome.messages]),
                ("codes", [c for _, _, outcome in decided for c in outcome.codes]),
                ("flow_runs", [r for _, _, outcome in decided for r in outcome.finished_runs])):
            await insert_ignoring_duplicates(self.db.unjournaled(name), records)
        docs = [doc for doc, _, _ in decided]
        for doc in docs:
            doc["v"] = doc.get("v", 0) + 1
        try:
            written = await self.db.bulk_write_durably(
                "customers", [self._replace(doc, token) for doc in docs])
            modified = written.modified_count
        except BulkWriteError as exc:
            # An identity key another customer owns (see drop_foreign_keys):
            # those documents are committed again one by one without it.
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            modified = exc.details.get("nModified", 0)
            for error in errors:
                doc = docs[error["index"]]
                if not await self.drop_foreign_keys(doc):
                    raise
                single = await self.db.customers.bulk_write([self._replace(doc, token)])
                modified += single.modified_count
        if modified == len(docs):
            for doc in docs:
                self._cache(doc)
            return {doc["_id"] for doc in docs}
        # Some lease expired before its commit (a pause of LEASE_SECONDS):
        # those decisions are dropped and their inputs stay pending.
        current = {doc["_id"]: doc.get("v") async for doc in find_in(
            self.db.customers, "_id", [doc["_id"] for doc in docs], {"v": 1, "lease": 1})
            if not doc.get("lease")}
        committed = {doc["_id"] for doc in docs if current.get(doc["_id"]) == doc["v"]}
        log.warning("%d lease(s) expired before commit; those decisions were dropped",
                    len(docs) - len(committed))
        return committed

    @staticmethod
    def _replace(doc: Doc, token: str) -> UpdateOne:
        return UpdateOne({"_id": doc["_id"]}, [
            {"$replaceWith": {"$cond": [{"$eq": ["$lease.token", token]},
                                        {"$literal": doc}, "$$ROOT"]}}])

    async def drop_foreign_keys(self, doc: Doc) -> bool:
        """Remove identity keys another customer already owns; True if any were.

        An event may carry, say, a phone that belongs to another customer;
        the event still applies to the customer it was matched to (store id
        first, then phone, then email), without taking the other's key.
        """
        owners = await self.db.customers.find(
            {"keys": {"$in": doc["keys"]}}, {"keys": 1}).to_list(None)
        foreign = {key for other in owners if other["_id"] != doc["_id"]
                   for key in other.get("keys", [])} & set(doc["keys"])
        if not foreign:
            return False
        log.info("customer %s: %d identity key(s) belong to another customer; not taken",
                 doc["_id"], len(foreign))
        doc["keys"] = [key for key in doc["keys"] if key not in foreign]
        for kind, name in KEY_FIELDS.items():
            if kind == "store":
                continue  # matched first (pick_customer), so never another's
            if doc.get(name) and f"{kind}:{doc[name]}" in foreign:
                own = [k.split(":", 1)[1] for k in doc["keys"] if k.startswith(f"{kind}:")]
                doc[name] = own[-1] if own else None
        return True

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
        inbox = self.db.unjournaled("inbox")  # a lost mark is harmless (Database.unjournaled)
        if result.done:
            await update_each(inbox, result.done, {"$set": {"state": "done"}})
        for item_id, error in result.failed.items():
            await inbox.update_one(
                {"_id": item_id}, {"$set": {"state": "failed", "error": error}})
        if self.stats:
            await count_conversions(self.db, result.orders, self.attribution, result.counters)
            await write_counters(self.db, result.counters)  # made durable by the next sync
        if result.conversations:
            # Durable (one sync), so an agent's list never loses a conversation
            # the decision moved, e.g. a handoff; the marks above go with it.
            await self.db.bulk_write_durably("conversations", [
                UpdateOne({"_id": f"{customer}:{channel}"}, {"$set": summary}, upsert=True)
                for (customer, channel), summary in result.conversations.items()
            ])
