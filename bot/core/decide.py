"""One decision for one customer: an input (or due waits) in, new state out.

Pure: no database, no network. The processor loads the customer document,
calls :meth:`Decider.apply_input` or :meth:`Decider.fire_due`, and commits
the mutated document together with the :class:`Outcome` (timeline and
outbox messages, finished runs, issued codes). Everything here is
deterministic for a given document, input and time, so a decision replayed
after a crash produces the same message ids, which the outbox stores once.

Routing of an event to flows:
- an event from a flow's own wait (``after``, ``ask`` timeouts) goes to that
  flow's run, and is dropped if the run has ended since;
- a customer message answering a pending question goes to the flow that
  asked; other messages go to active runs that take messages;
- any other event goes to every active run and starts the flows it
  triggers (if re-entry allows); ``exit_on`` types end the run afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core import commands as cmd
from bot.core import keywords, waits
from bot.core.compose import (
    SendPolicy,
    build_message,
    choose_channel,
    conversation_id,
    record_marketing,
)
from bot.core.customers import facts, merge_profile, record_consent
from bot.core.engine import Engine
from bot.core.flows import Flow
from bot.core.inputs import CustomerInfo, InboundMessage, StoreEvent
from bot.core.lifecycle import (
    TriggerPolicy,
    mark_fired,
    on_store_event,
    on_wait_fired,
    schedule_lifecycle,
)
from store_events import store_clock

Doc = dict[str, Any]
MAX_CHAIN = 25
MAX_HISTORY = 50
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

    def extend(self, other: Outcome) -> None:
        self.messages += other.messages
        self.finished_runs += other.finished_runs
        self.codes += other.codes
        self.steps += other.steps
        self.channels |= other.channels
        self.fired += other.fired


@dataclass
class DecisionContext:
    """Everything a decision reads besides the document and the input."""

    flows: dict[str, Flow]
    engine: Engine
    send_policy: SendPolicy
    trigger_policy: TriggerPolicy
    code_pattern: str = "CODE-{code}"
    sms_stop_confirmation: bool = True
    agent_idle_release: float = 4 * 3600
    flow_settings: dict[str, Any] = field(default_factory=dict)


def typed_choice(text: str, choices: list[list[str]]) -> str | None:
    """The choice a typed reply names: its number ("2"), id or title, accents and case ignored.

    On SMS choices are numbered lines, and on any channel people type "si"
    instead of tapping "Sí"; both should count as the choice.
    """
    typed = keywords.normalize(text)
    if not typed or not choices:
        return None
    if typed.isdigit() and 1 <= int(typed) <= len(choices):
        return choices[int(typed) - 1][0]
    for choice_id, title in choices:
        if typed in (keywords.normalize(choice_id), keywords.normalize(title)):
            return choice_id
    return None


def consent_time(info: CustomerInfo, channel: str) -> datetime | None:
    """When the store says consent on ``channel`` was given (per channel when it knows)."""
    per_channel = getattr(info, "consent_times", None) or {}
    value = per_channel.get(channel) if isinstance(per_channel, dict) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value
    return info.consent_at


class Decider:
    """Applies inputs and due waits to a customer document."""

    def __init__(self, context: DecisionContext) -> None:
        self.ctx = context

    # ----------------------------------------------------------------- entry points

    def apply_input(self, doc: Doc, item: Doc, now: datetime) -> Outcome:
        """Decide one inbox item (store event, customer message, agent action)."""
        session = _Session(self.ctx, doc, now)
        kind = item["kind"]
        if kind == "event":
            session.store_event(StoreEvent.model_validate(item["payload"]))
        elif kind == "message":
            session.message(InboundMessage.model_validate(item["payload"]), item["_id"])
        elif kind == "agent":
            session.agent_action(item["payload"], item["_id"])
        elif kind == "delivery":
            session.delivery_failed(item["payload"])
        else:
            raise ValueError(f"unknown input kind {kind!r}")
        doc["done_inputs"] = [*doc.get("done_inputs", []), item["_id"]][-MAX_DONE_INPUTS:]
        doc["last_activity_at"] = now
        return session.out

    def fire_due(self, doc: Doc, now: datetime) -> Outcome:
        """Fire every wait of the customer that is due at ``now``, in due order."""
        session = _Session(self.ctx, doc, now)
        for wait in waits.take_due(doc, now):
            session.out.fired += 1
            session.fire(wait)
        return session.out


class _Session:
    """The working state of one decision."""

    def __init__(self, ctx: DecisionContext, doc: Doc, now: datetime) -> None:
        self.ctx = ctx
        self.doc = doc
        self.now = now
        # Timeline order: the service clock, never behind the customer's last message.
        self.seq = max(doc.get("last_seq", 0), int(now.timestamp() * 1e6) * 1000)
        self.out = Outcome()
        self.origin: str | None = None  # the channel the customer just wrote on

    def next_seq(self) -> int:
        self.seq += 1
        self.doc["last_seq"] = self.seq
        return self.seq

    # ------------------------------------------------------------------ inputs

    def store_event(self, event: StoreEvent) -> None:
        info = event.customer
        merge_profile(self.doc, info)
        # The store's latest phone and email are the ones we use (older ones
        # stay as identity keys, so messages from them still find the customer).
        for name in ("phone", "email"):
            value = getattr(info, name)
            if value and f"{name}:{value}" in self.doc.get("keys", []):
                self.doc[name] = value
        # The store's times count as no later than the event's arrival, and
        # a consent as no later than anything the store stamped later that
        # arrived before (store_events.store_clock): a store clock running
        # ahead must not make its consent beat the customer's later STOP.
        received = store_clock.received_time(event, self.now)
        occurred = store_clock.clamp(event.occurred_at, received)
        source = f"{event.source}:{event.type}"
        stated_times = [event.occurred_at]
        for channel, granted in info.consents.items():
            stated = consent_time(info, channel) or event.occurred_at
            stated_times.append(stated)
            at = store_clock.consent_moment(self.doc, event.source, stated, received)
            record_consent(self.doc, channel, "granted" if granted else "revoked", source,
                           at, self.now)
        for stated in stated_times:
            store_clock.observe(self.doc, event.source, stated, received)
        payload = {**event.model_dump(mode="python"), "occurred_at": occurred}
        immediate = on_store_event(self.doc, payload, self.now, self.ctx.trigger_policy)
        data = event.data
        engine_event = {**data, "type": event.type, "event_id": event.id,
                        "occurred_at": occurred.isoformat(), "source": event.source,
                        "data": data}
        self.dispatch([engine_event, *immediate])

    def message(self, message: InboundMessage, input_id: str) -> None:
        doc, channel = self.doc, message.channel
        self.origin = channel
        conversation = doc.setdefault("conversations", {}).setdefault(
            channel, {"status": "bot", "agent": None, "handoff_reason": None})
        doc.setdefault("last_in", {})[channel] = self.now
        doc["last_reply_at"] = self.now
        self.out.channels.add(channel)
        self.out.messages.append({
            "_id": f"in:{channel}:{message.provider_id}", "customer_id": doc["_id"],
            "conversation_id": conversation_id(doc["_id"], channel), "channel": channel,
            "direction": "in", "kind": message.kind, "text": message.text,
            "choice_id": message.choice_id, "at": self.now, "sent_at": message.at,
            "seq": self.next_seq(), "status": "received", "agent": None, "flow": None,
        })
        schedule_lifecycle(doc, self.now, self.ctx.trigger_policy)
        if message.kind in ("reaction", "start"):
            return
        keyword = keywords.detect(message.text) if message.kind == "text" else None
        if keyword is not None:
            self.keyword(keyword, channel, input_id)
            return
        if conversation["status"] in ("agent", "needs_agent"):
            return  # a person has it: recorded, not answered by the bot
        question = doc.get("question") or {}
        choice = message.choice_id or typed_choice(message.text, question.get("choices") or [])
        self.dispatch([{
            "type": "message", "channel": channel, "kind": message.kind,
            "text": message.text, "choice": choice or "",
            "question": question.get("name", ""), "message_id": message.provider_id,
        }])

    def keyword(self, keyword: str, channel: str, input_id: str) -> None:
        locale = facts(self.doc)["locale"]
        source = f"keyword:{channel}"
        if keyword == "help":
            self.system_send(input_id, keywords.localized(keywords.HELP_TEXT, locale), channel)
        elif keyword == "start":
            record_consent(self.doc, channel, "granted", source, self.now, self.now)
            tags = self.doc.get("tags", [])
            if "marketing_paused" in tags:
                tags.remove("marketing_paused")
            self.system_send(input_id, keywords.localized(keywords.STARTED_TEXT, locale), channel)
        elif channel == "sms" or not self.handled_by_flow("optout.requested"):
            # Carriers require SMS opt-out at once, with one confirmation.
            changed = record_consent(self.doc, channel, "revoked", source, self.now, self.now)
            if changed and (channel != "sms" or self.ctx.sms_stop_confirmation):
                self.system_send(input_id, keywords.localized(keywords.STOPPED_TEXT, locale),
                                 channel)
        else:
            self.dispatch([{"type": "optout.requested", "channel": channel}])

    def agent_action(self, action: Doc, input_id: str) -> None:
        channel = action["channel"]
        conversations = self.doc.setdefault("conversations", {})
        conversation = conversations.setdefault(
            channel, {"status": "bot", "agent": None, "handoff_reason": None})
        self.out.channels.add(channel)
        kind = action["action"]
        release_wait = f"release:{channel}"
        if kind == "takeover":
            conversation.update(status="agent", agent=action["agent"])
            self.schedule_release(channel)
        elif kind == "release":
            conversation.update(status="bot", agent=None, handoff_reason=None)
            waits.cancel(self.doc, release_wait)
        elif kind == "message":
            message = build_message(
                self.doc, message_id=f"agent:{input_id}", now=self.now, seq=self.next_seq(),
                policy=self.ctx.send_policy, text=action["text"], choices=[], template=None,
                fallback_template=None, channel=channel, marketing=False, reply=True,
                agent=action.get("agent") or conversation.get("agent") or "agent")
            self.out.messages.append(message)
            if conversation["status"] == "agent":
                self.schedule_release(channel)
        elif kind == "close":
            conversation.update(status="closed", agent=None)
            waits.cancel(self.doc, release_wait)

    def delivery_failed(self, report: Doc) -> None:
        """A send failed for good: record it on the run and tell the flow."""
        name = report.get("flow")
        run = self.doc.get("flows", {}).get(name or "")
        if name is None or run is None or run["run"] != report.get("run"):
            return
        self.record_step(run, self.ctx.flows[name], report.get("step") or "send", "failed",
                         error=report.get("error"))
        self.dispatch([{"type": "message.failed", "_flow": name, "step": report.get("step"),
                        "error": report.get("error")}])

    def schedule_release(self, channel: str) -> None:
        due = self.now + timedelta(seconds=self.ctx.agent_idle_release)
        waits.schedule(self.doc, f"release:{channel}", due,
                       {"type": "agent.idle_release", "channel": channel})

    # ------------------------------------------------------------------- waits

    def fire(self, wait: Doc) -> None:
        event = dict(wait["event"])
        flow_name = wait.get("flow")
        if flow_name is not None:
            run = self.doc.get("flows", {}).get(flow_name)
            if run is None or run["run"] != wait.get("run"):
                return  # the run it belonged to has ended
            if event.get("type") == "timeout":
                # The wait is replaced when the flow asks again and cancelled when
                # the question is answered, so a timeout that fires is still owed
                # to its run, even if another flow's question has displaced it.
                question = self.doc.get("question") or {}
                if question.get("run") == wait["run"]:
                    self.doc["question"] = None
            self.dispatch([{**event, "_flow": flow_name}])
            return
        if event.get("type") == "agent.idle_release":
            channel = event["channel"]
            conversation = self.doc.get("conversations", {}).get(channel)
            if conversation and conversation.get("status") == "agent":
                conversation.update(status="bot", agent=None, handoff_reason=None,
                                    released="idle")
                self.out.channels.add(channel)
            return
        on_wait_fired(self.doc, event)
        mark_fired(self.doc, wait)
        schedule_lifecycle(self.doc, self.now, self.ctx.trigger_policy)
        self.dispatch([event])

    # ------------------------------------------------------------- flow routing

    def handled_by_flow(self, event_type: str) -> bool:
        return any(event_type in flow.triggers for flow in self.ctx.flows.values())

    def targets(self, event: Doc) -> list[tuple[str, bool]]:
        """(flow, start a run?) for each flow that should see ``event``."""
        runs = self.doc.get("flows", {})
        if "_flow" in event:
            return [(event["_flow"], False)] if event["_flow"] in runs else []
        if event["type"] == "message":
            question = self.doc.get("question") or {}
            if question.get("flow") in runs and question.get("channel") in (None, event["channel"]):
                return [(question["flow"], False)]
            chosen = [(name, False) for name in sorted(runs)
                      if name in self.ctx.flows and self.ctx.flows[name].receives_messages]
            chosen += [(name, True) for name, flow in sorted(self.ctx.flows.items())
                       if "message" in flow.triggers and name not in runs
                       and self.may_enter(flow)]
            return chosen
        chosen = []
        for name, flow in sorted(self.ctx.flows.items()):
            if name in runs:
                chosen.append((name, False))
            elif event["type"] in flow.triggers and self.may_enter(flow):
                chosen.append((name, True))
        return chosen

    def may_enter(self, flow: Flow) -> bool:
        history = self.doc.get("flow_history", {}).get(flow.name)
        if history is None:
            return True
        if flow.reentry_after is None:
            return False
        return self.now - history["last_ended_at"] >= timedelta(seconds=flow.reentry_after)

    def dispatch(self, events: list[Doc]) -> None:
        """Post events (and what they emit) to flows, forward chaining up to a limit."""
        queue = list(events)
        posted = 0
        while queue:
            event = queue.pop(0)
            posted += 1
            if posted > MAX_CHAIN:
                raise RuntimeError(f"more than {MAX_CHAIN} chained events in one decision")
            for name, start in self.targets(event):
                flow = self.ctx.flows[name]
                if start and not self.start_run(flow):
                    continue
                if event["type"] == "message" and (self.doc.get("question") or {}).get(
                        "flow") == name:
                    self.doc["question"] = None
                    waits.cancel(self.doc, f"q:{name}")
                queue.extend(self.post(flow, event))
                if event["type"] in flow.exit_on and name in self.doc.get("flows", {}):
                    self.end_run(name, f"exit:{event['type']}")

    def start_run(self, flow: Flow) -> bool:
        if flow.marketing and self.origin is None and choose_channel(
                self.doc, self.ctx.send_policy, marketing=True) is None:
            self.out.steps.append((flow.name, "not_started_no_consent"))
            return False
        history = self.doc.setdefault("flow_history", {}).get(flow.name, {})
        number = history.get("count", 0) + 1
        self.doc.setdefault("flows", {})[flow.name] = {
            "run": f"{flow.name}:{number}", "step": "started", "started_at": self.now,
            "n": 0, "history": [{"step": "started", "at": self.now, "outcome": "ok"}],
        }
        self.doc.setdefault("engine", {}).pop(flow.name, None)
        self.out.steps.append((flow.name, "started"))
        return True

    def end_run(self, name: str, outcome: str) -> None:
        run = self.doc["flows"].pop(name)
        self.doc.get("engine", {}).pop(name, None)
        if (self.doc.get("question") or {}).get("flow") == name:
            self.doc["question"] = None
        waits.cancel_run(self.doc, run["run"])
        waits.cancel(self.doc, f"q:{name}")
        history = self.doc.setdefault("flow_history", {}).get(name, {})
        self.doc["flow_history"][name] = {"count": history.get("count", 0) + 1,
                                          "last_ended_at": self.now, "last_outcome": outcome}
        self.out.steps.append((name, outcome))
        self.out.finished_runs.append({
            "_id": f"{self.doc['_id']}:{run['run']}", "customer_id": self.doc["_id"],
            "flow": name, "run": run["run"], "started_at": run["started_at"],
            "ended_at": self.now, "outcome": outcome, "history": run["history"],
        })

    def post(self, flow: Flow, event: Doc) -> list[Doc]:
        """Run the flow's rules on ``event`` and apply what they recorded."""
        run = self.doc["flows"][flow.name]
        recorder = cmd.Recorder(flow=flow.name, customer_id=self.doc["_id"], run=run["run"],
                                code_pattern=self.ctx.code_pattern,
                                settings=self.ctx.flow_settings, facts=facts(self.doc))
        full = {**{k: v for k, v in event.items() if k != "_flow"},
                "customer": recorder.facts, "flow_run": run["run"],
                "at": self.now.isoformat()}
        saved = self.ctx.engine.decide(flow.name, self.doc["_id"],
                                       self.doc.get("engine", {}).get(flow.name), full, recorder)
        if flow.name in self.doc.get("flows", {}):
            self.doc.setdefault("engine", {})[flow.name] = saved
        return self.apply(flow, recorder.commands)

    # ----------------------------------------------------------------- commands

    def apply(self, flow: Flow, recorded: list[cmd.Command]) -> list[Doc]:
        emitted: list[Doc] = []
        for command in recorded:
            run = self.doc.get("flows", {}).get(flow.name)
            if run is None:
                break  # the flow exited; later commands of the same rule are void
            match command:
                case cmd.Send():
                    self.send(flow, run, command)
                case cmd.After():
                    run["n"] += 1
                    due = command.at or self.now + timedelta(seconds=command.seconds or 0)
                    key = command.key or f"a{run['n']}"
                    waits.schedule(self.doc, f"{run['run']}:{key}", due, command.event,
                                   flow=flow.name, run=run["run"])
                case cmd.Tag(tag=name, remove=remove):
                    tags = self.doc.setdefault("tags", [])
                    if remove and name in tags:
                        tags.remove(name)
                    elif not remove and name not in tags:
                        tags.append(name)
                case cmd.SetAttr(name=name, value=value):
                    self.doc.setdefault("attrs", {})[name] = value
                case cmd.Handoff(reason=reason):
                    self.handoff(reason)
                    self.record_step(run, flow, "handoff", reason)
                case cmd.Exit(outcome=outcome):
                    self.end_run(flow.name, outcome)
                case cmd.Emit(event=event):
                    emitted.append(event)
                case cmd.Step(name=name, outcome=outcome, data=data):
                    self.record_step(run, flow, name, outcome, **data)
                case cmd.Consent(channel=channel, state=state, source=source):
                    record_consent(self.doc, channel, state, source, self.now, self.now)
                case cmd.IssueCode(code=code, purpose=purpose):
                    self.out.codes.append({"_id": code, "customer_id": self.doc["_id"],
                                           "purpose": purpose, "run": run["run"],
                                           "issued_at": self.now})
                    self.doc.setdefault("attrs", {})[f"code_{purpose}"] = code
        return emitted

    def record_step(self, run: Doc, flow: Flow, name: str, outcome: str, **data: Any) -> None:
        entry = {"step": name, "at": self.now, "outcome": outcome, **data}
        run["history"] = (run["history"] + [entry])[-MAX_HISTORY:]
        run["step"] = name
        self.out.steps.append((flow.name, name))

    def handoff(self, reason: str) -> None:
        channel = self.origin or (self.doc.get("question") or {}).get("channel") or choose_channel(
            self.doc, self.ctx.send_policy, marketing=False) or "whatsapp"
        conversation = self.doc.setdefault("conversations", {}).setdefault(
            channel, {"status": "bot", "agent": None, "handoff_reason": None})
        if conversation["status"] != "agent":
            conversation.update(status="needs_agent", handoff_reason=reason,
                                handoff_seq=self.seq)
        self.out.channels.add(channel)

    def send(self, flow: Flow, run: Doc, command: cmd.Send) -> None:
        run["n"] += 1
        step = command.step or f"send{run['n']}"
        locale = facts(self.doc)["locale"]
        fallback = None
        if command.template is not None:
            fallback = {"name": command.template[0], "language": locale,
                        "params": list(command.template[1])}
        elif step in flow.templates:
            fallback = {"name": flow.templates[step], "language": locale, "params": []}
        channel = command.channel or self.origin
        message = build_message(
            self.doc, message_id=f"{self.doc['_id']}:{run['run']}:{run['n']}", now=self.now,
            seq=self.next_seq(), policy=self.ctx.send_policy, text=command.text,
            choices=command.choices, template=None, fallback_template=fallback,
            channel=channel, marketing=flow.marketing and not command.transactional,
            reply=self.origin is not None and channel == self.origin, flow=flow.name,
            run=run["run"], step=step)
        self.out.messages.append(message)
        if message["marketing"] and message["status"] == "queued":
            record_marketing(self.doc, self.now, self.ctx.send_policy)
        if message["channel"]:
            self.out.channels.add(message["channel"])
        self.record_step(run, flow, step, message["status"],
                         **({"reason": message["error"]} if message.get("error") else {}))
        if command.question is not None:
            self.doc["question"] = {"flow": flow.name, "run": run["run"],
                                    "name": command.question, "channel": message["channel"],
                                    "asked_at": self.now, "message_id": message["_id"],
                                    "choices": [list(choice) for choice in command.choices]}
            if command.timeout is not None:
                waits.schedule(self.doc, f"q:{flow.name}",
                               self.now + timedelta(seconds=command.timeout),
                               {"type": "timeout", "question": command.question},
                               flow=flow.name, run=run["run"])
            else:
                waits.cancel(self.doc, f"q:{flow.name}")

    def system_send(self, input_id: str, text: str, channel: str) -> None:
        """A transactional message of the service itself (keyword answers)."""
        self.out.messages.append(build_message(
            self.doc, message_id=f"sys:{input_id}", now=self.now, seq=self.next_seq(),
            policy=self.ctx.send_policy, text=text, choices=[], template=None,
            fallback_template=None, channel=channel, marketing=False, reply=True))
