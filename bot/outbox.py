"""The outbox sender: queued messages -> providers, at most once each.

A message is queued (``outbox: true``, ``due_at``) by the decision that
produced it. The sender claims due messages in batches, re-checks at send
time what may have changed since the decision (consent, an agent taking the
conversation, WhatsApp's 24-hour window), paces each channel, sends, and
records results in one bulk write per chunk.

At most once: before a chunk is handed to the providers it is marked
``claim.sending``; a worker that dies mid-chunk leaves those messages marked,
and they are recorded as failed with an unknown outcome instead of being
sent again (a customer never gets the same message twice). Messages claimed
but not yet handed over are simply claimed again after the claim expires.

Retries: a 429 pauses the channel for Retry-After and requeues the message
(not a failure); a transient error requeues with exponential backoff on the
service clock; a permanent error is recorded on the message and reported to
the flow run through the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from bot.clock import Clock, to_millis
from bot.customers import has_consent
from bot.database import Database
from bot.inbox import make_item
from bot.metrics import Metrics
from bot.outbound import in_window
from bot.pacing import RESOLUTION, Pacer
from channels.base import Channel, Choice, OutboundMessage, TemplateRef
from channels.errors import PermanentSendError, RateLimited, SendError, TransientSendError
from channels.segments import count_segments

log = logging.getLogger(__name__)
Doc = dict[str, Any]
BATCH = 200
CHUNK = 100  # sends handed to the provider at once; one status write per chunk
CLAIM_SECONDS = 120.0
MAX_ATTEMPTS = 6
CUSTOMER_FIELDS = {"consents": 1, "last_in": 1, "conversations": 1}


def _cost(channel: str, message: OutboundMessage) -> float:
    """Pacing cost: SMS senders are limited in segments, the others in messages."""
    if channel != "sms" or not message.text:
        return 1.0
    return float(max(1, count_segments(message.text)))


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (5 s doubling, at most an hour)."""
    return float(min(5 * 2 ** max(0, attempts - 1), 3600))


