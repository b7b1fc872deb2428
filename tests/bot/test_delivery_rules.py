"""Delivery that knows the rules: fallback chains, provider refusals, dead addresses, pacing.

Through the whole service: signed store events, the loopback WhatsApp and
Twilio fakes refusing sends with their documented codes, the virtual clock.
The flow is ``tests/support/delivery_rules/offers.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.signing import (
    PHONE,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
    whatsapp_user_preferences_webhook,
)

DIGITS = PHONE.lstrip("+")
OTHER = "+5491133445566"
BOTH = {"whatsapp": True, "sms": True}


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes,
                             flows_package="tests.support.delivery_rules", flows="offers")
    return Service(await aiohttp_client(create_app(settings)))


async def customer(service: Service, consents: dict[str, bool], *, phone: str = PHONE,
                   customer_id: str = "cus_1", event_id: str = "evt_c") -> None:
    now = await service.advance(0)
    await service.event(customer_event(event_id, "customer.created", now, phone=phone,
                                       customer_id=customer_id, consents=consents))


async def viewed(service: Service, event_id: str, mode: str = "", *,
                 customer_id: str = "cus_1", phone: str = PHONE) -> None:
    now = await service.advance(0)
    await service.event(customer_event(event_id, "product.viewed", now, phone=phone,
                                       customer_id=customer_id, consents={},
                                       product_id="p1", mode=mode))
    await service.advance(0)


def whatsapp_bodies(fakes: Fakes, digits: str = DIGITS) -> list[dict[str, Any]]:
    return list(fakes.whatsapp.sent.get(digits, []))


def sms_texts(fakes: Fakes, phone: str = PHONE) -> list[str]:
    return [m["body"] for m in fakes.twilio.sent.get(phone, [])]


async def stored(db: Any, **query: Any) -> list[dict[str, Any]]:
    return [m async for m in db.messages.find({"direction": "out", **query}).sort("seq", 1)]


async def customer_doc(db: Any) -> dict[str, Any]:
    doc = await db.customers.find_one({"keys": f"phone:{PHONE}"})
    assert doc is not None
    return dict(doc)


async def run_steps(db: Any) -> list[dict[str, Any]]:
    """The steps of the customer's offers run: the running one, else the last that ended."""
    doc = await customer_doc(db)
    run = doc["flows"].get("offers")
    if run is None:
        ended = [r async for r in db.flow_runs.find({"customer": doc["_id"], "flow": "offers"})]
        run = max(ended, key=lambda r: r["ended_at"])
    return list(run["history"])


# ---------------------------------------------------------------- fallback


