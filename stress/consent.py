"""Consent fuzzing (issue 17, part 4): random interleavings against a reference model.

A seeded random driver plays, for a fresh customer per interleaving, a
random sequence of:

* store consent updates: generic ``/events`` with ``consents`` stamped in the
  past, present or future of the virtual clock, and Shopify's
  ``customers_marketing_consent/update`` with ``sms_marketing_consent`` and
  its ``consent_updated_at``;
* stops (explicit: STOP, BAJA, SAIR, "no me escriban más"; ambiguous:
  CANCELAR, PARAR, CANCEL) and START typed on WhatsApp, SMS and Telegram
  (signed webhooks), and the "yes" that confirms an ambiguous one;
* the "no" to the sunset question, and the sunset's own 7-day no-answer;
* agent takeovers and releases;
* ``product.viewed``, on which the test flow ``promo``
  (``tests/support/consent_rules``) tries to send marketing on every channel;
* clock advances (1 h to 8 days), which fire sunsets (``SUNSET_AFTER_DAYS``
  is 2 here), confirmation timeouts and idle releases.

:class:`Model` is the reference: a few lines per rule of the contract and
README (a consent counts as of its time, a store's time no later than its
arrival nor than the arrival of anything that store stamped later; an
explicit stop applies at once everywhere, an ambiguous one at once on SMS
and on WhatsApp/Telegram after a "yes" or a second stop of either kind;
sunset "no" revokes every granted channel; customers' answers on a
conversation an agent holds go unanswered). After every step the driver
checks, through the API and the provider fakes:

* no marketing message went out on a channel after the effective opt-out;
* no flow message went out on a conversation an agent held;
* the consent ledger (``GET /api/customers/{id}``) is exactly the model's:
  every change, with its source, time and whether it was superseded.

The sunset's no-answer revocation is the one change the model does not
predict (it depends on when the sunset fired); it is learned from the
ledger, and must revoke every channel the model had granted.

A customer has one open question: a STOP's confirmation asked while the
sunset question is open replaces it, and once the confirmation is over the
sunset run has no question left (its "no" is not an answer; the 7-day
no-answer still comes). The driver answers the sunset only while its
question is the last one asked.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stress.inprocess import Running, running
from stress.report import Row
from tests.support.app import SHOPIFY_SECRET
from tests.support.mongo import mongo
from tests.support.signing import (
    json_body,
    telegram_message_update,
    twilio_inbound_form,
    whatsapp_text_webhook,
)
from tests.support.store_signing import shopify_headers

CHANNELS = ("whatsapp", "sms", "telegram")
CONFIRMED = ("whatsapp", "telegram")  # an ambiguous stop there waits for a "yes"
# What the customer types to stop (bot/core/optout_phrases.py), and whether it is explicit.
STOP_WORDS = (("STOP", True), ("Baja", True), ("sair", True), ("No me escriban más", True),
              ("cancelar", False), ("PARAR", False), ("Cancel", False))
CONFIRM_TIMEOUT = timedelta(hours=24)
CONFIRM_MAX_RUN = timedelta(days=3)
IDLE_RELEASE = timedelta(hours=4)
SUNSET_AFTER_DAYS = 2
ADVANCES = (3600, 13 * 3600, 25 * 3600, 3 * 86400, 8 * 86400)
OFFSETS = (-3 * 86400, -3600, -1, 0, 1, 3600, 2 * 86400)
SHORT = (30, 12)  # interleavings, steps each: make test
FULL = (150, 25)
SEED = 17
SETTINGS = {"flows_package": "tests.support.consent_rules", "flows": None,
            "sunset_after_days": SUNSET_AFTER_DAYS, "agent_idle_release": 4 * 3600}
SENT = ("sent", "delivered", "read")
QUESTIONS = ("keep_question", "keep_reask", "confirm_question", "confirm_reask")
_numbers = itertools.count(1)


def ms(moment: datetime) -> datetime:
    """Millisecond precision, as MongoDB keeps times."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    return ms(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# -- the reference model --------------------------------------------------------------------


