"""The replay: a store's past inputs decided again by a set of flows, in time order.

Each input is decided by the runtime's own :class:`~bot.core.decide.Decider`
at the time it arrived, after every wait that fell due before it has fired
(across all customers, earliest first), exactly as the processor and the
scheduler would have done with these flows. Decisions are pure, so this is
the service's behaviour, not a model of it; what is left out is the I/O
around them, and it is named in :data:`ASSUMPTIONS`.

What the decisions produce is counted as the service counts it
(``bot.core.stats``: runs started and ended, steps reached, replies,
skips), only for decisions inside the period; a queued message counts as
sent at its ``due_at`` when that falls inside the period. Orders inside the
period are attributed to the runs whose simulated messages went out within
``ATTRIBUTION_DAYS`` before, as the service attributes them to delivered
ones. Inputs before the period are replayed too (the warm-up), so that
consents, cooldowns and runs in flight are as they were when it began.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.backtest.scratch import Scratch
from bot.core.customers import add_keys, new_customer, pick_customer
from bot.core.decide import Decider, Outcome
from bot.core.flows import Flow
from bot.core.stats import (
    Counters,
    count_order,
    from_outcome,
    input_facts,
    sent_outcome,
    summarize,
)
from bot.types import Doc

SAMPLES = 2  # texts kept per (flow, step), to read what a changed step says

ASSUMPTIONS = (
    "customers act as they did: the same replies, orders and events at the same times, "
    "whatever the flows sent them",
    "every queued message goes out at its due time (no provider failure, no consent "
    "re-check at send time, no pacing), and reaches the customer then",
    "delivery receipts and failed sends of the live messages are not replayed; "
    "agents' actions are, as they happened",
)

DECIDED_KINDS = frozenset({"event", "message", "agent", "consent", "campaign"})
"""Inbox kinds a replay decides. Receipts, failed sends and watched messages' fates
name messages the live service sent, which the replay's own sends are not."""


@dataclass
class Period:
    """``[start, end)``, the decisions counted."""

    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass
class Extras:
    """What the service's statistics do not count but a backtest reader asks first."""

    messages: int = 0
    marketing: int = 0
    channels: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)