async def test_a_chain_goes_to_sms_when_whatsapp_has_no_consent_and_says_why(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await customer(service, {"whatsapp": False, "sms": True})
    await viewed(service, "evt_v1", "chain")
    assert whatsapp_bodies(fakes) == []
    assert sms_texts(fakes) == ["OFERTA p1"]
    [message] = await stored(db)
    assert message["channel"] == "sms" and message["status"] == "sent"
    assert [(t["channel"], t["code"]) for t in message["fallback_from"]] == [
        ("whatsapp", "consent")]
    offer = [s for s in await run_steps(db) if s.get("step") == "offer"]
    assert offer and offer[0]["fallback_from"][0]["channel"] == "whatsapp"


async def test_a_131050_at_send_revokes_whatsapp_and_falls_back_to_sms_once(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.refuse(PHONE, 131050, message_type="template")
    await customer(service, BOTH)
    await viewed(service, "evt_v1", "chain")
    await service.advance(1)
    assert whatsapp_bodies(fakes) == []  # refused by Meta: nothing reached the user there
    assert sms_texts(fakes) == ["OFERTA p1"]  # the step reached the customer once, by SMS
    first, second = await stored(db)
    assert (first["channel"], first["status"]) == ("whatsapp", "failed")
    assert first["error"].startswith("131050")
    assert (second["channel"], second["status"]) == ("sms", "sent")
    assert second["retry_of"] == first["_id"]
    assert [(t["channel"], t["code"]) for t in second["fallback_from"]] == [("whatsapp", "131050")]
    doc = await customer_doc(db)
    assert doc["consents"]["whatsapp"]["state"] == "revoked"
    assert doc["consents"]["whatsapp"]["source"] == "whatsapp:131050"
    assert doc["consent_ledger"][-1]["evidence"]["message_id"] == first["_id"]
    outcomes = [s["outcome"] for s in await run_steps(db) if s.get("step") == "offer"]
    assert "fallback" in outcomes and "failed" not in outcomes
    # Later offers skip WhatsApp at once, for the revoked consent.
    await viewed(service, "evt_v2", "chain")
    assert sms_texts(fakes) == ["OFERTA p1", "OFERTA p1"]
    assert whatsapp_bodies(fakes) == []


async def test_without_a_chain_a_131050_revokes_and_is_not_retried(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.refuse(PHONE, 131050, message_type="template")
    await customer(service, {"whatsapp": True})
    await viewed(service, "evt_v1")
    await service.advance(3 * 86400)
    [message] = await stored(db)
    assert message["status"] == "failed" and message["error"].startswith("131050")
    assert sms_texts(fakes) == [] and whatsapp_bodies(fakes) == []
    doc = await customer_doc(db)
    assert doc["consents"]["whatsapp"]["state"] == "revoked"
    assert [s["step"] for s in await run_steps(db)][-1] == "failure_seen"


# ------------------------------------------------------ per-user marketing limit


async def test_a_131049_is_held_and_retried_once_no_sooner_than_a_day(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.refuse(PHONE, 131049, message_type="template")
    await customer(service, {"whatsapp": True})
    await viewed(service, "evt_v1")
    first, retry = await stored(db)
    assert first["status"] == "failed" and first["error"].startswith("131049")
    assert retry["status"] == "queued" and retry["retry_of"] == first["_id"]
    assert (retry["due_at"] - first["at"]).total_seconds() >= 86400
    held = [s for s in await run_steps(db) if s.get("outcome") == "held"]
    assert held and held[0]["message_id"] == retry["_id"]
    attempts = len(fakes.whatsapp.requests)
    await service.advance(86400 - 60)
    assert len(fakes.whatsapp.requests) == attempts  # not before a day
    await service.advance(120)
    assert len(fakes.whatsapp.requests) == attempts + 1  # once
    await service.advance(3 * 86400)
    assert len(fakes.whatsapp.requests) == attempts + 1  # and only once
    messages = await stored(db)
    assert [m["status"] for m in messages] == ["failed", "failed"]
    assert [s["step"] for s in await run_steps(db)][-1] == "failure_seen"
    doc = await customer_doc(db)
    assert doc["consents"]["whatsapp"]["state"] == "granted"  # a limit is not an opt-out


async def test_a_131049_retry_goes_through_when_the_limit_has_passed(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.refuse(PHONE, 131049, message_type="template")
    await customer(service, {"whatsapp": True})
    await viewed(service, "evt_v1")
    fakes.whatsapp.allow(PHONE)
    await service.advance(86400 + 60)
    assert [b["template"]["name"] for b in whatsapp_bodies(fakes)] == ["promo_offer"]
    assert [m["status"] for m in await stored(db)] == ["failed", "sent"]


# ------------------------------------------------------------- dead addresses


async def test_a_dead_number_stops_marketing_until_the_store_gives_a_new_one(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.twilio.refuse(PHONE, 21211)
    await customer(service, {"whatsapp": False, "sms": True})
    await viewed(service, "evt_v1")
    doc = await customer_doc(db)
    assert doc["undeliverable"]["sms"]["address"] == PHONE
    assert doc["undeliverable"]["sms"]["code"] == "21211"
    requests = len(fakes.twilio.requests)
    await viewed(service, "evt_v2")
    skipped = (await stored(db))[-1]
    assert skipped["status"] == "skipped"
    assert skipped["error"] == "address undeliverable on sms (21211)"
    assert len(fakes.twilio.requests) == requests  # never tried again
    # The store gives a new number: marketing reaches it.
    now = await service.advance(0)
    await service.event(customer_event("evt_u", "customer.updated", now, phone=OTHER,
                                       consents={"sms": True}))
    await viewed(service, "evt_v3", phone=OTHER)
    assert sms_texts(fakes, OTHER) == ["OFERTA p1"]
    doc = await customer_doc(db)
    assert "sms" not in doc.get("undeliverable", {})


async def test_a_failed_status_131026_marks_whatsapp_and_a_message_from_it_clears_it(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await customer(service, {"whatsapp": True})
    await viewed(service, "evt_v1")
    [sent] = await stored(db)
    await service.whatsapp(whatsapp_status_webhook(sent["provider_id"], "failed",
                                                   error_code=131026))
    await service.advance(0)
    doc = await customer_doc(db)
    assert doc["undeliverable"]["whatsapp"]["code"] == "131026"
    await viewed(service, "evt_v2")
    assert (await stored(db))[-1]["error"] == "address undeliverable on whatsapp (131026)"
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))
    await service.advance(0)
    assert "whatsapp" not in (await customer_doc(db)).get("undeliverable", {})


# ----------------------------------------------------------------- pacing


async def test_a_burst_to_one_customer_is_spaced_and_others_are_not_held(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))  # opens the window
    await service.whatsapp(whatsapp_text_webhook("hola", phone=OTHER, user_id="AR.999"))
    await customer(service, {"whatsapp": True})
    await customer(service, {"whatsapp": True}, phone=OTHER, customer_id="cus_2",
                   event_id="evt_c2")
    await viewed(service, "evt_v1", "burst")
    await viewed(service, "evt_v2", "burst", customer_id="cus_2", phone=OTHER)
    texts = [b["text"]["body"] for b in whatsapp_bodies(fakes)]
    assert texts == ["MENSAJE 0", "MENSAJE 1", "MENSAJE 2"]
    others = [b["text"]["body"] for b in whatsapp_bodies(fakes, OTHER.lstrip("+"))]
    assert others == ["MENSAJE 0", "MENSAJE 1", "MENSAJE 2"]
    await service.advance(5)
    assert len(whatsapp_bodies(fakes)) == 3
    await service.advance(1.1)
    assert len(whatsapp_bodies(fakes)) == 4
    await service.advance(6.1)
    assert [b["text"]["body"] for b in whatsapp_bodies(fakes)][-1] == "MENSAJE 4"
    assert all(m["status"] == "sent" for m in await stored(db))


async def test_a_pair_rate_error_delays_that_user_only_and_fails_nothing(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    fakes.whatsapp.refuse(PHONE, 131056)
    await customer(service, {"whatsapp": True})
    await customer(service, {"whatsapp": True}, phone=OTHER, customer_id="cus_2",
                   event_id="evt_c2")
    await viewed(service, "evt_v1")
    await viewed(service, "evt_v2", customer_id="cus_2", phone=OTHER)
    assert len(whatsapp_bodies(fakes, OTHER.lstrip("+"))) == 1
    [mine] = await stored(db, customer=(await customer_doc(db))["_id"])
    assert mine["status"] == "queued" and mine["last_error"].startswith("131056")
    fakes.whatsapp.allow(PHONE)
    await service.advance(6.1)
    assert len(whatsapp_bodies(fakes)) == 1
    assert [m["status"] for m in await stored(db)] == ["sent", "sent"]


# ------------------------------------------------------ WhatsApp's own opt-out


async def test_a_resume_only_undoes_whatsapps_own_stop(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await customer(service, {"whatsapp": True})
    start_at = int(datetime.fromisoformat(await service.advance(10)).timestamp())
    await service.whatsapp(whatsapp_user_preferences_webhook("stop", timestamp=start_at))
    await service.advance(0)
    doc = await customer_doc(db)
    assert doc["consents"]["whatsapp"]["state"] == "revoked"
    entry = doc["consent_ledger"][-1]
    assert entry["source"] == "whatsapp:user_preferences"
    assert entry["evidence"]["detail"] == "User requested to stop marketing messages"
    await service.whatsapp(whatsapp_user_preferences_webhook("resume",
                                                             timestamp=start_at + 1))
    await service.advance(0)
    assert (await customer_doc(db))["consents"]["whatsapp"]["state"] == "granted"
    # After the customer's own STOP, WhatsApp's resume does not grant anything.
    await service.advance(10)
    await service.whatsapp(whatsapp_text_webhook("STOP", phone=PHONE))
    await service.advance(10)
    await service.whatsapp(whatsapp_user_preferences_webhook("resume",
                                                             timestamp=start_at + 20))
    await service.advance(0)
    doc = await customer_doc(db)
    assert doc["consents"]["whatsapp"]["state"] == "revoked"
    assert doc["consents"]["whatsapp"]["source"] == "keyword:whatsapp"


async def test_a_chain_does_not_escape_an_agent_holding_the_conversation(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await customer(service, BOTH)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=PHONE))
    await service.advance(0)
    internal = (await customer_doc(db))["_id"]
    await service.api("POST", f"/api/conversations/{internal}:whatsapp/takeover",
                      json={"agent": "ana"})
    await service.advance(0)
    await viewed(service, "evt_v1", "chain")
    assert sms_texts(fakes) == []  # a person has the customer: no other channel either
    skipped = (await stored(db))[-1]
    assert (skipped["channel"], skipped["status"]) == ("whatsapp", "skipped")
    assert skipped["error"] == "an agent has the conversation"
