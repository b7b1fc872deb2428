"""Routing a decision's input to flows, and the service's own answers to it.

The :class:`Router` reads one input (store event, customer message, agent
action, failed send or due wait), does what the service itself answers
(keywords, agent takeover and release, idle release) and chooses the flows
that see the resulting events; it runs their rules and hands what they
recorded to the :class:`~bot.core.carry_out.Executor`, which carries it out.

Routing of an event to flows:
- an event from a flow's own wait (``after``, ``ask`` timeouts) goes to that
  flow's run, and is dropped if the run has ended since;
- a customer message answering a pending question goes to the flow that
  asked; other messages go to active runs that take messages;
- a message no flow took (none was waiting for it, or the ones that got it
  recorded nothing) is posted again as ``message.unanswered`` to the flows
  it triggers: the shipped inbox flow (``rules/inbox.py``) answers it, so no
  customer is left unanswered (the contract's "never silence"). Nothing is
  posted while a person has the conversation or has been asked for: the
  person answers, and the customer was told once, at the hand-off;
- a message on a closed conversation reopens it (``closed`` -> ``bot``);
- any other event goes to every active run and starts the flows it
  triggers (if re-entry allows); ``exit_on`` types end the run afterwards.

Pure, like the whole decision: no database, no network.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.core import commands as cmd
from bot.core import keywords, purchases, store_clock, waits
from bot.core.carry_out import Executor, conversation
from bot.core.customers import facts, merge_profile, record_consent, store_consent_state
from bot.core.flows import Flow
from bot.core.inputs import ConsentChange, CustomerInfo, InboundMessage, StoreEvent
from bot.core.lifecycle import mark_fired, on_store_event, on_wait_fired, schedule_lifecycle
from bot.types import Doc

if TYPE_CHECKING:  # the decision's types; decide.py imports this module
    from bot.core.decide import DecisionContext, Outcome

MAX_CHAIN = 25  # events one decision may post, emitted ones included
MAX_ACTIONS = 50  # agent actions kept per conversation (who did what, when)
UNANSWERED = "message.unanswered"  # a customer message no flow took (rules/inbox.py)
# A channel's consent became pending: the double opt-in flow asks (rules/double_opt_in.py).
CONSENT_PENDING = "consent.pending"
# Provider refusals after which a step goes on to its next channel (fallback chains).
FALLBACK_MEANINGS = ("opted_out", "blocked", "marketing_limit", "dead_address")
# WhatsApp's per-user marketing limit (131049): Meta says wait at least 24 h, then once more.
MARKETING_LIMIT_RETRY = timedelta(days=1)


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


class Router:
    """Routes the inputs of one decision for one customer document."""

    def __init__(self, ctx: DecisionContext, doc: Doc, now: datetime, out: Outcome) -> None:
        self.ctx = ctx
        self.doc = doc
        self.now = now
        self.out = out
        self.act = Executor(ctx, doc, now, out)
        self.taken = False  # whether a flow recorded anything for the customer's message

    # ------------------------------------------------------------------ inputs

    def store_event(self, event: StoreEvent, input_id: str | None = None) -> None:
        info = event.customer
        merge_profile(self.doc, info)
        # The store's latest phone and email are the ones we use (older ones
        # stay as identity keys, so messages from them still find the customer).
        for name in ("phone", "email"):
            value = getattr(info, name)
            if value and f"{name}:{value}" in self.doc.get("keys", []):
                self.doc[name] = value
        self.forget_dead_addresses()
        # The store's times count as no later than the event's arrival, and
        # a consent as no later than anything the store stamped later that
        # arrived before (bot.core.store_clock): a store clock running
        # ahead must not make its consent beat the customer's later STOP.
        received = store_clock.received_time(event, self.now)
        occurred = store_clock.clamp(event.occurred_at, received)
        source = f"{event.source}:{event.type}"
        stated_times = [event.occurred_at]
        # Double opt-in: a store's opt-in on these channels (or any it sends as
        # "pending") waits for the customer's confirmation (rules/double_opt_in.py).
        double_opt_in = self.ctx.flow_settings.get("double_opt_in") or ()
        pending: list[Doc] = []
        for channel, value in info.consents.items():
            timed = consent_time(info, channel)
            stated = timed or event.occurred_at
            stated_times.append(stated)
            state = store_consent_state(self.doc, channel, value, double_opt_in,
                                        timed=timed is not None)
            if state is None:
                continue
            at = store_clock.consent_moment(self.doc, event.source, stated, received)
            changed = record_consent(self.doc, channel, state, source, at, self.now,
                                     evidence={"event_id": event.id, "input": input_id,
                                               "stated_at": stated})
            if changed and state == "pending":
                pending.append({"type": CONSENT_PENDING, "channel": channel})
        for stated in stated_times:
            store_clock.observe(self.doc, event.source, stated, received)
        payload = {**event.model_dump(mode="python"), "occurred_at": occurred}
        if event.type == "order.placed":  # purchase history, before rules read the facts
            purchases.record_order(self.doc, event.data, occurred)
        immediate = on_store_event(self.doc, payload, self.now, self.ctx.trigger_policy)
        data = event.data
        engine_event = {**data, "type": event.type, "event_id": event.id,
                        "occurred_at": occurred.isoformat(), "source": event.source,
                        "data": data}
        # Last: the flows the event starts see the consent as it now is (pending).
        self.dispatch([engine_event, *immediate, *pending])

    def forget_dead_addresses(self) -> None:
        """Drop undeliverable marks about addresses the customer no longer has (a new phone)."""
        marks = self.doc.get("undeliverable") or {}
        for channel in list(marks):
            traits = self.ctx.send_policy.channels.get(channel)
            if traits is not None and marks[channel].get("address") not in traits.address(self.doc):
                del marks[channel]

    def message(self, message: InboundMessage, input_id: str) -> None:
        doc, channel = self.doc, message.channel
        self.act.origin = channel
        state = conversation(doc, channel)
        doc.setdefault("last_in", {})[channel] = self.now
        doc["last_reply_at"] = self.now
        self.act.record_inbound(message)
        self.act.evidence = {"words": message.text, "message_id": message.provider_id,
                             "input": input_id}
        dead = doc.get("undeliverable", {}).get(channel)
        if dead is not None and dead.get("address") in {message.sender, message.user_id}:
            del doc["undeliverable"][channel]  # they wrote from it: it works again
        schedule_lifecycle(doc, self.now, self.ctx.trigger_policy)
        if message.kind in ("reaction", "start"):
            return
        if state["status"] == "closed":
            # The customer writes again: the conversation is open, and the bot's.
            state.update(status="bot", agent=None, handoff_reason=None, reopened_at=self.now)
        keyword = keywords.match(message.text) if message.kind == "text" else None
        if keyword is not None:
            self.keyword(keyword, channel, input_id)
            return
        if state["status"] in ("agent", "needs_agent"):
            return  # a person has it (or was asked for): recorded, not answered by the bot
        question = doc.get("question") or {}
        choice = message.choice_id or typed_choice(message.text, question.get("choices") or [])
        event = {
            "type": "message", "channel": channel, "kind": message.kind,
            "text": message.text, "choice": choice or "",
            "question": question.get("name", ""), "message_id": message.provider_id,
        }
        self.taken = False
        self.dispatch([event])
        if not self.taken:
            self.dispatch([{**event, "type": UNANSWERED}])

    def keyword(self, match: keywords.KeywordMatch, channel: str, input_id: str) -> None:
        """HELP, START and STOP (``bot.core.optout_phrases``), recorded with the words.

        An explicit stop ("BAJA", "wrong number") applies at once on every
        channel. An ambiguous one ("cancelar", "parar") applies at once where
        the channel requires it (SMS) and is otherwise confirmed first by the
        flow that handles ``optout.requested``. A stop of either kind while
        that flow asks about this channel is its "yes".
        """
        locale = facts(self.doc)["locale"]
        source = f"keyword:{channel}"
        traits = self.ctx.send_policy.channels.get(channel)
        at_once = traits is not None and traits.optout_at_once
        evidence = {**self.act.evidence, "phrase": match.phrase}
        self.act.evidence = evidence  # a flow's revocation below keeps the phrase too
        question = self.doc.get("question") or {}
        asking = self.ctx.flows.get(question.get("flow") or "")
        confirming = (question.get("channel") == channel and asking is not None
                      and "optout.requested" in asking.triggers)
        if match.keyword == "help":
            self.act.system_send(input_id, keywords.localized(keywords.HELP_TEXT, locale),
                                 channel)
        elif match.keyword == "start":
            record_consent(self.doc, channel, "granted", source, self.now, self.now,
                           evidence=evidence)
            tags = self.doc.get("tags", [])
            if "marketing_paused" in tags:
                tags.remove("marketing_paused")
            self.act.system_send(input_id, keywords.localized(keywords.STARTED_TEXT, locale),
                                 channel)
        elif at_once or not self.handled_by_flow("optout.requested") or (
                match.explicit and not confirming):
            # Some channels' opt-out must take effect at once (carriers require
            # it of SMS), with one confirmation unless the provider answers it.
            changed = record_consent(self.doc, channel, "revoked", source, self.now, self.now,
                                     evidence=evidence)
            if changed and (traits is None or traits.confirms_optout):
                self.act.system_send(input_id, keywords.localized(keywords.STOPPED_TEXT, locale),
                                     channel)
        else:
            self.dispatch([{"type": "optout.requested", "channel": channel}])

    def agent_action(self, action: Doc, input_id: str) -> None:
        channel = action["channel"]
        state = conversation(self.doc, channel)
        self.out.channels.add(channel)
        kind = action["action"]
        release_wait = f"release:{channel}"
        # Who did it (an agent's e-mail, or "admin-token"), kept on the conversation.
        entry = {"action": kind, "by": action.get("by") or action.get("agent"),
                 "agent": action.get("agent"), "at": self.now}
        state["actions"] = [*state.get("actions", []), entry][-MAX_ACTIONS:]
        if kind in ("takeover", "assign"):
            state.update(status="agent", agent=action["agent"])
            self.act.schedule_release(channel)
        elif kind == "release":
            state.update(status="bot", agent=None, handoff_reason=None)
            waits.cancel(self.doc, release_wait)
        elif kind == "message":
            self.act.agent_send(input_id, action["text"], channel,
                                action.get("agent") or state.get("agent") or "agent",
                                template=action.get("template"))
            if state["status"] == "agent":
                self.act.schedule_release(channel)
        elif kind == "close":
            state.update(status="closed", agent=None)
            waits.cancel(self.doc, release_wait)

    def send_failed(self, report: Doc) -> None:
        """A message failed for good (or was skipped with a fallback left).

        What the provider's code means is recorded first, whatever the
        message was (``FailureMeaning``): an opt-out at the provider revokes
        marketing consent on the channel, a dead address is marked
        undeliverable. Then the step goes on where it can: to the next
        channel of its fallback chain, or, after WhatsApp's per-user
        marketing limit, once more a day later. Only when neither is left
        is the run told that its message failed (``message.failed``).
        """
        message: Doc = report.get("message") or {}
        channel = message.get("channel")
        meaning = report.get("meaning")
        if channel and meaning in ("opted_out", "blocked"):
            record_consent(self.doc, channel, "revoked",
                           f"{channel}:{report.get('code') or meaning}", self.now, self.now,
                           evidence={"message_id": report.get("message_id"),
                                     "error": report.get("error")})
        if channel and meaning in ("dead_address", "blocked"):
            self.doc.setdefault("undeliverable", {})[channel] = {
                "address": message.get("to") or message.get("to_user_id"),
                "code": report.get("code") or meaning, "error": report.get("error"),
                "message_id": report.get("message_id"), "at": self.now}
        follow_up = self.follow_up(report, message, meaning) if message else None
        name = report.get("flow")
        run = self.doc.get("flows", {}).get(name or "")
        if name is None or run is None or run["run"] != report.get("run"):
            return
        step = report.get("step") or "send"
        if follow_up is not None:
            outcome, again = follow_up
            self.act.record_step(run, self.flow_of_run(name), step, outcome,
                                 reason=report.get("error"), channel=again["channel"],
                                 message_id=again["_id"])
            return
        self.act.record_step(run, self.flow_of_run(name), step, "failed",
                             error=report.get("error"))
        self.act.end_watch(run, report.get("message_id"))  # its fate, told here (watch)
        self.dispatch([{"type": "message.failed", "_flow": name, "step": report.get("step"),
                        "error": report.get("error")}])

    def message_fate(self, report: Doc) -> None:
        """A watched message got as far as its watch waits for, or failed (``watch``).

        Only the run that watches it hears, once: the first fate ends the
        watch and cancels its timeout, and a fate after the timeout (or after
        the run ended) is dropped. The run gets ``message.<fate>`` with the
        step it watched.
        """
        name = report.get("flow") or ""
        run = self.doc.get("flows", {}).get(name)
        if run is None or run["run"] != report.get("run") or name not in self.ctx.flows:
            return
        watch = self.act.end_watch(run, report.get("message_id"))
        if watch is None:
            return
        self.dispatch([{"type": f"message.{report['fate']}", "_flow": name,
                        "step": watch["step"], "until": watch["until"],
                        "message_id": report.get("message_id"), "channel": report.get("channel"),
                        **({"error": report["error"]} if report.get("error") else {})}])

    def campaign(self, payload: Doc) -> None:
        """One customer's share of a scheduled campaign: a marketing message, no flow run.

        The expansion (``bot.runtime.campaigns``) put the customer here because
        they matched the campaign's segment then; the send policy decides now
        (consent, frequency cap, quiet hours, window), as for any flow's send.
        """
        self.act.campaign_send(payload)

    def follow_up(self, report: Doc, message: Doc,
                  meaning: str | None) -> tuple[str, Doc] | None:
        """The step's next try after ``message`` did not go: ("fallback"|"held", its message)."""
        left = message.get("fallback_left") or []
        if left and (report.get("skipped") or meaning in FALLBACK_MEANINGS):
            tried = [*(message.get("fallback_from") or []),
                     {"channel": message.get("channel"), "reason": report.get("error"),
                      "code": report.get("code") or meaning, "at": self.now}]
            return "fallback", self.act.resend(message, message_id=f"{message['_id']}>{left[0]}",
                                               channels=list(left), tried=tried)
        if meaning == "marketing_limit" and not message.get("retry_of"):
            return "held", self.act.resend(message, message_id=f"{message['_id']}:retry",
                                           due=self.now + MARKETING_LIMIT_RETRY)
        return None

    def consent_change(self, change: ConsentChange, input_id: str) -> None:
        """A provider's report of the user's marketing preference (WhatsApp's user_preferences).

        A stop revokes marketing on the channel. A resume only undoes a stop
        the same provider reported: it is not, by itself, consent to our
        marketing, so it grants nothing the customer had not given before.
        """
        channel = change.channel
        source = f"{channel}:{change.via}"
        evidence = {"input": input_id, "detail": change.detail}
        at = min(change.at, self.now)
        if change.state == "revoked":
            record_consent(self.doc, channel, "revoked", source, at, self.now, evidence)
            return
        current = self.doc.get("consents", {}).get(channel) or {}
        if current.get("state") == "revoked" and current.get("source") == source:
            record_consent(self.doc, channel, "granted", source, at, self.now, evidence)

    # ------------------------------------------------------------------- waits

    def fire(self, wait: Doc) -> None:
        event = dict(wait["event"])
        flow_name = wait.get("flow")
        if flow_name is not None:
            run = self.doc.get("flows", {}).get(flow_name)
            if run is None or run["run"] != wait.get("run"):
                return  # the run it belonged to has ended
            if event.get("type") == "message.timeout":
                self.act.timed_out(run, wait["id"])  # a fate after this is ignored
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
            state = self.doc.get("conversations", {}).get(channel)
            if state and state.get("status") == "agent":
                state.update(status="bot", agent=None, handoff_reason=None, released="idle")
                self.out.channels.add(channel)
            return
        on_wait_fired(self.doc, event)
        mark_fired(self.doc, wait)
        schedule_lifecycle(self.doc, self.now, self.ctx.trigger_policy)
        self.dispatch([event])

    # ------------------------------------------------------------------- flows

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
                      if name in self.ctx.flows and self.flow_of_run(name).receives_messages]
            chosen += [(name, True) for name, flow in sorted(self.ctx.flows.items())
                       if "message" in flow.triggers and name not in runs
                       and self.may_enter(flow)]
            return chosen
        if event["type"] == UNANSWERED:  # only to the flows that answer such messages
            return [(name, name not in runs) for name, flow in sorted(self.ctx.flows.items())
                    if UNANSWERED in flow.triggers and (name in runs or self.may_enter(flow))]
        chosen = []
        for name, flow in sorted(self.ctx.flows.items()):
            if name in runs:
                chosen.append((name, False))
            elif event["type"] in flow.triggers and self.may_enter(flow):
                chosen.append((name, True))
        return chosen

    def flow_of_run(self, name: str) -> Flow:
        """The flow an active run of ``name`` goes on with: the version it started on
        when that one is loaded, else the current one."""
        run = self.doc.get("flows", {}).get(name) or {}
        return self.ctx.versions.get((name, str(run.get("version"))), self.ctx.flows[name])

    def may_enter(self, flow: Flow) -> bool:
        history = self.doc.get("flow_history", {}).get(flow.name)
        if history is None:
            return True
        if flow.reentry_after is None:
            return False
        ended: datetime = history["last_ended_at"]
        return self.now - ended >= timedelta(seconds=flow.reentry_after)

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
                flow = self.ctx.flows[name] if start else self.flow_of_run(name)
                if start and not self.act.start_run(flow):
                    continue
                if event["type"] == "message" and (self.doc.get("question") or {}).get(
                        "flow") == name:
                    self.doc["question"] = None
                    waits.cancel(self.doc, f"q:{name}")
                queue.extend(self.post(flow, event))
                if event["type"] in flow.exit_on and name in self.doc.get("flows", {}):
                    self.act.end_run(name, f"exit:{event['type']}")

    def post(self, flow: Flow, event: Doc) -> list[Doc]:
        """Run the flow's rules on ``event``; the executor carries out what they recorded."""
        run = self.doc["flows"][flow.name]
        recorder = cmd.Recorder(flow=flow.name, customer=self.doc["_id"], run=run["run"],
                                code_pattern=self.ctx.code_pattern,
                                settings=self.ctx.flow_settings, facts=facts(self.doc))
        full = {**{k: v for k, v in event.items() if k != "_flow"},
                "customer": recorder.facts, "flow_run": run["run"],
                "at": self.now.isoformat()}
        saved = self.ctx.engine.decide(flow.ruleset_name, self.doc["_id"],
                                       self.doc.get("engine", {}).get(flow.name), full, recorder)
        if flow.name in self.doc.get("flows", {}):
            self.doc.setdefault("engine", {})[flow.name] = saved
        if event["type"] == "message" and recorder.commands:
            self.taken = True
        return self.act.apply(flow, recorder.commands)
