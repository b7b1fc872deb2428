"""Stopping: work in progress is finished, not abandoned half-way."""

from __future__ import annotations

import asyncio

from bot.core.commands import send
from bot.core.flows import Flow
from bot.core.inputs import InboundMessage
from bot.flows import m, ruleset, when_all
from bot.runtime.inbox import make_item
from bot.testing import FlowHarness

PHONE = "+5491122334455"
REPLY = Flow("t_stop_reply", triggers=("message",), marketing=False, receives_messages=True)

with ruleset("t_stop_reply"):

    @when_all(m.type == "message")
    def reply(c):
        send(c, f"recibido: {c.m.text}")


async def test_stop_lets_the_pass_in_progress_finish(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [REPLY], channels=("sms",)) as h:
        await h.customer("a", phone=PHONE)
        await h.runtime.accept_channel_input("sms", InboundMessage(
            channel="sms", provider_id="in-1", sender=PHONE, text="hola", at=h.clock.now()))
        h.runtime.start_loops()
        await asyncio.sleep(0)  # the decide loop is now inside its pass, awaiting the database
        await h.runtime.stop()
        # The pass ran to its end: the input is decided and no lease is left to expire.
        assert await h.database.inbox.count_documents({"state": "pending"}) == 0
        assert "lease" not in await h.customer_doc("a")
        [reply] = [m for m in await h.messages("a") if m["direction"] == "out"]
        assert reply["text"] == "recibido: hola"


async def test_stop_writes_what_was_accepted_before_it(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [REPLY], channels=("sms",)) as h:
        items = [make_item(dedupe_id=f"test:stop-{i}", kind="event", source="test",
                           keys=[f"store:s{i}"], payload={}) for i in range(3)]
        accepted = [asyncio.create_task(h.runtime.inbox.accept(item)) for item in items]
        await asyncio.sleep(0)  # queued; the writer is waiting a moment for companions
        await h.runtime.inbox.stop()
        async with asyncio.timeout(5):  # a request is never left waiting
            assert await asyncio.gather(*accepted) == [True, True, True]
        assert await h.database.inbox.count_documents({"source": "test"}) == 3
