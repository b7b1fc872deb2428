"""Builders of correctly signed store webhook headers, and the fixture loader.

Written independently of ``store_events`` (plain ``hmac`` here), so a test
that passes proves the adapter agrees with the store's documented scheme,
not merely with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_fixture(relpath: str) -> bytes:
    """The raw bytes of ``tests/fixtures/<relpath>`` (e.g. "shopify/orders_create.json")."""
    return (FIXTURES / relpath).read_bytes()


def _digest(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def shopify_headers(secret: str, body: bytes, topic: str, webhook_id: str) -> dict[str, str]:
    """The headers Shopify sends with a delivery of ``body``."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64.b64encode(_digest(secret, body)).decode(),
        "X-Shopify-Shop-Domain": "chasqui-demo.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": f"evt-{webhook_id}",
        "X-Shopify-Triggered-At": "2026-11-24T10:00:06.123456789Z",
    }


def woocommerce_headers(secret: str, body: bytes, topic: str, delivery_id: str,
                        ) -> dict[str, str]:
    """The headers WooCommerce sends with ``body``; ``topic`` like "order.created"."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": "https://tienda.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": base64.b64encode(_digest(secret, body)).decode(),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


def events_headers(secret: str, body: bytes) -> dict[str, str]:
    """The headers of a ``POST /events`` call signed with ``STORE_EVENTS_SECRET``."""
    return {
        "Content-Type": "application/json",
        "X-Signature-256": "sha256=" + _digest(secret, body).hex(),
    }
