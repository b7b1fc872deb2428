"""The store catalog: what product webhooks teach, so that stock levels can name a product.

Shopify's ``inventory_levels/update`` names an inventory item at a location
and its ``available`` quantity: neither the product (which the fan-out needs
to find interested customers) nor the quantity before (which tells a restock
from 5 -> 7). Its product webhooks (``products/create``, ``products/update``)
name both ends: each variant's ``inventory_item_id``, SKU and
``inventory_quantity``. The adapter turns those into ``product.catalog``
events, and the fan-out pass (``Runtime.fanout_pass``) keeps one document
per inventory item in the ``catalog`` collection::

    {_id: "shopify:inventory_item:<id>", inventory_item_id, product_id, variant_id,
     sku, title, url, category, quantity, levels: {<location id>: available}}

``quantity`` is the product webhook's ``inventory_quantity`` (all
locations); ``levels`` the latest ``available`` per location heard from
(``product.inventory_level``).

Decisions:
    * In stock: the sum of the known levels > 0 when any level is known, else
      ``quantity`` > 0; neither known: unknown (:func:`in_stock`).
    * A restock is known-not-in-stock before, in stock after
      (:func:`is_restock`). Unknown before is never a restock: customers are
      not told "it is back" about something that may never have left. So an
      inventory item the product webhooks never named is learnt (its level
      is kept) but announces nothing, and the item is marked done with a
      ``note`` saying why.
    * ``products/update`` without ``old_inventory_quantity`` (deprecated by
      Shopify) is compared with the catalog instead: a variant known out of
      stock whose quantity is now above 0 is a restock. A variant with that
      field was judged by the adapter already (its own
      ``product.back_in_stock``), so it is not announced twice.
    * A location never heard from is not counted: with several locations, a
      level dropping to 0 at one of them may read as "out of stock" while
      another still has stock. The back-in-stock flow tells one customer
      about one product at most once in 30 days, which bounds the harm.
    * I/O per inbox item: one read by ``_id`` and one write (a bulk for a
      product's variants), written only after the fan-out: an item replayed
      after a crash between the two decides the same again, and its fanned
      items are duplicates by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne

from bot.infra.database import Database
from bot.types import Doc

COLLECTION = "catalog"
CATALOG = "product.catalog"
LEVEL = "product.inventory_level"
BACK_IN_STOCK = "product.back_in_stock"
FANOUT_TYPES = frozenset({BACK_IN_STOCK, CATALOG, LEVEL})
"""Store-wide product events: expanded by the fan-out pass, never decided."""
LOCATION_KEY = re.compile(r"[\w-]{1,64}")  # Shopify's are numbers
PRODUCT_FIELDS = ("product_id", "variant_id", "sku", "title", "url", "category")


def catalog_id(inventory_item_id: Any) -> str:
    return f"shopify:inventory_item:{inventory_item_id}"


def in_stock(doc: Doc | None) -> bool | None:
    """Whether an inventory item is in stock: known levels first, else ``quantity``;
    None when neither is known."""
    if doc is None:
        return None
    levels: list[int] = [n for n in (doc.get("levels") or {}).values() if n is not None]
    if levels:
        return sum(levels) > 0
    quantity = doc.get("quantity")
    return None if quantity is None else bool(quantity > 0)


def is_restock(before: Doc | None, after: Doc) -> bool:
    """Known not in stock before, in stock now (unknown before is no restock)."""
    return in_stock(before) is False and in_stock(after) is True


def _why_not(before: Doc | None) -> str:
    if in_stock(before) is None:
        return "not a restock: stock before unknown"
    if in_stock(before):
        return "not a restock: in stock before"
    return "not a restock: still out of stock"


@dataclass
class Plan:
    """What one fan-out item comes to: the event to fan out, the catalog writes, a note."""

    fan_out: Doc | None
    writes: list[UpdateOne] = field(default_factory=list)
    note: str | None = None


async def plan(database: Database, payload: Doc) -> Plan:
    """Read what ``payload`` (a fan-out item's event) needs of the catalog and decide."""
    data = payload.get("data") or {}
    if payload.get("type") == CATALOG:
        return await _learn_product(database, payload)
    if data.get("inventory_item_id") and not (data.get("product_id") or data.get("sku")):
        return await _apply_level(database, payload)
    return Plan(payload)  # a restock that names its product already


async def apply(database: Database, planned: Plan) -> None:
    """Write the plan's catalog changes (after its fan-out: module docstring)."""
    if planned.writes:
        await database.catalog.bulk_write(planned.writes, ordered=False)


def _back_in_stock(payload: Doc, doc: Doc, extra: Doc) -> Doc:
    """The ``product.back_in_stock`` event a catalog entry's restock fans out."""
    data = {name: doc.get(name) for name in PRODUCT_FIELDS}
    return {**payload, "type": BACK_IN_STOCK, "data": {**data, **extra}}


async def _learn_product(database: Database, payload: Doc) -> Plan:
    data = payload["data"]
    variants = [v for v in data.get("variants") or [] if v.get("inventory_item_id")]
    if not variants:
        return Plan(None, note="no inventory item to learn")
    ids = [catalog_id(v["inventory_item_id"]) for v in variants]
    known = {doc["_id"]: doc async for doc in database.catalog.find({"_id": {"$in": ids}})}
    writes: list[UpdateOne] = []
    restocked: Doc | None = None
    for variant, doc_id in zip(variants, ids, strict=True):
        fields: Doc = {"inventory_item_id": str(variant["inventory_item_id"]),
                       "product_id": data.get("product_id"),
                       "variant_id": variant.get("variant_id"), "sku": variant.get("sku"),
                       "title": data.get("title"), "url": data.get("url"),
                       "category": data.get("category")}
        if variant.get("inventory_quantity") is not None:
            fields["quantity"] = variant["inventory_quantity"]
        writes.append(UpdateOne({"_id": doc_id}, {"$set": fields}, upsert=True))
        before = known.get(doc_id)
        if (restocked is None and variant.get("old_inventory_quantity") is None
                and is_restock(before, {**(before or {}), **fields})):
            restocked = fields
    fan_out = None if restocked is None else _back_in_stock(payload, restocked, {})
    return Plan(fan_out, writes)


async def _apply_level(database: Database, payload: Doc) -> Plan:
    data = payload["data"]
    available = data.get("available")
    if available is None:
        return Plan(None, note="no available quantity")
    doc_id = catalog_id(data["inventory_item_id"])
    location = str(data.get("location_id") or "default")
    if not LOCATION_KEY.fullmatch(location):
        # It becomes a field name (levels.<id>): a dot or "$" would write elsewhere or fail.
        return Plan(None, note=f"location id {location[:40]!r} is not a usable key")
    before = await database.catalog.find_one({"_id": doc_id})
    after = {**(before or {}), "levels": {**((before or {}).get("levels") or {}),
                                          location: available}}
    writes = [UpdateOne({"_id": doc_id}, {"$set": {f"levels.{location}": available,
                                                   "inventory_item_id":
                                                   str(data["inventory_item_id"])}},
                        upsert=True)]
    if before is None or not (before.get("product_id") or before.get("sku")):
        return Plan(None, writes, f"unknown inventory item {data['inventory_item_id']}: "
                                  "no product webhook has named it")
    if not is_restock(before, after):
        return Plan(None, writes, _why_not(before))
    extra = {name: data.get(name) for name in ("inventory_item_id", "location_id", "available")}
    return Plan(_back_in_stock(payload, before, extra), writes)
