"""The runtime: intake, the decide and send loops, and virtual-time ``advance``.

One object per process wires the inbox, processor and outbox sender and
runs two background loops: deciding (inbox items, then due waits) and
sending (due outbox messages). Each loop wakes when work arrives and
otherwise polls every ``POLL_SECONDS`` of wall time; everything durable is
in MongoDB, so a process can stop at any moment and another can continue.

``advance`` (virtual clock) moves time from due item to due item, draining
both loops at each step, so a wait scheduled by a firing, or a retry after
backoff, also runs within the same call when it falls due before the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

from aiohttp import web
from bson.errors import BSONError
from pymongo.errors import BulkWriteError, WriteError

from bot.core.channel import Channel, ChannelTraits
from bot.core.compose import SendPolicy
from bot.core.customers import identity_keys
from bot.core.decide import Decider, DecisionContext
from bot.core.engine import Engine
from bot.core.flow_overrides import OVERRIDES
from bot.core.flows import Flow
from bot.core.inputs import ConsentChange, DeliveryStatus, InboundMessage, StoreEvent
from bot.core.lifecycle import TriggerPolicy
from bot.http.appkeys import CHANNELS, CLOCK, DATABASE, METRICS, RUNTIME, SETTINGS
from bot.infra.clock import Clock, VirtualClock
from bot.infra.database import Database
from bot.infra.flow_config import load_flow_config, select_flows
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings
from bot.runtime import catalog
from bot.runtime.campaigns import campaign_pass, next_campaign
from bot.runtime.flow_versions import earlier_versions, record_versions
from bot.runtime.inbox import STOP_GRACE_SECONDS, Inbox, make_item
from bot.runtime.pacing import Pacer
from bot.runtime.processor import Processor, insert_ignoring_duplicates
from bot.runtime.sender import OutboxSender
from bot.types import Doc, InboxKind

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
MAX_STUCK_STEPS = 100
FANOUT_PAGE = 500
# What an item's own data can make the fan-out raise (not the database being away).
FANOUT_DATA_ERRORS = (WriteError, BulkWriteError, BSONError, KeyError, TypeError, ValueError,
                      AttributeError)


def decision_context(settings: Settings, channels: Mapping[str, ChannelTraits],
                     flows: dict[str, Flow],
                     versions: Mapping[tuple[str, str], Flow] | None = None) -> DecisionContext:
    """What every decision reads, from the settings: the runtime's, and the pure
    test harness's (``bot.testing.PureHarness``), so both decide alike.

    ``channels`` are the configured channels in the registry's order, the
    order in which a message picks one. The flow settings file
    (``FLOWS_CONFIG``) gives the send windows and the flows' texts and timings.
    ``versions`` are the earlier versions runs may still be on
    (``bot.runtime.flow_versions.earlier_versions``).
    """
    config = load_flow_config(settings, flows.values())
    return DecisionContext(
        flows=flows, engine=Engine(),
        send_policy=SendPolicy(channels=channels,
                               default_timezone=settings.default_timezone,
                               quiet_hours=settings.quiet_hours,
                               marketing_cap=settings.marketing_cap,
                               marketing_cap_window=timedelta(
                                   days=settings.marketing_cap_days),
                               windows=config.windows),
        trigger_policy=TriggerPolicy(abandon_after=settings.cart_abandon_after,
                                     inactive_after_days=settings.inactive_after_days,
                                     sunset_after_days=settings.sunset_after_days,
                                     default_timezone=settings.default_timezone,
                                     birthday_notice_days=notice_days(settings, flows)),
        code_pattern=settings.discount_pattern,
        agent_idle_release=settings.agent_idle_release,
        flow_settings={**settings.flow_settings(), OVERRIDES: config.overrides},
        versions=dict(versions or {}),
    )


def notice_days(settings: Settings, flows: dict[str, Flow]) -> int:
    """``BIRTHDAY_NOTICE_DAYS`` when a flow starts on ``customer.birthday_soon``, else 0:
    a store without the birthday series keeps no notice wait on its customers."""
    if any("customer.birthday_soon" in flow.triggers for flow in flows.values()):
        return settings.birthday_notice_days
    return 0


class Runtime:
    """Everything that turns accepted inputs into decisions and sends."""

    def __init__(self, settings: Settings, database: Database, clock: Clock, metrics: Metrics,
                 channels: Mapping[str, Channel], flows: dict[str, Flow],
                 versions: Mapping[tuple[str, str], Flow] | None = None) -> None:
        """``channels``: the configured channels, in the registry's order (``server.py``
        wires them in from ``channels.registry``; the flow harness, stand-ins).
        ``versions``: earlier flow versions that runs started on (``decision_context``)."""
        self.settings = settings
        self.db = database
        self.clock = clock
        self.channels = channels
        self.flows = flows
        self.decide_wake = asyncio.Event()
        self.send_wake = asyncio.Event()
        self.inbox = Inbox(database, metrics, self.decide_wake.set)
        context = decision_context(settings, channels, flows, versions)
        self.processor = Processor(database, clock, Decider(context), metrics)
        self.processor.attribution = timedelta(days=settings.attribution_days)
        self.processor.report = self.inbox.accept
        self.inbox.late = self.processor.pending.lower
        self.processor.make_way = self.inbox.make_way
        pacers = {name: Pacer(channel.rate) for name, channel in channels.items()}
        self.sender = OutboxSender(database, clock, channels, metrics, pacers,
                                   context.send_policy, self.inbox.accept)
        self.decide_lock = asyncio.Lock()
        self.send_lock = asyncio.Lock()
        self.advance_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False

    # --------------------------------------------------------------- lifecycle

    def start(self, loops: bool = True) -> None:
        """Start the inbox writer and, unless ``loops`` is False, the two loops."""
        self.inbox.start()
        if loops:
            self.start_loops()

    def start_loops(self) -> None:
        self.tasks = [asyncio.create_task(self._decide_forever(), name="decide-loop"),
                      asyncio.create_task(self._send_forever(), name="send-loop")]

    async def stop(self) -> None:
        """Let each loop finish the pass it is in, then end it.

        A pass cancelled half-way leaves its leases and send claims to
        expire before another worker may take that work, and PyMongo's async
        client leaves a socket to the garbage collector when an operation is
        cancelled while it opens a connection. A loop still busy after
        ``STOP_GRACE_SECONDS`` is cancelled.
        """
        self.stopping = True
        self.decide_wake.set()
        self.send_wake.set()
        if self.tasks:
            _, busy = await asyncio.wait(self.tasks, timeout=STOP_GRACE_SECONDS)
            for task in busy:
                log.warning("%s still busy after %ss; cancelling it",
                            task.get_name(), STOP_GRACE_SECONDS)
                task.cancel()
            for task in busy:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.inbox.stop()

    async def _decide_forever(self) -> None:
        while not self.stopping:
            try:
                async with self.decide_lock:
                    done = await self.decide_once()
            except Exception:
                log.exception("decide loop error; retrying")
                done = 0
            if done:
                self.send_wake.set()
            else:
                await _wait(self.decide_wake)

    async def _send_forever(self) -> None:
        while not self.stopping:
            try:
                async with self.send_lock:
                    done = await self.sender.send_pass()
            except Exception:
                log.exception("send loop error; retrying")
                done = 0
            if done:
                self.decide_wake.set()  # failures may have reported to flows
            else:
                await _wait(self.send_wake)

    async def decide_once(self) -> int:
        return (await campaign_pass(self.db, self.clock.now()) + await self.fanout_pass()
                + await self.processor.inbox_pass() + await self.processor.due_pass())

    async def drain(self) -> None:
        """Run both loops' work until nothing is due now."""
        while True:
            async with self.decide_lock:
                decided = await self.decide_once()
            async with self.send_lock:
                sent = await self.sender.send_pass()
            if decided == 0 and sent == 0:
                return

    async def advance(self, seconds: float) -> datetime:
        """Move the virtual clock, running everything that falls due on the way."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("advance needs CLOCK=virtual")
        async with self.advance_lock:
            target = clock.now() + timedelta(seconds=seconds)
            await self.drain()
            stuck = 0
            while (due := await self.next_due()) is not None and due <= target:
                stuck = stuck + 1 if due <= clock.now() else 0
                if stuck > MAX_STUCK_STEPS:
                    # Something due now cannot be done now (e.g. a customer
                    # leased by a dead worker): stop rather than spin.
                    log.error("advance: work due at %s does not progress; stopping", due)
                    break
                clock.move_to(due)
                await self.drain()
            clock.move_to(target)
            await self.drain()
            return clock.now()

    async def next_due(self) -> datetime | None:
        """The earliest wait, queued message or scheduled campaign (tests and demos only:
        a sorted scan)."""
        wait = await self.db.customers.find(
            {"next_due": {"$exists": True}}, {"next_due": 1}).sort("next_due", 1).to_list(1)
        message = await self.db.messages.find(
            {"outbox": True}, {"due_at": 1}).sort("due_at", 1).to_list(1)
        times = [d["next_due"] for d in wait] + [d["due_at"] for d in message]
        campaign = await next_campaign(self.db)
        return min([*times, *([campaign] if campaign else [])], default=None)

    # ------------------------------------------------------------------ intake

    async def accept_channel_input(
            self, channel: str, parsed: InboundMessage | DeliveryStatus | ConsentChange) -> bool:
        """Store one parsed webhook item; False when it was a duplicate."""
        if isinstance(parsed, DeliveryStatus):
            item = make_item(
                dedupe_id=f"{channel}:status:{parsed.provider_id}:{parsed.status}",
                kind="receipt", source=channel, keys=[], payload=parsed.model_dump())
        elif isinstance(parsed, ConsentChange):
            item = make_item(dedupe_id=f"{channel}:{parsed.provider_id}", kind="consent",
                             source=channel, keys=self.message_keys(parsed),
                             payload=parsed.model_dump())
        else:
            item = make_item(dedupe_id=f"{channel}:{parsed.provider_id}", kind="message",
                             source=channel, keys=self.message_keys(parsed),
                             payload=parsed.model_dump())
        return await self.inbox.accept(item)

    def message_keys(self, message: InboundMessage | ConsentChange) -> list[str]:
        """Identity keys of a message's sender, best first: the channel's to say.

        Raises:
            ValueError: the message's channel is not configured (webhooks of a
                channel that is off are refused before they get here).
        """
        channel = self.channels.get(message.channel)
        if channel is None:
            raise ValueError(f"channel {message.channel} is not configured")
        return channel.sender_keys(message)

    async def accept_store_event(self, event: StoreEvent, dedupe_id: str,
                                 raw: str | None = None) -> bool:
        customer = event.customer
        # Store-wide product events (a restock, the catalog) are fanned out, never decided.
        kind: InboxKind = "fanout" if event.type in catalog.FANOUT_TYPES else "event"
        item = make_item(
            dedupe_id=dedupe_id, kind=kind, source=event.source,
            keys=identity_keys(store_id=customer.id, phone=customer.phone, email=customer.email),
            payload=event.model_dump(mode="json"), raw=raw)
        return await self.inbox.accept(item)

    async def accept_customer_event(self, customer: str, event: StoreEvent,
                                    dedupe_id: str) -> bool:
        """Store an event about a customer we already know by id (an e-mail's open or click).

        Routed by the internal id (``id:`` key), so no identity is looked up
        and none is added; flows hear it as they hear a store's event.
        """
        return await self.inbox.accept(make_item(
            dedupe_id=dedupe_id, kind="event", source=event.source, keys=[f"id:{customer}"],
            payload=event.model_dump(mode="json")))

    async def keep_ignored(self, dedupe_id: str, source: str, topic: str, raw: str) -> bool:
        """Keep a webhook whose topic we do not handle, for inspection."""
        return await self.inbox.accept(make_item(
            dedupe_id=dedupe_id, kind="ignored", source=source, keys=[],
            payload={"topic": topic}, state="ignored", raw=raw))

    async def agent_action(self, customer: str, channel: str, action: str,
                           agent: str | None = None, text: str | None = None,
                           by: str | None = None, template: Doc | None = None) -> str:
        """Record an agent's action as an input; returns its id once it is stored.

        ``by`` is who did it (an agent's e-mail, or "admin-token"), recorded
        on the conversation; ``template`` an approved template to send.

        It is decided by the decide loop like any other input, in arrival
        order with the customer's other inputs, and never inside the request:
        a request that ran a pass itself waited for whatever else was pending,
        and with a backlog longer than one pass did not see its own input
        decided at all. Storing the input wakes the loop.
        """
        item = make_item(dedupe_id=f"agent:{uuid.uuid4().hex}", kind="agent", source="agent",
                         keys=[f"id:{customer}"],
                         payload={"action": action, "channel": channel, "agent": agent,
                                  "text": text, "by": by, "template": template})
        await self.inbox.accept(item)
        return str(item["_id"])

    # ----------------------------------------------------------------- fan-out

    async def fanout_pass(self) -> int:
        """Expand ``product.back_in_stock`` to every customer interested in the product.

        Catalog events, and stock levels naming no product, go through the
        catalog first (``bot.runtime.catalog``): it names the product and
        tells a restock from any other change; an item with nothing to fan
        out is done with a ``note`` saying why. Items go in arrival order,
        since a level is judged against what came before it.
        """
        items = await self.db.inbox.find(
            {"state": "pending", "kind": "fanout"}).sort("seq", 1).to_list(10)
        for item in items:
            try:
                planned = await catalog.plan(self.db, item["payload"])
                if planned.fan_out is not None:
                    await self._expand(item, planned.fan_out)
                await catalog.apply(self.db, planned)
            except FANOUT_DATA_ERRORS as exc:
                # This item's own data is at fault: fail it alone, so it never
                # stops every later pass (the database being away still raises).
                log.warning("fan-out input %s failed: %s", item["_id"], exc)
                await self.db.inbox.update_one({"_id": item["_id"]}, {"$set": {
                    "state": "failed", "error": str(exc)[:2000]}})
                continue
            done: Doc = {"state": "done"} if planned.note is None else {
                "state": "done", "note": planned.note}
            await self.db.inbox.update_one({"_id": item["_id"]}, {"$set": done})
        return len(items)

    async def _expand(self, item: Doc, payload: Doc) -> None:
        """Give ``payload`` to every customer interested in its product (and to its own
        customer, unless it is store-wide)."""
        product = str(payload.get("data", {}).get("product_id")
                      or payload.get("data", {}).get("sku") or "")
        # A store-wide event (a product webhook) has no customer of its own to tell.
        targets: list[Doc] = [] if payload.get("store_wide") else [make_item(
            dedupe_id=f"{item['_id']}:self", kind="event", source=item["source"],
            keys=item["keys"], payload=payload)]
        if product:
            async for doc in self.db.customers.find({"interests": product},
                                                    {"store_id": 1}):
                event = {**payload, "customer": {"id": doc.get("store_id") or doc["_id"]}}
                targets.append(make_item(
                    dedupe_id=f"{item['_id']}:{doc['_id']}", kind="event",
                    source=item["source"], keys=[f"id:{doc['_id']}"], payload=event))
                if len(targets) >= FANOUT_PAGE:
                    await insert_ignoring_duplicates(self.db.inbox, targets)
                    targets = []
        await insert_ignoring_duplicates(self.db.inbox, targets)


async def _wait(event: asyncio.Event) -> None:
    """Wait for a wake-up or the poll interval.

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can
    swallow a cancellation that arrives as the inner wait completes, which
    left a loop running after ``stop`` (a hang seen in CI).
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(POLL_SECONDS):
            await event.wait()
    event.clear()


async def runtime_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: load flows and run the loops; stop them on the way down."""
    settings = app[SETTINGS]
    flows = select_flows(settings)  # FLOWS, else the flow settings file's switches
    log.info("flows enabled: %s", ", ".join(sorted(flows)) or "none")
    channels: dict[str, Channel] = app[CHANNELS]  # server.py wires in the registry's
    now = app[CLOCK].now()
    await record_versions(app[DATABASE], flows.values(), now)
    earlier = await earlier_versions(app[DATABASE], flows, now, settings.flow_version_days)
    runtime = Runtime(settings, app[DATABASE], app[CLOCK], app[METRICS], channels, flows,
                      earlier)
    app[RUNTIME] = runtime
    runtime.start()
    try:
        yield
    finally:
        await runtime.stop()
