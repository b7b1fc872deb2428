"""Back in stock from Shopify's stock levels, end to end over HTTP.

``inventory_levels/update`` names an inventory item, not the product: the
catalog that ``products/update`` teaches (``bot.runtime.catalog``) names it,
and tells a restock (known out of stock -> in stock) from more stock. Signed
webhooks in, the fake WhatsApp provider receives; the flow is on because
``FLOWS`` names it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from server import create_app
from tests.support.app import SHOPIFY_SECRET, Fakes, Service, customer_event, make_settings
from tests.support.store_signing import load_fixture, shopify_headers

DIGITS = "5491122334455"
PRODUCT = "8021456789012"
ITEM = "46234567890123"


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    app = create_app(make_settings(mongo_uri, db_name, fakes, flows="back_in_stock"))
    return Service(await aiohttp_client(app))


def templates(fakes: Fakes) -> list[str]:
    return [m["template"]["name"] for m in fakes.whatsapp.sent.get(DIGITS, [])
            if m["type"] == "template"]


async def shopify(service: Service, topic: str, payload: dict[str, Any], webhook_id: str) -> None:
    body = json.dumps(payload).encode()
    response = await service.client.post(
        "/webhooks/shopify", data=body,
        headers=shopify_headers(SHOPIFY_SECRET, body, topic, webhook_id))
    assert response.status == 200, await response.text()


def product_update(quantity: int, updated_at: str) -> dict[str, Any]:
    """``products/update`` as current API versions send it: no ``old_inventory_quantity``."""
    payload: dict[str, Any] = json.loads(load_fixture("shopify/products_update.json"))
    payload["updated_at"] = updated_at
    payload["variants"][0]["inventory_quantity"] = quantity
    del payload["variants"][0]["old_inventory_quantity"]
    return payload


def level(available: int, updated_at: str, item: str = ITEM) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(load_fixture("shopify/inventory_levels_update.json"))
    payload.update(available=available, updated_at=updated_at, inventory_item_id=int(item))
    return payload


async def level_item(db: Any, item: str, updated_at: str) -> dict[str, Any]:
    doc: dict[str, Any] = await db.inbox.find_one(
        {"_id": f"shopify:shopify:inventory_level:{item}:65544149123:{updated_at}"})
    assert doc is not None
    return doc


async def fanned_out(db: Any, item: dict[str, Any]) -> int:
    """How many customers' items the fan-out made of ``item``."""
    return int(await db.inbox.count_documents(
        {"_id": {"$regex": f"^{re.escape(item['_id'])}:"}}))


async def with_a_viewer(aiohttp_client: Any, mongo_uri: str, db_name: str,
                        fakes: Fakes) -> Service:
    """A started service where one customer has viewed the product."""
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "product.viewed", now, product_id=PRODUCT))
    return service


async def test_a_stock_level_restock_reaches_who_viewed_the_product(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await with_a_viewer(aiohttp_client, mongo_uri, db_name, fakes)
    await shopify(service, "products/update",
                  product_update(0, "2026-11-24T12:00:00-03:00"), "wh-p1")
    await service.advance(0)
    assert templates(fakes) == []  # the catalog learnt it is out of stock; nothing to say

    await shopify(service, "inventory_levels/update",
                  level(4, "2026-11-24T13:00:00-03:00"), "wh-l1")
    await service.advance(0)
    assert templates(fakes) == ["back_in_stock_notify"]
    notice = json.dumps(fakes.whatsapp.sent[DIGITS][-1]["template"], ensure_ascii=False)
    assert "Mate imperial de calabaza" in notice  # named by the catalog
    restock = await level_item(db, ITEM, "2026-11-24T16:00:00+00:00")
    assert (restock["state"], restock.get("note")) == ("done", None)
    assert await fanned_out(db, restock) == 1

    # 4 -> 6 is more stock, no restock: nothing is fanned out at all.
    await shopify(service, "inventory_levels/update",
                  level(6, "2026-11-24T14:00:00-03:00"), "wh-l2")
    await service.advance(0)
    assert templates(fakes) == ["back_in_stock_notify"]
    more = await level_item(db, ITEM, "2026-11-24T17:00:00+00:00")
    assert (more["state"], more["note"]) == ("done", "not a restock: in stock before")
    assert await fanned_out(db, more) == 0


async def test_a_level_of_an_unknown_item_tells_nobody(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await with_a_viewer(aiohttp_client, mongo_uri, db_name, fakes)
    await shopify(service, "inventory_levels/update",
                  level(3, "2026-11-24T13:00:00-03:00", item="999"), "wh-l1")
    await service.advance(0)
    assert templates(fakes) == []
    unknown = await level_item(db, "999", "2026-11-24T16:00:00+00:00")
    assert unknown["state"] == "done"
    assert unknown["note"].startswith("unknown inventory item 999")


async def test_a_product_update_without_the_quantity_before_is_judged_by_the_catalog(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await with_a_viewer(aiohttp_client, mongo_uri, db_name, fakes)
    await shopify(service, "products/update",
                  product_update(0, "2026-11-24T12:00:00-03:00"), "wh-p1")
    await service.advance(0)
    await shopify(service, "products/update",
                  product_update(5, "2026-11-24T13:00:00-03:00"), "wh-p2")
    await service.advance(0)
    assert templates(fakes) == ["back_in_stock_notify"]


async def test_a_location_id_that_is_no_usable_key_is_noted_and_the_rest_goes_on(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    """A location id becomes a field name (``levels.<id>``): "1.2" or "$x" would write
    elsewhere or fail the write, and a failing fan-out item used to stop every pass."""
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await shopify(service, "products/update",
                  product_update(0, "2026-11-24T12:00:00-03:00"), "wh-p1")
    for n, location in enumerate(("1.2", "$where")):
        payload = level(4, f"2026-11-24T13:0{n}:00-03:00")
        payload["location_id"] = location
        await shopify(service, "inventory_levels/update", payload, f"wh-l{n}")
    await service.event(customer_event("evt_1", "product.viewed", now, product_id=PRODUCT))
    await service.advance(0)
    noted = await db.inbox.find({"_id": {"$regex": "^shopify:shopify:inventory_level:"}}
                                ).to_list(None)
    assert [(item["state"], item["note"][:12]) for item in noted] == [
        ("done", "location id "), ("done", "location id ")]
    entry = await db.catalog.find_one({"product_id": PRODUCT})
    assert entry is not None and entry.get("levels") is None
    assert await db.inbox.count_documents({"state": "pending"}) == 0
