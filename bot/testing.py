"""Testing aids for flow authors: the real runtime, or the real decisions in memory.

``FlowHarness`` builds the same runtime the server runs (inbox, processor,
engine, waits, outbox) on a real MongoDB-compatible database and a virtual
clock. The only stand-in is the provider: each channel is a
:class:`CollectingChannel` that records what would have been sent, in the
manner of Rasa's collecting output channel. Script events and replies,
advance time, and assert on what was sent, to whom and when::

    async with FlowHarness(mongo_uri, flows=[my_flow.FLOW]) as h:
        await h.customer("cus_1", phone="+5491122334455", consents={"whatsapp": True})
        await h.event("checkout.started", "cus_1", checkout_id="k1", recovery_url="https://s/r")
        await h.advance(hours=1)
        assert "¿Sigues interesado?" in h.last("cus_1").text
        await h.reply("cus_1", choice="yes")

Time starts at ``start`` (default 2026-01-15 15:00 UTC: noon in Buenos Aires,
the default timezone, so outside quiet hours) and moves only with ``advance``.

``PureHarness`` has the same script and reading methods, synchronous, with
no database and no event loop: it keeps customer documents in a dict and
calls the runtime's own :class:`~bot.core.decide.Decider` on inbox items
built as the intake builds them. Decisions are pure by design, so a flow's
branches, texts and keyword handling need nothing more; it runs a case in
milliseconds. What it does not run is the I/O around them (leases, commits,
the sender's re-checks at send time, pacing, retries): keep a few
``FlowHarness`` tests per flow for that wiring.
"""

from __future__ import annotations

import importlib
import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType, TracebackType
from typing import Any, Self

import bson
from bson.codec_options import CodecOptions
from pymongo import monitoring

from bot.core.channel import ChannelTraits, OutboundMessage, Parsed, WebhookAck
from bot.core.customers import add_keys, identity_keys, new_customer, pick_customer
from bot.core.decide import Decider, Outcome
from bot.core.flows import Flow
from bot.core.inputs import ChannelName, ConsentChange, CustomerInfo, InboundMessage, StoreEvent
from bot.core.stats import flow_version
from bot.infra.clock import Clock, VirtualClock
from bot.infra.database import Database, make_client
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings
from bot.runtime.inbox import make_item
from bot.runtime.loops import Runtime, decision_context
from bot.types import Doc

DEFAULT_START = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)


@dataclass
class Sent:
    """A message a flow sent, as the provider would have received it."""

    channel: str
    to: str
    text: str | None
    choices: list[str]
    template: str | None
    at: datetime
    message_id: str


CHANNEL_REGISTRY = "channels.registry"


def _registry() -> ModuleType:
    """The channel registry the service runs with, found by its module name.

    The harness wires the edges in, as ``server.py`` does. It finds the
    registry by name, as flows are found by package name (``FLOWS_PACKAGE``),
    so ``bot/`` imports no provider (``tests/test_architecture.py``).
    """
    return importlib.import_module(CHANNEL_REGISTRY)


def build_traits(settings: Settings, names: Sequence[str] | None = None,
                 ) -> dict[str, ChannelTraits]:
    """The traits of the named channels (all by default), in the registry's order."""
    traits: dict[str, ChannelTraits] = _registry().build_traits(settings, names)
    return traits


def channel_order() -> tuple[str, ...]:
    """Every channel's name, in the registry's (the contract's) order."""
    order: tuple[str, ...] = _registry().CHANNEL_ORDER
    return order


