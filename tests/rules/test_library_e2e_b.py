"""The library flows post-purchase, reactivation and back in stock, end to end over HTTP.

Signed store webhooks in, the fake WhatsApp provider receives; each flow is
on only because ``FLOWS`` names it (they are off by default).
"""

from __future__ import annotations

import json
from typing import Any

from server import create_app
from tests.support.app import SHOPIFY_SECRET, Fakes, Service, customer_event, make_settings
from tests.support.store_signing import load_fixture, shopify_headers

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
DAY = 86400
ITEMS = [{"sku": "MATE-IMP", "product_id": "p-mate", "title": "Mate imperial", "quantity": 1,
          "price": "42000.00", "category": "Mates"}]


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                **settings: Any) -> Service:
    app = create_app(make_settings(mongo_uri, db_name, fakes, **settings))
    return Service(await aiohttp_client(app))


def templates(fakes: Fakes, digits: str = DIGITS) -> list[str]:
    return [m["template"]["name"] for m in fakes.whatsapp.sent.get(digits, [])
            if m["type"] == "template"]


async def test_post_purchase_over_http(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                       fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, flows="post_purchase",
                          related_products={"Mates": ["Bombilla de alpaca"]})
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.placed", now, order_id="o-1",
                                       total="42000.00", currency="ARS", items=ITEMS))
    await service.advance(0)
    await service.event(customer_event("evt_2", "order.fulfilled", now, order_id="o-1",
                                       tracking_url="https://seguimiento.example/AR1"))
    await service.advance(0)
    assert templates(fakes) == ["post_purchase_thanks", "post_purchase_shipping"]
    shipping = fakes.whatsapp.sent[DIGITS][-1]["template"]
    assert "https://seguimiento.example/AR1" in json.dumps(shipping)
    await service.advance(30 * DAY)
    assert templates(fakes)[2:] == ["post_purchase_review", "post_purchase_cross_sell"]


async def test_reactivation_over_http(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                      fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes,
                          flows="reactivation,sunset", sunset_after_days=1000)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.placed", now, order_id="o-1"))
    await service.advance(90 * DAY - 60)
    assert templates(fakes) == []
    await service.advance(120)
    assert templates(fakes) == ["reactivation_checkin"]
    customer = await service.api("GET", "/api/customers/cus_1")
    assert [f["flow"] for f in customer["active_flows"]] == ["reactivation"]


async def test_back_in_stock_from_a_shopify_restock(aiohttp_client: Any, mongo_uri: str,
                                                    db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, flows="back_in_stock")
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "product.viewed", now,
                                       product_id="8021456789012"))
    await service.event(customer_event("evt_2", "product.viewed", now, customer_id="cus_2",
                                       phone="+5491199998888", product_id="999"))
    payload = json.loads(load_fixture("shopify/products_update.json"))
    payload["variants"][0].update(inventory_quantity=5, old_inventory_quantity=0)
    body = json.dumps(payload).encode()
    response = await service.client.post(
        "/webhooks/shopify", data=body,
        headers=shopify_headers(SHOPIFY_SECRET, body, "products/update", "wh-restock"))
    assert response.status == 200, await response.text()
    await service.advance(0)
    assert templates(fakes) == ["back_in_stock_notify"]
    assert templates(fakes, "5491199998888") == []  # viewed another product
    notice = json.dumps(fakes.whatsapp.sent[DIGITS][-1]["template"], ensure_ascii=False)
    assert "Mate imperial de calabaza" in notice
    await service.api("GET", "/api/customers/shopify:store", expect=404)  # nobody to tell


async def test_library_flows_are_off_unless_named(aiohttp_client: Any, mongo_uri: str,
                                                  db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.placed", now, order_id="o-1",
                                       items=ITEMS))
    await service.event(customer_event("evt_2", "product.back_in_stock", now,
                                       product_id="p-mate"))
    await service.advance(400 * DAY)
    assert not {"post_purchase_thanks", "back_in_stock_notify", "reactivation_checkin"} & set(
        templates(fakes))
