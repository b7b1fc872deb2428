"""Proof of consent over HTTP, from consent the real service recorded.

A signed store event grants WhatsApp consent, the shipped cart-recovery flow
sends its marketing question through the loopback WhatsApp fake after
``CART_ABANDON_AFTER`` (virtual clock), and the customer's signed STOP
revokes it at once (an explicit stop, and no flow confirms stops here). The proof and the
audit export must name the ledger entry behind the send, with the evidence.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.http.appkeys import DATABASE
from server import create_app
from tests.support.app import AUTH, Fakes, Service, customer_event, make_settings
from tests.support.signing import PHONE, whatsapp_text_webhook

WAMID_STOP = "wamid.consent-proof-stop"


class Story:
    """The service after the script, and what the script needs to check against."""

    def __init__(self, service: Service, start: datetime, grant_event: str) -> None:
        self.service = service
        self.start = start
        self.grant_event = grant_event


async def now(service: Service) -> datetime:
    return datetime.fromisoformat((await service.advance(0)).replace("Z", "+00:00"))


async def story(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Story:
    """Grant (customer.created) -> checkout -> abandoned: the marketing question -> STOP.

    Two days earlier another customer (``cus_old``) granted consent: outside
    the period the export is asked for.
    """
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=3600,
                             flows="cart_recovery")
    service = Service(await aiohttp_client(create_app(settings)))
    await service.event(customer_event("evt_old", "customer.created",
                                       (await now(service)).isoformat(), customer_id="cus_old",
                                       phone="+5491100000001"))
    await service.advance(2 * 86400)
    start = await now(service)
    await service.event(customer_event("evt_signup", "customer.created", start.isoformat()))
    await service.event(customer_event(
        "evt_checkout", "checkout.started", start.isoformat(), checkout_id="chk_1",
        recovery_url="https://shop.example/r/1", total="99.90", currency="ARS", items=[]))
    await service.advance(3601)  # the cart counts as abandoned: "still interested?"
    assert fakes.whatsapp.sent[PHONE.lstrip("+")], "the marketing question was not sent"
    await service.whatsapp(whatsapp_text_webhook("STOP", message_id=WAMID_STOP))
    await service.advance(0)
    return Story(service, start, "evt_signup")


async def test_the_consent_proof_names_the_entry_behind_each_marketing_send(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    s = await story(aiohttp_client, mongo_uri, db_name, fakes)
    proof = await s.service.api("GET", "/api/customers/cus_1/consent")
    assert proof["customer_id"] == "cus_1" and proof["truncated"] is False
    assert set(proof["channels"]) == {"whatsapp"}
    whatsapp = proof["channels"]["whatsapp"]

    grant, revoke = whatsapp["ledger"]  # the checkout's repeated "true" changed nothing
    assert grant["state"] == "granted" and grant["source"] == "generic:customer.created"
    assert grant["evidence"]["event_id"] == s.grant_event
    assert grant["at"] == s.start.isoformat().replace("+00:00", "Z")
    assert grant["evidence"]["stated_at"] == grant["at"]  # evidence JSON-safe: times as ISO

    [send] = whatsapp["marketing_sends"]
    assert (send["flow"], send["step"], send["status"]) == ("cart_recovery", "interested", "sent")
    assert send["consent_entry"] == grant["id"] and "derived" not in send
    sent_at = datetime.fromisoformat(send["sent_at"].replace("Z", "+00:00"))
    assert s.start + timedelta(seconds=3600) <= sent_at <= s.start + timedelta(seconds=3601)

    # The customer's explicit opt-out, with what they typed and where.
    assert (revoke["state"], revoke["source"]) == ("revoked", "keyword:whatsapp")
    assert (revoke["evidence"]["words"], revoke["evidence"]["message_id"]) == (
        "STOP", WAMID_STOP)
    assert (whatsapp["state"], whatsapp["source"]) == ("revoked", "keyword:whatsapp")
    assert whatsapp["entry"] == revoke["id"] != grant["id"]

    # The per-customer read goes through its index, not the collection.
    plan = str(await s.service.client.app[DATABASE].messages.find(
        {"customer": "x", "marketing": True, "sent_at": {"$gte": s.start}}).explain())
    assert "customer_marketing_sent" in plan and "COLLSCAN" not in plan, plan


async def test_a_send_that_recorded_no_entry_gets_the_one_in_force_marked_derived(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    s = await story(aiohttp_client, mongo_uri, db_name, fakes)
    database = s.service.client.app[DATABASE]
    # A message sent before the sender recorded ``consent_entry``.
    changed = await database.messages.update_many(
        {"marketing": True, "sent_at": {"$ne": None}}, {"$unset": {"consent_entry": ""}})
    assert changed.modified_count == 1
    whatsapp = (await s.service.api("GET", "/api/customers/cus_1/consent"))["channels"][
        "whatsapp"]
    [send] = whatsapp["marketing_sends"]
    assert send["derived"] is True
    assert send["consent_entry"] == whatsapp["ledger"][0]["id"]  # the grant, not the revoke

    # A long history: the most recent 1,000 sends, and the answer says there were more.
    doc = await database.customers.find_one({"keys": "store:cus_1"})
    assert doc is not None
    later = s.start + timedelta(days=1)
    await database.messages.insert_many([
        {"_id": f"old:{n}", "customer": doc["_id"], "channel": "whatsapp", "marketing": True,
         "flow": "cart_recovery", "step": "interested", "status": "sent", "consent_entry": "cl1",
         "sent_at": later + timedelta(seconds=n)} for n in range(1000)])
    proof = await s.service.api("GET", "/api/customers/cus_1/consent")
    sends = proof["channels"]["whatsapp"]["marketing_sends"]
    assert proof["truncated"] is True and len(sends) == 1000
    assert (sends[0]["message_id"], sends[-1]["message_id"]) == ("old:0", "old:999")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def export(service: Service, query: str, expect: int = 200) -> Any:
    response = await service.client.get(f"/api/consent.csv?{query}", headers=AUTH)
    assert response.status == expect, await response.text()
    return response


async def test_the_audit_export_lists_the_periods_entries_and_sends_only(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    s = await story(aiohttp_client, mongo_uri, db_name, fakes)
    # From a minute before the story, written in Buenos Aires time; to: now.
    local = (s.start - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-3)))
    response = await export(s.service, "from=" + local.isoformat().replace("+", "%2B"))
    assert response.content_type == "text/csv"
    found = rows(await response.text())
    assert [(r["record"], r["customer_id"], r["state"]) for r in found] == [
        ("consent", "cus_1", "granted"), ("consent", "cus_1", "revoked"),
        ("send", "cus_1", "")]
    grant, revoke, send = found
    assert '"event_id":"evt_signup"' in grant["evidence"]
    assert f'"message_id":"{WAMID_STOP}"' in revoke["evidence"]
    assert send["entry"] == grant["entry"] == "cl1"
    assert (send["channel"], send["flow"], send["step"], send["status"]) == (
        "whatsapp", "cart_recovery", "interested", "sent")
    assert send["message_id"] and not send["derived"]

    # The day two days before holds only cus_old's grant; to= a day includes it.
    day = (s.start - timedelta(days=2)).date().isoformat()
    earlier = rows(await (await export(s.service, f"from={day}&to={day}")).text())
    assert [(r["record"], r["customer_id"]) for r in earlier] == [("consent", "cus_old")]

    # Both queries go through their indexes.
    database = s.service.client.app[DATABASE]
    for collection, query, index in (
            (database.customers, {"consent_ledger.recorded_at": {"$gte": s.start}},
             "ledger_recorded"),
            (database.messages, {"marketing": True, "sent_at": {"$gte": s.start}},
             "marketing_sent")):
        plan = str(await collection.find(query).explain())
        assert index in plan and "COLLSCAN" not in plan, plan


async def test_the_routes_need_auth_and_name_what_is_wrong(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    s = await story(aiohttp_client, mongo_uri, db_name, fakes)
    client = s.service.client
    for path in ("/api/customers/cus_1/consent", "/api/consent.csv?from=2026-01-01"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(path, headers=AUTH)).status == 200
    missing = await s.service.api("GET", "/api/customers/nobody/consent", expect=404)
    assert missing == {"error": "no such customer"}
    for query, named in (("from=2026-13-01", "from:"), ("", "from: required"),
                         ("from=yesterday", "from:"), ("from=2026-03-09T10:00:00", "offset"),
                         ("from=2026-03-09&to=nope", "to:"),
                         ("from=2026-03-09&to=2026-03-01", "is not before to")):
        error = (await (await export(s.service, query, expect=400)).json())["error"]
        assert named in error, (query, error)
