"""Turning a ``send``/``ask`` into an outbox message: pure decisions.

Which channel, whether consent and the frequency cap allow it, whether an
agent holds the conversation, whether WhatsApp's 24-hour window needs the
flow's template, and when it may go out (quiet hours for marketing). The result is the
message document that the outbox sender claims; a message that must not go
out is still written, with status ``skipped`` and the reason, so agents and
statistics see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.customers import has_consent
from bot.core.inputs import CHANNEL_ORDER

Doc = dict[str, Any]
WINDOW = timedelta(hours=24)
QUIET_START, QUIET_END = time(21, 0), time(9, 0)


@dataclass(frozen=True)
class SendPolicy:
    """The settings a send decision needs."""

    channels: frozenset[str]
    default_timezone: str = "America/Argentina/Buenos_Aires"
    quiet_hours: bool = True
    status_callback: str | None = None
    marketing_cap: int = 0  # marketing messages per customer per window; 0: no cap
    marketing_cap_window: timedelta = timedelta(days=7)


def _recent_marketing(doc: Doc, now: datetime, policy: SendPolicy) -> list[datetime]:
    """When the marketing messages still inside the cap's window were queued."""
    since = now - policy.marketing_cap_window
    return [at for at in doc.get("marketing_log", []) if at > since]


def over_cap(doc: Doc, now: datetime, policy: SendPolicy) -> str | None:
    """Why one more marketing message would break the frequency cap, if it would."""
    if policy.marketing_cap <= 0:
        return None
    if len(_recent_marketing(doc, now, policy)) < policy.marketing_cap:
        return None
    days = policy.marketing_cap_window / timedelta(days=1)
    return (f"frequency cap: {policy.marketing_cap} marketing message(s) "
            f"in {days:g} day(s) already")


def record_marketing(doc: Doc, now: datetime, policy: SendPolicy) -> None:
    """Count a queued marketing message against the cap (the log keeps one window)."""
    if policy.marketing_cap > 0:
        doc["marketing_log"] = [*_recent_marketing(doc, now, policy), now]


def address(doc: Doc, channel: str) -> tuple[str | None, str | None]:
    """(to, to_user_id) for ``channel``, or (None, None) when unreachable there."""
    if channel == "telegram":
        return doc.get("telegram_chat"), None
    if channel == "whatsapp":
        return doc.get("phone"), doc.get("wa_user_id")
    return doc.get("phone"), None


def conversation_id(customer_id: str, channel: str) -> str:
    return f"{customer_id}:{channel}"


def choose_channel(doc: Doc, policy: SendPolicy, marketing: bool) -> str | None:
    """The first configured, reachable (and, for marketing, consented) channel."""
    for channel in CHANNEL_ORDER:
        if channel not in policy.channels:
            continue
        to, user_id = address(doc, channel)
        if not (to or user_id):
            continue
        if marketing and not has_consent(doc, channel):
            continue
        return channel
    return None


def in_window(doc: Doc, channel: str, now: datetime) -> bool:
    """WhatsApp's customer-service window: 24 h since the customer's last message."""
    last = doc.get("last_in", {}).get(channel)
    return last is not None and now - last < WINDOW


def not_before(doc: Doc, now: datetime, policy: SendPolicy) -> datetime:
    """``now``, or the end of the customer's local quiet hours (21:00-09:00)."""
    if not policy.quiet_hours:
        return now
    name = doc.get("profile", {}).get("timezone") or policy.default_timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(policy.default_timezone)
    local = now.astimezone(zone)
    if QUIET_END <= local.time() < QUIET_START:
        return now
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    opening = datetime.combine(day, QUIET_END, tzinfo=zone)
    return opening.astimezone(now.tzinfo)


def build_message(
    doc: Doc,
    *,
    message_id: str,
    now: datetime,
    seq: int,
    policy: SendPolicy,
    text: str | None,
    choices: list[tuple[str, str]],
    template: dict[str, Any] | None,
    fallback_template: dict[str, Any] | None,
    channel: str | None,
    marketing: bool,
    reply: bool,
    flow: str | None = None,
    run: str | None = None,
    step: str | None = None,
    agent: str | None = None,
) -> Doc:
    """The outbox document for one send, or a ``skipped`` one with its reason.

    ``reply`` means the customer just wrote to us in this conversation: no
    quiet hours apply, and it goes out on that channel.
    """
    skipped: str | None = None
    if channel is None:
        channel = choose_channel(doc, policy, marketing)
        if channel is None:
            skipped = "no channel the customer consented to" if marketing else "no channel"
    elif channel not in policy.channels:
        skipped = f"channel {channel} is not configured"
    elif marketing and not reply and not has_consent(doc, channel):
        skipped = f"no marketing consent on {channel}"
    if marketing and not reply and not skipped:
        skipped = over_cap(doc, now, policy)
    to, to_user_id = address(doc, channel) if channel else (None, None)
    if channel and not skipped and not (to or to_user_id):
        skipped = f"no address on {channel}"
    conversation = doc.get("conversations", {}).get(channel or "", {})
    if agent is None and not skipped and conversation.get("status") in ("agent", "needs_agent"):
        skipped = "an agent has the conversation"
    body_template = template
    if (channel == "whatsapp" and not skipped and template is None
            and not in_window(doc, channel, now)):
        if fallback_template is not None:
            body_template = fallback_template
        else:
            skipped = "outside the WhatsApp 24-hour window and the step has no template"
    due = now if (reply or not marketing) else not_before(doc, now, policy)
    message: Doc = {
        "_id": message_id,
        "customer_id": doc["_id"],
        "conversation_id": conversation_id(doc["_id"], channel or "none"),
        "channel": channel,
        "direction": "out",
        "to": to,
        "to_user_id": to_user_id,
        "text": text,
        "choices": [{"id": cid, "title": title} for cid, title in choices],
        "template": body_template,
        "fallback_template": fallback_template if body_template is None else None,
        "marketing": marketing and not reply,
        "flow": flow,
        "run": run,
        "step": step,
        "agent": agent,
        "at": now,
        "seq": seq,
        "attempts": 0,
    }
    if skipped:
        message.update(status="skipped", error=skipped,
                       status_history=[{"status": "skipped", "at": now, "reason": skipped}])
    else:
        message.update(status="queued", outbox=True, due_at=due,
                       status_history=[{"status": "queued", "at": now}])
    return message
