"""Carrying out a decision: what rules recorded becomes state and messages.

Rules only record commands (``bot.core.commands``). Routing
(``bot.core.route``) chooses the flows an input goes to and runs their rules;
the :class:`Executor` here applies what they recorded to the customer
document and to the decision's :class:`~bot.core.decide.Outcome`: messages
(built by ``bot.core.compose``, which checks consent, agent hold, quiet hours
and the 24-hour window), waits, tags, attributes, consents, codes, handoffs,
and the start and end of flow runs. It never chooses a flow and never runs a
rule, so what a command does is read in one place.

Pure, like the whole decision: no database, no network.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core import commands as cmd
from bot.core import waits
from bot.core.compose import (
    build_message,
    choose_channel,
    conversation_id,
    not_before,
    record_marketing,
)
from bot.core.customers import facts, record_consent
from bot.core.flows import START, Flow
from bot.core.inputs import InboundMessage
from bot.core.stats import flow_version, remember_message
from bot.types import Doc

if TYPE_CHECKING:  # the decision's types; decide.py imports this module
    from bot.core.decide import DecisionContext, Outcome

MAX_HISTORY = 50  # steps kept per run (the finished run keeps them too)


def watch_wait(message_id: str) -> str:
    """The id of the wait that ends a watch on ``message_id`` (``watch``'s timeout)."""
    return f"watch:{message_id}"


def conversation(doc: Doc, channel: str) -> Doc:
    """The customer's conversation state on ``channel``, created as the bot's."""
    state: Doc = doc.setdefault("conversations", {}).setdefault(
        channel, {"status": "bot", "agent": None, "handoff_reason": None})
    return state


class Executor:
    """Applies commands to one customer document within one decision."""

    def __init__(self, ctx: DecisionContext, doc: Doc, now: datetime, out: Outcome) -> None:
        self.ctx = ctx
        self.doc = doc
        self.now = now
        self.out = out
        # Timeline order: the service clock, never behind the customer's last message.
        self.seq: int = max(doc.get("last_seq", 0), int(now.timestamp() * 1e6) * 1000)
        self.origin: str | None = None  # the channel the customer just wrote on
        # What the input being decided proves, for the consent ledger (the
        # customer's words and their message id; set by the router).
        self.evidence: Doc = {}

    def next_seq(self) -> int:
        self.seq += 1
        self.doc["last_seq"] = self.seq
        return self.seq

    # ------------------------------------------------------------------- runs

    def start_run(self, flow: Flow) -> bool:
        """Start a run of ``flow``; False when a marketing flow could reach nobody."""
        if flow.marketing and self.origin is None and choose_channel(
                self.doc, self.ctx.send_policy, marketing=True) is None:
            self.out.steps.append((flow.name, "not_started_no_consent"))
            self.out.stats.append({"kind": "skipped", **self.run_names(flow.name),
                                   "step": "started", "reason": "consent"})
            return False
        history = self.doc.setdefault("flow_history", {}).get(flow.name, {})
        number = history.get("count", 0) + 1
        self.doc.setdefault("flows", {})[flow.name] = {
            "run": f"{flow.name}:{number}", "step": "started", "started_at": self.now,
            "n": 0, "history": [{"step": "started", "at": self.now, "outcome": "ok"}],
            "version": flow_version(flow), "variant": None,
        }
        self.doc.setdefault("engine", {}).pop(flow.name, None)
        self.out.steps.append((flow.name, "started"))
        names = self.run_names(flow.name)
        self.out.stats += [{"kind": "started", **names},
                           {"kind": "reached", **names, "step": "started"}]
        return True

    def run_names(self, name: str) -> Doc:
        """What a run's statistics are filed under: (flow, version, variant).

        A run keeps the version it started on (``start_run``); one started
        before versions were recorded takes the flow's current one.
        """
        run = self.doc.get("flows", {}).get(name) or {}
        version = run.get("version")
        if version is None and name in self.ctx.flows:
            version = flow_version(self.ctx.flows[name])
        return {"flow": name, "version": version, "variant": run.get("variant")}

    def end_run(self, name: str, outcome: str) -> None:
        run = self.doc["flows"].pop(name)
        self.doc.get("engine", {}).pop(name, None)
        if (self.doc.get("question") or {}).get("flow") == name:
            self.doc["question"] = None
        waits.cancel_run(self.doc, run["run"])
        waits.cancel(self.doc, f"q:{name}")
        names = {"flow": name, "version": run.get("version") or self.run_names(name)["version"],
                 "variant": run.get("variant")}
        history = self.doc.setdefault("flow_history", {}).get(name, {})
        self.doc["flow_history"][name] = {"count": history.get("count", 0) + 1,
                                          "last_ended_at": self.now, "last_outcome": outcome}
        self.out.steps.append((name, outcome))
        self.out.finished_runs.append({
            "_id": f"{self.doc['_id']}:{run['run']}", "customer": self.doc["_id"],
            "flow": name, "run": run["run"], "started_at": run["started_at"],
            "ended_at": self.now, "outcome": outcome, "history": run["history"],
            "customer_id": self.doc.get("store_id") or self.doc["_id"],
            "last_step": run.get("step"), "version": names["version"],
            "variant": names["variant"],
        })
        # The transition out: from the run's last step to ``exit:<outcome>``.
        self.out.stats.append({"kind": "ended", **names, "outcome": outcome,
                               "from": run.get("step") or START})

    def record_step(self, run: Doc, flow: Flow, name: str, outcome: str, **data: Any) -> None:
        entry = {"step": name, "at": self.now, "outcome": outcome, **data}
        run["history"] = (run["history"] + [entry])[-MAX_HISTORY:]
        previous = run.get("step") or START
        run["step"] = name
        self.out.steps.append((flow.name, name))
        # A failed send's report, a fallback or a held retry: the same step, not a new one.
        if outcome not in ("fallback", "held") and not (outcome == "failed" and "error" in data):
            # ``from``: the transition counted with the step (``transitions.<from>.<to>``).
            self.out.stats.append({"kind": "reached", **self.run_names(flow.name), "step": name,
                                   "from": previous})

    # --------------------------------------------------------------- commands

    def apply(self, flow: Flow, recorded: list[cmd.Command]) -> list[Doc]:
        """Carry out one rule firing's commands; returns the events it emitted."""
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
                    record_consent(self.doc, channel, state, source, self.now, self.now,
                                   evidence={"flow": flow.name, "run": run["run"],
                                             **self.evidence})
                case cmd.IssueCode(code=code, purpose=purpose):
                    self.out.codes.append({"_id": code, "customer": self.doc["_id"],
                                           "purpose": purpose, "run": run["run"],
                                           "issued_at": self.now})
                    self.doc.setdefault("attrs", {})[f"code_{purpose}"] = code
                case cmd.Split(name=name, variant=variant):
                    self.split(flow, run, name, variant)
                case cmd.Watch():
                    emitted += self.watch(flow, run, command)
        return emitted

    def watch(self, flow: Flow, run: Doc, command: cmd.Watch) -> list[Doc]:
        """Watch the fate of the run's message at ``command.step``, sent in this decision.

        The message carries ``watch`` (so the receipt pass reports its fate,
        ``bot.runtime.receipts``) and the run keeps the watch by message id
        (so only the first fate, or the timeout, reaches the run:
        ``Router.message_fate``). A message the policy skipped has its fate
        now: ``message.failed`` goes back to this run at once (returned to
        be dispatched like an emitted event, but to this flow only).

        Raises:
            ValueError: no message of that step was sent by this run in this decision.
        """
        message = next((m for m in reversed(self.out.messages)
                        if m.get("run") == run["run"] and m.get("step") == command.step
                        and m.get("direction") == "out"), None)
        if message is None:
            raise ValueError(f"watch({command.step!r}): this rule sent no message at that "
                             "step; call watch right after its send")
        event = {"step": command.step, "message_id": message["_id"],
                 "channel": message["channel"], "until": command.until}
        if message["status"] == "skipped":
            return [{**event, "type": "message.failed", "skipped": True,
                     "reason": message.get("error"), "_flow": flow.name}]
        message["watch"] = command.until
        run.setdefault("watches", {})[message["_id"]] = {
            "step": command.step, "until": command.until, "at": self.now,
            "wait": watch_wait(message["_id"])}
        if command.timeout is not None:
            waits.schedule(self.doc, watch_wait(message["_id"]),
                           self.now + timedelta(seconds=command.timeout),
                           {**event, "type": "message.timeout"}, flow=flow.name, run=run["run"])
        return []

    def end_watch(self, run: Doc, message_id: str | None) -> Doc | None:
        """Stop watching ``message_id`` (its fate or its timeout came); the watch, if any."""
        watch: Doc | None = (run.get("watches") or {}).pop(message_id or "", None)
        if watch is not None:
            waits.cancel(self.doc, watch["wait"])
        return watch

    @staticmethod
    def timed_out(run: Doc, wait_id: str) -> None:
        """The watch whose timeout ``wait_id`` fired is over (a fate after it is ignored)."""
        watches = run.get("watches") or {}
        for message_id in [k for k, v in watches.items() if v.get("wait") == wait_id]:
            del watches[message_id]

    def split(self, flow: Flow, run: Doc, name: str, variant: str) -> None:
        """A split chose ``variant``: the run's variant (its first split's), and a step.

        The run's statistics are filed under its variant (``run_names``), so
        what this decision already recorded for the run under no variant
        (its start, when it started in this decision, and any message sent
        before the split) is filed under the variant too. A run that started
        in an earlier decision keeps those counts where they were. The step
        is recorded once per run (``splits``): asking the same split again
        returns the same variant and counts nothing more.
        """
        splits = run.setdefault("splits", {})
        if name in splits:
            return
        splits[name] = variant
        if run.get("variant") is None:
            run["variant"] = variant
            self._refile(flow.name, run, variant)
        self.record_step(run, flow, name, variant, variant=variant)

    def _refile(self, name: str, run: Doc, variant: str) -> None:
        started = [i for i, fact in enumerate(self.out.stats)
                   if fact["kind"] == "started" and fact["flow"] == name]
        if run.get("started_at") == self.now and started:
            for fact in self.out.stats[started[-1]:]:
                if fact["flow"] == name and fact.get("variant") is None:
                    fact["variant"] = variant
        for message in self.out.messages:
            if message.get("run") == run["run"] and message.get("flow") == name:
                message["variant"] = variant
        question = self.doc.get("question") or {}
        if question.get("run") == run["run"]:
            question["variant"] = variant
        for entry in self.doc.get("attribution", []):
            if entry.get("run") == run["run"]:
                entry["variant"] = variant

    def handoff(self, reason: str) -> None:
        channel = self.origin or (self.doc.get("question") or {}).get("channel") or choose_channel(
            self.doc, self.ctx.send_policy, marketing=False) or next(
            iter(self.ctx.send_policy.channels), "none")
        state = conversation(self.doc, channel)
        if state["status"] != "agent":
            state.update(status="needs_agent", handoff_reason=reason, handoff_seq=self.seq)
        self.out.channels.add(channel)

    # --------------------------------------------------------------- messages

    def record_inbound(self, message: InboundMessage) -> None:
        """Put a customer's message on the timeline."""
        channel = message.channel
        self.out.channels.add(channel)
        self.out.messages.append({
            "_id": f"in:{channel}:{message.provider_id}", "customer": self.doc["_id"],
            "conversation_id": conversation_id(self.doc["_id"], channel), "channel": channel,
            "direction": "in", "kind": message.kind, "text": message.text,
            "choice_id": message.choice_id, "at": self.now, "sent_at": message.at,
            "seq": self.next_seq(), "status": "received", "agent": None, "flow": None,
        })

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
        channel = None if command.channels else command.channel or self.origin
        message = build_message(
            self.doc, message_id=f"{self.doc['_id']}:{run['run']}:{run['n']}", now=self.now,
            seq=self.next_seq(), policy=self.ctx.send_policy, text=command.text,
            choices=command.choices, template=None, fallback_template=fallback,
            channel=channel, marketing=flow.marketing and not command.transactional,
            reply=self.origin is not None and channel == self.origin, flow=flow.name,
            run=run["run"], step=step, channels=command.channels)
        names = self.run_names(flow.name)
        # The run's statistics names travel with the message (send and receipt passes).
        message.update(flow_version=names["version"], variant=names["variant"])
        self.out.messages.append(message)
        if message["status"] == "queued":
            remember_message(self.doc, {**run, **names}, flow.name, message["_id"])
        if message["marketing"] and message["status"] == "queued":
            record_marketing(self.doc, self.now, self.ctx.send_policy)
        if message["channel"]:
            self.out.channels.add(message["channel"])
        self.record_step(run, flow, step, message["status"],
                         **({"reason": message["error"]} if message.get("error") else {}),
                         **({"channel": message["channel"], "fallback_from": [
                             {"channel": t["channel"], "reason": t["reason"]}
                             for t in message["fallback_from"]]}
                            if message.get("fallback_from") else {}))
        if command.question is not None:
            self.doc["question"] = {"flow": flow.name, "run": run["run"],
                                    "name": command.question, "channel": message["channel"],
                                    "asked_at": self.now, "message_id": message["_id"],
                                    "choices": [list(choice) for choice in command.choices],
                                    "step": step, "version": names["version"],
                                    "variant": names["variant"]}
            if command.timeout is not None:
                waits.schedule(self.doc, f"q:{flow.name}",
                               self.now + timedelta(seconds=command.timeout),
                               {"type": "timeout", "question": command.question},
                               flow=flow.name, run=run["run"])
            else:
                waits.cancel(self.doc, f"q:{flow.name}")

    def resend(self, failed: Doc, *, message_id: str, due: datetime | None = None,
               channels: list[str] | None = None, tried: list[Doc] | None = None) -> Doc:
        """A failed or skipped message again: later (``due``) or on the next channels.

        ``failed`` is the message as its failure report carries it. The new
        message is decided like the first (consent, address, window, agent)
        at this moment, and remembered by its run like any of its sends.
        """
        message = build_message(
            self.doc, message_id=message_id, now=self.now, seq=self.next_seq(),
            policy=self.ctx.send_policy, text=failed.get("text"),
            choices=[(c["id"], c["title"]) for c in failed.get("choices") or []],
            # The template it went as (outside a window) is what it may go as again.
            template=None,
            fallback_template=failed.get("fallback_template") or failed.get("template"),
            channel=None if channels else failed.get("channel"),
            marketing=bool(failed.get("marketing")), reply=False, flow=failed.get("flow"),
            run=failed.get("run"), step=failed.get("step"), agent=failed.get("agent"),
            channels=channels or (), fallback_from=tried or ())
        for name in ("flow_version", "variant"):
            if failed.get(name) is not None:
                message[name] = failed[name]
        if due is not None and message.get("outbox"):
            later = (not_before(self.doc, due, self.ctx.send_policy, message)
                     if message["marketing"] else due)
            message["due_at"] = max(later, message["due_at"])
        message["retry_of"] = failed.get("_id")
        self.out.messages.append(message)
        if message["channel"]:
            self.out.channels.add(message["channel"])
        run = self.doc.get("flows", {}).get(failed.get("flow") or "")
        watched = (run or {}).get("watches", {}).pop(failed.get("_id") or "", None)
        if watched is not None and run is not None and message["status"] == "queued":
            # The step goes on as this message: its fate is the one watched now.
            run["watches"][message["_id"]] = watched
            message["watch"] = watched["until"]
        if message["status"] == "queued" and run is not None and run["run"] == failed.get("run"):
            remember_message(self.doc, {**run, **self.run_names(failed["flow"])},
                             failed["flow"], message["_id"])
        return message

    def campaign_send(self, campaign: Doc) -> Doc:
        """A scheduled campaign's message (``bot.core.campaigns``): marketing, like a flow's.

        Consent, quiet hours, the frequency cap, the window's template and
        the fallback chain apply as to any marketing send (``build_message``);
        a skipped one is written with its reason, which the campaign's
        counts read. Its id, ``campaign:<id>:<customer>``, makes a replayed
        decision store it once.
        """
        locale = facts(self.doc)["locale"]
        texts: dict[str, str] = campaign["texts"]
        text = texts.get(locale) or texts.get("es") or next(iter(texts.values()))
        name = (self.doc.get("profile") or {}).get("first_name") or ""
        template = campaign.get("template")
        fallback = None if template is None else {
            "name": template["name"], "language": locale,
            "params": [str(p).replace("{first_name}", name) for p in template.get("params", [])]}
        message = build_message(
            self.doc, message_id=f"campaign:{campaign['id']}:{self.doc['_id']}", now=self.now,
            seq=self.next_seq(), policy=self.ctx.send_policy,
            text=text.replace("{first_name}", name), choices=[], template=None,
            fallback_template=fallback, channel=None, marketing=True, reply=False,
            channels=tuple(campaign.get("channels") or ()))
        message["campaign"] = campaign["id"]
        self.out.messages.append(message)
        if message["status"] == "queued":
            record_marketing(self.doc, self.now, self.ctx.send_policy)
        if message["channel"]:
            self.out.channels.add(message["channel"])
        return message

    def system_send(self, input_id: str, text: str, channel: str) -> None:
        """A transactional message of the service itself (keyword answers)."""
        self.out.messages.append(build_message(
            self.doc, message_id=f"sys:{input_id}", now=self.now, seq=self.next_seq(),
            policy=self.ctx.send_policy, text=text, choices=[], template=None,
            fallback_template=None, channel=channel, marketing=False, reply=True))

    def agent_send(self, input_id: str, text: str, channel: str, agent: str,
                   template: Doc | None = None) -> None:
        """An agent's message (the id the agent API answered with: ``agent:<input id>``).

        ``template`` (an approved one, chosen in the console) is what may go
        out after WhatsApp's 24-hour window has closed.
        """
        self.out.messages.append(build_message(
            self.doc, message_id=f"agent:{input_id}", now=self.now, seq=self.next_seq(),
            policy=self.ctx.send_policy, text=text, choices=[], template=template,
            fallback_template=None, channel=channel, marketing=False, reply=True,
            agent=agent))

    def schedule_release(self, channel: str) -> None:
        """Give the conversation back to the bot after the agent's idle time."""
        due = self.now + timedelta(seconds=self.ctx.agent_idle_release)
        waits.schedule(self.doc, f"release:{channel}", due,
                       {"type": "agent.idle_release", "channel": channel})