@dataclass
class Model:
    """What consent must be, from the inputs alone."""

    now: datetime
    state: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    ledger: list[tuple[str, str, str, datetime, bool]] = field(default_factory=list)
    store_clock: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    pending: str | None = None  # the channel of an unconfirmed WhatsApp/Telegram stop
    pending_until: datetime | None = None
    pending_started: datetime | None = None
    held_until: dict[str, datetime] = field(default_factory=dict)  # agent takeovers

    def record(self, channel: str, state: str, source: str, at: datetime) -> None:
        """A consent change: ignored when it changes nothing, superseded when older."""
        current = self.state.get(channel)
        if current is not None and current[0] == state:
            return
        superseded = current is not None and current[1] > at
        self.ledger.append((channel, state, source, ms(at), superseded))
        if not superseded:
            self.state[channel] = (state, ms(at))

    def granted(self, channel: str) -> bool:
        return self.state.get(channel, ("", self.now))[0] == "granted"

    def moment(self, store: str, stated: datetime, received: datetime) -> datetime:
        """When a store's consent counts: no later than its arrival, nor than the arrival of
        anything that store stamped at or after ``stated``."""
        times = [stated, received] + [r for s, r in self.store_clock.get(store, []) if s >= stated]
        return ms(min(times))

    def observe(self, store: str, stated: datetime, received: datetime) -> None:
        self.store_clock.setdefault(store, []).append((ms(stated), ms(received)))

    def store_consent(self, store: str, source: str, consents: dict[str, bool],
                      stated: datetime) -> None:
        received = self.now
        for channel, granted in consents.items():
            self.record(channel, "granted" if granted else "revoked", source,
                        self.moment(store, stated, received))
        self.observe(store, stated, received)

    def held(self, channel: str, at: datetime | None = None) -> bool:
        until = self.held_until.get(channel)
        return until is not None and (at or self.now) < until

    def stop(self, channel: str, explicit: bool = False) -> None:
        """A stop typed on ``channel``: while its confirmation is asked, the "yes"; else at
        once if explicit or on SMS; else a question."""
        if self.pending == channel:
            self.confirm()
        elif explicit or channel not in CONFIRMED:
            self.record(channel, "revoked", f"keyword:{channel}", self.now)
        else:  # a new question (or one about another channel), 24 h to answer
            if self.pending is None:
                self.pending_started = self.now
            self.pending = channel
            started = self.pending_started or self.now
            self.pending_until = min(self.now + CONFIRM_TIMEOUT, started + CONFIRM_MAX_RUN)

    def confirm(self) -> None:
        channel = self.pending
        assert channel is not None
        self.record(channel, "revoked", f"optout_confirmation:{channel}", self.now)
        self.pending = self.pending_until = self.pending_started = None

    def advance_to(self, moment: datetime) -> None:
        self.now = moment
        if self.pending_until is not None and self.pending_until <= moment:
            self.pending = self.pending_until = self.pending_started = None
        for channel, until in list(self.held_until.items()):
            if until <= moment:
                del self.held_until[channel]


# -- the customer and the service ---------------------------------------------------------


@dataclass
class Customer:
    store_id: str
    phone: str
    chat: int
    shopify_id: int
    internal_id: str = ""
    conversations: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    interleavings: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    marketing_checked: int = 0
    after_optout: list[str] = field(default_factory=list)
    during_takeover: list[str] = field(default_factory=list)
    ledger_mismatches: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    fakes_mismatch: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def failures(self) -> list[str]:
        return (self.after_optout + self.during_takeover + self.ledger_mismatches
                + self.disagreements + self.fakes_mismatch)


