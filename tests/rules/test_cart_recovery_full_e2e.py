"""Cart recovery's fuller sequence end to end: a signed ``checkout.started`` on
``/events`` with ``CART_RECOVERY_FULL=true``, and the WhatsApp fake receives the
five-message sequence's templates on the virtual clock."""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, sent_templates

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
HOUR = 3600
DAY = 24 * HOUR
URL = "https://tienda.example/r/1"
CHECKOUT: dict[str, Any] = {"checkout_id": "chk_1", "recovery_url": URL, "total": 120.0,
                            "currency": "ARS",
                            "items": [{"sku": "REM-1", "title": "Remera", "quantity": 1,
                                       "price": 120.0}]}


def templates(fakes: Fakes) -> list[tuple[str, list[str]]]:
    return sent_templates(fakes, DIGITS)


async def test_silence_gets_the_testimonial_and_the_last_chance(aiohttp_client: Any,
                                                                 mongo_uri: str, db_name: str,
                                                                 fakes: Fakes) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=HOUR,
                             cart_recovery_full=True)
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    await service.advance(HOUR + 1)
    await service.advance(DAY)  # no answer: the reminder with a code
    customer = await service.api("GET", "/api/customers/cus_1")
    code = str(customer["attrs"]["code_cart"])
    assert templates(fakes) == [("cart_recovery_interested", ["Ana"]),
                                ("cart_recovery_reminder", ["Ana", code, URL])]
    await service.advance(3 * DAY - 60)  # 48 h of listening, then 1 day
    assert len(templates(fakes)) == 2
    await service.advance(60)
    assert templates(fakes)[-1] == ("cart_recovery_testimonial", ["Ana", URL])
    await service.advance(2 * DAY)
    assert templates(fakes)[-1] == ("cart_recovery_last_chance", ["Ana", code, URL])
    await service.advance(DAY)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["active_flows"] == []
    await service.advance(10 * DAY)
    assert [name for name, _ in templates(fakes)] == [
        "cart_recovery_interested", "cart_recovery_reminder", "cart_recovery_testimonial",
        "cart_recovery_last_chance"]
