"""Quiet hours and an agent's hold for the flows shipped before the library.

The library flows test these guards in their own modules; these are the
older flows' (birthday, post-purchase survey, opt-out confirmation, double
opt-in). Marketing waits for the morning and is held while a person has the
conversation; what answers the customer (transactional) goes at once, even
at night.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.testing import FlowHarness, PureHarness
from rules import birthday, double_opt_in, optout_confirmation, post_purchase_survey

PHONE = "+5491122334455"
NIGHT = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)  # 01:00 in Buenos Aires, the default zone
MORNING = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 there: quiet hours are over


async def take_over(h: FlowHarness) -> None:
    """An agent takes cus_1's SMS conversation."""
    internal = (await h.customer_doc("cus_1"))["_id"]
    await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
    await h.runtime.drain()


async def assert_held(h: FlowHarness, step: str) -> None:
    """The step's message was skipped for the agent, and nothing reached cus_1."""
    [message] = [m for m in await h.messages("cus_1") if m.get("step") == step]
    assert message["status"] == "skipped"
    assert str(message["error"]).startswith("an agent has")
    assert h.to("cus_1") == []


async def test_an_agent_holding_the_conversation_holds_the_birthday_greeting(
        mongo_uri: str) -> None:
    start = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    async with FlowHarness(mongo_uri, [birthday.FLOW], start=start, channels=("sms",),
                           agent_idle_release=3 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana",
                         birthday="1990-03-10")
        await take_over(h)
        await h.advance(hours=25)  # 10:00 on the birthday
        await assert_held(h, "greeting")


def test_the_survey_question_due_at_night_waits_for_the_morning() -> None:
    h = PureHarness([post_purchase_survey.FLOW], start=NIGHT, channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
    h.event("order.fulfilled", "cus_1", order_id="o-1")
    h.advance(days=3)  # due at 01:00 local
    assert h.to("cus_1") == []
    h.advance(hours=8)
    assert h.last("cus_1").at == MORNING.replace(day=18)


async def test_an_agent_holding_the_conversation_holds_the_survey_question(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [post_purchase_survey.FLOW], channels=("sms",),
                           agent_idle_release=5 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await take_over(h)
        await h.event("order.fulfilled", "cus_1", order_id="o-1")
        await h.advance(days=3, hours=1)
        await assert_held(h, "nps_question")


def test_the_opt_out_question_answers_a_stop_word_at_once_at_night() -> None:
    h = PureHarness([optout_confirmation.FLOW], start=NIGHT, channels=("whatsapp",))
    h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana")
    h.reply("cus_1", "CANCELAR")
    asked = h.last("cus_1")
    assert asked.at == NIGHT
    assert asked.text == optout_confirmation.TEXTS["es"]["confirm"].format(
        first_name="Ana", channel="WhatsApp")


def test_the_double_opt_in_request_goes_at_once_at_night() -> None:
    h = PureHarness([double_opt_in.FLOW], start=NIGHT, channels=("sms",),
                    double_opt_in="sms")
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
    asked = h.last("cus_1")
    assert asked.at == NIGHT
    assert h.customer_doc("cus_1")["consents"]["sms"]["state"] == "pending"