class CollectingChannel:
    """A channel that records sends instead of calling a provider.

    It answers the core's questions (address, sender keys, service window,
    pacing) with the real channel's traits, so flows choose channels and
    templates exactly as in the service.
    """

    def __init__(self, traits: ChannelTraits, clock: Clock, log: list[Sent]) -> None:
        self.traits = traits
        self.name = traits.name
        self.title = traits.title
        self.has_service_window = traits.has_service_window
        self.optout_at_once = traits.optout_at_once
        self.confirms_optout = traits.confirms_optout
        self.rate = traits.rate
        self.recipient_gap = traits.recipient_gap
        self.clock = clock
        self.log = log
        self.counter = itertools.count(1)

    def address(self, customer: Mapping[str, Any]) -> tuple[str | None, str | None]:
        return self.traits.address(customer)

    def sender_keys(self, message: InboundMessage | ConsentChange) -> list[str]:
        return self.traits.sender_keys(message)

    def pacing_cost(self, message: OutboundMessage) -> float:
        return self.traits.pacing_cost(message)

    def deep_link(self, customer_id: str) -> str | None:
        return self.traits.deep_link(customer_id)

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> None:
        return None

    def parse(self, headers: Mapping[str, str], body: bytes) -> Parsed:
        return []

    def ack(self, parsed: Parsed) -> WebhookAck:
        return WebhookAck()

    async def send(self, message: OutboundMessage) -> str:
        self.log.append(Sent(
            channel=self.name, to=message.to or message.to_user_id or "", text=message.text,
            choices=[c.id for c in message.choices],
            template=message.template.name if message.template else None,
            at=self.clock.now(), message_id=message.id))
        return f"{self.name}-{next(self.counter)}"

    async def close(self) -> None:
        return None


UNPACED = {name: 0 for name in Settings.model_fields if name.endswith("_rate")}


def _seconds(seconds: float, minutes: float, hours: float, days: float) -> float:
    return seconds + minutes * 60 + hours * 3600 + days * 86400


class _Script:
    """What both harnesses share: inputs built as a store and a customer send
    them, and the reading of what was sent."""

    channel_names: tuple[ChannelName, ...]
    clock: VirtualClock

    def __init__(self, channels: Sequence[ChannelName] | None, start: datetime) -> None:
        # None: every channel the registry knows; a reply comes on the first given.
        self.channel_names = tuple(channels) if channels is not None else channel_order()
        self.clock = VirtualClock(start)
        self.phones: dict[str, str] = {}
        self.counter = itertools.count(1)

    def _introduction(self, customer_id: str, phone: str | None,
                      consents: dict[str, bool] | None, profile: dict[str, Any]) -> Doc:
        """The customer part of the ``customer.created`` event that introduces someone."""
        if phone:
            self.phones[customer_id] = phone
        return {"phone": phone, "consents": consents or {}, **profile}

    def _store_event(self, event_type: str, customer_id: str, customer: Doc | None,
                     occurred_at: datetime | None, data: Doc) -> StoreEvent:
        info = {"id": customer_id, **(customer or {})}
        if "phone" not in info and customer_id in self.phones:
            info["phone"] = self.phones[customer_id]
        return StoreEvent(id=f"evt_{next(self.counter)}", type=event_type,
                          occurred_at=occurred_at or self.clock.now(),
                          customer=CustomerInfo(**info), data=data, source="test")

    def _inbound(self, customer_id: str, text: str, choice: str | None,
                 channel: ChannelName | None) -> InboundMessage:
        return InboundMessage(
            channel=channel or self.channel_names[0], provider_id=f"in{next(self.counter)}",
            sender=self.phones[customer_id], kind="choice" if choice else "text",
            text=text or (choice or ""), choice_id=choice, at=self.clock.now())

    def to(self, customer_id: str) -> list[Sent]:
        raise NotImplementedError

    def last(self, customer_id: str) -> Sent:
        sent = self.to(customer_id)
        assert sent, f"nothing was sent to {customer_id}"
        return sent[-1]


