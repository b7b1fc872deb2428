"""One decision for one customer: an input (or due waits) in, new state out.

Pure: no database, no network. The processor loads the customer document,
calls :meth:`Decider.apply_input` or :meth:`Decider.fire_due`, and commits
the mutated document together with the :class:`Outcome` (timeline and
outbox messages, finished runs, issued codes). Everything here is
deterministic for a given document, input and time, so a decision replayed
after a crash produces the same message ids, which the outbox stores once.

A decision has two parts, each in its own module:
- routing (``bot.core.route``): which flows an input goes to, the
  service's own answers (keywords, agent actions), and running the rules;
- carrying out (``bot.core.carry_out``): what the rules recorded becomes
  state, waits and messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core import waits
from bot.core.compose import SendPolicy
from bot.core.engine import Engine
from bot.core.flows import Flow
from bot.core.inputs import ConsentChange, InboundMessage, StoreEvent
from bot.core.lifecycle import TriggerPolicy
from bot.core.route import Router
from bot.types import Doc, inbox_kind

MAX_DONE_INPUTS = 100


@dataclass
class Outcome:
    """What a decision produced besides the new customer document."""

    messages: list[Doc] = field(default_factory=list)
    finished_runs: list[Doc] = field(default_factory=list)
    codes: list[Doc] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)
    fired: int = 0
    # Facts for the flow statistics (``bot.core.stats.from_outcome``): runs
    # started and ended, steps reached and skipped, replies, with their versions.
    stats: list[Doc] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.messages += other.messages
        self.finished_runs += other.finished_runs
        self.codes += other.codes
        self.steps += other.steps
        self.channels |= other.channels
        self.fired += other.fired
        self.stats += other.stats


@dataclass
class DecisionContext:
    """Everything a decision reads besides the document and the input."""

    flows: dict[str, Flow]
    engine: Engine
    send_policy: SendPolicy
    trigger_policy: TriggerPolicy
    code_pattern: str = "CODE-{code}"
    agent_idle_release: float = 4 * 3600
    flow_settings: dict[str, Any] = field(default_factory=dict)
    # Earlier versions still running, by (flow, version): a run continues on the
    # version it started on when that is here (``bot.runtime.flow_versions``).
    versions: dict[tuple[str, str], Flow] = field(default_factory=dict)


class Decider:
    """Applies inputs and due waits to a customer document."""

    def __init__(self, context: DecisionContext) -> None:
        self.ctx = context

    def apply_input(self, doc: Doc, item: Doc, now: datetime) -> Outcome:
        """Decide one inbox item (store event, customer message, agent action, failed send,
        a watched message's fate, a campaign's message)."""
        out = Outcome()
        router = Router(self.ctx, doc, now, out)
        kind = inbox_kind(item)
        if kind == "event":
            router.store_event(StoreEvent.model_validate(item["payload"]), item["_id"])
        elif kind == "message":
            router.message(InboundMessage.model_validate(item["payload"]), item["_id"])
        elif kind == "agent":
            router.agent_action(item["payload"], item["_id"])
        elif kind == "send_failure":
            router.send_failed(item["payload"])
        elif kind == "consent":
            router.consent_change(ConsentChange.model_validate(item["payload"]), item["_id"])
        elif kind == "message_fate":
            router.message_fate(item["payload"])
        elif kind == "campaign":
            router.campaign(item["payload"])
        else:
            raise ValueError(f"input kind {kind!r} is not decided")
        doc["done_inputs"] = [*doc.get("done_inputs", []), item["_id"]][-MAX_DONE_INPUTS:]
        doc["last_activity_at"] = now
        return out

    def fire_due(self, doc: Doc, now: datetime) -> Outcome:
        """Fire every wait of the customer that is due at ``now``, in due order."""
        out = Outcome()
        router = Router(self.ctx, doc, now, out)
        for wait in waits.take_due(doc, now):
            out.fired += 1
            router.fire(wait)
        return out
