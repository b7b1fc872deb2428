"""Builders for flow tests on the real runtime (``bot.testing.FlowHarness``)."""

from __future__ import annotations

from datetime import timedelta

from bot.testing import FlowHarness, Sent


async def first_message_after(h: FlowHarness, customer_id: str, delay: timedelta) -> Sent:
    """The first message to the customer, which must go out exactly ``delay`` from now.

    Checks that nothing went out a second earlier, then returns it.
    """
    start = h.clock.now()
    await h.advance(delay.total_seconds() - 1)
    assert h.to(customer_id) == [], f"sent before {delay}"
    await h.advance(1)
    sent = h.last(customer_id)
    assert sent.at == start + delay
    return sent
