"""The post-purchase survey flow (rules/post_purchase_survey.py) and its score parser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.testing import DEFAULT_START, FlowHarness
from rules import cart_recovery
from rules.post_purchase_survey import FLOW, TEXTS, parse_score

PHONE = "+5491122334455"


async def ana(h: FlowHarness, channel: str = "sms", locale: str = "es") -> None:
    await h.customer("cus_1", phone=PHONE, consents={channel: True}, first_name="Ana",
                     locale=locale)


async def finished(h: FlowHarness) -> list[dict[str, Any]]:
    return await h.database.flow_runs.find({"flow": FLOW.name}).to_list(None)


async def surveyed(h: FlowHarness, **kwargs: Any) -> None:
    await ana(h, **kwargs)
    await h.event("order.fulfilled", "cus_1", order_id="o-1")
    await h.advance(days=3)


@pytest.mark.parametrize(("text", "score"), [
    ("9", 9), ("10", 10), ("0", 0), (" 9/10 ", 9), ("10/10", 10), ("9 de 10", 9),
    ("8 out of 10", 8), ("nota 7 sobre 10", 7), ("un 9", 9), ("Le doy un 9!", 9),
    ("nueve", 9), ("Diez.", 10), ("cero", 0), ("uno", 1), ("un diez", 10), ("nove", 9),
    ("dez", 10), ("Nota oito", 8), ("seven", 7), ("I'd give it a nine", 9), ("zero", 0),
    ("ocho de diez", 8), ("🔟", 10), ("9️⃣", 9),
])
def test_parse_score_reads_a_score(text: str, score: int) -> None:
    assert parse_score(text) == score


@pytest.mark.parametrize("text", [
    "", "hola", "me encantó", "11", "100", "-1", "9.5", "8,5", "7 u 8", "entre 6 y 7",
    "gostei dos produtos, nota dez", None,
])
def test_parse_score_is_none_when_unsure(text: str | None) -> None:
    assert parse_score(text) is None


async def test_asks_the_score_three_days_after_fulfilment(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("order.fulfilled", "cus_1", order_id="o-1")
        await h.advance(days=3, seconds=-1)
        assert h.to("cus_1") == []
        await h.advance(seconds=1)
        question = h.last("cus_1")
        assert question.text == TEXTS["es"]["nps"].format(first_name="Ana")
        assert question.at == DEFAULT_START + timedelta(days=3)


async def test_the_delay_is_a_setting(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",), survey_after_days=1) as h:
        await ana(h)
        await h.event("order.fulfilled", "cus_1", order_id="o-1")
        await h.advance(days=1)
        assert h.last("cus_1").at == DEFAULT_START + timedelta(days=1)


async def test_whatsapp_question_uses_the_template(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await surveyed(h, channel="whatsapp")
        assert h.last("cus_1").template == "post_purchase_nps"


async def test_promoter_is_asked_for_a_review(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",),
                           review_url="https://tienda.example/reviews") as h:
        await surveyed(h)
        await h.reply("cus_1", "un 9!")
        assert h.last("cus_1").text == (
            "¡Qué alegría, Ana! ¿Nos dejarías una reseña? Ayuda mucho a otros clientes: "
            "https://tienda.example/reviews")
        doc = await h.customer_doc("cus_1")
        assert doc["attrs"]["nps"] == 9
        [run] = await finished(h)
        assert run["outcome"] == "promoter"
        assert ("nps", "9") in [(s["step"], s["outcome"]) for s in run["history"]]


async def test_passive_is_thanked(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h, locale="pt")
        await h.reply("cus_1", "oito")
        assert h.last("cus_1").text == "Obrigado pela resposta, Ana! Isso nos ajuda a melhorar."
        assert (await h.customer_doc("cus_1"))["attrs"]["nps"] == 8
        assert await h.active_flows("cus_1") == {}


async def test_detractor_is_asked_what_went_wrong_and_handed_to_a_person(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h, locale="en")
        await h.reply("cus_1", "3/10")
        assert h.last("cus_1").text == TEXTS["en"]["what_went_wrong"]
        await h.reply("cus_1", "The box arrived broken")
        doc = await h.customer_doc("cus_1")
        assert doc["attrs"]["nps"] == 3
        assert doc["conversations"]["sms"]["status"] == "needs_agent"
        assert doc["conversations"]["sms"]["handoff_reason"] == "NPS 3: The box arrived broken"
        [run] = await finished(h)
        assert run["outcome"] == "detractor"


async def test_detractor_is_thanked_before_the_handoff(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h)
        await h.reply("cus_1", "2")
        await h.reply("cus_1", "Llegó tarde")
        assert h.last("cus_1").text == TEXTS["es"]["sorry_thanks"].format(first_name="Ana")


async def test_nonsense_is_asked_again_once_then_the_flow_ends(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h)
        await h.reply("cus_1", "qué?")
        assert h.last("cus_1").text == TEXTS["es"]["reask"]
        await h.reply("cus_1", "no sé")
        assert len(h.to("cus_1")) == 2
        assert await h.active_flows("cus_1") == {}
        doc = await h.customer_doc("cus_1")
        assert "nps" not in doc["attrs"]
        [run] = await finished(h)
        assert run["outcome"] == "no_score"


async def test_nonsense_then_a_score_counts(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h)
        await h.reply("cus_1", "bien")
        await h.reply("cus_1", "10")
        assert (await h.customer_doc("cus_1"))["attrs"]["nps"] == 10


async def test_no_answer_in_three_days_ends_silently(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await surveyed(h)
        await h.advance(days=3)
        assert len(h.to("cus_1")) == 1
        assert await h.active_flows("cus_1") == {}
        [run] = await finished(h)
        assert run["outcome"] == "no_answer"


async def test_one_survey_for_orders_close_together(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("order.fulfilled", "cus_1", order_id="o-1")
        await h.advance(days=1)
        await h.event("order.fulfilled", "cus_1", order_id="o-2")
        await h.advance(days=3)
        await h.reply("cus_1", "8")
        await h.event("order.fulfilled", "cus_1", order_id="o-3")
        await h.advance(days=10)
        assert len(h.to("cus_1")) == 2  # one question, one thanks


async def test_a_survey_whose_question_another_flow_replaced_still_times_out(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW, cart_recovery.FLOW], channels=("sms",)) as h:
        await surveyed(h)
        await h.event("cart.abandoned", "cus_1", checkout_id="k1", recovery_url="https://s/r")
        assert (await h.customer_doc("cus_1"))["question"]["flow"] == cart_recovery.FLOW.name
        await h.advance(days=3, seconds=1)  # the survey's own 3-day timeout
        assert FLOW.name not in await h.active_flows("cus_1")
        outcomes = [run["outcome"] for run in await finished(h) if run["flow"] == FLOW.name]
        assert outcomes == ["no_answer"]
