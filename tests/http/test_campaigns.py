"""Scheduled campaigns (``POST /api/campaigns``, ``GET /api/campaigns/{id}``).

Through the whole service: customers and orders as signed store events,
the loopback WhatsApp fake, the virtual clock. The segment is "ordered and
spent over 100 ARS": ``cus_1`` (consents to WhatsApp) and ``cus_2`` (consents
to nothing) are in it, ``cus_3`` (spent 50) and ``cus_4`` (never ordered) are not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.http.appkeys import DATABASE
from bot.runtime.campaigns import expand
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings

SEGMENT = {"all": [{"orders_at_least": 1}, {"spent_over": ["100", "ARS"]}]}
PHONES = {"cus_1": "+5491100000001", "cus_2": "+5491100000002", "cus_3": "+5491100000003",
          "cus_4": "+5491100000004"}
WHATSAPP = {"whatsapp": True}


async def store(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                **overrides: Any) -> Service:
    """The service with the four customers (and the small test flows only)."""
    settings = make_settings(mongo_uri, db_name, fakes, flows_package="tests.support.fate_rules",
                             flows="read_or_sms", **overrides)
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    people = {"cus_1": (WHATSAPP, "500"), "cus_2": ({}, "500"), "cus_3": (WHATSAPP, "50"),
              "cus_4": (WHATSAPP, None)}
    for customer, (consents, total) in people.items():
        await service.event(customer_event(f"c_{customer}", "customer.created", now,
                                           customer_id=customer, phone=PHONES[customer],
                                           consents=consents))
        if total is not None:
            await service.event(customer_event(
                f"o_{customer}", "order.placed", now, customer_id=customer,
                phone=PHONES[customer], consents=consents, order_id=f"ord_{customer}",
                total=total, currency="ARS"))
    await service.advance(0)
    return service


def campaign(at: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Otoño", "segment": SEGMENT, "texts": {"es": "Hola {first_name}, 20% off"},
            "template": {"name": "promo_offer", "params": ["{first_name}"]}, "at": at, **extra}


def later(now: str, seconds: float) -> str:
    return (datetime.fromisoformat(now.replace("Z", "+00:00"))
            + timedelta(seconds=seconds)).isoformat()


def whatsapp_to(fakes: Fakes, customer: str) -> list[dict[str, Any]]:
    return list(fakes.whatsapp.sent.get(PHONES[customer].lstrip("+"), []))


async def test_a_dry_run_counts_the_segment_and_writes_nothing(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await store(aiohttp_client, mongo_uri, db_name, fakes)
    answer = await service.api("POST", "/api/campaigns", json={"segment": SEGMENT,
                                                               "dry_run": True})
    assert answer == {"matching": 2}
    everyone = await service.api("POST", "/api/campaigns",
                                 json={"segment": {"everyone": True}, "dry_run": True})
    assert everyone == {"matching": 4}
    assert await db.campaigns.count_documents({}) == 0


async def test_a_campaign_goes_at_its_time_to_the_segment_respecting_consent(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await store(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    at = later(now, 86400)
    created = await service.api("POST", "/api/campaigns", expect=201, json=campaign(at))
    assert created["status"] == "scheduled"
    await service.advance(3600)
    assert whatsapp_to(fakes, "cus_1") == []
    shown = await service.api("GET", f"/api/campaigns/{created['id']}")
    assert shown["status"] == "scheduled" and shown["counts"]["matched"] == 0
    await service.advance(2 * 86400)
    [sent] = whatsapp_to(fakes, "cus_1")
    assert sent["template"]["name"] == "promo_offer"  # outside the window: its template
    assert all(whatsapp_to(fakes, c) == [] for c in ("cus_2", "cus_3", "cus_4"))
    [message] = [m async for m in db.messages.find({"campaign": created["id"], "status": "sent"})]
    assert message["sent_at"] == datetime.fromisoformat(at)  # at its time, not later
    assert message["marketing"] is True
    shown = await service.api("GET", f"/api/campaigns/{created['id']}")
    assert shown["status"] == "expanded"
    assert shown["counts"] == {"matched": 2, "queued": 0, "sent": 1, "failed": 0,
                               "skipped": {"consent": 1}}


async def test_the_frequency_cap_holds_for_a_campaign(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await store(aiohttp_client, mongo_uri, db_name, fakes, marketing_cap=1)
    now = await service.advance(0)
    # cus_1 already had this week's one marketing message (the test flow's offer).
    await service.event(customer_event("evt_v", "product.viewed", now, customer_id="cus_1",
                                       phone=PHONES["cus_1"], consents={}, product_id="p1"))
    await service.advance(0)
    assert len(whatsapp_to(fakes, "cus_1")) == 1
    created = await service.api("POST", "/api/campaigns", expect=201,
                                json=campaign(later(now, 60)))
    await service.advance(120)
    assert len(whatsapp_to(fakes, "cus_1")) == 1
    shown = await service.api("GET", f"/api/campaigns/{created['id']}")
    assert shown["counts"]["skipped"] == {"consent": 1, "frequency_cap": 1}


async def test_expanding_again_creates_nothing_new(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    service = await store(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    created = await service.api("POST", "/api/campaigns", expect=201,
                                json=campaign(later(now, 60)))
    stale = await db.campaigns.find_one({"_id": created["id"]})  # as read before it ran
    await service.advance(120)
    items = await db.inbox.count_documents({"kind": "campaign"})
    assert items == 2
    # A second pass over the same campaign (a worker that read it before the
    # first one's checkpoint, or a replay after a crash).
    database = service.client.app[DATABASE]
    written, done = await expand(database, stale, datetime.fromisoformat(later(now, 120)))
    assert done and written == 2  # the same ids again: duplicates, not new items
    assert await db.inbox.count_documents({"kind": "campaign"}) == 2
    await service.advance(60)
    assert len(whatsapp_to(fakes, "cus_1")) == 1
    shown = await service.api("GET", f"/api/campaigns/{created['id']}")
    assert shown["counts"]["matched"] == 2  # the stale checkpoint counted nothing


@pytest.mark.parametrize(("body", "field"), [
    ({"segment": SEGMENT, "text": "x", "at": "2030-01-01T10:00:00Z"}, "name:"),
    ({"name": "n", "text": "x", "at": "2030-01-01T10:00:00Z"}, "segment:"),
    ({"name": "n", "segment": {"all": [{"tagged": "vip"}, {"spent_over": ["x", "ARS"]}]},
      "text": "x", "at": "2030-01-01T10:00:00Z"}, "segment.all[1].spent_over:"),
    ({"name": "n", "segment": {"hated": "x"}, "text": "x", "at": "2030-01-01T10:00:00Z"},
     "segment.hated:"),
    ({"name": "n", "segment": SEGMENT, "at": "2030-01-01T10:00:00Z"}, "text:"),
    ({"name": "n", "segment": SEGMENT, "texts": {"fr": "x"}, "at": "2030-01-01T10:00:00Z"},
     "texts.fr:"),
    ({"name": "n", "segment": SEGMENT, "text": "x", "at": "2030-01-01T10:00:00"}, "at:"),
    ({"name": "n", "segment": SEGMENT, "text": "x"}, "at:"),
    ({"name": "n", "segment": SEGMENT, "text": "x", "at": "2030-01-01T10:00:00Z",
      "channels": ["fax"]}, "channels[0]:"),
    ({"name": "n", "segment": SEGMENT, "text": "x", "at": "2030-01-01T10:00:00Z",
      "template": {"name": "t", "params": [1]}}, "template.params:"),
    ({"segment": SEGMENT, "dry_run": "yes"}, "dry_run:"),
    ({"name": "n", "segment": SEGMENT, "text": "x", "at": "2030-01-01T10:00:00Z",
      "when": "now"}, "when:"),
    ([1, 2], "body:"),
])
async def test_a_bad_body_is_a_400_naming_the_field(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any,
        body: Any, field: str) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, flows_package="tests.support.fate_rules",
                             flows="read_or_sms")
    service = Service(await aiohttp_client(create_app(settings)))
    answer = await service.api("POST", "/api/campaigns", expect=400, json=body)
    assert answer["error"].startswith(field), answer
    assert await db.campaigns.count_documents({}) == 0


async def test_campaigns_need_the_token(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                        fakes: Fakes) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, flows_package="tests.support.fate_rules",
                             flows="read_or_sms")
    client = await aiohttp_client(create_app(settings))
    response = await client.post("/api/campaigns", json={"segment": SEGMENT, "dry_run": True})
    assert response.status == 401
    response = await client.get("/api/campaigns/cmp_x")
    assert response.status == 401
    response = await client.get("/api/campaigns/cmp_x",
                                headers={"Authorization": "Bearer test-admin-token"})
    assert response.status == 404
