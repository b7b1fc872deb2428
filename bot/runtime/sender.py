"""The outbox sender: queued messages -> providers, at most once each.

A message is queued (``outbox: true``, ``due_at``) by the decision that
produced it. The sender claims due messages in batches, re-checks at send
time what may have changed since the decision (consent, an agent taking the
conversation, a channel's 24-hour window) with the same send policy the
decision used (:func:`bot.core.policy.may_send`), plans each channel's
pacing at the cost the channel gives, sends, and records results in one
bulk write per pass.

At most once: the claim of a message that is about to be handed to its
provider is marked ``claim.sending``; a worker that dies mid-pass leaves
those messages marked, and they are recorded as failed with an unknown
outcome instead of being sent again (a customer never gets the same message
twice). Messages claimed but not yet handed over are simply claimed again
after the claim expires.

Both writes of a pass are durable before the pass goes on (one journal sync
each, ``Database.bulk_write_durably``): a claim lost in a crash of the
database would let a sent message be sent again, and a lost outcome would
turn a sent message into "outcome unknown" (and a retry into a failure).

Flow statistics: what a pass settled for a flow's messages (sent, failed,
skipped with the policy's reason code) is counted and written in one
``bulk_write`` of ``$inc`` after the outcomes (``bot.runtime.flow_stats``).

Retries: a 429 pauses the channel for Retry-After and requeues the message
(not a failure); a transient error requeues with exponential backoff on the
service clock; a permanent error is recorded on the message and reported to
the flow run through the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from bot.core.channel import (
    Channel,
    Choice,
    OutboundMessage,
    PermanentSendError,
    RateLimited,
    SendError,
    TemplateRef,
    TransientSendError,
)
from bot.core.customers import consent_entry
from bot.core.policy import FALLBACK_CODES, SendPolicy, Verdict, may_send
from bot.core.stats import Counters, sent_outcome
from bot.infra.clock import Clock, to_millis
from bot.infra.database import Database, find_in
from bot.infra.metrics import Metrics
from bot.runtime.failures import failure_report, needs_report
from bot.runtime.flow_stats import write_counters
from bot.runtime.pacing import RESOLUTION, Pacer
from bot.types import Doc

log = logging.getLogger(__name__)
BATCH = 200  # messages settled per pass: one claim write and one result write
IN_FLIGHT = 64  # sends awaiting their provider's answer at once
PACE_HORIZON = 1.0  # seconds ahead a pass may plan paced sends
CLAIM_SECONDS = 120.0
MAX_ATTEMPTS = 6
RECIPIENT_BURST = 3.0  # messages to one recipient at once before the gap applies
RECIPIENTS_SWEEP = 1_000  # recipients remembered before the idle ones are first dropped
CUSTOMER_FIELDS = {"consents": 1, "consent_ledger": 1, "last_in": 1, "conversations": 1,
                   "undeliverable": 1, "v": 1}


def recipient(message: Doc) -> tuple[str, str]:
    """Who a message goes to, as the pair-rate limit counts: (channel, address)."""
    return message["channel"], message.get("to") or message.get("to_user_id") or ""


def _ahead_of(message: Doc, customer: Doc | None) -> bool:
    """Whether ``message`` comes from a decision the customer's document does not show yet."""
    return customer is not None and customer.get("v", 0) < message.get("v", 0)


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (5 s doubling, at most an hour)."""
    return float(min(5 * 2 ** max(0, attempts - 1), 3600))


def _settled(status: str, now: datetime, reason: str | None = None, **fields: Any) -> Doc:
    """The update that takes a message out of the outbox with its final status."""
    entry: Doc = {"status": status, "at": now}
    if reason is not None:
        entry["reason"] = reason
    return {"$set": {"status": status, **fields},
            "$unset": {"outbox": "", "claim": "", "due_at": ""},
            "$push": {"status_history": entry}}


@dataclass
class SendPlan:
    """What a pass will do: messages to send (with their paced start) and
    other outcomes (skipped, deferred), all claimed together."""

    ids: list[Any] = field(default_factory=list)
    sends: list[tuple[Doc, OutboundMessage, datetime]] = field(default_factory=list)
    operations: list[tuple[Any, UpdateOne]] = field(default_factory=list)
    reports: list[Doc] = field(default_factory=list)  # skipped with a fallback left

    def add(self, message_id: Any, operation: UpdateOne) -> None:
        """A message settled without sending (skipped or deferred)."""
        self.ids.append(message_id)
        self.operations.append((message_id, operation))

    def send(self, message: Doc, outbound: OutboundMessage, start: datetime) -> None:
        """A message to hand to its provider at ``start``."""
        self.ids.append(message["_id"])
        self.sends.append((message, outbound, start))


class OutboxSender:
    """Claims due messages and hands them to their channels."""

    def __init__(self, database: Database, clock: Clock, channels: Mapping[str, Channel],
                 metrics: Metrics, pacers: dict[str, Pacer], policy: SendPolicy | None,
                 report: Callable[[Doc], Awaitable[bool]]) -> None:
        """``policy`` is the decisions' send policy (None: the channels alone,
        which is all its send-time rules read)."""
        self.db = database
        self.clock = clock
        self.channels = channels
        self.metrics = metrics
        self.pacers = pacers
        self.policy = policy if policy is not None else SendPolicy(channels=channels)
        self.report = report
        self.in_flight = asyncio.Semaphore(IN_FLIGHT)
        self.stats = True  # flow statistics (the bench switches them off to measure them)
        # This pass's settled flow messages: id -> (message, outcome, reason code).
        self.settled: dict[Any, tuple[Doc, str, str | None]] = {}
        # Per recipient (channel, address): a token bucket at the channel's
        # recipient_gap (see _plan). In memory: a worker restart forgets it,
        # and the provider's pair-rate error (``pair_rate``) is the backstop.
        self.recipients: dict[tuple[str, str], Pacer] = {}
        self.sweep_at = RECIPIENTS_SWEEP  # how many buckets trigger the next sweep

    async def send_pass(self) -> int:
        """Send one batch of due messages; returns how many were settled.

        Database work per pass, whatever its size: read the due messages and
        their customers, claim every message this pass will settle in one
        ``bulk_write`` (those sent now are claimed ``sending`` in the same
        write), and record every outcome in another: two writes per message,
        the least that keeps "at most once" across a crash.
        """
        now, wall = self.clock.now(), datetime.now(UTC)
        candidates = await self.db.messages.find(  # limit(): see Processor.due_pass
            {"outbox": True, "due_at": {"$lte": now}}).limit(BATCH).to_list(BATCH)
        if not candidates:
            return 0
        self.settled = {}
        lost = [c["_id"] for c in candidates
                if c.get("claim") and c["claim"]["until"] < wall and c["claim"].get("sending")]
        if lost:
            await self._settle_lost(lost, now)
            self.settled.update({c["_id"]: (c, "failed", None) for c in candidates
                                 if c["_id"] in lost})
        free = sorted((c for c in candidates
                       if not c.get("claim") or (c["claim"]["until"] < wall
                                                 and not c["claim"].get("sending"))),
                      key=lambda m: m["seq"])
        if not free:
            await self._count(set(lost), now)
            return len(lost)
        customers = {doc["_id"]: doc async for doc in find_in(
            self.db.customers, "_id", {m["customer"] for m in free}, CUSTOMER_FIELDS)}
        # A message whose decision is not committed yet (see Processor.commit_many)
        # waits, untouched, for a later pass.
        free = [m for m in free if not _ahead_of(m, customers.get(m["customer"]))]
        plan = self._plan(free, customers, now)
        if not plan.ids:
            await self._count(set(lost), now)
            return len(lost)
        owned = await self._claim(plan, wall)
        sends = [(message, outbound, start) for message, outbound, start in plan.sends
                 if message["_id"] in owned]
        operations = [op for message_id, op in plan.operations if message_id in owned]
        for report in plan.reports:
            if report["payload"]["message_id"] in owned:
                await self.report(report)
        operations += await asyncio.gather(*(self._send_one(message, outbound, start)
                                             for message, outbound, start in sends))
        if operations:
            await self.db.bulk_write_durably("messages", operations)
        await self._count(set(lost) | owned, now)
        return len(lost) + len(operations)

    async def _count(self, written: set[Any], now: datetime) -> None:
        """The pass's flow counters, in one write (messages it did not own are not counted)."""
        if not self.stats:
            return
        counters = Counters()
        for message_id, (message, outcome, code) in self.settled.items():
            if message_id in written:
                sent_outcome(counters, message, now, outcome, code)
        await write_counters(self.db, counters)

    def _plan(self, messages: list[Doc], customers: dict[str, Doc], now: datetime) -> SendPlan:
        """Decide, without I/O, what this pass does with each message, in order.

        Pacing is planned ahead: a message goes in this pass if its channel's
        pacer lets it start within ``PACE_HORIZON`` seconds (it then waits for
        its start before sending); the rest of that channel is left for a
        later pass, so no claim is held for long. On the virtual clock nothing
        waits: the rest is deferred to when the pacer allows, which is what
        ``advance`` steps to.

        Each recipient is paced too, by a token bucket of ``RECIPIENT_BURST``
        refilled one per ``recipient_gap``: WhatsApp allows about one
        message to a user every 6 s and lets a burst borrow ahead (up to 45
        in 6 s, then the user is blocked until the borrowed time has
        passed). A few messages at once (an answer, then a flow's step) go
        together; a longer burst is spaced by deferring the later messages,
        without holding back anyone else's.
        """
        plan = SendPlan()
        blocked: set[str] = set()
        resume_at: dict[str, datetime] = {}
        cursor: dict[str, datetime] = {}  # each channel's latest planned start
        self._forget_recipients(now)
        for message in messages:
            name = message["channel"]
            if name in blocked:
                continue
            if name in resume_at:  # keep the channel's order behind a paced message
                plan.add(message["_id"], self._defer(message, resume_at[name]))
                continue
            verdict = self._verdict(message, customers.get(message["customer"]), now)
            if isinstance(verdict, Verdict):
                plan.add(message["_id"], self._skip(message, verdict.reason or "skipped", now,
                                                    verdict.code))
                if verdict.code in FALLBACK_CODES and needs_report(message, None, skipped=True):
                    plan.reports.append(failure_report(
                        message, verdict.reason or "skipped", verdict.code, None, skipped=True))
                continue
            mine = self._recipient_pacer(message)
            wait = mine.delay(now, take=False) if mine is not None else 0.0
            if wait > 0:
                plan.add(message["_id"], self._defer(
                    message, to_millis(now + timedelta(seconds=wait + RESOLUTION))))
                continue
            pacer = self.pacers.setdefault(name, Pacer(0))
            cost = self.channels[name].pacing_cost(verdict)
            start = cursor.get(name, now)
            delay = pacer.delay(start, cost)
            if delay > 0 and self.clock.virtual:
                resume_at[name] = to_millis(now + timedelta(seconds=delay + RESOLUTION))
                plan.add(message["_id"], self._defer(message, resume_at[name]))
                continue
            while delay > 0:
                start += timedelta(seconds=delay)
                if (start - now).total_seconds() > PACE_HORIZON:
                    break
                delay = pacer.delay(start, cost)
            if delay > 0:
                blocked.add(name)  # keep the channel's order: later ones wait too
                continue
            cursor[name] = start
            if mine is not None:
                mine.delay(start)  # the recipient's token, now that it goes
            if message.get("marketing"):
                # The ledger entry that allows it now: the proof of consent for this send.
                message["consent_entry"] = consent_entry(customers[message["customer"]], name)
            plan.send(message, verdict, start)
        return plan

    def _recipient_pacer(self, message: Doc) -> Pacer | None:
        """The bucket of the message's recipient (None on a channel without a recipient gap)."""
        gap = self.channels[message["channel"]].recipient_gap
        if gap <= 0:
            return None
        key = recipient(message)
        if key not in self.recipients:
            self.recipients[key] = Pacer(1.0 / gap, burst=RECIPIENT_BURST)
        return self.recipients[key]

    def _forget_recipients(self, now: datetime) -> None:
        """Drop the buckets that are full again: memory for the recent recipients only.

        A full bucket is what a new one would be, so dropping it changes no
        send. Sweeping once the map has doubled since the last sweep (and
        holds at least ``RECIPIENTS_SWEEP``) costs O(1) a message over time.
        It used to sweep only beyond 10,000 buckets, which a sale's stream
        of new customers filled (~2.3 MB a worker) and kept full; the load
        run's RSS grew with it.
        """
        if len(self.recipients) > self.sweep_at:
            self.recipients = {key: pacer for key, pacer in self.recipients.items()
                               if not pacer.idle(now)}
            self.sweep_at = max(RECIPIENTS_SWEEP, 2 * len(self.recipients))

    async def _claim(self, plan: SendPlan, wall: datetime) -> set[Any]:
        """Claim the planned messages; those to send now are marked ``sending``.

        One write for all of them. Another worker may have claimed some since
        they were read: only when the write changed fewer documents than
        planned are the ones we hold looked up.
        """
        token = uuid.uuid4().hex
        until = wall + timedelta(seconds=CLAIM_SECONDS)
        sending = {message["_id"] for message, _, _ in plan.sends}
        # Conditions inside a pipeline, filter on _id alone (see Processor.lease_many).
        claimable = {"$and": [{"$eq": ["$outbox", True]}, {"$or": [
            {"$eq": [{"$ifNull": ["$claim", None]}, None]}, {"$lt": ["$claim.until", wall]}]}]}
        operations = []
        for message_id in plan.ids:
            claim = {"token": token, "until": until}
            if message_id in sending:
                claim["sending"] = True
            operations.append(UpdateOne({"_id": message_id}, [{"$set": {"claim": {
                "$cond": [claimable, {"$literal": claim}, "$claim"]}}}]))
        written = await self.db.bulk_write_durably("messages", operations)
        if written.modified_count == len(plan.ids):
            return set(plan.ids)
        return {doc["_id"] async for doc in find_in(
            self.db.messages, "_id", plan.ids, {"claim.token": 1})
            if (doc.get("claim") or {}).get("token") == token}

    async def _settle_lost(self, ids: list[Any], now: datetime) -> None:
        reason = "outcome unknown: the worker stopped while sending; not sent again"
        update = _settled("failed", now, reason, status_rank=4, error=reason)
        await self.db.bulk_write_durably(
            "messages", [UpdateOne({"_id": message_id}, update) for message_id in ids])

    def _verdict(self, message: Doc, customer: Doc | None,
                 now: datetime) -> OutboundMessage | Verdict:
        """The provider message to send, or the policy's verdict to skip it (its reason)."""
        verdict = may_send(message, customer, now, self.policy, stage="send")
        if verdict.skipped:
            return verdict
        template = verdict.template
        return OutboundMessage(
            id=message["_id"], channel=message["channel"], to=message["to"] or "",
            to_user_id=message.get("to_user_id"),
            text=None if template else message.get("text"),
            choices=[] if template else [Choice(**c) for c in message.get("choices", [])],
            template=TemplateRef(**template) if template else None,
            marketing=bool(message.get("marketing")), customer=message.get("customer"),
        )

    async def _send_one(self, message: Doc, outbound: OutboundMessage,
                        start: datetime) -> UpdateOne:
        channel = self.channels[message["channel"]]
        pacer = self.pacers[message["channel"]]
        wait = (start - self.clock.now()).total_seconds()
        if wait > 0 and not self.clock.virtual:
            await asyncio.sleep(wait)  # the pacer's planned start (see _plan)
        try:
            async with self.in_flight:
                provider_id = await channel.send(outbound)
        except RateLimited as exc:
            now = self.clock.now()
            wait = exc.retry_after if exc.retry_after is not None else backoff(
                message.get("attempts", 0) + 1)
            mine = self._recipient_pacer(message)
            if exc.meaning == "pair_rate" and mine is not None:  # this recipient only
                mine.pause(now, wait)
                self.metrics.sends.labels(message["channel"], "rate_limited").inc()
                return self._defer(message, now + timedelta(seconds=wait), attempt=True,
                                   error=f"{exc.code}: too many messages to this user")
            pacer.pause(now, wait)
            self.metrics.sends.labels(message["channel"], "rate_limited").inc()
            return self._defer(message, now + timedelta(seconds=wait), attempt=True,
                               error=f"{exc.code}: rate limited")
        except TransientSendError as exc:
            return await self._transient(message, exc)
        except PermanentSendError as exc:
            return await self._failed(message, exc)
        except SendError as exc:  # an unclassified provider error: treat as transient
            return await self._transient(message, TransientSendError(exc.code, exc.detail))
        except Exception as exc:  # network errors from the client library
            return await self._transient(message, TransientSendError("network", str(exc)))
        now = self.clock.now()
        self.metrics.sends.labels(message["channel"], "sent").inc()
        self.settled[message["_id"]] = (message, "sent", None)
        proof = {"consent_entry": message["consent_entry"]} if message.get("marketing") else {}
        return UpdateOne({"_id": message["_id"]}, _settled(
            "sent", now, status_rank=1, provider_id=provider_id, sent_at=now,
            attempts=message.get("attempts", 0) + 1, **proof))

    async def _transient(self, message: Doc, exc: TransientSendError) -> UpdateOne:
        attempts = message.get("attempts", 0) + 1
        if attempts >= MAX_ATTEMPTS:
            return await self._failed(message, exc)
        now = self.clock.now()
        wait = exc.retry_after if exc.retry_after is not None else backoff(attempts)
        self.metrics.sends.labels(message["channel"], "retry").inc()
        return self._defer(message, now + timedelta(seconds=wait), attempt=True,
                           error=f"{exc.code}: {exc.detail}"[:500])

    async def _failed(self, message: Doc, exc: SendError) -> UpdateOne:
        now = self.clock.now()
        error = f"{exc.code}: {exc.detail}"[:500]
        self.metrics.sends.labels(message["channel"], "failed").inc()
        self.settled[message["_id"]] = (message, "failed", None)
        if needs_report(message, exc.meaning):
            await self.report(failure_report(message, error, exc.code, exc.meaning))
        return UpdateOne({"_id": message["_id"]}, _settled(
            "failed", now, error, status_rank=4, error=error,
            attempts=message.get("attempts", 0) + 1))

    def _skip(self, message: Doc, reason: str, now: datetime,
              code: str | None = None) -> UpdateOne:
        self.metrics.sends.labels(message["channel"] or "none", "skipped").inc()
        self.settled[message["_id"]] = (message, "skipped", code)
        return UpdateOne({"_id": message["_id"]},
                         _settled("skipped", now, reason, error=reason))

    def _defer(self, message: Doc, due: datetime, attempt: bool = False,
               error: str | None = None) -> UpdateOne:
        update: Doc = {"$set": {"due_at": due}, "$unset": {"claim": ""}}
        if attempt:
            update["$inc"] = {"attempts": 1}
            update["$set"]["last_error"] = error
        return UpdateOne({"_id": message["_id"]}, update)
