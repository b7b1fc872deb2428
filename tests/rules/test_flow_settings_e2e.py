"""The flow settings file end to end: FLOWS_CONFIG read by the app, store webhooks
in, the fake WhatsApp receives what the file says, when it says."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
LOCAL = ZoneInfo("America/Argentina/Buenos_Aires")  # the customer's (customer_event)
CHECKOUT: dict[str, Any] = {"checkout_id": "chk_1", "recovery_url": "https://tienda.example/r/1",
                            "total": 120.0, "currency": "ARS",
                            "items": [{"sku": "REM-1", "title": "Remera", "quantity": 1,
                                       "price": 120.0}]}


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                tmp_path: Path, config: str) -> Service:
    path = tmp_path / "flows.toml"
    path.write_text(config, encoding="utf-8")
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=3600,
                             flows_config=str(path))
    return Service(await aiohttp_client(create_app(settings)))


def sent(fakes: Fakes) -> list[dict[str, Any]]:
    return fakes.whatsapp.sent.get(DIGITS, [])


def templates(fakes: Fakes) -> list[str]:
    return [m["template"]["name"] for m in sent(fakes) if m["type"] == "template"]


def moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def test_a_flow_switched_off_does_not_run(aiohttp_client: Any, mongo_uri: str,
                                               db_name: str, fakes: Fakes,
                                               tmp_path: Path) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, tmp_path,
                          "[flows.post_purchase_survey]\nenabled = false\n")
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "order.fulfilled", now, order_id="o_1"))
    await service.advance(4 * 86400)
    assert sent(fakes) == []
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["active_flows"] == []


async def test_the_stores_text_reaches_whatsapp(aiohttp_client: Any, mongo_uri: str,
                                               db_name: str, fakes: Fakes,
                                               tmp_path: Path) -> None:
    config = ('[flows.optout_confirmation.texts.es]\n'
              'confirm = "La tienda pregunta: ¿dejas de recibir mensajes por {channel}?"\n')
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, tmp_path, config)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now))
    await service.whatsapp(whatsapp_text_webhook("CANCELAR", phone=PHONE))  # ambiguous: asks
    await service.advance(0)
    question = sent(fakes)[-1]
    assert question["type"] == "interactive"
    assert question["interactive"]["body"]["text"] == (
        "La tienda pregunta: ¿dejas de recibir mensajes por WhatsApp?")


async def test_the_stores_timing_moves_the_reminder(aiohttp_client: Any, mongo_uri: str,
                                                   db_name: str, fakes: Fakes,
                                                   tmp_path: Path) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, tmp_path,
                          '[flows.cart_recovery.timings]\nask_timeout = "2h"\n')
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    await service.advance(3601)
    assert templates(fakes) == ["cart_recovery_interested"]
    await service.advance(2 * 3600 - 60)
    assert templates(fakes) == ["cart_recovery_interested"]
    await service.advance(120)  # 2 h after the question, not the flow's 24 h
    assert templates(fakes) == ["cart_recovery_interested", "cart_recovery_reminder"]


async def test_a_send_window_holds_marketing_until_ten_local(aiohttp_client: Any,
                                                            mongo_uri: str, db_name: str,
                                                            fakes: Fakes,
                                                            tmp_path: Path) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, tmp_path,
                          '[flows.cart_recovery.send_window]\nat = "10:00"\n')
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    decided = moment(await service.advance(3601)).astimezone(LOCAL)  # cart.abandoned
    ten = decided.replace(hour=10, minute=0, second=0, microsecond=0)
    if ten < decided:
        ten += timedelta(days=1)
    assert sent(fakes) == []
    await service.advance(max((ten - decided).total_seconds() - 60, 0))
    assert sent(fakes) == []
    await service.advance(120)
    assert templates(fakes) == ["cart_recovery_interested"]
