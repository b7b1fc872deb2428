"""One send policy: may this message go to this customer now, and as what?

A message is checked twice: when a decision writes it (``compose.build_message``)
and again when the sender is about to hand it to its provider
(``runtime.sender``), because consent, the conversation's owner and
WhatsApp's window may all change in between. Both points call
:func:`may_send`, so the rules are written once. The rules, in the order
their reasons win:

1. **Channel**: a message needs a channel that is configured.
2. **Consent**: marketing needs the customer's consent on that channel.
   Replies to what the customer just wrote and transactional messages are
   not marketing (the decision records ``marketing`` that way).
3. **Frequency cap** (decision only): at most ``marketing_cap`` marketing
   messages per customer in a window. It counts messages as they are
   queued, so a queued message is never held back by its own count.
4. **Address**: the customer must be reachable on the channel, at an
   address no provider has reported dead (``undeliverable``: a number
   that does not exist, or is not on WhatsApp). A dead address gets
   nothing, not even an answer; the mark goes when the customer writes from
   it again or the store gives a new one.
5. **Agent hold**: a conversation with a person (``agent``), or waiting
   for one (``needs_agent``), gets no message from the bot. A person's own
   messages always go. At send time two kinds of message written while the
   bot still had the conversation go out anyway: a flow's message written
   before the flow asked for a person (its ``seq`` is not after
   ``handoff_seq``: "someone will answer you shortly"), and the service's
   own answers to a keyword (HELP, STOP), which have no flow. At decision
   time every message is written after the hand-off, so the same rule holds
   them all.
6. **Service window**: on a channel with one (WhatsApp), outside 24 h since
   the customer last wrote, only the step's approved template may go; a
   step without one is skipped.
7. **Send windows** (decision only): marketing waits for its window in the
   customer's timezone (``bot.core.send_windows``): by default the end of
   quiet hours, 09:00 when decided between 21:00 and 09:00; the flow
   settings file may give a flow, or one step of it, its own hour, days and
   do-not-disturb dates (``policy.windows``). The sender sends what is due;
   a retry's backoff is not moved again.

Pure: no database, no clock of its own, no provider. The channel's part
(which channels have a window, what they are called) comes from the
:class:`~bot.core.channel.ChannelTraits` in ``policy.channels``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.channel import ChannelTraits
from bot.core.customers import has_consent
from bot.core.send_windows import QUIET_HOURS, SendWindow, SendWindows, next_allowed
from bot.types import Doc

Stage = Literal["decision", "send"]
WINDOW = timedelta(hours=24)
QUIET_START, QUIET_END = QUIET_HOURS


@dataclass(frozen=True)
class SendPolicy:
    """The settings a send decision needs.

    ``channels`` are the configured channels in the order a message picks
    one (the registry's contract order); the core never names a channel.
    """

    channels: Mapping[str, ChannelTraits] = field(default_factory=dict)
    default_timezone: str = "America/Argentina/Buenos_Aires"
    quiet_hours: bool = True
    marketing_cap: int = 0  # marketing messages per customer per window; 0: no cap
    marketing_cap_window: timedelta = timedelta(days=7)
    # The flow settings file's send windows, over the base (quiet hours or none).
    windows: SendWindows = field(default_factory=SendWindows)


@dataclass(frozen=True)
class Verdict:
    """What to do with a message: ``send`` it, ``skip`` it (``reason``) or ``defer`` it.

    ``until`` is when a deferred message may go; ``template`` is what to send
    instead of the text (outside a service window), or None for the text.
    """

    action: Literal["send", "skip", "defer"]
    reason: str | None = None
    until: datetime | None = None
    template: Doc | None = None
    # A skip's stable key for statistics (REASON_CODES); it follows from the
    # reason, so it takes no part in comparing verdicts.
    code: str | None = field(default=None, compare=False)

    @property
    def skipped(self) -> bool:
        return self.action == "skip"


# A skip's reason as a stable key, for statistics (``bot.core.stats``); the
# text, for people, may change wording. ``quiet_hours`` is a hold, not a
# skip: the message goes out at 09:00 (statistics count it as held there).
REASON_CODES = ("consent", "quiet_hours", "frequency_cap", "window", "agent", "no_channel",
                "undeliverable", "other")
# Skips after which a step's fallback chain may try its next channel: the
# channel cannot carry it (no consent there, window closed without a template,
# a dead address, not configured). A person holding the conversation, the
# frequency cap or anything else holds the whole step: no other channel.
FALLBACK_CODES = frozenset({"consent", "window", "undeliverable", "no_channel"})
# Prefixes of the texts below, so a reason stored as text (a skipped message's
# ``error``) gives back its code: (prefix, code), first match wins.
_TEXT_CODES = (("no channel the customer consented to", "consent"), ("no channel", "no_channel"),
               ("channel ", "no_channel"), ("no address", "no_channel"),
               ("address undeliverable", "undeliverable"),
               ("no marketing consent", "consent"), ("frequency cap", "frequency_cap"),
               ("an agent has", "agent"), ("outside the ", "window"))


def _skip(reason: str, code: str) -> Verdict:
    return Verdict("skip", reason=reason, code=code)


def reason_code(reason: str | None) -> str:
    """The stable key of a skip reason written as text by :func:`may_send` (``other`` if none)."""
    text = reason or ""
    return next((code for prefix, code in _TEXT_CODES if text.startswith(prefix)), "other")


def may_send(message: Doc, customer: Doc | None, now: datetime, policy: SendPolicy,
             *, stage: Stage = "send") -> Verdict:
    """The policy's verdict on ``message`` for ``customer`` at ``now``.

    Args:
        message: the message document (as ``build_message`` writes it: ``channel``,
            ``to``/``to_user_id``, ``marketing``, ``flow``, ``agent``, ``seq``,
            ``template``, ``fallback_template``).
        customer: the customer's document; None when it is gone.
        stage: ``"decision"`` when the message is being written, ``"send"``
            when it is about to be handed to its provider (see the module
            docstring for the rules that apply only at one of them).
    """
    name = message.get("channel")
    marketing = bool(message.get("marketing"))
    if name is None:
        return _skip("no channel the customer consented to" if marketing else "no channel",
                     "consent" if marketing else "no_channel")
    channel = policy.channels.get(name)
    if channel is None:
        return _skip(f"channel {name} is not configured", "no_channel")
    if customer is None:
        return _skip("customer not found", "other")
    if marketing and not has_consent(customer, name):
        when = " at send time" if stage == "send" else ""
        return _skip(f"no marketing consent on {name}{when}", "consent")
    if marketing and stage == "decision":
        capped = over_cap(customer, now, policy)
        if capped:
            return _skip(capped, "frequency_cap")
    if not (message.get("to") or message.get("to_user_id")):
        return _skip(f"no address on {name}", "no_channel")
    dead = undeliverable(customer, name, message.get("to"), message.get("to_user_id"))
    if dead is not None:
        return _skip(f"address undeliverable on {name} ({dead.get('code')})", "undeliverable")
    if held_for_agent(message, customer, stage):
        return _skip("an agent has the conversation", "agent")
    template = message.get("template")
    if channel.has_service_window and template is None and not in_window(customer, name, now):
        template = message.get("fallback_template")
        if template is None:
            return _skip(f"outside the {channel.title} 24-hour window "
                         "and the step has no template", "window")
    if marketing and stage == "decision":
        due = not_before(customer, now, policy, message)
        if due > now:
            return Verdict("defer", until=due, template=template)
    return Verdict("send", template=template)


def undeliverable(customer: Doc, channel: str, to: str | None,
                  user_id: str | None) -> Doc | None:
    """The provider's report that the address on ``channel`` is dead, if it is this address.

    A report names the address it was about, so a new phone from the store
    is not held back by the old one's report.
    """
    mark: Doc | None = (customer.get("undeliverable") or {}).get(channel)
    if mark is None or mark.get("address") not in {to, user_id} - {None}:
        return None
    return mark


def held_for_agent(message: Doc, customer: Doc, stage: Stage) -> bool:
    """Whether a person has (or is awaited in) the message's conversation (rule 5)."""
    if message.get("agent") is not None:
        return False
    if stage == "send" and not message.get("flow"):
        return False  # the service's answer to a keyword, written while the bot had it
    conversation = customer.get("conversations", {}).get(message["channel"], {})
    status: str | None = conversation.get("status")
    seq: int = message["seq"]
    return status == "agent" or (status == "needs_agent"
                                 and seq > conversation.get("handoff_seq", 0))


def in_window(customer: Doc, channel: str, now: datetime) -> bool:
    """The customer-service window: 24 h since the customer's last message on ``channel``."""
    last = customer.get("last_in", {}).get(channel)
    return last is not None and now - last < WINDOW


def _recent_marketing(customer: Doc, now: datetime, policy: SendPolicy) -> list[datetime]:
    """When the marketing messages still inside the cap's window were queued."""
    since = now - policy.marketing_cap_window
    return [at for at in customer.get("marketing_log", []) if at > since]


def over_cap(customer: Doc, now: datetime, policy: SendPolicy) -> str | None:
    """Why one more marketing message would break the frequency cap, if it would."""
    if policy.marketing_cap <= 0:
        return None
    if len(_recent_marketing(customer, now, policy)) < policy.marketing_cap:
        return None
    days = policy.marketing_cap_window / timedelta(days=1)
    return (f"frequency cap: {policy.marketing_cap} marketing message(s) "
            f"in {days:g} day(s) already")


def record_marketing(customer: Doc, now: datetime, policy: SendPolicy) -> None:
    """Count a queued marketing message against the cap (the log keeps one window)."""
    if policy.marketing_cap > 0:
        customer["marketing_log"] = [*_recent_marketing(customer, now, policy), now]


def send_window(policy: SendPolicy, message: Doc | None = None) -> SendWindow:
    """The window of ``message`` (its ``flow`` and ``step``): the store's when None."""
    base = SendWindow(quiet=QUIET_HOURS if policy.quiet_hours else None)
    message = message or {}
    return policy.windows.window(base, message.get("flow"), message.get("step"))


def not_before(customer: Doc, now: datetime, policy: SendPolicy,
               message: Doc | None = None) -> datetime:
    """``now``, or when the message's send window next opens in the customer's timezone.

    Without a flow settings file that is the end of quiet hours (21:00-09:00).
    """
    window = send_window(policy, message)
    if window.always:
        return now
    name = customer.get("profile", {}).get("timezone") or policy.default_timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file can have
        zone = ZoneInfo(policy.default_timezone)
    local = now.astimezone(zone)
    allowed = next_allowed(window, local)
    return now if allowed == local else allowed.astimezone(now.tzinfo)
