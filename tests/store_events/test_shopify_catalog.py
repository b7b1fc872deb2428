"""store_events.shopify: product webhooks teach the store catalog (``product.catalog``).

Signed like Shopify signs them; the restock a ``products/update`` shows is
still its own ``product.back_in_stock`` event, next to the catalog entry.
"""

from __future__ import annotations

import json
from typing import Any

from bot.core.inputs import StoreEvent
from store_events.shopify import ShopifyAdapter
from tests.support.store_signing import load_fixture, shopify_headers

SECRET = "shpss_catalog_secret"
ADAPTER = ShopifyAdapter(SECRET, "AR")
CATALOG_VARIANT = {"variant_id": "44123456789012", "sku": "MATE-IMP-NEG",
                   "inventory_item_id": "46234567890123"}


def product(old: int | None, new: int) -> dict[str, Any]:
    """The product fixture with its variant's quantity going from ``old`` to ``new``."""
    payload: dict[str, Any] = json.loads(load_fixture("shopify/products_update.json"))
    payload["variants"][0].update(inventory_quantity=new, old_inventory_quantity=old)
    if old is None:
        del payload["variants"][0]["old_inventory_quantity"]
    return payload


def deliver(payload: dict[str, Any], topic: str = "products/update") -> list[StoreEvent]:
    body = json.dumps(payload).encode()
    headers = shopify_headers(SECRET, body, topic, "wh-catalog-1")
    ADAPTER.verify(headers, body)
    events = ADAPTER.parse(headers, body)
    assert events is not None
    return events


def test_products_update_yields_the_catalog_entry_with_inventory_item_ids() -> None:
    [catalog] = deliver(product(old=None, new=0))
    assert catalog.type == "product.catalog"
    assert catalog.id == "shopify:product.catalog:8021456789012:2026-11-24T15:31:08+00:00"
    assert catalog.customer.id == "shopify:store"
    assert catalog.model_dump()["store_wide"] is True  # fanned out, decided for nobody
    assert catalog.data == {
        "product_id": "8021456789012", "title": "Mate imperial de calabaza",
        "category": "Mates", "url": "https://chasqui-demo.myshopify.com/products/mate-imperial",
        "variants": [{**CATALOG_VARIANT, "inventory_quantity": 0,
                      "old_inventory_quantity": None}]}


def test_products_create_yields_the_catalog_entry_and_never_a_restock() -> None:
    [catalog] = deliver(product(old=0, new=5), topic="products/create")
    assert catalog.type == "product.catalog"
    assert catalog.data["variants"][0]["inventory_quantity"] == 5


def test_a_restock_yields_both_events() -> None:
    catalog, restock = deliver(product(old=0, new=12))
    assert catalog.type == "product.catalog"
    assert catalog.data["variants"] == [{**CATALOG_VARIANT, "inventory_quantity": 12,
                                         "old_inventory_quantity": 0}]
    assert restock.type == "product.back_in_stock"
    assert restock.id == "shopify:product.back_in_stock:8021456789012:2026-11-24T15:31:08+00:00"
    assert restock.data["product_id"] == "8021456789012"
    assert restock.data["sku"] == "MATE-IMP-NEG"
