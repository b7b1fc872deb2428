"""Every store adapter by name; the server builds the configured ones at start-up.

Adding a store is adding its module and one line to ``_ADAPTERS`` below;
its route (``path``), verification and mapping come with the class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store_events.base import StoreAdapter
from store_events.generic import GenericAdapter
from store_events.shopify import ShopifyAdapter
from store_events.woocommerce import WooCommerceAdapter

if TYPE_CHECKING:
    from bot.infra.settings import Settings

_ADAPTERS: tuple[type[StoreAdapter], ...] = (
    ShopifyAdapter,
    WooCommerceAdapter,
    GenericAdapter,
)

ADAPTER_CLASSES: dict[str, type[StoreAdapter]] = {cls.name: cls for cls in _ADAPTERS}
"""Adapter name ("shopify", "woocommerce", "events") -> class."""

ALL_ADAPTER_NAMES: tuple[str, ...] = tuple(ADAPTER_CLASSES)
"""Every known adapter, configured or not: each gets a route, answering 503 while off."""


def build_adapters(settings: Settings) -> dict[str, StoreAdapter]:
    """The adapters whose secret is set, by name; the others' routes answer 503."""
    adapters: dict[str, StoreAdapter] = {}
    for name, cls in ADAPTER_CLASSES.items():
        adapter = cls.from_settings(settings)
        if adapter is not None:
            adapters[name] = adapter
    return adapters
