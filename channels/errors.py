"""The short hierarchy of channel errors; provider codes map onto it by table.

The hierarchy is the core's (:mod:`bot.core.channel`: the sender handles it
without importing a provider); it is re-exported here for the providers,
with the ``Retry-After`` parsing they share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bot.core.channel import (
    ChannelError,
    OutsideWindow,
    PermanentSendError,
    RateLimited,
    SendError,
    TransientSendError,
)
from bot.core.errors import BadPayload, BadSignature

__all__ = [
    "BadPayload", "BadSignature", "ChannelError", "OutsideWindow", "PermanentSendError",
    "RateLimited", "SendError", "TransientSendError", "parse_retry_after",
]


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header (delta seconds or an HTTP date) in seconds; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
