"""The one send policy (``bot.core.policy.may_send``), rule by rule, with no database.

Each row is a message and a customer document as the decision writes and
the sender reads them, the moment, the stage, and the verdict. The channel
traits are the real ones (``channels.sms``, ``channels.whatsapp``): they
need no credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.policy import SendPolicy, Stage, Verdict, may_send
from bot.types import Doc
from tests.support.policy_cases import (
    NIGHT,
    NOON,
    OPENING,
    POLICY,
    SEQ,
    TEMPLATE,
    conversation,
    customer,
    message,
    revoked,
)

SEND = Verdict("send")
HELD = Verdict("skip", reason="an agent has the conversation")
NO_WINDOW = Verdict("skip", reason="outside the WhatsApp 24-hour window and the step has no "
                                   "template")
CASES: list[tuple[str, Doc, Doc | None, datetime, Stage, Verdict]] = [
    # -- channel, customer and address
    ("no channel for marketing", message(channel=None), customer(), NOON, "decision",
     Verdict("skip", reason="no channel the customer consented to")),
    ("no channel for a reply", message(channel=None, marketing=False), customer(), NOON,
     "decision", Verdict("skip", reason="no channel")),
    ("channel not configured", message(channel="telegram"), customer(), NOON, "send",
     Verdict("skip", reason="channel telegram is not configured")),
    ("customer gone", message(), None, NOON, "send",
     Verdict("skip", reason="customer not found")),
    ("no address", message(to=None), customer(), NOON, "decision",
     Verdict("skip", reason="no address on sms")),
    ("a user id is an address", message(channel="whatsapp", to=None, to_user_id="AR.1"),
     customer(), NOON, "decision", SEND),
    # -- consent: marketing only; replies and transactional messages are not marketing
    ("consent missing", message(), customer(consents={}), NOON, "decision",
     Verdict("skip", reason="no marketing consent on sms")),
    ("consent missing at send", message(), customer(consents={}), NOON, "send",
     Verdict("skip", reason="no marketing consent on sms at send time")),
    ("consent revoked", message(), customer(consents=revoked("sms")), NOON, "decision",
     Verdict("skip", reason="no marketing consent on sms")),
    ("revoked since the decision", message(), customer(consents=revoked("sms")), NOON, "send",
     Verdict("skip", reason="no marketing consent on sms at send time")),
    ("consent on the other channel counts not", message(channel="whatsapp"),
     customer(consents=revoked("whatsapp")), NOON, "decision",
     Verdict("skip", reason="no marketing consent on whatsapp")),
    ("reply needs no consent", message(marketing=False), customer(consents={}), NOON,
     "decision", SEND),
    ("transactional needs no consent at send", message(marketing=False),
     customer(consents=revoked("sms")), NOON, "send", SEND),
    # -- frequency cap: counted when queued, so only at the decision
    ("over the cap", message(), customer(marketing_log=[NOON - timedelta(days=1)] * 2),
     NOON, "decision",
     Verdict("skip", reason="frequency cap: 2 marketing message(s) in 7 day(s) already")),
    ("the cap's window has passed", message(),
     customer(marketing_log=[NOON - timedelta(days=8)] * 2), NOON, "decision", SEND),
    ("a queued message is not held by its own count", message(),
     customer(marketing_log=[NOON - timedelta(days=1)] * 2), NOON, "send", SEND),
    ("replies are never capped", message(marketing=False),
     customer(marketing_log=[NOON - timedelta(days=1)] * 2), NOON, "decision", SEND),
    # -- agent hold
    ("agent holding", message(), customer(conversations=conversation("agent")), NOON,
     "decision", HELD),
    ("agent took over after the decision", message(),
     customer(conversations=conversation("agent")), NOON, "send", HELD),
    ("needs agent", message(), customer(conversations=conversation("needs_agent", SEQ - 1)),
     NOON, "decision", HELD),
    ("needs agent: written after the hand-off", message(),
     customer(conversations=conversation("needs_agent", SEQ - 1)), NOON, "send", HELD),
    ("needs agent: written before the hand-off still goes", message(),
     customer(conversations=conversation("needs_agent", SEQ)), NOON, "send", SEND),
    ("the agent's own message goes", message(agent="Lucía", flow=None, marketing=False),
     customer(conversations=conversation("agent")), NOON, "decision", SEND),
    ("a keyword answer is held when decided", message(flow=None, marketing=False),
     customer(conversations=conversation("agent")), NOON, "decision", HELD),
    ("a keyword answer decided before the takeover goes", message(flow=None, marketing=False),
     customer(conversations=conversation("agent")), NOON, "send", SEND),
    ("the bot has it back", message(), customer(conversations=conversation("bot")), NOON,
     "send", SEND),
    # -- the 24-hour window (WhatsApp), with and without a template
    ("inside the window: text", message(channel="whatsapp", fallback_template=TEMPLATE),
     customer(), NOON, "decision", SEND),
    ("outside the window: the template", message(channel="whatsapp", fallback_template=TEMPLATE),
     customer(last_in={}), NOON, "decision", Verdict("send", template=TEMPLATE)),
    ("outside the window, no template", message(channel="whatsapp"), customer(last_in={}),
     NOON, "decision", NO_WINDOW),
    ("the window closed before the send", message(channel="whatsapp"),
     customer(last_in={"whatsapp": NOON - timedelta(hours=24)}), NOON, "send", NO_WINDOW),
    ("a chosen template needs no window", message(channel="whatsapp", template=TEMPLATE),
     customer(last_in={}), NOON, "send", Verdict("send", template=TEMPLATE)),
    ("SMS has no window", message(), customer(last_in={}), NOON, "send", SEND),
    ("a reply is still bound by the window", message(channel="whatsapp", marketing=False),
     customer(last_in={}), NOON, "decision", NO_WINDOW),
    # -- quiet hours: marketing decided at night waits for 09:00 local
    ("quiet hours defer marketing", message(), customer(), NIGHT, "decision",
     Verdict("defer", until=OPENING)),
    ("in the customer's own timezone", message(),
     customer(profile={"timezone": "Europe/Madrid"}), NIGHT, "decision",
     Verdict("defer", until=datetime(2026, 1, 16, 8, 0, tzinfo=UTC))),
    ("quiet hours keep the template", message(channel="whatsapp", fallback_template=TEMPLATE),
     customer(last_in={}), NIGHT, "decision",
     Verdict("defer", until=OPENING, template=TEMPLATE)),
    ("replies are not held at night", message(marketing=False), customer(), NIGHT, "decision",
     SEND),
    ("what is due is sent at night", message(), customer(), NIGHT, "send", SEND),
]


@pytest.mark.parametrize(("msg", "doc", "now", "stage", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_may_send(msg: Doc, doc: Doc | None, now: datetime, stage: Stage,
                  expected: Verdict) -> None:
    assert may_send(msg, doc, now, POLICY, stage=stage) == expected


def test_quiet_hours_can_be_off() -> None:
    policy = SendPolicy(channels=POLICY.channels, quiet_hours=False)
    assert may_send(message(), customer(), NIGHT, policy, stage="decision") == SEND


def test_no_cap_by_default() -> None:
    policy = SendPolicy(channels=POLICY.channels)
    log = [NOON - timedelta(hours=n) for n in range(50)]
    assert may_send(message(), customer(marketing_log=log), NOON, policy,
                    stage="decision") == SEND
