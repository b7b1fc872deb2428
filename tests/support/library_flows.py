"""Builders for the library flows' tests (post-purchase, reactivation, back in stock)."""

from __future__ import annotations

from bot.runtime.inbox import make_item
from bot.testing import PureHarness

PHONE = "+5491122334455"


def agent(h: PureHarness, customer_id: str, action: str, channel: str = "sms",
          by: str = "eva@shop.example") -> None:
    """An agent's action (``takeover``, ``release``...), as the agent API queues it."""
    internal = h.customer_doc(customer_id)["_id"]
    h._decide(make_item(dedupe_id=f"agent:{action}:{len(h.outbox)}", kind="agent",
                        source="agent", keys=[f"id:{internal}"],
                        payload={"action": action, "channel": channel, "agent": by,
                                 "text": None, "by": by, "template": None}))


def skipped(h: PureHarness, customer_id: str) -> list[tuple[str, str]]:
    """(step, reason) of the flow messages the send policy skipped for the customer."""
    return [(str(m.get("step")), str(m.get("error") or ""))
            for m in h.messages(customer_id)
            if m["direction"] == "out" and m["status"] == "skipped"]


def outcomes(h: PureHarness, flow: str) -> list[str]:
    """The outcomes of the flow's finished runs, oldest first."""
    return [str(run["outcome"]) for run in h.runs(flow)]