class OutboxSender:
    """Claims due messages and hands them to their channels."""

    def __init__(self, database: Database, clock: Clock, channels: dict[str, Channel],
                 metrics: Metrics, pacers: dict[str, Pacer], status_callback: str | None,
                 report: Callable[[Doc], Awaitable[bool]]) -> None:
        self.db = database
        self.clock = clock
        self.channels = channels
        self.metrics = metrics
        self.pacers = pacers
        self.status_callback = status_callback
        self.report = report

    async def send_pass(self) -> int:
        """Send one batch of due messages; returns how many were settled."""
        now, wall = self.clock.now(), datetime.now(UTC)
        candidates = await self.db.messages.find(
            {"outbox": True, "due_at": {"$lte": now}}, {"claim": 1}).to_list(BATCH)
        if not candidates:
            return 0
        lost = [c["_id"] for c in candidates
                if c.get("claim") and c["claim"]["until"] < wall and c["claim"].get("sending")]
        if lost:
            await self._settle_lost(lost, now)
        free = [c["_id"] for c in candidates
                if not c.get("claim") or (c["claim"]["until"] < wall
                                          and not c["claim"].get("sending"))]
        if not free:
            return len(lost)
        token = uuid.uuid4().hex
        # Conditions inside a pipeline, filter on _id alone (see Processor.lease).
        claimable = {"$and": [{"$eq": ["$outbox", True]}, {"$or": [
            {"$eq": [{"$ifNull": ["$claim", None]}, None]}, {"$lt": ["$claim.until", wall]}]}]}
        claim = {"token": token, "until": wall + timedelta(seconds=CLAIM_SECONDS)}
        await self.db.messages.update_many(
            {"_id": {"$in": free}},
            [{"$set": {"claim": {"$cond": [claimable, {"$literal": claim}, "$claim"]}}}])
        claimed = await self.db.messages.find({"claim.token": token}).sort("seq", 1).to_list(None)
        customers = {doc["_id"]: doc async for doc in self.db.customers.find(
            {"_id": {"$in": list({m["customer_id"] for m in claimed})}}, CUSTOMER_FIELDS)}
        by_channel: dict[str, list[Doc]] = {}
        for message in claimed:
            by_channel.setdefault(message["channel"], []).append(message)
        settled = await asyncio.gather(*(self._send_channel(name, messages, customers)
                                         for name, messages in by_channel.items()))
        return len(lost) + sum(settled)

    async def _settle_lost(self, ids: list[Any], now: datetime) -> None:
        reason = "outcome unknown: the worker stopped while sending; not sent again"
        await self.db.messages.update_many(
            {"_id": {"$in": ids}},
            {"$set": {"status": "failed", "status_rank": 4, "error": reason},
             "$unset": {"outbox": "", "claim": "", "due_at": ""},
             "$push": {"status_history": {"status": "failed", "at": now, "reason": reason}}})

    async def _send_channel(self, name: str, messages: list[Doc],
                            customers: dict[str, Doc]) -> int:
        channel = self.channels.get(name)
        pacer = self.pacers.setdefault(name, Pacer(0))
        operations: list[UpdateOne] = []
        chunk: list[tuple[Doc, OutboundMessage]] = []
        settled = 0
        for index, message in enumerate(messages):
            now = self.clock.now()
            verdict = self._verdict(message, customers.get(message["customer_id"]), channel, now)
            if isinstance(verdict, str):
                operations.append(self._skip(message, verdict, now))
                settled += 1
                continue
            cost = _cost(name, verdict)
            delay = pacer.delay(now, cost)
            while delay > 0 and not self.clock.virtual:
                await asyncio.sleep(delay)
                now = self.clock.now()
                delay = pacer.delay(now, cost)
            if delay > 0:  # virtual time: the rest waits until the clock gets there
                resume = to_millis(now + timedelta(seconds=delay + RESOLUTION))
                operations += [self._defer(m, resume) for m in messages[index:]]
                break
            chunk.append((message, verdict))
            if len(chunk) >= CHUNK:
                settled += await self._flush_chunk(channel, pacer, chunk, operations)
                chunk, operations = [], []
        if chunk:
            settled += await self._flush_chunk(channel, pacer, chunk, operations)
        elif operations:
            await self.db.messages.bulk_write(operations, ordered=False)
        return settled

    def _verdict(self, message: Doc, customer: Doc | None, channel: Channel | None,
                 now: datetime) -> OutboundMessage | str:
        """The provider message to send, or the reason not to send it."""
        if channel is None:
            return f"channel {message['channel']} is not configured"
        if customer is None:
            return "customer not found"
        name = message["channel"]
        if message.get("marketing") and not has_consent(customer, name):
            return f"no marketing consent on {name} at send time"
        conversation = customer.get("conversations", {}).get(name, {})
        if message.get("agent") is None and message.get("flow") and (
                conversation.get("status") == "agent"
                or (conversation.get("status") == "needs_agent"
                    and message["seq"] > conversation.get("handoff_seq", 0))):
            # A flow's message written before it asked for a person (e.g. "someone
            # will answer you shortly") still goes out; later ones wait for the agent.
            return "an agent has the conversation"
        template = message.get("template")
        if name == "whatsapp" and template is None and not in_window(customer, name, now):
            template = message.get("fallback_template")
            if template is None:
                return "outside the WhatsApp 24-hour window and the step has no template"
        return OutboundMessage(
            id=message["_id"], channel=name, to=message["to"] or "",
            to_user_id=message.get("to_user_id"),
            text=None if template else message.get("text"),
            choices=[] if template else [Choice(**c) for c in message.get("choices", [])],
            template=TemplateRef(**template) if template else None,
            status_callback=self.status_callback if name == "sms" else None,
        )

    async def _flush_chunk(self, channel: Channel | None, pacer: Pacer,
                           chunk: list[tuple[Doc, OutboundMessage]],
                           operations: list[UpdateOne]) -> int:
        assert channel is not None
        await self.db.messages.update_many(
            {"_id": {"$in": [m["_id"] for m, _ in chunk]}}, {"$set": {"claim.sending": True}})
        results = await asyncio.gather(*(self._send_one(channel, pacer, message, outbound)
                                          for message, outbound in chunk))
        operations.extend(results)
        await self.db.messages.bulk_write(operations, ordered=False)
        return len(chunk)

    async def _send_one(self, channel: Channel, pacer: Pacer, message: Doc,
                        outbound: OutboundMessage) -> UpdateOne:
        try:
            provider_id = await channel.send(outbound)
        except RateLimited as exc:
            now = self.clock.now()
            wait = exc.retry_after if exc.retry_after is not None else backoff(
                message.get("attempts", 0) + 1)
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
        return UpdateOne({"_id": message["_id"]}, {
            "$set": {"status": "sent", "status_rank": 1, "provider_id": provider_id,
                     "sent_at": now, "attempts": message.get("attempts", 0) + 1},
            "$unset": {"outbox": "", "claim": "", "due_at": ""},
            "$push": {"status_history": {"status": "sent", "at": now}}})

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
        if message.get("flow"):
            await self.report(make_item(
                dedupe_id=f"delivery:{message['_id']}", kind="delivery", source="outbox",
                keys=[f"id:{message['customer_id']}"],
                payload={"message_id": message["_id"], "flow": message["flow"],
                         "run": message.get("run"), "step": message.get("step"),
                         "error": error}))
        return UpdateOne({"_id": message["_id"]}, {
            "$set": {"status": "failed", "status_rank": 4, "error": error,
                     "attempts": message.get("attempts", 0) + 1},
            "$unset": {"outbox": "", "claim": "", "due_at": ""},
            "$push": {"status_history": {"status": "failed", "at": now, "reason": error}}})

    def _skip(self, message: Doc, reason: str, now: datetime) -> UpdateOne:
        self.metrics.sends.labels(message["channel"] or "none", "skipped").inc()
        return UpdateOne({"_id": message["_id"]}, {
            "$set": {"status": "skipped", "error": reason},
            "$unset": {"outbox": "", "claim": "", "due_at": ""},
            "$push": {"status_history": {"status": "skipped", "at": now, "reason": reason}}})

    def _defer(self, message: Doc, due: datetime, attempt: bool = False,
               error: str | None = None) -> UpdateOne:
        update: Doc = {"$set": {"due_at": due}, "$unset": {"claim": ""}}
        if attempt:
            update["$inc"] = {"attempts": 1}
            update["$set"]["last_error"] = error
        return UpdateOne({"_id": message["_id"]}, update)
