"""Turning a ``send``/``ask`` into an outbox message: pure decisions.

Which channel (the first configured, reachable and, for marketing,
consented one, in the registry's order), the customer's address there, and
the send policy's verdict (:func:`bot.core.policy.may_send`: consent, the
frequency cap, an agent's hold, a service window's template, quiet hours).
The result is the message document that the outbox sender claims; a
message that must not go out is still written, with status ``skipped`` and
the reason, so agents and statistics see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.core.customers import consent_entry, has_consent
from bot.core.policy import (
    FALLBACK_CODES,
    WINDOW,
    SendPolicy,
    Verdict,
    in_window,
    may_send,
    not_before,
    over_cap,
    record_marketing,
)
from bot.types import Doc

__all__ = ["WINDOW", "SendPolicy", "build_message", "choose_channel", "conversation_id",
           "in_window", "not_before", "over_cap", "record_marketing"]


def conversation_id(customer: str, channel: str) -> str:
    return f"{customer}:{channel}"


def choose_channel(doc: Doc, policy: SendPolicy, marketing: bool) -> str | None:
    """The first configured, reachable (and, for marketing, consented) channel."""
    for name, channel in policy.channels.items():
        to, user_id = channel.address(doc)
        if not (to or user_id):
            continue
        if marketing and not has_consent(doc, name):
            continue
        return name
    return None


def _draft(doc: Doc, channel: str | None, policy: SendPolicy, marketing: bool,
           flow: str | None, agent: str | None, seq: int, template: Doc | None,
           fallback_template: Doc | None, step: str | None = None) -> Doc:
    """What :func:`may_send` reads of a message that is not written yet."""
    traits = policy.channels.get(channel) if channel else None
    to, to_user_id = traits.address(doc) if traits else (None, None)
    return {"channel": channel, "to": to, "to_user_id": to_user_id, "marketing": marketing,
            "flow": flow, "agent": agent, "seq": seq, "template": template,
            "fallback_template": fallback_template, "step": step}


def _first_workable(doc: Doc, channels: Sequence[str], now: datetime, seq: int,
                    policy: SendPolicy, marketing: bool, flow: str | None, agent: str | None,
                    template: Doc | None, fallback_template: Doc | None,
                    tried: list[Doc], step: str | None = None,
                    ) -> tuple[str | None, Verdict, list[str]]:
    """The first channel of a fallback chain that the policy does not skip.

    Returns the channel, its verdict and the channels after it; every
    channel passed over is appended to ``tried`` with its reason. When all
    skip, the message stays on the last one, skipped with the last reason.
    """
    verdict = Verdict("skip", reason="no channel", code="no_channel")
    channel: str | None = None
    for index, name in enumerate(channels):
        channel = name
        verdict = may_send(_draft(doc, name, policy, marketing, flow, agent, seq, template,
                                  fallback_template, step), doc, now, policy, stage="decision")
        if not verdict.skipped:
            return name, verdict, list(channels[index + 1:])
        if verdict.code not in FALLBACK_CODES:
            return name, verdict, []  # held for a reason no other channel escapes
        if index < len(channels) - 1:
            tried.append({"channel": name, "reason": verdict.reason, "code": verdict.code,
                          "at": now})
    return channel, verdict, []


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
    channels: Sequence[str] = (),
    fallback_from: Sequence[Doc] = (),
) -> Doc:
    """The outbox document for one send, or a ``skipped`` one with its reason.

    ``reply`` means the customer just wrote to us in this conversation: it is
    not marketing (no consent, cap or quiet hours apply), and it goes out on
    that channel. ``template`` is sent instead of the text (an agent's
    approved template); ``fallback_template`` is what a channel with a
    service window gets outside it.

    ``channels`` is a step's fallback chain ("WhatsApp, else SMS"): the
    first channel of it whose verdict is not a skip takes the message; the
    ones passed over are recorded with their reasons (``fallback_from``,
    which a fallback decided later starts from), the ones after it are kept
    (``fallback_left``) for a fallback at send time. One message, one
    channel: a later channel is tried only once the earlier one did not send.
    """
    tried = list(fallback_from)
    left: list[str] = []
    if channels:
        channel, verdict, left = _first_workable(doc, channels, now, seq, policy, marketing,
                                                 flow, agent, template, fallback_template, tried,
                                                 step)
        reply = False
    else:
        if channel is None:
            channel = choose_channel(doc, policy, marketing)
        verdict = may_send(_draft(doc, channel, policy, marketing and not reply, flow, agent, seq,
                                  template, fallback_template, step), doc, now, policy,
                           stage="decision")
    traits = policy.channels.get(channel) if channel else None
    to, to_user_id = traits.address(doc) if traits else (None, None)
    skipped = verdict.reason if verdict.skipped else None
    body_template = verdict.template
    due = verdict.until or now
    message: Doc = {
        "_id": message_id,
        "customer": doc["_id"],
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
    if tried:
        message["fallback_from"] = tried
    if left:
        message["fallback_left"] = left
    if message["marketing"] and channel is not None:
        # Which ledger entry allowed it when decided (the sender records the one at send time).
        message["consent_entry"] = consent_entry(doc, channel)
    if skipped:
        message.update(status="skipped", error=skipped,
                       status_history=[{"status": "skipped", "at": now, "reason": skipped}])
    else:
        message.update(status="queued", outbox=True, due_at=due,
                       status_history=[{"status": "queued", "at": now}])
    return message
