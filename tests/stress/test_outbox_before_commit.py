"""A reply queued before its decision's commit must not be judged on the old customer.

Found by the stress suite (``stress/faults.py``, database paused): an echo
reply to a customer's first WhatsApp message was recorded "skipped: outside
the WhatsApp 24-hour window and the step has no template", 3 s after the
customer wrote. The processor inserts a decision's outbox messages before it
commits the customer's new state (README, "Exactly-once effects"), and that
state is what opens the window (``last_in``). A send pass that runs between
the two writes (milliseconds apart; seconds when the database stalls) reads
the customer as it was before the message and skips the reply for good.

This test builds that in-between state with the real runtime: the decision
is made and committed, then the customer's document is put back as it is
between the two writes (lease held, the version before the decision, the new
``last_in`` not yet there), and one send pass runs. The pass must leave the
reply queued until the commit shows (or send it); skipping it is the bug.
Then the commit lands and the reply goes out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.inputs import InboundMessage
from bot.testing import FlowHarness
from tests.support.process_rules import echo


async def test_a_reply_queued_before_the_commit_is_not_skipped_for_the_old_state(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [echo.FLOW], channels=("whatsapp",)) as h:
        runtime = h.runtime
        await runtime.accept_channel_input("whatsapp", InboundMessage(
            channel="whatsapp", provider_id="wamid.first", sender="+5491122334455",
            text="hola", at=h.clock.now()))
        await runtime.processor.inbox_pass()  # decided and committed, reply queued
        customers = h.database.customers
        doc = await customers.find_one({})
        assert doc is not None and "whatsapp" in doc.get("last_in", {})
        # Between the messages insert and the commit: leased, the version before
        # the decision, window not yet recorded.
        await customers.update_one({"_id": doc["_id"]}, {
            "$unset": {"last_in.whatsapp": ""}, "$inc": {"v": -1},
            "$set": {"lease": {"owner": "other", "token": "t",
                               "until": datetime.now(UTC) + timedelta(seconds=30)}}})
        await runtime.sender.send_pass()
        reply = await h.database.messages.find_one({"direction": "out"})
        assert reply is not None
        assert reply["status"] != "skipped", reply.get("error")
        assert reply["status"] == "queued"
        await customers.update_one({"_id": doc["_id"]}, {
            "$set": {"last_in": doc["last_in"], "v": doc["v"]}, "$unset": {"lease": ""}})
        await runtime.sender.send_pass()
        reply = await h.database.messages.find_one({"direction": "out"})
        assert reply is not None and reply["status"] == "sent", reply