class Replay:
    """Decides inputs fed in time order; :meth:`figures` answers what was counted."""

    def __init__(self, decider: Decider, period: Period, attribution: timedelta,
                 scratch: Scratch) -> None:
        self.decider = decider
        self.period = period
        self.attribution = attribution
        self.scratch = scratch
        self.counters = Counters()
        self.extras: dict[str, Extras] = {}
        self.inputs = 0
        self.waits_fired = 0
        self.stuck_waits = 0
        self.failed: list[str] = []  # inputs whose decision raised (a rule's error)

    @property
    def flows(self) -> dict[str, Flow]:
        return self.decider.ctx.flows

    def feed(self, item: Doc, at: datetime) -> None:
        """Decide ``item`` at ``at`` (its arrival), after every wait due by then."""
        self.fire_until(at)
        if item["kind"] not in DECIDED_KINDS:
            return
        keys = [key for key in item["keys"] if not key.startswith("id:")]
        if not keys:
            return
        doc = self._customer_for(keys, at)
        if item["_id"] in doc.get("done_inputs", []):
            return
        add_keys(doc, keys)
        self.inputs += 1
        before = copy.deepcopy({name: doc.get(name) for name in ("question", "attribution")})
        try:
            outcome = self.decider.apply_input(doc, item, at)
            outcome.stats += input_facts(item, before, doc, at)
            if doc.get("next_due") is not None and doc["next_due"] <= at:
                outcome.extend(self.decider.fire_due(doc, at))
        except Exception as exc:  # a rule's error fails its input, as in the runtime
            self.failed.append(f"{item['_id']}: {type(exc).__name__}: {exc}")
            return
        self._keep(doc, outcome, at)

    def fire_until(self, until: datetime) -> None:
        """Fire every wait due by ``until``, across customers, earliest first."""
        for customer, due in self.scratch.next_due(until):
            doc = self.scratch.get(customer)
            assert doc is not None
            outcome = self.decider.fire_due(doc, due)
            if not outcome.fired:  # would fire again forever; the runtime logs these too
                self.stuck_waits += 1
                doc["next_due"] = None
            self.waits_fired += outcome.fired
            self._keep(doc, outcome, due)

    def _customer_for(self, keys: list[str], at: datetime) -> Doc:
        """The customer the keys name (``pick_customer``'s priority), created if none."""
        found = pick_customer(self.scratch.named_by(keys), keys)
        if found is not None:
            return found
        owned = self.scratch.owners(keys)
        doc = new_customer([key for key in keys if key not in owned], at)
        add_keys(doc, [])
        return doc

    def _keep(self, doc: Doc, outcome: Outcome, now: datetime) -> None:
        self.scratch.put(doc)
        if now in self.period:
            from_outcome(self.counters, outcome.stats, outcome.messages, now)
            self._attribute(outcome, now)
        for message in outcome.messages:
            if message.get("direction") != "out" or message.get("status") != "queued":
                continue
            self.scratch.sent(message)
            at = message.get("due_at") or now
            if at in self.period and message.get("flow"):
                sent_outcome(self.counters, message, at, "sent")
                self._extra(message, doc["_id"])

    def _attribute(self, outcome: Outcome, now: datetime) -> None:
        for order in (fact for fact in outcome.stats if fact["kind"] == "order"):
            candidates = order.get("candidates") or []
            ids = {mid for run in candidates for mid in run["messages"]}
            sends = {mid: doc for mid, doc in self.scratch.sends(ids).items()
                     if doc["sent_at"] <= now}
            count_order(self.counters, order, sends, self.attribution)

    def _extra(self, message: Doc, customer: str) -> None:
        extras = self.extras.setdefault(message["flow"], Extras())
        extras.messages += 1
        extras.marketing += bool(message.get("marketing"))
        self.scratch.messaged(message["flow"], customer)
        channel = message.get("channel") or "?"
        extras.channels[channel] = extras.channels.get(channel, 0) + 1
        step = message.get("step") or "send"
        kept = extras.samples.setdefault(step, [])
        text = _text_of(message)
        if text and len(kept) < SAMPLES and text not in kept:
            kept.append(text)

    # -------------------------------------------------------------- reading

    def figures(self) -> dict[str, Doc]:
        """Flow name -> the period's figures in the stats API's shape, plus ``messages``,
        ``marketing``, ``customers``, ``channels`` and ``samples`` (texts by step)."""
        days: dict[str, list[Doc]] = {}
        all_time: dict[str, list[Doc]] = {}
        for identity, incs in self.counters.docs.values():
            doc = _nested(identity, incs)
            (all_time if identity["day"] is None else days).setdefault(
                identity["flow"], []).append(doc)
        answer: dict[str, Doc] = {}
        for name in sorted(self.flows.keys() | days.keys()):
            figures = summarize(self.flows.get(name), days.get(name, []),
                                all_time.get(name, []))
            extras = self.extras.get(name, Extras())
            figures.update(messages=extras.messages, marketing=extras.marketing,
                           customers=self.scratch.messaged_count(name), channels=extras.channels,
                           samples=extras.samples)
            answer[name] = figures
        return answer


def _nested(identity: Doc, incs: dict[str, Any]) -> Doc:
    """A ``flow_stats`` document as the ``$inc`` of ``incs`` would leave it."""
    doc: Doc = dict(identity)
    for path, amount in incs.items():
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = node.get(last, 0) + amount
    return doc


def _text_of(message: Doc) -> str:
    template = message.get("template")
    if template:
        return f"[template {template.get('name')}]"
    return str(message.get("text") or "")
