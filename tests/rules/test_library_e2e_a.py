"""Four library flows end to end: signed ``/events`` in, the WhatsApp fake receives
their templates on the virtual clock. The store switches them on with ``FLOWS``."""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, sent_templates

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
DAY = 86400
LIBRARY = "welcome,second_purchase,browse_abandonment,best_customer"


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                **settings: Any) -> Service:
    app = create_app(make_settings(mongo_uri, db_name, fakes, flows=LIBRARY, **settings))
    return Service(await aiohttp_client(app))


def templates(fakes: Fakes) -> list[tuple[str, list[str]]]:
    return sent_templates(fakes, DIGITS)


async def code_of(service: Service, purpose: str) -> str:
    customer = await service.api("GET", "/api/customers/cus_1")
    return str(customer["attrs"][f"code_{purpose}"])


async def test_welcome_series_until_the_first_order(aiohttp_client: Any, mongo_uri: str,
                                                    db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now))
    await service.advance(0)
    code = await code_of(service, "welcome")
    assert templates(fakes) == [("welcome_code", ["Ana", code])]
    await service.advance(DAY)
    assert templates(fakes)[-1] == ("welcome_education", ["Ana"])
    later = await service.advance(0)
    await service.event(customer_event("evt_2", "order.placed", later, order_id="o_1",
                                       total="9000", currency="ARS"))
    await service.advance(10 * DAY)
    assert [name for name, _ in templates(fakes)] == ["welcome_code", "welcome_education"]
    customer = await service.api("GET", "/api/customers/cus_1")
    # The order ended the welcome series; it started the second-purchase wait.
    assert [f["flow"] for f in customer["active_flows"]] == ["second_purchase"]


async def test_second_purchase_suggestion_after_a_month(aiohttp_client: Any, mongo_uri: str,
                                                        db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event(
        "evt_1", "order.placed", now, order_id="o_1", total="15000", currency="ARS",
        items=[{"product_id": "p_1", "title": "Mate imperial", "category": "Mates",
                "quantity": 1, "price": "15000"}]))
    await service.advance(30 * DAY - 60)
    assert templates(fakes) == []
    await service.advance(60)
    code = await code_of(service, "second_purchase")
    assert templates(fakes) == [("second_purchase_suggestion", ["Ana", "Mates", code])]


async def test_browse_abandonment_after_two_views(aiohttp_client: Any, mongo_uri: str,
                                                  db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    product: dict[str, Any] = {"product_id": "p_9", "title": "Zapatillas Runner",
               "url": "https://tienda.example/p/9"}
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "product.viewed", now, **product))
    later = await service.advance(3600)
    await service.event(customer_event("evt_2", "product.viewed", later, **product))
    await service.advance(22 * 3600)
    assert templates(fakes) == []
    await service.advance(3600)
    assert templates(fakes) == [("browse_abandonment_help", ["Ana", "Zapatillas Runner"])]


async def test_best_customer_reward_after_a_quiet_spell(aiohttp_client: Any, mongo_uri: str,
                                                        db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes,
                          best_customer_threshold="500", best_customer_currency="ARS")
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.placed", now, order_id="o_1",
                                       total="800.00", currency="ARS"))
    await service.advance(14 * DAY - 60)
    assert templates(fakes) == []
    await service.advance(60)
    code = await code_of(service, "best_customer")
    assert templates(fakes) == [("best_customer_reward", ["Ana", code])]
