"""The API a rule uses to act: it records commands and never does I/O.

Inside a durable_rules action, call these with the action's context ``c``::

    @when_all(m.type == "cart.abandoned")
    def start(c):
        ask(c, "¿Sigues interesado?", name="interested",
            choices=[("yes", "Sí"), ("no", "No")], timeout=days(1))

The runtime collects the commands of one decision and, once the decision is
over, turns them into state changes, outbox messages and scheduled waits,
committed together. A rule can therefore be replayed after a crash without
sending twice: every message's id derives from (customer, flow run, step).

Every command takes the action's context ``c`` first, although most never
read it: the commands of the running decision go to a recorder the runtime
sets for it (a context variable), not to ``c``. ``c`` stays so that every
call in a flow has one shape, ``command(c, ...)``, which also says where a
command may be called (inside an action, where ``c`` exists) and keeps
flows unchanged should the recorder ever travel on ``c`` instead.

The customer's facts (first name, locale, tags, attrs, consents, active
flows, pending question, and the purchase history of
:mod:`bot.core.purchases`: orders count, first and last order, total spent
per currency, products and categories bought, the last order's items) are
read in actions with :func:`customer`, a plain dict; :mod:`bot.core.segments`
tests them. The same facts also travel in every event as ``m.customer``, only
because durable_rules conditions can test nothing but the event's fields:
use ``m.customer`` in a ``when_all`` condition (e.g.
``m.customer.locale == "pt"``), and ``customer(c)`` everywhere else.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.core.flow_overrides import NO_OVERRIDES, OVERRIDES, FlowOverrides
from bot.types import ConsentState

ChoiceSpec = tuple[str, str]


@dataclass
class Send:
    """Send a message to the customer (``ask`` is a ``Send`` with a question)."""

    text: str | None = None
    choices: list[ChoiceSpec] = field(default_factory=list)
    template: tuple[str, list[str]] | None = None
    step: str | None = None
    channel: str | None = None
    transactional: bool = False
    question: str | None = None
    timeout: float | None = None
    channels: tuple[str, ...] = ()


@dataclass
class After:
    """Post ``event`` to this flow ``seconds`` from now (or at ``at``)."""

    event: dict[str, Any]
    seconds: float | None = None
    at: datetime | None = None
    key: str | None = None


@dataclass
class Tag:
    tag: str
    remove: bool = False


@dataclass
class SetAttr:
    name: str
    value: Any


@dataclass
class Handoff:
    reason: str


@dataclass
class Exit:
    outcome: str = "exited"


@dataclass
class Emit:
    event: dict[str, Any]


@dataclass
class Step:
    """Record a step of the flow run (for statistics) without sending."""

    name: str
    outcome: str = "ok"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Consent:
    """Change marketing consent on a channel (opt-out flows)."""

    channel: str
    state: ConsentState
    source: str


@dataclass
class IssueCode:
    """A single-use discount code issued to the customer (recorded against them)."""

    code: str
    purpose: str


@dataclass
class Split:
    """The variant a split chose for this run (recorded as the step ``name``)."""

    name: str
    variant: str


@dataclass
class Watch:
    """Wait for the fate of the message this run sent at ``step`` (``until``), or ``timeout``."""

    step: str
    until: str = "read"
    timeout: float | None = None


Command = (Send | After | Tag | SetAttr | Handoff | Exit | Emit | Step | Consent | IssueCode
           | Split | Watch)


@dataclass
class Recorder:
    """Where the commands of the running decision go, per flow."""

    flow: str
    customer: str = ""  # the internal id (bot.types)
    run: str = ""
    code_pattern: str = "CODE-{code}"
    settings: dict[str, Any] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[Recorder] = contextvars.ContextVar("chasqui_recorder")


def _record(command: Command) -> None:
    try:
        _current.get().commands.append(command)
    except LookupError:
        raise RuntimeError(
            "flow commands can only be used inside a rule run by the runtime") from None


def recording(recorder: Recorder) -> contextvars.Token[Recorder]:
    """Make ``recorder`` the destination of commands (the runtime's call)."""
    return _current.set(recorder)


def stop_recording(token: contextvars.Token[Recorder]) -> None:
    _current.reset(token)


def customer(c: Any = None) -> dict[str, Any]:
    """The customer facts of the running decision (profile, tags, consents, flows).

    The one way to read them in an action; see the module docstring for ``m.customer``.
    """
    return _current.get().facts


def config(c: Any, name: str, default: Any = None) -> Any:
    """A setting flows may read (``survey_after_days``, ``review_url``, ...)."""
    return _current.get().settings.get(name, default)


def _overrides(recorder: Recorder) -> FlowOverrides:
    found = recorder.settings.get(OVERRIDES)
    return found if isinstance(found, FlowOverrides) else NO_OVERRIDES


def timing(c: Any, name: str, default: float) -> float:
    """The wait ``name`` of the running flow in seconds: the store's, else ``default``.

    A store changes a flow's waits in the flow settings file
    (``[flows.<flow>.timings]``, README "Flow settings file"); the flow
    declares the names it reads in its module's ``TIMINGS``, so the file is
    checked at start-up: ``after(c, timing(c, "reminder_after", days(2)), ...)``.
    """
    recorder = _current.get()
    found = _overrides(recorder).timing(recorder.flow, name)
    return default if found is None else found


def text_overrides(c: Any, locale: str) -> Mapping[str, str]:
    """The store's texts in ``locale`` for the running flow (key -> text); often none.

    ``say`` and ``pick`` (``rules/_texts.py``) read them before the flow's
    own ``TEXTS``. Empty outside a rule run by the runtime.
    """
    recorder = _current.get(None)
    if recorder is None:
        return {}
    return _overrides(recorder).texts.get(recorder.flow, {}).get(locale, {})


def seconds(n: float) -> float:
    return float(n)


def minutes(n: float) -> float:
    return n * 60.0


def hours(n: float) -> float:
    return n * 3600.0


def days(n: float) -> float:
    return n * 86400.0


def _choices(choices: list[ChoiceSpec] | list[str] | None) -> list[ChoiceSpec]:
    return [(item, item) if isinstance(item, str) else (item[0], item[1]) for item in choices or []]


def send(
    c: Any,
    text: str | None = None,
    *,
    choices: list[ChoiceSpec] | list[str] | None = None,
    template: tuple[str, list[str]] | None = None,
    step: str | None = None,
    channel: str | None = None,
    channels: Sequence[str] = (),
    transactional: bool = False,
) -> None:
    """Send ``text`` (optionally with choices) or a template.

    The channel is the conversation's when the customer wrote to us, else
    the customer's first consented channel. A flow's messages are marketing
    unless ``transactional`` (an answer the customer asked for).

    ``channels`` is a fallback chain, e.g. ``("whatsapp", "sms", "email")``:
    the first one the send policy does not skip takes the message (no
    consent, window closed without a template, an undeliverable address);
    if it is refused at send time for such a reason (or WhatsApp's 131049 /
    131050), the next one is tried, once each, and the reasons are recorded
    on the message and the run. A step never reaches the customer twice.
    """
    if channel is not None and channels:
        raise ValueError("send() takes channel or channels, not both")
    _record(Send(text=text, choices=_choices(choices), template=template, step=step,
                 channel=channel, transactional=transactional, channels=tuple(channels)))


def ask(
    c: Any,
    text: str,
    *,
    name: str,
    choices: list[ChoiceSpec] | list[str] | None = None,
    timeout: float | None = None,
    template: tuple[str, list[str]] | None = None,
    step: str | None = None,
    transactional: bool = False,
) -> None:
    """Send a question and wait for the reply.

    The reply arrives as ``{"type": "message", "question": name, ...}``;
    without one within ``timeout`` seconds the flow gets
    ``{"type": "timeout", "question": name}``. A newer question replaces it.
    """
    _record(Send(text=text, choices=_choices(choices), template=template, step=step or name,
                 question=name, timeout=timeout, transactional=transactional))


def after(c: Any, delay: float | timedelta | None = None, event: dict[str, Any] | None = None,
          *, at: datetime | None = None, key: str | None = None) -> None:
    """Post ``event`` to this flow later: ``delay`` seconds from now or ``at`` a time.

    A wait with the same ``key`` replaces the earlier one.
    """
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if event is None or "type" not in event:
        raise ValueError("after() needs an event with a 'type'")
    _record(After(event=dict(event), seconds=delay, at=at, key=key))


def tag(c: Any, name: str) -> None:
    _record(Tag(name))


def untag(c: Any, name: str) -> None:
    _record(Tag(name, remove=True))


def set_attr(c: Any, name: str, value: Any) -> None:
    """Remember ``value`` on the customer (``attrs.<name>``), visible to every flow."""
    _record(SetAttr(name, value))


def handoff(c: Any, reason: str) -> None:
    """Ask a human: the conversation becomes ``needs_agent`` with ``reason``."""
    _record(Handoff(reason))


def exit_flow(c: Any, outcome: str = "exited") -> None:
    """End this flow's run for this customer."""
    _record(Exit(outcome))


def emit(c: Any, event: dict[str, Any]) -> None:
    """Post a new event to every flow in this same decision (forward chaining)."""
    if "type" not in event:
        raise ValueError("emit() needs an event with a 'type'")
    _record(Emit(dict(event)))


def step(c: Any, name: str, outcome: str = "ok", **data: Any) -> None:
    """Record a named step with an outcome (e.g. the reason a customer gave)."""
    _record(Step(name, outcome, data))


def set_consent(c: Any, channel: str, state: ConsentState,
                source: str) -> None:
    """Grant or revoke marketing consent on ``channel``; ``source`` says why, in the ledger.

    Only these two states exist: a pause is a revocation (the sunset flow
    tags ``marketing_paused`` besides), so the sender needs one check.
    """
    _record(Consent(channel, state, source))


def issue_code(c: Any, purpose: str) -> str:
    """Issue a single-use discount code and return it, to put in a message.

    The code derives from (customer, flow run, purpose) through the
    ``DISCOUNT_PATTERN`` setting, so a replayed decision issues the same code
    and the ``codes`` collection records it once.
    """
    recorder = _current.get()
    digest = hashlib.sha256(f"{recorder.customer}|{recorder.run}|{purpose}".encode())
    code = recorder.code_pattern.format(code=digest.hexdigest()[:8].upper())
    _record(IssueCode(code, purpose))
    return code


FATES = ("delivered", "read", "clicked", "failed")
"""What :func:`watch` can wait for: how far a message got (clicked: e-mail), or its failure."""


def watch(c: Any, step: str, until: str = "read", *,
          timeout: float | timedelta | None = None) -> None:
    """Wait until the message this rule just sent at ``step`` is ``until``, for ``timeout``.

    ``until`` is one of :data:`FATES`. A message that gets that far (or
    further: a read message was delivered) brings this run
    ``{"type": "message.<until>", "step": step, "message_id", "channel"}``;
    one that fails brings ``{"type": "message.failed", "step": step, ...}``
    (also when the send policy skipped it, with ``skipped: True`` and its
    ``reason``); without either within ``timeout`` seconds the run gets
    ``{"type": "message.timeout", "step": step, "until": until}``. Only the
    first of them arrives. Call it after the ``send``, in the same rule::

        send(c, text, step="offer", channel="whatsapp")
        watch(c, "offer", until="read", timeout=days(2))

    Raises:
        ValueError: ``until`` is not a fate, or ``timeout`` is not positive.
    """
    if until not in FATES:
        raise ValueError(f"watch(): until must be one of {', '.join(FATES)}, not {until!r}")
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"watch(): timeout must be a number of seconds > 0, not {timeout!r}")
    _record(Watch(step, until, timeout))


