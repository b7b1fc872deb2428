"""Telegram deep-link tokens: ``/start <token>`` links a chat to a customer.

The token is the customer's id plus a short HMAC (keyed with
``TELEGRAM_SECRET_TOKEN``), so it cannot be guessed for another customer and
needs no table. It fits Telegram's limit for start parameters (64 characters
of ``A-Za-z0-9_-``).
"""

from __future__ import annotations

import hashlib
import hmac


def _mac(customer_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:16]


def make_token(customer_id: str, secret: str) -> str:
    return f"{customer_id}-{_mac(customer_id, secret)}"


def read_token(token: str, secret: str) -> str | None:
    """The customer id a token names, or None when it is forged or malformed."""
    customer_id, _, mac = token.rpartition("-")
    if not customer_id or not secret:
        return None
    return customer_id if hmac.compare_digest(mac, _mac(customer_id, secret)) else None