class FlowHarness(_Script):
    """The real runtime with collecting channels, for testing flows.

    Args:
        mongo_uri: a MongoDB (or the embedded server) to use; each harness
            uses a database of its own and drops it on exit.
        flows: the flows to run (their rulesets must be imported).
        start: the virtual clock's starting time.
        channels: the channels that exist (each collects what it is sent);
            all of them by default. A reply comes on the first.
        settings: extra settings (e.g. ``cart_abandon_after``); pacing is off
            unless a ``*_rate`` is given.
        versions: earlier versions of the flows that runs may have started on
            (``bot.runtime.flow_versions.load_version``).
    """

    def __init__(self, mongo_uri: str, flows: list[Flow], start: datetime = DEFAULT_START,
                 channels: Sequence[ChannelName] | None = None,
                 listeners: Sequence[monitoring.CommandListener] = (),
                 versions: Sequence[Flow] = (), **settings: Any) -> None:
        super().__init__(channels, start)
        self.uri = mongo_uri
        self.listeners = list(listeners)  # PyMongo command monitoring: count round trips
        self.flows = {flow.name: flow for flow in flows}
        self.versions = by_version(versions)
        self.sent: list[Sent] = []
        self.settings = Settings(mongodb_uri=mongo_uri,
                                 mongodb_db=f"flowtest_{uuid.uuid4().hex[:10]}",
                                 **{**UNPACED, **settings})

    async def __aenter__(self) -> Self:
        self.client = make_client(self.uri, event_listeners=self.listeners)
        self.database = Database(self.client, self.client[self.settings.mongodb_db])
        await self.database.ensure_indexes()
        channels = {name: CollectingChannel(traits, self.clock, self.sent)
                    for name, traits in build_traits(self.settings, self.channel_names).items()}
        self.runtime = Runtime(self.settings, self.database, self.clock, Metrics(),
                               channels, self.flows, self.versions)
        self.runtime.start(loops=False)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.runtime.stop()
        await self.client.drop_database(self.settings.mongodb_db)
        await self.client.close()

    # ----------------------------------------------------------------- scripting

    async def customer(self, customer_id: str, *, phone: str | None = None,
                       consents: dict[str, bool] | None = None, **profile: Any) -> None:
        """Introduce a customer (a ``customer.created`` event)."""
        await self.event("customer.created", customer_id,
                         _customer=self._introduction(customer_id, phone, consents, profile))

    async def event(self, event_type: str, customer_id: str, *,
                    _customer: dict[str, Any] | None = None, occurred_at: datetime | None = None,
                    **data: Any) -> None:
        """A store event for the customer, decided before this returns."""
        event = self._store_event(event_type, customer_id, _customer, occurred_at, data)
        await self.runtime.accept_store_event(event, f"test:{event.id}")
        await self.runtime.drain()

    async def reply(self, customer_id: str, text: str = "", *, choice: str | None = None,
                    channel: ChannelName | None = None) -> None:
        """The customer answers (text, or a button/list ``choice``), decided at once."""
        message = self._inbound(customer_id, text, choice, channel)
        await self.runtime.accept_channel_input(message.channel, message)
        await self.runtime.drain()

    async def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                      days: float = 0) -> datetime:
        """Move virtual time, firing every wait that falls due."""
        return await self.runtime.advance(_seconds(seconds, minutes, hours, days))

    # ------------------------------------------------------------------ asserting

    def to(self, customer_id: str) -> list[Sent]:
        """Everything sent to the customer, oldest first."""
        phone = self.phones.get(customer_id, customer_id)
        return [s for s in self.sent if s.to == phone]

    async def customer_doc(self, customer_id: str) -> dict[str, Any]:
        doc = await self.database.customers.find_one({"keys": f"store:{customer_id}"})
        assert doc is not None, f"no customer {customer_id}"
        return doc

    async def active_flows(self, customer_id: str) -> dict[str, str]:
        """Flow name -> current step of the customer's active runs."""
        doc = await self.customer_doc(customer_id)
        return {name: run["step"] for name, run in doc.get("flows", {}).items()}

    async def messages(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's whole timeline (in and out, including skipped sends)."""
        doc = await self.customer_doc(customer_id)
        return await self.database.messages.find(
            {"customer": doc["_id"]}).sort("seq", 1).to_list(None)


STORED: CodecOptions[Doc] = CodecOptions(document_class=dict, tz_aware=True)


def by_version(versions: Sequence[Flow]) -> dict[tuple[str, str], Flow]:
    """Earlier versions keyed as the decisions look them up: (flow, version)."""
    return {(flow.name, flow_version(flow)): flow for flow in versions}


def stored(doc: Doc) -> Doc:
    """``doc`` as MongoDB would give it back: a BSON round trip.

    Times lose their microseconds and tuples become lists, as they do in the
    runtime; a value MongoDB cannot store fails here as it would there.
    """
    return bson.decode(bson.encode(doc), codec_options=STORED)


class PureHarness(_Script):
    """The runtime's decisions in memory: no database, no event loop.

    Every input becomes an inbox item built as the intake builds it
    (``make_item`` with the sender's identity keys), the customer is found
    (or created) by those keys among the documents kept here, and the
    runtime's :class:`~bot.core.decide.Decider` decides it; the outbox
    messages, finished runs and codes each decision produced are kept in
    lists. ``advance`` moves the virtual clock from due wait to due wait,
    firing each customer's due waits with ``Decider.fire_due``.

    A queued message counts as sent once the clock reaches its ``due_at``
    (quiet hours can hold marketing): what the decision queued, not what a
    sender did with it. An error in a rule is raised to the test, where the
    runtime would record the input as failed and roll the decision back.

    Args: as for :class:`FlowHarness`, without the database.
    """

    def __init__(self, flows: list[Flow], start: datetime = DEFAULT_START,
                 channels: Sequence[ChannelName] | None = None,
                 **settings: Any) -> None:
        super().__init__(channels, start)
        self.settings = Settings(**{**UNPACED, **settings})
        self.traits = build_traits(self.settings, channels)
        self.deploy(flows)
        self.customers: dict[str, Doc] = {}
        self.outbox: dict[str, Doc] = {}
        self.finished_runs: list[Doc] = []
        self.codes: list[Doc] = []

    def deploy(self, flows: list[Flow], versions: Sequence[Flow] = ()) -> None:
        """Decide from now on with these flows (and earlier versions), as a new
        deploy of the service would: the customers and their runs stay."""
        self.decider = Decider(decision_context(
            self.settings, self.traits, {flow.name: flow for flow in flows}, by_version(versions)))

    # ----------------------------------------------------------------- scripting

    def customer(self, customer_id: str, *, phone: str | None = None,
                 consents: dict[str, bool] | None = None, **profile: Any) -> None:
        """Introduce a customer (a ``customer.created`` event)."""
        self.event("customer.created", customer_id,
                   _customer=self._introduction(customer_id, phone, consents, profile))

    def event(self, event_type: str, customer_id: str, *, _customer: dict[str, Any] | None = None,
              occurred_at: datetime | None = None, **data: Any) -> None:
        """A store event for the customer, decided before this returns."""
        event = self._store_event(event_type, customer_id, _customer, occurred_at, data)
        info = event.customer
        self._decide(make_item(
            dedupe_id=f"test:{event.id}", kind="event", source=event.source,
            keys=identity_keys(store_id=info.id, phone=info.phone, email=info.email),
            payload=event.model_dump(mode="json")))

    def reply(self, customer_id: str, text: str = "", *, choice: str | None = None,
              channel: ChannelName | None = None) -> None:
        """The customer answers (text, or a button/list ``choice``), decided at once."""
        message = self._inbound(customer_id, text, choice, channel)
        self._decide(make_item(dedupe_id=f"{message.channel}:{message.provider_id}",
                               kind="message", source=message.channel,
                               keys=self.traits[message.channel].sender_keys(message),
                               payload=message.model_dump()))

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                days: float = 0) -> datetime:
        """Move virtual time, firing every wait that falls due, in due order."""
        target = self.clock.now() + timedelta(seconds=_seconds(seconds, minutes, hours, days))
        while (due := min((doc["next_due"] for doc in self.customers.values()
                           if doc.get("next_due") is not None), default=None)) is not None \
                and due <= target:
            now = self.clock.move_to(due)
            fired = 0
            for doc in list(self.customers.values()):
                if doc.get("next_due") is not None and doc["next_due"] <= now:
                    outcome = self.decider.fire_due(doc, now)
                    fired += outcome.fired
                    self._keep(doc, outcome)
            if not fired:
                raise RuntimeError(f"waits due at {due} did not fire")
        return self.clock.move_to(target)

    def _decide(self, item: Doc) -> None:
        """Decide one input as the processor does: inputs first, then any due waits."""
        doc = self._customer_for(item["keys"])
        if item["_id"] in doc.get("done_inputs", []):
            return
        now = self.clock.now()
        add_keys(doc, [key for key in item["keys"] if not key.startswith("id:")])
        outcome = self.decider.apply_input(doc, item, now)
        if doc.get("next_due") is not None and doc["next_due"] <= now:
            outcome.extend(self.decider.fire_due(doc, now))
        self._keep(doc, outcome)

    def _customer_for(self, keys: list[str]) -> Doc:
        """The customer the keys name (``pick_customer``'s priority), created if none."""
        direct = next((key[3:] for key in keys if key.startswith("id:")), None)
        if direct is not None:
            return self.customers[direct]
        candidates = [doc for doc in self.customers.values() if set(doc["keys"]) & set(keys)]
        found = pick_customer(candidates, keys)
        if found is not None:
            return found
        owned = {key for doc in candidates for key in doc["keys"]}
        doc = new_customer([key for key in keys if key not in owned], self.clock.now())
        add_keys(doc, [])
        self.customers[doc["_id"]] = doc
        return doc

    def _keep(self, doc: Doc, outcome: Outcome) -> None:
        """Commit: the document and the records, as the database would store them."""
        self.customers[doc["_id"]] = stored(doc)
        for message in outcome.messages:
            self.outbox.setdefault(message["_id"], stored(message))  # a replay stores once
        self.finished_runs += [stored(run) for run in outcome.finished_runs]
        self.codes += [stored(code) for code in outcome.codes]

    # ------------------------------------------------------------------ asserting

    def customer_doc(self, customer_id: str) -> Doc:
        """The customer the store knows as ``customer_id``."""
        found = [doc for doc in self.customers.values()
                 if f"store:{customer_id}" in doc["keys"] or doc["_id"] == customer_id]
        assert found, f"no customer {customer_id}"
        return found[0]

    def messages(self, customer_id: str) -> list[Doc]:
        """The customer's whole timeline (in and out, including skipped sends)."""
        internal = self.customer_doc(customer_id)["_id"]
        return sorted((m for m in self.outbox.values() if m["customer"] == internal),
                      key=lambda m: m["seq"])

    def to(self, customer_id: str) -> list[Sent]:
        """What was queued for the customer and is due by now, oldest first."""
        now = self.clock.now()
        due = [m for m in self.messages(customer_id)
               if m["direction"] == "out" and m["status"] == "queued" and m["due_at"] <= now]
        return [_sent(m) for m in sorted(due, key=lambda m: (m["due_at"], m["seq"]))]

    def active_flows(self, customer_id: str) -> dict[str, str]:
        """Flow name -> current step of the customer's active runs."""
        doc = self.customer_doc(customer_id)
        return {name: run["step"] for name, run in doc.get("flows", {}).items()}

    def runs(self, flow: str) -> list[Doc]:
        """The finished runs of ``flow``, oldest first."""
        return [run for run in self.finished_runs if run["flow"] == flow]


def _sent(message: Doc) -> Sent:
    """An outbox message as its provider would get it (a template, or text and choices)."""
    template = message.get("template")
    return Sent(channel=message["channel"],
                to=message.get("to") or message.get("to_user_id") or "",
                text=None if template else message.get("text"),
                choices=[] if template else [c["id"] for c in message.get("choices", [])],
                template=template["name"] if template else None,
                at=message["due_at"], message_id=message["_id"])
