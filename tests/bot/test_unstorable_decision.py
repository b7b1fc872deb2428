"""A decision the database cannot hold fails its own input, and only that one.

Found by the full fuzz run: a store's checkout id with a NUL character
became a key of the customer document (its checkouts), which BSON cannot
encode. The commit of the whole chunk (up to 100 customers) failed, and was
retried on every pass, forever: one odd event held 99 other customers'
decisions back.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, with_test_flows


async def test_an_unstorable_decision_fails_alone_and_blocks_nobody(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows())
    service = Service(await aiohttp_client(create_app(settings)))
    bad = customer_event("evt_bad", "checkout.started", "2026-11-24T10:00:00Z",
                         customer_id="cus_1", checkout_id="k\u00001", currency="ARS",
                         recovery_url="https://shop.example/r/1",
                         total="10.00", items=[])
    same_customer = customer_event("evt_same", "customer.updated", "2026-11-24T10:00:01Z",
                                   customer_id="cus_1")
    other = customer_event("evt_other", "customer.created", "2026-11-24T10:00:00Z",
                           customer_id="cus_2", phone="+5491100000002")
    for event in (bad, same_customer, other):
        await service.event(event)
    with caplog.at_level(logging.ERROR):
        await service.advance(0)
        await service.advance(0)  # a second pass retries nothing
    states = {item["_id"]: (item["state"], item.get("error", ""))
              async for item in db.inbox.find({"kind": "event"})}
    assert states["events:evt_bad"][0] == "failed", states
    assert "cannot be stored" in states["events:evt_bad"][1]
    assert states["events:evt_same"][0] == "done"
    assert states["events:evt_other"][0] == "done"
    assert not [r for r in caplog.records if "processing failed" in r.getMessage()]
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["id"] == "cus_1"
