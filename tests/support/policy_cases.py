"""Messages and customer documents as the send policy sees them (table-driven tests).

The channel traits are the real ones (``channels.sms``, ``channels.whatsapp``):
they need no credentials.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.policy import SendPolicy
from bot.types import Doc
from channels.sms import SmsTraits
from channels.whatsapp import WhatsAppTraits

NOON = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)  # 12:00 in Buenos Aires
NIGHT = datetime(2026, 1, 16, 2, 0, tzinfo=UTC)  # 23:00 in Buenos Aires
OPENING = datetime(2026, 1, 16, 12, 0, tzinfo=UTC)  # 09:00 the next morning there
SEQ = 1000
TEMPLATE = {"name": "cart_recovery_interested", "language": "es", "params": []}
POLICY = SendPolicy(channels={"whatsapp": WhatsAppTraits(), "sms": SmsTraits()},
                    marketing_cap=2, marketing_cap_window=timedelta(days=7))


def message(**fields: Any) -> Doc:
    """A flow's marketing message on SMS, as ``build_message`` writes it."""
    return {"_id": "m1", "channel": "sms", "to": "+5491122334455", "to_user_id": None,
            "marketing": True, "flow": "promo", "agent": None, "seq": SEQ,
            "template": None, "fallback_template": None, **fields}


def customer(**fields: Any) -> Doc:
    """A customer who consented on both channels and wrote on WhatsApp an hour ago."""
    granted = {"state": "granted", "source": "test", "at": NOON - timedelta(days=30)}
    return {"_id": "c1", "consents": {"sms": granted, "whatsapp": granted},
            "last_in": {"whatsapp": NOON - timedelta(hours=1)}, "conversations": {},
            "profile": {}, **fields}


def revoked(channel: str) -> Doc:
    entry = {"state": "revoked", "source": "keyword:sms", "at": NOON - timedelta(days=1)}
    granted = {"state": "granted", "source": "test", "at": NOON - timedelta(days=30)}
    return {"whatsapp": granted, "sms": granted, channel: entry}


def conversation(status: str, handoff_seq: int | None = None) -> Doc:
    state: Doc = {"status": status, "agent": "Lucía" if status == "agent" else None}
    if handoff_seq is not None:
        state["handoff_seq"] = handoff_seq
    return {"sms": state}
