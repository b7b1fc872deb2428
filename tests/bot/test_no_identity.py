"""One bad input fails alone; the passes go on with the others.

The full fuzz run found the first: a store webhook with an empty customer id
(now a 400 naming the field) was stored with no key to find its customer by,
and every later pass raised on it, so nothing after it was ever decided. A
fan-out input whose data breaks the catalog could do the same to every pass.
"""

from __future__ import annotations

from bot.runtime.inbox import make_item
from bot.runtime.processor import NO_IDENTITY
from bot.testing import FlowHarness
from rules import birthday

PHONE = "+5491122334455"


async def test_an_input_with_no_key_is_failed_and_the_others_are_decided(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [birthday.FLOW], channels=("sms",)) as h:
        nobody = make_item(dedupe_id="test:nobody", kind="event", source="events", keys=[],
                           payload={"type": "customer.updated", "data": {}})
        assert await h.runtime.inbox.accept(nobody)
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await h.runtime.drain()
        stored = await h.database.inbox.find_one({"_id": "test:nobody"})
        assert stored is not None
        assert (stored["state"], stored["error"]) == ("failed", NO_IDENTITY)
        assert await h.database.inbox.count_documents({"state": "pending"}) == 0
        assert (await h.customer_doc("cus_1"))["profile"]["first_name"] == "Ana"


async def test_a_fan_out_input_its_data_breaks_fails_alone(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [birthday.FLOW], channels=("sms",)) as h:
        broken = make_item(dedupe_id="test:broken", kind="fanout", source="shopify",
                           keys=["store:shopify:store"],
                           payload={"type": "product.inventory_level", "store_wide": True,
                                    "data": "not an object"})
        assert await h.runtime.inbox.accept(broken)
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await h.runtime.drain()
        stored = await h.database.inbox.find_one({"_id": "test:broken"})
        assert stored is not None and stored["state"] == "failed"
        assert await h.database.inbox.count_documents({"state": "pending"}) == 0
        assert (await h.customer_doc("cus_1"))["profile"]["first_name"] == "Ana"
