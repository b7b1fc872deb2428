"""A testing aid for flow authors: run flows through the real runtime.

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
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self

from pymongo import monitoring

from bot.core.flows import Flow
from bot.core.inputs import ChannelName, CustomerInfo, InboundMessage, StoreEvent
from bot.infra.clock import VirtualClock
from bot.infra.database import Database, make_client
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings
from bot.runtime.loops import Runtime
from channels.base import OutboundMessage, Parsed, WebhookAck

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


class CollectingChannel:
    """A channel that records sends instead of calling a provider."""

    name: ClassVar[ChannelName]

    def __init__(self, name: ChannelName, clock: VirtualClock, log: list[Sent]) -> None:
        self.name = name  # type: ignore[misc]
        self.clock = clock
        self.log = log
        self.counter = itertools.count(1)

    @classmethod
    def from_settings(cls, settings: Settings) -> None:
        return None

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


class FlowHarness:
    """The real runtime with collecting channels, for testing flows.

    Args:
        mongo_uri: a MongoDB (or the embedded server) to use; each harness
            uses a database of its own and drops it on exit.
        flows: the flows to run (their rulesets must be imported).
        start: the virtual clock's starting time.
        channels: the channels that exist (each collects what it is sent).
        settings: extra settings (e.g. ``cart_abandon_after``); pacing is off
            unless a ``*_rate`` is given.
    """

    def __init__(self, mongo_uri: str, flows: list[Flow], start: datetime = DEFAULT_START,
                 channels: tuple[ChannelName, ...] = ("whatsapp", "sms", "telegram"),
                 listeners: Sequence[monitoring.CommandListener] = (),
                 **settings: Any) -> None:
        self.uri = mongo_uri
        self.listeners = list(listeners)  # PyMongo command monitoring: count round trips
        self.channel_names = channels
        self.flows = {flow.name: flow for flow in flows}
        self.clock = VirtualClock(start)
        self.sent: list[Sent] = []
        unpaced = {"whatsapp_rate": 0, "sms_rate": 0, "telegram_rate": 0}
        self.settings = Settings(mongodb_uri=mongo_uri,
                                 mongodb_db=f"flowtest_{uuid.uuid4().hex[:10]}",
                                 **{**unpaced, **settings})
        self.phones: dict[str, str] = {}
        self.counter = itertools.count(1)

    async def __aenter__(self) -> Self:
        self.client = make_client(self.uri, event_listeners=self.listeners)
        self.database = Database(self.client, self.client[self.settings.mongodb_db])
        await self.database.ensure_indexes()
        channels = {name: CollectingChannel(name, self.clock, self.sent)
                    for name in self.channel_names}
        self.runtime = Runtime(self.settings, self.database, self.clock, Metrics(),
                               channels, self.flows)  # type: ignore[arg-type]
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
        if phone:
            self.phones[customer_id] = phone
        await self.event("customer.created", customer_id, _customer={
            "phone": phone, "consents": consents or {}, **profile})

    async def event(self, event_type: str, customer_id: str, *,
                    _customer: dict[str, Any] | None = None, occurred_at: datetime | None = None,
                    **data: Any) -> None:
        """A store event for the customer, decided before this returns."""
        info = {"id": customer_id, **(_customer or {})}
        if "phone" not in info and customer_id in self.phones:
            info["phone"] = self.phones[customer_id]
        event = StoreEvent(id=f"evt_{next(self.counter)}", type=event_type,
                           occurred_at=occurred_at or self.clock.now(),
                           customer=CustomerInfo(**info), data=data, source="test")
        await self.runtime.accept_store_event(event, f"test:{event.id}")
        await self.runtime.drain()

    async def reply(self, customer_id: str, text: str = "", *, choice: str | None = None,
                    channel: ChannelName | None = None) -> None:
        """The customer answers (text, or a button/list ``choice``), decided at once."""
        phone = self.phones[customer_id]
        channel = channel or self.channel_names[0]
        message = InboundMessage(
            channel=channel, provider_id=f"in{next(self.counter)}", sender=phone,
            kind="choice" if choice else "text", text=text or (choice or ""),
            choice_id=choice, at=self.clock.now())
        await self.runtime.accept_channel_input(channel, message)
        await self.runtime.drain()

    async def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0,
                      days: float = 0) -> datetime:
        """Move virtual time, firing every wait that falls due."""
        total = seconds + minutes * 60 + hours * 3600 + days * 86400
        return await self.runtime.advance(total)

    # ------------------------------------------------------------------ asserting

    def to(self, customer_id: str) -> list[Sent]:
        """Everything sent to the customer, oldest first."""
        phone = self.phones.get(customer_id, customer_id)
        return [s for s in self.sent if s.to == phone]

    def last(self, customer_id: str) -> Sent:
        sent = self.to(customer_id)
        assert sent, f"nothing was sent to {customer_id}"
        return sent[-1]

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
            {"customer_id": doc["_id"]}).sort("seq", 1).to_list(None)