class Driver:
    """One interleaving: a customer, a model, the random steps and the checks."""

    def __init__(self, run: Running, rng: random.Random, tally: Tally, now: datetime) -> None:
        self.run = run
        self.service = run.service
        self.rng = rng
        self.tally = tally
        self.model = Model(now=now)
        n = next(_numbers)
        self.customer = Customer(store_id=f"cus_fz{n}", phone=f"+54911{40000000 + n}",
                                 chat=500000 + n, shopify_id=9100000000000 + n)
        self.seen: set[str] = set()

    # -- inputs ---------------------------------------------------------------------------

    async def event(self, event_type: str, consents: dict[str, bool] | None,
                    occurred: datetime, **data: Any) -> None:
        customer: dict[str, Any] = {"id": self.customer.store_id, "phone": self.customer.phone,
                                    "first_name": "Ana", "locale": "es"}
        if consents is not None:
            customer["consents"] = consents
        await self.service.event({"id": f"evt_{next(_numbers)}", "type": event_type,
                                  "occurred_at": iso(occurred), "customer": customer,
                                  "data": data})

    async def say(self, channel: str, text: str) -> None:
        c = self.customer
        if channel == "whatsapp":
            await self.service.whatsapp(whatsapp_text_webhook(
                text, phone=c.phone, user_id=f"AR.{c.chat}"))
        elif channel == "sms":
            await self.service.sms(twilio_inbound_form(text, from_=c.phone))
        else:
            await self.service.telegram(telegram_message_update(text, chat_id=c.chat))

    async def shopify_sms(self, subscribed: bool, stamp: datetime) -> None:
        body = json_body({"id": self.customer.shopify_id, "phone": self.customer.phone,
                          "sms_marketing_consent": {
                              "state": "subscribed" if subscribed else "unsubscribed",
                              "opt_in_level": "single_opt_in", "consent_updated_at": iso(stamp),
                              "consent_collected_from": "OTHER"}})
        headers = shopify_headers(SHOPIFY_SECRET, body, "customers_marketing_consent/update",
                                  f"fz-{next(_numbers)}")
        response = await self.service.client.post("/webhooks/shopify", data=body,
                                                  headers=headers)
        assert response.status == 200, await response.text()

    async def profile(self) -> dict[str, Any]:
        return dict(await self.service.api("GET", f"/api/customers/{self.customer.store_id}"))

    async def conversation(self, channel: str) -> str | None:
        if channel not in self.customer.conversations:
            listed = await self.service.api(
                "GET", f"/api/conversations?customer_id={self.customer.store_id}")
            for conversation in listed["conversations"]:
                self.customer.conversations[conversation["channel"]] = conversation["id"]
        return self.customer.conversations.get(channel)

    # -- steps ----------------------------------------------------------------------------

    async def setup(self) -> None:
        """All three channels granted a day ago, and the Telegram chat linked."""
        stated = self.model.now - timedelta(days=1)
        consents = dict.fromkeys(CHANNELS, True)
        await self.event("subscription.changed", consents, stated)
        self.model.store_consent("generic", "generic:subscription.changed", consents, stated)
        await self.service.advance(0)
        profile = await self.profile()
        self.customer.internal_id = profile["internal_id"]
        token = profile["telegram_link"].rpartition("start=")[2]
        await self.service.telegram(telegram_message_update(f"/start {token}",
                                                            chat_id=self.customer.chat))
        await self.settle("setup")

    async def step(self) -> None:
        steps: list[tuple[int, Callable[[], Awaitable[str | None]]]] = [
            (3, self.store_step), (2, self.shopify_step), (3, self.stop_step),
            (2, self.start_step), (2, self.confirm_step), (2, self.sunset_no_step),
            (1, self.takeover_step), (1, self.release_step), (3, self.promo_step),
            (3, self.advance_step)]
        weights, actions = zip(*steps, strict=True)
        action = self.rng.choices(actions, weights=weights)[0]
        name = await action()
        if name is None:
            return
        self.tally.steps[name.split(" ")[0]] += 1
        await self.settle(name)

    async def store_step(self) -> str:
        channels = self.rng.sample(CHANNELS, self.rng.randint(1, 2))
        consents = {ch: self.rng.random() < 0.5 for ch in channels}
        stated = ms(self.model.now + timedelta(seconds=self.rng.choice(OFFSETS),
                                               milliseconds=self.rng.randint(0, 999)))
        await self.event("subscription.changed", consents, stated)
        self.model.store_consent("generic", "generic:subscription.changed", consents, stated)
        return f"store {consents} stamped {iso(stated)}"

    async def shopify_step(self) -> str:
        subscribed = self.rng.random() < 0.5
        stamp = ms(self.model.now + timedelta(seconds=self.rng.choice(OFFSETS),
                                              milliseconds=self.rng.randint(0, 999)))
        await self.shopify_sms(subscribed, stamp)
        self.model.store_consent("shopify", "shopify:customer.updated", {"sms": subscribed},
                                 stamp)
        return f"shopify sms={subscribed} stamped {iso(stamp)}"

    async def stop_step(self) -> str:
        channel = self.rng.choice(CHANNELS)
        word, explicit = self.rng.choice(STOP_WORDS)
        await self.say(channel, word)
        self.model.stop(channel, explicit)
        return f"stop {word!r} on {channel}"

    async def start_step(self) -> str:
        channel = self.rng.choice(CHANNELS)
        await self.say(channel, self.rng.choice(["START", "alta", "Voltar"]))
        self.model.record(channel, "granted", f"keyword:{channel}", self.model.now)
        return f"start on {channel}"

    async def active(self) -> set[str]:
        return {run["flow"] for run in (await self.profile())["active_flows"]}

    async def confirm_step(self) -> str | None:
        """"Sí" to the opt-out question, when it is the one question asked."""
        active = await self.active()
        if ("optout_confirmation" in active) != (self.model.pending is not None):
            self.tally.disagreements.append(
                f"{self.customer.store_id}: the service has opt-out runs {active}, the model "
                f"a pending STOP on {self.model.pending}")
            return None
        if self.model.pending is None or "sunset" in active:
            return None
        channel = self.model.pending
        await self.say(channel, "Sí")
        if not self.model.held(channel):
            self.model.confirm()
        return f"confirm on {channel}"

    async def sunset_no_step(self) -> str | None:
        active = await self.active()
        if "sunset" not in active or "optout_confirmation" in active:
            return None
        asked = await self.run.database.messages.find(
            {"customer": self.customer.internal_id, "step": {"$in": list(QUESTIONS)}},
        ).sort("seq", -1).to_list(1)
        # The customer's one open question is the last asked: a STOP's confirmation asked
        # meanwhile replaces the sunset's, which then has none (see the module docstring).
        if not asked or asked[0]["flow"] != "sunset" or self.model.held(asked[0]["channel"]):
            return None
        channel = asked[0]["channel"]  # an answer counts on the question's own channel
        await self.say(channel, "no")
        for granted in [ch for ch in CHANNELS if self.model.granted(ch)]:
            self.model.record(granted, "revoked", "sunset:declined", self.model.now)
        return f"sunset_no on {channel}"

    async def takeover_step(self) -> str | None:
        channel = self.rng.choice(CHANNELS)
        conversation = await self.conversation(channel)
        if conversation is None:
            return None
        await self.service.api("POST", f"/api/conversations/{conversation}/takeover",
                               json={"agent": "Lucía"})
        self.model.held_until[channel] = self.model.now + IDLE_RELEASE
        return f"takeover of {channel}"

    async def release_step(self) -> str | None:
        held = [ch for ch in CHANNELS if self.model.held(ch)]
        if not held:
            return None
        channel = self.rng.choice(held)
        await self.service.api("POST", f"/api/conversations/"
                               f"{self.customer.conversations[channel]}/release")
        del self.model.held_until[channel]
        return f"release of {channel}"

    async def promo_step(self) -> str:
        await self.event("product.viewed", None, self.model.now,
                         product_id=f"p{next(_numbers)}")
        return "promo"

    async def advance_step(self) -> str:
        seconds = self.rng.choice(ADVANCES)
        return f"advance {seconds} s"

    # -- checks ---------------------------------------------------------------------------

    async def settle(self, name: str) -> None:
        """Run what is due (the clock moves only for an advance), then check everything."""
        before = self.model.now
        seconds = int(name.split(" ")[1]) if name.startswith("advance") else 0
        now = parse(await self.service.advance(seconds))
        self.model.advance_to(now)
        await self.check_sends(name, before, now)
        await self.check_ledger(name, before)

    async def check_sends(self, name: str, before: datetime, now: datetime) -> None:
        messages = await self.run.database.messages.find(
            {"customer": self.customer.internal_id, "direction": "out",
             "status": {"$in": list(SENT)}}).to_list(None)
        for message in messages:
            if message["_id"] in self.seen:
                continue
            self.seen.add(message["_id"])
            channel, at = message["channel"], message.get("sent_at") or now
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            during = name.startswith("advance")
            where = f"{self.customer.store_id} {message.get('flow')}/{message.get('step')} " \
                    f"on {channel} at {iso(at)} after '{name}'"
            if message.get("marketing"):
                self.tally.marketing_checked += 1
                allowed = self.granted_at(channel, at) if during else self.model.granted(channel)
                if not allowed:
                    self.tally.after_optout.append(f"{where}: consent {self.model.state}")
            if message.get("flow") and message.get("agent") is None and self.model.held(
                    channel, at if during else None):
                self.tally.during_takeover.append(where)

    def granted_at(self, channel: str, at: datetime) -> bool:
        """During an advance, only the sunset's no-answer changes consent: as of ``at``."""
        latest = [e for e in self.model.ledger if e[0] == channel and not e[4] and e[3] <= at]
        return bool(latest) and latest[-1][1] == "granted"

    async def check_ledger(self, name: str, before: datetime) -> None:
        ledger = (await self.profile())["consent_ledger"]
        seen = [(e["channel"], e["state"], e["source"], parse(e["at"]), bool(e.get("superseded")))
                for e in ledger]
        learned = False
        for entry in seen[len(self.model.ledger):]:
            if entry[2] == "sunset:no_answer" and name.startswith("advance") and (
                    before < entry[3] <= self.model.now):
                self.model.record(entry[0], "revoked", "sunset:no_answer", entry[3])
                learned = True
        still = [ch for ch in CHANNELS if self.model.granted(ch)]
        if learned and still:
            self.tally.disagreements.append(
                f"{self.customer.store_id}: the sunset paused marketing but left {still}")
        if _canonical(seen) != _canonical(self.model.ledger):
            self.tally.ledger_mismatches.append(
                f"{self.customer.store_id} after '{name}': ledger {_show(seen)} but the model "
                f"expects {_show(self.model.ledger)}")
            raise Desync


