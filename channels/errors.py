"""The short hierarchy of channel errors; provider codes map onto it by table."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bot.core.errors import BadPayload, BadSignature

__all__ = [
    "BadPayload", "BadSignature", "ChannelError", "OutsideWindow", "PermanentSendError",
    "RateLimited", "SendError", "TransientSendError", "parse_retry_after",
]


class ChannelError(Exception):
    """Base of every error a channel raises when sending."""


class SendError(ChannelError):
    """A send did not go through.

    Attributes:
        code: the provider's error code, as text.
        detail: the provider's message, safe to record (no tokens).
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class TransientSendError(SendError):
    """Worth retrying later (429, 5xx, network); ``retry_after`` in seconds if the provider said."""

    def __init__(self, code: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


class RateLimited(TransientSendError):
    """The provider asked us to slow down (HTTP 429, WhatsApp 130429/131056, Telegram 429)."""


class PermanentSendError(SendError):
    """Retrying will not help (bad number, blocked, invalid template): record and stop."""


class OutsideWindow(PermanentSendError):
    """WhatsApp refused a free-form message outside the 24 h window (131047)."""


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
