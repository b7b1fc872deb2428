"""The shipped flows end to end: store webhook in, fake provider receives,
signed reply webhook in, next message out."""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.signing import whatsapp_button_webhook, whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
CHECKOUT: dict[str, Any] = {"checkout_id": "chk_1", "recovery_url": "https://tienda.example/r/chk_1",
            "total": 120.0, "currency": "ARS",
            "items": [{"sku": "REM-1", "title": "Remera", "quantity": 1, "price": 120.0}]}


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=3600)
    return Service(await aiohttp_client(create_app(settings)))


def sent(fakes: Fakes) -> list[dict[str, Any]]:
    return fakes.whatsapp.sent.get(DIGITS, [])


async def test_cart_recovery_over_http(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                       fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    await service.advance(3599)
    assert sent(fakes) == []
    await service.advance(2)
    first = sent(fakes)
    assert [m["type"] for m in first] == ["template"]  # outside the 24 h window
    assert first[0]["template"]["name"] == "cart_recovery_interested"
    await service.whatsapp(whatsapp_button_webhook("yes", "Sí", phone=PHONE))
    await service.advance(0)
    reply = sent(fakes)[-1]
    assert reply["type"] == "text"
    assert CHECKOUT["recovery_url"] in reply["text"]["body"]
    customer = await service.api("GET", "/api/customers/cus_1")
    assert [f["flow"] for f in customer["active_flows"]] == ["cart_recovery"]


async def test_an_order_before_the_deadline_means_no_cart_message(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    await service.advance(600)
    later = await service.advance(0)
    await service.event(customer_event("evt_2", "order.placed", later, order_id="o_1",
                                       checkout_id="chk_1"))
    await service.advance(86400)
    assert sent(fakes) == []


async def test_post_purchase_survey_over_http(aiohttp_client: Any, mongo_uri: str,
                                              db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.fulfilled", now, order_id="o_1"))
    await service.advance(3 * 86400 - 60)
    assert sent(fakes) == []
    await service.advance(120)
    assert sent(fakes)[-1]["template"]["name"] == "post_purchase_nps"
    await service.whatsapp(whatsapp_text_webhook("nueve", phone=PHONE))
    await service.advance(0)
    assert "https://example.com/reviews" in sent(fakes)[-1]["text"]["body"]


async def test_opt_out_confirmation_over_http(aiohttp_client: Any, mongo_uri: str,
                                              db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now))
    await service.whatsapp(whatsapp_text_webhook("CANCELAR", phone=PHONE))  # ambiguous: asks
    await service.advance(0)
    question = sent(fakes)[-1]
    assert question["type"] == "interactive"
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["whatsapp"]["state"] == "granted"  # not yet
    await service.whatsapp(whatsapp_button_webhook("yes", "Sí", phone=PHONE))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["whatsapp"]["state"] == "revoked"
    assert customer["consents"]["whatsapp"]["source"] == "optout_confirmation:whatsapp"
    assert len(sent(fakes)) == 2  # the question and one confirmation
    await service.whatsapp(whatsapp_text_webhook("ALTA", phone=PHONE))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["whatsapp"]["state"] == "granted"