Entry = tuple[str, str, str, datetime, bool]


def _canonical(ledger: list[Entry]) -> list[Entry]:
    """Entries one change wrote together (same source and time) in channel order.

    The sunset revokes every granted channel at once; in which order it
    appends them is not part of the contract.
    """
    groups = itertools.groupby(ledger, key=lambda entry: (entry[2], entry[3]))
    return [entry for _, group in groups for entry in sorted(group)]


class Desync(Exception):
    """The service and the model parted ways; the rest of this interleaving would only echo it."""


def _show(ledger: list[tuple[str, str, str, datetime, bool]]) -> str:
    return json.dumps([[c, s, src, iso(at), sup] for c, s, src, at, sup in ledger],
                      ensure_ascii=False)


def _marketing_in_fakes(run: Running) -> Counter[str]:
    """Marketing the provider fakes received, by channel (the PROMO text or template, the
    sunset question)."""
    counts: Counter[str] = Counter()
    for bodies in run.fakes.whatsapp.sent.values():
        for body in bodies:
            name = (body.get("template") or {}).get("name", "")
            text = (body.get("text") or {}).get("body", "")
            templated = name in ("promo_offer", "sunset_keep_subscribed")
            counts["whatsapp"] += templated or _is_marketing(text)
    for resources in run.fakes.twilio.sent.values():
        counts["sms"] += sum(_is_marketing(r.get("body", "")) for r in resources)
    for messages in run.fakes.telegram.sent.values():
        counts["telegram"] += sum(_is_marketing(m.get("text", "")) for m in messages)
    return counts


