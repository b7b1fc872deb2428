"""The sunset's last chance and goodbye end to end: a signed ``/events`` customer, the
WhatsApp fake receiving the templates on the virtual clock, and a signed delivery
report of the goodbye that pauses marketing (``SUNSET_LAST_CHANCE=true``)."""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, sent_templates
from tests.support.signing import PHONE, whatsapp_status_webhook

DIGITS = PHONE.lstrip("+")
DAY = 86400


def templates(fakes: Fakes) -> list[tuple[str, list[str]]]:
    return sent_templates(fakes, DIGITS)


async def consent(db: Any) -> dict[str, Any]:
    doc = await db.customers.find_one({"keys": "store:cus_1"})
    assert doc is not None
    return {"whatsapp": (doc["consents"]["whatsapp"]["state"],
                         doc["consents"]["whatsapp"]["source"]),
            "tags": doc.get("tags", [])}


async def test_last_chance_goodbye_and_pause_when_the_goodbye_is_delivered(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, flows="sunset", sunset_last_chance=True)
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now))
    await service.advance(180 * DAY)
    assert templates(fakes) == [("sunset_keep_subscribed", ["Ana"])]
    await service.advance(7 * DAY)
    assert templates(fakes)[-1] == ("sunset_last_chance", ["Ana"])
    await service.advance(3 * DAY)
    assert templates(fakes)[-1] == ("sunset_goodbye", ["Ana"])
    # Sent while consent was granted; the pause waits for the goodbye's fate.
    assert (await consent(db))["whatsapp"] == ("granted", "generic:customer.created")
    goodbye = await db.messages.find_one({"step": "goodbye", "direction": "out"})
    assert goodbye is not None and goodbye["status"] == "sent"
    await service.whatsapp(whatsapp_status_webhook(goodbye["provider_id"], "delivered"))
    await service.advance(0)
    state = await consent(db)
    assert state["whatsapp"] == ("revoked", "sunset:no_answer")
    assert "marketing_paused" in state["tags"]
    [run] = [r async for r in db.flow_runs.find({"flow": "sunset"})]
    assert run["outcome"] == "no_answer"
    await service.advance(30 * DAY)
    assert [name for name, _ in templates(fakes)] == [
        "sunset_keep_subscribed", "sunset_last_chance", "sunset_goodbye"]