def split_variant(customer_id: str, run: str, name: str, weights: dict[str, int]) -> str:
    """The variant of ``weights`` that (customer, run, split name) falls in; pure.

    The SHA-256 of the three names, read as a 64-bit number, picks a point
    in ``[0, sum of weights)``; the variants share that range by weight, in
    the order of their names, so the same weights written in another order
    choose the same variant.
    """
    _check_split(name, weights)
    digest = hashlib.sha256(f"{customer_id}|{run}|{name}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(weights.values())
    for variant in sorted(weights):
        point -= weights[variant]
        if point < 0:
            return variant
    raise AssertionError("unreachable: the point lies below the total weight")


def _check_split(name: object, weights: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"split name must be a non-empty string, not {name!r}")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"split {name!r}: weights must be a non-empty dict of variant -> "
                         f"positive int, not {weights!r}")
    for variant, weight in weights.items():
        if not isinstance(variant, str) or not variant:
            raise ValueError(f"split {name!r}: variant {variant!r} must be a non-empty string")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            raise ValueError(f"split {name!r}: weight of {variant!r} must be a positive int, "
                             f"not {weight!r}")


def split(c: Any, name: str, weights: dict[str, int]) -> str:
    """Put the customer in one variant of the split ``name`` and return it, e.g. ``"a"``.

    ``weights`` maps each variant to a positive int share: ``{"a": 50, "b":
    50}``, ``{"control": 9, "offer": 1}``. The choice is deterministic per
    (customer, flow run, split name) (:func:`split_variant`), so a replayed
    decision, or the same split asked again in the run, gets the same
    variant, and the next run of the flow draws again.

    The run records the step ``name`` with the variant as its outcome (once
    per run), and the variant becomes the run's variant: the flow's statistics
    (``/api/flows/{name}/stats``) then count the run, its messages and its
    conversions under ``variants.<variant>``. Split in the rule that starts
    the run (before its first message), so the whole run counts under its
    variant; a run's first split sets its variant, later ones only record
    their step. Declare ``name`` as a ``"record"`` step of the flow.

    Raises:
        ValueError: ``name`` is empty, or ``weights`` is not a non-empty dict
            of variant name -> positive int (the message names the bad entry).
    """
    _check_split(name, weights)
    recorder = _current.get(None)
    if recorder is None:
        raise RuntimeError("flow commands can only be used inside a rule run by the runtime")
    variant = split_variant(recorder.customer, recorder.run, name, weights)
    _record(Split(name, variant))
    return variant