def _is_marketing(text: str) -> bool:
    return text.startswith("PROMO ") or "Hace tiempo que no sabemos de ti" in text


async def interleavings(mongo_uri: str, count: int, steps: int, seed: int = SEED) -> Tally:
    """``count`` interleavings of ``steps`` random steps each, on one service."""
    tally = Tally()
    started = time.perf_counter()
    async with running(mongo_uri, **SETTINGS) as run:
        for number in range(count):
            now = parse(await run.service.advance(0))
            driver = Driver(run, random.Random(seed * 100_003 + number), tally, now)
            tally.interleavings += 1
            try:
                await driver.setup()
                for _ in range(steps):
                    await driver.step()
            except Desync:
                continue
        db_marketing: Counter[str] = Counter()
        async for message in run.database.messages.find(
                {"marketing": True, "status": {"$in": list(SENT)}}, {"channel": 1}):
            db_marketing[message["channel"]] += 1
        in_fakes = _marketing_in_fakes(run)
        if +db_marketing != +in_fakes:
            tally.fakes_mismatch.append(f"marketing sent per the timeline {dict(db_marketing)}, "
                                        f"per the provider fakes {dict(in_fakes)}")
    tally.seconds = time.perf_counter() - started
    return tally


def rows(tally: Tally) -> list[Row]:
    steps = sum(tally.steps.values())
    return [
        Row(f"consent fuzz: interleavings ({steps:,} steps, {tally.seconds:.0f} s)",
            f"{tally.interleavings:,}", "", None),
        Row(f"consent fuzz: marketing sent after the effective opt-out "
            f"({tally.marketing_checked:,} marketing sends checked)",
            str(len(tally.after_optout)), "0", not tally.after_optout),
        Row("consent fuzz: flow messages sent while an agent held the conversation",
            str(len(tally.during_takeover)), "0", not tally.during_takeover),
        Row("consent fuzz: ledgers differing from the model (changes missing, extra, "
            "wrong source or time)", str(len(tally.ledger_mismatches)), "0",
            not tally.ledger_mismatches),
        Row("consent fuzz: other disagreements (pending STOP, sunset pause, fakes vs timeline)",
            str(len(tally.disagreements) + len(tally.fakes_mismatch)), "0",
            not (tally.disagreements or tally.fakes_mismatch)),
    ]


def run(short: bool) -> list[Row]:
    count, steps = SHORT if short else FULL
    with mongo() as uri:
        return rows(asyncio.run(interleavings(uri, count, steps)))
