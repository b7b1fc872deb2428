"""Flow statistics as daily counters: what to ``$inc``, built from facts already at hand.

A store owner asks of a flow "is it working, and where do people stop?". The
answer must not come from scanning every run on every request, so each fact
is counted where it is committed (``ARCHITECTURE.md``): a decision's
:class:`~bot.core.decide.Outcome`, a send pass's outcomes, a pass of
delivery receipts. Each pass merges its increments by document and writes
them in one ``bulk_write`` of ``$inc`` upserts (``bot.runtime.flow_stats``);
a report reads a period by summing its days.

Documents of ``flow_stats``, one per (flow, version, variant, day), ``day``
being the UTC date the fact was committed (``"2026-03-09"``)::

    {"_id": "cart_recovery|3f2a9c01b7d4|-|2026-03-09", "flow", "version",
     "variant": None, "day",
     "runs": {"started": n, "ended": {outcome: n}},
     "steps": {step: {"reached", "sent", "delivered", "read", "replied",
                      "failed", "skipped": {reason: n}}},
     "transitions": {from: {to: n}},
     "conversions": {"orders": n}, "revenue": {currency: Decimal128}}

``transitions`` counts each way a run moved: from its previous step (``started``
for the first) to the step it reached, or to ``exit:<outcome>`` when it
ended, the names of the flow's ``edges``. Days counted before transitions
were recorded have fewer of them than steps reached and runs ended, and a
period holding such a day answers without ``transitions`` (:func:`_transitions`).

plus one all-time document per (flow, version, variant) (``day: None``) with
the run counts only, so ``active`` (started minus ended) needs no scan of
the years. Names that become field names (steps, outcomes, reasons) are
escaped (:func:`escape`), since ``exit:order.placed`` has a dot.

Pure: no database, no clock. Reading a flow's source for its version is
done once per flow and cached.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.core.flows import EXIT, START, Flow
from bot.core.keywords import detect
from bot.core.policy import REASON_CODES, reason_code
from bot.types import Doc, inbox_kind

NO_VARIANT = "-"  # the variant part of an id when a flow records none
MAX_ATTRIBUTED_RUNS = 10  # runs kept per customer for attribution
MAX_ATTRIBUTED_MESSAGES = 3  # the latest messages of each of them
# How far a message has got (the receipts' ranks): delivered and read are counted once.
DELIVERED, READ, FAILED = 2, 3, 4
MESSAGE_FIELDS = ("sent", "delivered", "read", "replied", "failed")

_versions: dict[int, str] = {}


def flow_version(flow: Flow) -> str:
    """The flow's version: a declared ``version`` if it has one, else the hash of its module.

    A run keeps the version it started on, so its figures stay apart from a
    changed flow's. The module's source is the flow (texts, rules, waits),
    so 12 hex digits of its SHA-256 change whenever it does; a flow whose
    module cannot be read hashes its declaration.
    """
    declared = getattr(flow, "version", None)
    if declared:
        return str(declared)
    cached = _versions.get(id(flow))
    if cached is None:
        found = flow_source(flow)
        source = found[1] if found else repr(flow)
        cached = _versions[id(flow)] = hashlib.sha256(source.encode()).hexdigest()[:12]
    return cached


def flow_source(flow: Flow) -> tuple[str, str] | None:
    """The module that declares ``flow`` and its source: (module name, source text).

    What a flow's version hashes, and what ``flow_versions`` keeps of each
    version (``bot.runtime.flow_versions``). None for a flow declared
    outside a readable module (a test's, built in place).
    """
    for module in list(sys.modules.values()):
        # The module's own namespace: no module-level __getattr__ is woken.
        names = getattr(module, "__dict__", None) or {}
        listed = names.get("FLOWS")
        if names.get("FLOW") is flow or (
                isinstance(listed, list | tuple) and any(item is flow for item in listed)):
            try:
                return module.__name__, inspect.getsource(module)
            except (OSError, TypeError):
                return None
    return None


def escape(name: str) -> str:
    """``name`` usable as one field name: ``%``, ``.`` and ``$`` escaped (see :func:`unescape`)."""
    text = str(name)
    return text.replace("%", "%25").replace(".", "%2E").replace("$", "%24") if text else "%00"


def unescape(key: str) -> str:
    if key == "%00":
        return ""
    return key.replace("%24", "$").replace("%2E", ".").replace("%25", "%")


def day_of(at: datetime) -> str:
    """The UTC date of ``at``, the counters' day."""
    return at.astimezone(UTC).date().isoformat()


def doc_id(flow: str, version: str, variant: str | None, day: str | None) -> str:
    return f"{flow}|{version}|{variant or NO_VARIANT}|{day or 'all'}"


def money(value: Any) -> Decimal | None:
    """An order total as stored (a decimal string), or None when there is none usable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


@dataclass
class Counters:
    """The ``$inc`` of one pass, merged by document: ``docs[id] = (identity, {path: n})``."""

    docs: dict[str, tuple[Doc, dict[str, Any]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.docs)

    def add(self, run: Mapping[str, Any], at: datetime | None, path: str,
            amount: int | Decimal = 1) -> None:
        """Add ``amount`` at ``path`` for the run's (flow, version, variant) on ``at``'s day.

        ``at`` None is the all-time document.
        """
        flow, version = run["flow"], run.get("version") or "unknown"
        variant = run.get("variant")
        day = day_of(at) if at is not None else None
        key = doc_id(flow, version, variant, day)
        entry = self.docs.get(key)
        if entry is None:
            entry = self.docs[key] = ({"flow": flow, "version": version, "variant": variant,
                                       "day": day}, {})
        incs = entry[1]
        incs[path] = incs.get(path, 0) + amount

    def step(self, run: Mapping[str, Any], at: datetime, step: str, name: str) -> None:
        self.add(run, at, f"steps.{escape(step)}.{name}")

    def skipped(self, run: Mapping[str, Any], at: datetime, step: str, reason: str) -> None:
        code = reason if reason in REASON_CODES else "other"
        self.add(run, at, f"steps.{escape(step)}.skipped.{code}")

    def run_started(self, run: Mapping[str, Any], at: datetime) -> None:
        self.add(run, at, "runs.started")
        self.add(run, None, "runs.started")

    def run_ended(self, run: Mapping[str, Any], at: datetime, outcome: str) -> None:
        self.add(run, at, f"runs.ended.{escape(outcome)}")
        self.add(run, None, f"runs.ended.{escape(outcome)}")

    def transition(self, run: Mapping[str, Any], at: datetime, source: str,
                   target: str) -> None:
        """A run moved from ``source`` to ``target`` (a step, or ``exit:<outcome>``)."""
        self.add(run, at, f"transitions.{escape(source)}.{escape(target)}")

    def conversion(self, run: Mapping[str, Any], at: datetime, total: Decimal | None,
                   currency: str | None) -> None:
        self.add(run, at, "conversions.orders")
        if total is not None and currency:
            self.add(run, at, f"revenue.{escape(currency)}", total)

    def merge(self, other: Counters) -> None:
        for key, (identity, incs) in other.docs.items():
            mine = self.docs.setdefault(key, (identity, {}))[1]
            for path, amount in incs.items():
                mine[path] = mine.get(path, 0) + amount

    def updates(self) -> list[tuple[str, Doc]]:
        """(document id, update) pairs: ``$inc`` the counters, ``$setOnInsert`` the identity."""
        return [(key, {"$inc": dict(incs), "$setOnInsert": dict(identity)})
                for key, (identity, incs) in self.docs.items()]


# -------------------------------------------------------------- decisions


def run_facts(flow: str, run: Mapping[str, Any]) -> Doc:
    """The part of a run that names its counters (flow, version, variant)."""
    return {"flow": flow, "version": run.get("version"), "variant": run.get("variant")}


def from_outcome(counters: Counters, facts: Iterable[Doc], messages: Iterable[Doc],
                 now: datetime) -> None:
    """Count what a committed decision recorded (``Outcome.stats``) and the messages it wrote.

    Messages: one written ``skipped`` counts under its reason's code; one
    held for quiet hours (due after it was written) counts as
    ``skipped.quiet_hours`` (it goes out at 09:00, and then counts as sent).
    """
    for fact in facts:
        kind = fact["kind"]
        if kind == "started":
            counters.run_started(fact, now)
        elif kind == "ended":
            counters.run_ended(fact, now, fact["outcome"])
            if fact.get("from") is not None:
                counters.transition(fact, now, fact["from"], EXIT + fact["outcome"])
        elif kind in ("reached", "replied"):
            counters.step(fact, now, fact["step"], kind)
            if kind == "reached" and fact.get("from") is not None:
                counters.transition(fact, now, fact["from"], fact["step"])
        elif kind == "skipped":
            counters.skipped(fact, now, fact["step"], fact["reason"])
    for message in messages:
        if message.get("direction") != "out" or not message.get("flow"):
            continue
        run = message_run(message)
        step = message.get("step") or "send"
        if message.get("status") == "skipped":
            counters.skipped(run, now, step, reason_code(message.get("error")))
        elif message.get("due_at") is not None and message["due_at"] > message["at"]:
            counters.skipped(run, now, step, "quiet_hours")


def message_run(message: Mapping[str, Any]) -> Doc:
    """The counters' names of a flow message (as ``carry_out`` stamps them)."""
    return {"flow": message["flow"], "version": message.get("flow_version"),
            "variant": message.get("variant")}


def reply(question: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> Doc | None:
    """The ``replied`` fact when a customer's message answered the pending ``question``.

    ``after`` is the question once the message was decided: an answered one
    is cleared (or replaced by the next question).
    """
    if not question or not question.get("flow") or not question.get("step"):
        return None
    if after and after.get("message_id") == question.get("message_id"):
        return None
    return {"kind": "replied", "flow": question["flow"], "version": question.get("version"),
            "variant": question.get("variant"), "step": question["step"]}


# -------------------------------------------------------- sends and receipts


def input_facts(item: Doc, before: Mapping[str, Any], after: Mapping[str, Any],
                now: datetime) -> list[Doc]:
    """Facts a decision's outcome does not hold, seen by comparing the customer before
    and after it: a reply to a flow's question, and an order with the runs it may count for.

    A reply is a customer's message (not a keyword) that the decision
    took as the answer: the question is cleared or replaced. An order
    keeps the customer's recent runs as they were before it was decided
    (``attribution``, kept by :func:`remember_message`). The processor and
    the backtest's replay both call this after each input.
    """
    kind = inbox_kind(item)
    payload = item.get("payload") or {}
    if kind == "message" and not (payload.get("kind") == "text"
                                  and detect(payload.get("text") or "")):
        replied = reply(before.get("question"), after.get("question"))
        return [replied] if replied else []
    if kind == "event" and payload.get("type") == "order.placed":
        data = payload.get("data") or {}
        try:
            at = min(datetime.fromisoformat(payload["occurred_at"]), now)
        except (KeyError, TypeError, ValueError):
            at = now
        return [{"kind": "order", "at": at, "total": data.get("total"),
                 "currency": data.get("currency"),
                 "candidates": before.get("attribution", [])}]
    return []


def sent_outcome(counters: Counters, message: Mapping[str, Any], now: datetime,
                 outcome: str, code: str | None = None) -> None:
    """A send pass settled a flow's message: ``sent``, ``failed`` or ``skipped`` (``code``)."""
    if not message.get("flow"):
        return
    run, step = message_run(message), message.get("step") or "send"
    if outcome == "skipped":
        counters.skipped(run, now, step, code or "other")
    else:
        counters.step(run, now, step, outcome)


def receipt_outcome(counters: Counters, message: Mapping[str, Any], ranks: Iterable[int],
                    now: datetime) -> None:
    """Count what a pass of receipts moved a message to: delivered and read once each.

    ``message`` as it was before the pass (``status_rank``); ``ranks`` those
    of its receipts in the pass. A read receipt implies delivery. A failure
    reported after the message was sent counts as failed.
    """
    if not message.get("flow"):
        return
    before = message.get("status_rank") or 0
    after = max([before, *ranks])
    run, step = message_run(message), message.get("step") or "send"
    if after >= FAILED:
        if before < FAILED:
            counters.step(run, now, step, "failed")
        return
    if before < DELIVERED <= after:
        counters.step(run, now, step, "delivered")
    if before < READ <= after:
        counters.step(run, now, step, "read")


# ------------------------------------------------------------- attribution


def remember_message(doc: Doc, run: Mapping[str, Any], flow: str, message_id: str) -> None:
    """Keep the message among the customer's recent runs' messages, for attribution.

    A bounded list in the customer document (``attribution``), updated in
    the commit that already happens: the latest :data:`MAX_ATTRIBUTED_RUNS`
    runs, the latest :data:`MAX_ATTRIBUTED_MESSAGES` messages of each.
    Whether and when each was delivered is read when an order comes.
    """
    entries = doc.setdefault("attribution", [])
    entry = next((e for e in entries if e["run"] == run["run"]), None)
    if entry is None:
        entry = {**run_facts(flow, run), "run": run["run"], "messages": []}
        entries.append(entry)
    else:
        entries.remove(entry)
        entries.append(entry)
    entry["messages"] = [*entry["messages"], message_id][-MAX_ATTRIBUTED_MESSAGES:]
    del entries[:-MAX_ATTRIBUTED_RUNS]


def reached_at(message: Mapping[str, Any]) -> datetime | None:
    """When a message reached the customer: its first delivery (or read) receipt's time,
    else its send time; None if it never went out or failed."""
    if (message.get("status_rank") or 0) >= FAILED or message.get("status") in (
            "failed", "undelivered", "skipped"):
        return None
    for entry in message.get("status_history") or []:
        if entry.get("status") in ("delivered", "read") and entry.get("at") is not None:
            at: datetime = entry["at"]
            return at
    sent: datetime | None = message.get("sent_at")
    return sent


def attribute(order_at: datetime, candidates: Iterable[Mapping[str, Any]],
              messages: Mapping[Any, Mapping[str, Any]], window: timedelta) -> list[Doc]:
    """The runs an order counts for: per flow, the latest run one of whose messages
    reached the customer at most ``window`` before the order."""
    chosen: dict[str, tuple[datetime, Doc]] = {}
    for candidate in candidates:
        times = [at for mid in candidate.get("messages", [])
                 if mid in messages and (at := reached_at(messages[mid])) is not None
                 and at <= order_at <= at + window]
        if not times:
            continue
        latest = max(times)
        flow = candidate["flow"]
        if flow not in chosen or chosen[flow][0] < latest:
            chosen[flow] = (latest, dict(candidate))
    return [run for _, run in chosen.values()]


def count_order(counters: Counters, order: Mapping[str, Any],
                messages: Mapping[Any, Mapping[str, Any]], window: timedelta) -> None:
    """Count an order (an ``input_facts`` order) for the runs :func:`attribute` gives it,
    ``messages`` holding its candidates' messages as they reached the customer:
    the processor's read from the database, the backtest's simulated sends."""
    for run in attribute(order["at"], order.get("candidates") or [], messages, window):
        counters.conversion(run, order["at"], money(order.get("total")),
                            order.get("currency"))


# ---------------------------------------------------------------- reading


def _plain(value: Any) -> Any:
    """A stored counter as a Python number (Decimal128 -> Decimal)."""
    to_decimal = getattr(value, "to_decimal", None)
    return to_decimal() if to_decimal is not None else value


def _add_into(target: Doc, source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping):
            _add_into(target.setdefault(key, {}), value)
        else:
            target[key] = target.get(key, 0) + _plain(value)


def step_order(flow: Flow | None, names: Iterable[str]) -> list[str]:
    """Declared steps in their reading order (``Flow.steps``), then any others by name."""
    declared = list(getattr(flow, "steps", None) or ()) if flow is not None else []
    seen = set(names)
    return [name for name in declared if name in seen] + sorted(seen - set(declared))


def decimal_text(amount: Any) -> str:
    """An exact sum as a plain decimal string (no exponent)."""
    return format(Decimal(amount), "f")


def _figures(total: Doc, flow: Flow | None, declared: bool) -> Doc:
    steps = {unescape(name): counts for name, counts in total.get("steps", {}).items()}
    names = set(steps)
    if declared and flow is not None:
        names |= set(getattr(flow, "steps", None) or ())
    rows = []
    for name in step_order(flow, names):
        counts = steps.get(name, {})
        row: Doc = {"step": name, "reached": int(counts.get("reached", 0))}
        row.update({key: int(counts.get(key, 0)) for key in MESSAGE_FIELDS})
        row["skipped"] = {unescape(k): int(v) for k, v in sorted(counts.get("skipped", {}).items())}
        rows.append(row)
    runs = total.get("runs", {})
    figures: Doc = {
        "runs": {"started": int(runs.get("started", 0)),
                 "ended": {unescape(k): int(v) for k, v in sorted(runs.get("ended", {}).items())}},
        "steps": rows,
        "conversions": {
            "orders": int(total.get("conversions", {}).get("orders", 0)),
            "revenue": {unescape(k): decimal_text(v)
                        for k, v in sorted(total.get("revenue", {}).items())}},
    }
    moved = _transitions(total)
    if moved is not None:
        figures["transitions"] = moved
    return figures


def _transitions(total: Mapping[str, Any]) -> list[Doc] | None:
    """``[{"from", "to", "count"}]`` when every move of the period was counted, else None.

    Each step reached (but the first, ``started``) and each run ended counts
    one transition; a period with a day counted before transitions were has
    fewer, and its edges are then left to the diagram's estimate rather than
    shown low.
    """
    pairs = [(unescape(source), unescape(target), int(n))
             for source, targets in sorted(total.get("transitions", {}).items())
             for target, n in sorted(targets.items())]
    steps = total.get("steps", {})
    expected = sum(int(counts.get("reached", 0)) for name, counts in steps.items()
                   if unescape(name) != START)
    expected += sum(int(n) for n in total.get("runs", {}).get("ended", {}).values())
    if sum(n for _, _, n in pairs) != expected:
        return None
    return [{"from": source, "to": target, "count": n} for source, target, n in pairs]


def _active(all_time: Iterable[Mapping[str, Any]]) -> int:
    started = ended = 0
    for doc in all_time:
        runs = doc.get("runs", {})
        started += int(runs.get("started", 0))
        ended += sum(int(n) for n in runs.get("ended", {}).values())
    return max(0, started - ended)


def summarize(flow: Flow | None, days: Iterable[Mapping[str, Any]],
              all_time: Iterable[Mapping[str, Any]]) -> Doc:
    """A period's figures from its daily documents (and the all-time ones, for ``active``).

    Adds ``variants`` (the same figures per variant) when any document has one.
    """
    days, all_time = list(days), list(all_time)
    total: Doc = {}
    by_variant: dict[str, Doc] = {}
    for doc in days:
        counted = {k: doc[k] for k in ("runs", "steps", "transitions", "conversions", "revenue")
                   if k in doc}
        _add_into(total, counted)
        if doc.get("variant") is not None:
            _add_into(by_variant.setdefault(str(doc["variant"]), {}), counted)
    figures = _figures(total, flow, declared=True)
    figures["runs"]["active"] = _active(all_time)
    if by_variant or any(doc.get("variant") is not None for doc in all_time):
        variants = {}
        for name in sorted(by_variant.keys() | {str(d["variant"]) for d in all_time
                                                 if d.get("variant") is not None}):
            one = _figures(by_variant.get(name, {}), flow, declared=False)
            one["runs"]["active"] = _active(d for d in all_time if str(d.get("variant")) == name)
            variants[name] = one
        figures["variants"] = variants
    return figures
