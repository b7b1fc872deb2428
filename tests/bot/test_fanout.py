"""Back-in-stock fan-out: every ``product.back_in_stock`` is expanded, however many arrive.

The runtime's fanout pass expands at most a page of them per pass; the
decision pass must leave the rest alone (it cannot decide a fanout), or
they were marked failed and their customers never told. Found by the
stress fuzz (a burst of Shopify restock webhooks).
"""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, with_test_flows


async def test_more_restocks_than_a_fanout_page_are_all_expanded(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, db: Any) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows())
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    for n in range(25):
        await service.event(customer_event(f"evt_r{n}", "product.back_in_stock", now,
                                           product_id=f"p{n}"))
    await service.advance(0)
    states = [item["state"] async for item in db.inbox.find({"kind": "fanout"})]
    assert len(states) == 25
    assert set(states) == {"done"}
