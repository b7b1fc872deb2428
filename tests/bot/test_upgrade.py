"""A database written by an earlier version keeps working after the upgrade.

Two names changed (``bot.types``): inbox kinds ``status`` and ``delivery``
are now ``receipt`` and ``send_failure``, and messages, codes and flow runs
call the internal customer id ``customer`` instead of ``customer_id``.
Items and documents stored under the old names are still processed.
"""

from __future__ import annotations

from pymongo import ASCENDING

from bot.core.commands import send, tag
from bot.core.flows import Flow
from bot.flows import m, ruleset, when_all
from bot.infra.database import open_database
from bot.infra.settings import Settings
from bot.runtime.inbox import make_item
from bot.testing import FlowHarness
from bot.types import Doc

NOTIFY = Flow("u_notify", triggers=("message",), marketing=False, receives_messages=True)

with ruleset("u_notify"):

    @when_all(m.type == "message")
    def answer(c):
        send(c, "recibido", step="answer")

    @when_all(m.type == "message.failed")
    def failed(c):
        tag(c, "answer_failed")


PHONE = "+5491122334455"


def legacy_item(kind: str, dedupe_id: str, keys: list[str], payload: Doc) -> Doc:
    """An inbox item as an earlier version wrote it (its kind under the old name)."""
    item = make_item(dedupe_id=dedupe_id, kind="receipt", source="test", keys=keys,
                     payload=payload)
    return {**item, "kind": kind}


async def answered(h: FlowHarness) -> Doc:
    await h.customer("cus_1", phone=PHONE)
    await h.reply("cus_1", "hola")
    [answer] = [message for message in await h.messages("cus_1")
                if message["direction"] == "out"]
    return answer


async def test_a_receipt_stored_under_the_old_kind_status_moves_the_message(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [NOTIFY], channels=("sms",)) as h:
        answer = await answered(h)
        assert answer["status"] == "sent"
        await h.database.inbox.insert_one(legacy_item(
            "status", dedupe_id="sms:status:old", keys=[],
            payload={"channel": "sms", "provider_id": answer["provider_id"],
                     "status": "delivered", "at": h.clock.now()}))
        await h.runtime.drain()
        [after] = [message for message in await h.messages("cus_1")
                   if message["_id"] == answer["_id"]]
        assert after["status"] == "delivered"
        receipt = await h.database.inbox.find_one({"_id": "sms:status:old"})
        assert receipt is not None and receipt["state"] == "done"


async def test_a_failed_send_stored_under_the_old_kind_delivery_reaches_the_flow(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [NOTIFY], channels=("sms",)) as h:
        answer = await answered(h)
        doc = await h.customer_doc("cus_1")
        await h.database.inbox.insert_one(legacy_item(
            "delivery", dedupe_id=f"delivery:{answer['_id']}", keys=[f"id:{doc['_id']}"],
            payload={"message_id": answer["_id"], "flow": NOTIFY.name,
                     "run": doc["flows"][NOTIFY.name]["run"], "step": "answer",
                     "error": "21610: unsubscribed"}))
        await h.runtime.drain()
        assert "answer_failed" in (await h.customer_doc("cus_1"))["tags"]
        item = await h.database.inbox.find_one({"_id": f"delivery:{answer['_id']}"})
        assert item is not None and item["state"] == "done"


async def test_the_internal_customer_id_is_renamed_customer_once(
        mongo_uri: str, db_name: str) -> None:
    settings = Settings(mongodb_uri=mongo_uri, mongodb_db=db_name)
    async with open_database(settings) as database:
        # The shape an earlier version left: its codes index, its field name.
        await database.db["codes"].drop_index("by_customer")
        await database.db["codes"].create_index([("customer_id", ASCENDING)], name="customer")
        await database.messages.insert_one({"_id": "m1", "customer_id": "c1", "outbox": True})
        await database.codes.insert_one({"_id": "CODE-1", "customer_id": "c1"})
        await database.flow_runs.insert_one({"_id": "c1:f:1", "customer_id": "c1"})
        await database.ensure_indexes()  # what the next start does
        for collection in (database.messages, database.codes, database.flow_runs):
            [doc] = await collection.find({}).to_list(None)
            assert doc["customer"] == "c1" and "customer_id" not in doc
        indexes = await database.db["codes"].index_information()
        assert "customer" not in indexes
        assert indexes["by_customer"]["key"] == [("customer", ASCENDING)]
        await database.ensure_indexes()  # and every start after it: nothing to do
        code = await database.codes.find_one({"_id": "CODE-1"})
        assert code is not None and code["customer"] == "c1"
        await database.client.drop_database(db_name)
