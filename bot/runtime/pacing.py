"""Outbound pacing per channel: a token bucket on the service's clock.

Providers cap throughput per sender (WhatsApp 80/s by default, a Twilio long
code 1 segment/s, Telegram ~30/s) and answer 429 beyond it. The pacer says
how long to wait before the next send; a provider's Retry-After pauses the
channel until then. Rates come from settings; 0 means unpaced.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.infra.clock import to_millis

RESOLUTION = 0.001  # stored times have millisecond precision; never ask for less


class Pacer:
    """A token bucket for one sender."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.updated: datetime | None = None
        self.paused_until: datetime | None = None

    def delay(self, now: datetime, cost: float = 1.0, *, take: bool = True) -> float:
        """Seconds to wait before a send costing ``cost``; takes the tokens when 0.

        With ``take=False`` it only looks: the tokens stay for a later call.
        """
        if self.paused_until is not None and now < self.paused_until:
            return max((self.paused_until - now).total_seconds(), RESOLUTION)
        if self.rate <= 0:
            return 0.0
        if self.updated is not None:
            elapsed = max(0.0, (now - self.updated).total_seconds())
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        # Never back: a sender plans sends ahead of now (see OutboxSender._plan),
        # and an earlier time must not count the same refill twice.
        self.updated = now if self.updated is None else max(self.updated, now)
        # A send bigger than the bucket (a long SMS) goes once the bucket is
        # full and leaves it in debt, which the next send waits off.
        needed = min(cost, self.capacity)
        if self.tokens >= needed:
            if take:
                self.tokens -= cost
            return 0.0
        return max((needed - self.tokens) / self.rate, RESOLUTION)

    def idle(self, now: datetime) -> bool:
        """Whether the bucket is full again by ``now`` and nothing is paused (it can be dropped)."""
        if self.paused_until is not None and now < self.paused_until:
            return False
        if self.updated is None or self.rate <= 0:
            return True
        refill = (self.capacity - self.tokens) / self.rate
        return now >= self.updated + timedelta(seconds=refill)

    def pause(self, now: datetime, seconds: float) -> None:
        """Hold every send until ``now + seconds`` (a provider's 429)."""
        until = to_millis(now + timedelta(seconds=seconds))
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
