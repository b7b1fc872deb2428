"""The inbox: every accepted input, stored before it is acknowledged.

An input's ``_id`` is its dedupe key (``whatsapp:<wamid>``,
``shopify:<X-Shopify-Webhook-Id>``, ...), so a provider's retry collides on
the primary key and is answered as a duplicate, across restarts too.

Single inserts cost about a millisecond each on the embedded database, so
concurrent webhooks are written together: requests wait a few milliseconds
for companions, one ``insert_many`` stores them all, and each request is
then answered with its own result. Nothing is acknowledged before its
insert returned, and that insert is journaled (``j: true``, see
``bot.infra.database``): one log sync for the whole batch, after which the inputs
survive a crash of the database process too.

An item is ``{"_id", "seq", "kind", "source", "keys", "ckey", "payload",
"state": "pending"|"done"|"failed"|"ignored", "received_at", "raw"?}``;
its ``kind`` is one of ``bot.types.InboxKind``.
``keys`` are the identity keys to find the customer by (best first);
``seq`` orders a customer's inputs by arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import bson
from bson.errors import BSONError
from pymongo.errors import BulkWriteError

from bot.core.errors import BadPayload
from bot.infra.database import Database
from bot.infra.metrics import Metrics
from bot.runtime.pending import GRACE_SECONDS
from bot.types import Doc, InboxKind, InboxState

log = logging.getLogger(__name__)
Entry = tuple[Doc, asyncio.Future[bool]]  # an item and its request's answer
DUPLICATE_KEY = 11000
STOP = None  # queued by stop(): the writer writes what came before it, then ends
STOP_GRACE_SECONDS = 10.0  # how long a stop waits for work in progress
STRAIN_SECONDS = 0.25  # an insert slower than this means storing inputs is strained
MAKE_WAY_SECONDS = 1.0  # the longest a chunk of decisions is held back for the intake
MAKE_WAY_STEP = 0.05
_last_seq = itertools.count()
# What the driver raises, before sending, for a document it cannot encode as
# BSON (an int beyond 64 bits, a lone surrogate, a NUL in a key, ...): the
# document's fault, not the database's.
UNENCODABLE = (BSONError, OverflowError, ValueError, TypeError, RecursionError)


class UnstorableInput(BadPayload):
    """An input the database cannot hold: its request alone fails, with a 400.

    The webhook parsers refuse such bodies first, naming the field; this is
    the backstop, so that one bad document never fails its batch companions.
    """


def next_seq() -> int:
    """A process-wide increasing number, close to wall time in nanoseconds."""
    return time.time_ns() + next(_last_seq) % 1000


def make_item(*, dedupe_id: str, kind: InboxKind, source: str, keys: list[str],
              payload: dict[str, Any], state: InboxState = "pending",
              raw: str | None = None) -> Doc:
    """An inbox document (``received_at`` is wall time: it orders arrivals)."""
    item: Doc = {
        "_id": dedupe_id, "seq": next_seq(), "kind": kind, "source": source,
        "keys": keys, "ckey": keys[0] if keys else None, "payload": payload,
        "state": state, "received_at": datetime.now(UTC), "attempts": 0,
    }
    if raw is not None:
        item["raw"] = raw
    return item


class Inbox:
    """Batched, deduplicated intake."""

    def __init__(self, database: Database, metrics: Metrics, wake: Callable[[], None],
                 max_batch: int = 500, linger: float = 0.002) -> None:
        self.database = database
        self.metrics = metrics
        self.wake = wake
        # Told the seq of an input stored later than the decision pass's window
        # may have looked (bot.runtime.pending); the runtime wires it.
        self.late: Callable[[int], None] | None = None
        self.writing_since: float | None = None  # monotonic start of the insert in flight
        self.last_write = (0.0, float("-inf"))  # (duration, monotonic end) of the last one
        self.max_batch = max_batch
        self.linger = linger
        self.queue: asyncio.Queue[Entry | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._flush_forever(), name="inbox-writer")

    async def stop(self) -> None:
        """Write what was queued before the stop, then end the writer.

        The writer is only cancelled if that takes longer than
        ``STOP_GRACE_SECONDS`` (see ``Runtime.stop`` for why not at once).
        """
        if self.task is not None:
            await self.queue.put(STOP)
            try:
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    await asyncio.shield(self.task)
            except TimeoutError:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.task
        while not self.queue.empty():  # never leave a request waiting for a write
            entry = self.queue.get_nowait()
            if entry is STOP:
                continue
            _, future = entry
            if not future.done():
                future.set_exception(RuntimeError("the service is stopping"))

    def strained(self) -> bool:
        """Whether storing inputs is slow now: the insert in flight, or one that just
        ended, took longer than ``STRAIN_SECONDS``."""
        now = time.monotonic()
        if self.writing_since is not None and now - self.writing_since > STRAIN_SECONDS:
            return True
        took, ended = self.last_write
        return took > STRAIN_SECONDS and now - ended < 1.0

    async def make_way(self) -> bool:
        """Hold work that can wait while storing inputs is strained (at most
        ``MAKE_WAY_SECONDS``); True if it held.

        Storing is what a provider waits for, and after ``INTAKE_SECONDS``
        it hears 503 and sends again; a decision only waits in the queue.
        On a saturated database (measured: the embedded one at 500 inputs
        a second) every command gets slower, and the decision passes' big
        writes made the intake's inserts take seconds. So the decide loop
        calls this before each chunk of customers, and gives way.
        """
        held = False
        deadline = time.monotonic() + MAKE_WAY_SECONDS
        while self.strained() and time.monotonic() < deadline:
            held = True
            await asyncio.sleep(MAKE_WAY_STEP)
        return held

    async def accept(self, item: Doc) -> bool:
        """Store ``item``; True when new, False when its id was already there."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        new = await future
        if new:
            self.metrics.inputs.labels(item["kind"], item["source"]).inc()
            self.wake()
        else:
            self.metrics.duplicates.labels(item["source"]).inc()
        return new

    async def _flush_forever(self) -> None:
        stopping = False
        while not stopping:
            first = await self.queue.get()
            if first is STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.linger
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):  # not wait_for: see runtime._wait
                        entry = await self.queue.get()
                except TimeoutError:
                    break
                if entry is STOP:
                    stopping = True
                    break
                batch.append(entry)
            await self._write(batch)

    async def _write(self, batch: list[Entry]) -> None:
        # Two requests in one batch may carry the same id: keep the first.
        seen: dict[str, int] = {}
        docs: list[Doc] = []
        for item, _ in batch:
            if item["_id"] not in seen:
                seen[item["_id"]] = len(docs)
                docs.append(item)
        self.writing_since = time.monotonic()
        try:
            failures = await self._insert(docs)
        except UNENCODABLE:
            failures = await self._insert_encodable(docs)
        except Exception as exc:  # the database is down: every request gets the error
            failures = {i: exc for i in range(len(docs))}
        finally:
            ended = time.monotonic()
            self.last_write = (ended - self.writing_since, ended)
            self.writing_since = None
        self._tell_late(docs, failures)
        first_of: set[int] = set()
        for item, future in batch:
            index = seen[item["_id"]]
            outcome = failures.get(index, True)
            if index in first_of and outcome is True:
                outcome = False  # the second copy within the batch is a duplicate
            first_of.add(index)
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _tell_late(self, docs: list[Doc], failures: dict[int, Exception | bool]) -> None:
        """Report the oldest input just stored whose ``seq`` is already past the grace period."""
        if self.late is None:
            return
        stored = [doc["seq"] for index, doc in enumerate(docs) if index not in failures]
        if stored and min(stored) < time.time_ns() - int(GRACE_SECONDS * 1e9):
            self.late(min(stored))

    async def _insert(self, docs: list[Doc]) -> dict[int, Exception | bool]:
        """Insert ``docs``; what went wrong by index: False for a duplicate, else the error.

        Raises what is not a per-document write error (the database is down,
        or the driver could not encode a document).
        """
        failures: dict[int, Exception | bool] = {}
        try:
            await self.database.inbox.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                index = error["index"]
                failures[index] = False if error.get("code") == DUPLICATE_KEY else RuntimeError(
                    error.get("errmsg", "write failed"))
        return failures

    async def _insert_encodable(self, docs: list[Doc]) -> dict[int, Exception | bool]:
        """After the driver could not encode a document: fail it alone, store the others.

        Each document is encoded on its own (no round trip) to find the bad
        ones, which fail with :class:`UnstorableInput`; the rest are written
        in one insert. The driver sends a large batch in pieces, encoding
        each piece as it goes, so a piece before the bad document may have
        been stored already: a duplicate whose stored ``seq`` is this
        document's own is this very input, new, not a duplicate.
        """
        options = self.database.inbox.codec_options
        failures: dict[int, Exception | bool] = {}
        good: list[int] = []
        for index, doc in enumerate(docs):
            try:
                bson.encode(doc, codec_options=options)
            except UNENCODABLE as error:
                log.warning("inbox: input %s cannot be stored (%s)", doc["_id"],
                            type(error).__name__)
                failures[index] = UnstorableInput(f"the input cannot be stored: {error}")
            else:
                good.append(index)
        if not good:
            return failures
        try:
            written = await self._insert([docs[i] for i in good])
        except Exception as exc:  # the database is down: the rest get the error
            return failures | {i: exc for i in good}
        duplicates = [docs[good[j]]["_id"] for j, outcome in written.items() if outcome is False]
        seqs: dict[str, Any] = {}
        # If this read fails, those inputs are answered as duplicates: stored
        # either way, so the sender's not retrying loses nothing.
        with contextlib.suppress(Exception):
            if duplicates:
                async for item in self.database.inbox.find({"_id": {"$in": duplicates}},
                                                           {"seq": 1}):
                    seqs[item["_id"]] = item.get("seq")
        for j, outcome in written.items():
            doc = docs[good[j]]
            if outcome is not False or seqs.get(doc["_id"]) != doc["seq"]:
                failures[good[j]] = outcome
        return failures
