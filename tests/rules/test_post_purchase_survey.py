"""The post-purchase survey flow (rules/post_purchase_survey.py) and its score parser.

The answers run on the pure harness (the real decisions, in memory); the
wait after fulfilment and the WhatsApp template run on the real runtime.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import cart_recovery
from rules.post_purchase_survey import FLOW, TEXTS, parse_score
from tests.support.flows import first_message_after

PHONE = "+5491122334455"


def surveyed(locale: str = "es", **settings: Any) -> PureHarness:
    """Ana, asked the NPS question three days after her order was fulfilled."""
    h = PureHarness([FLOW], channels=("sms",), **settings)
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana", locale=locale)
    h.event("order.fulfilled", "cus_1", order_id="o-1")
    h.advance(days=3)
    return h


def outcome(h: PureHarness) -> str:
    [run] = h.runs(FLOW.name)
    return str(run["outcome"])


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


# ------------------------------------------------------------- the real runtime


async def test_asks_the_score_three_days_after_fulfilment(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana")
        await h.event("order.fulfilled", "cus_1", order_id="o-1")
        question = await first_message_after(h, "cus_1", timedelta(days=3))
        assert question.template == "post_purchase_nps"


# -------------------------------------------------------- the pure decisions


def test_the_question_and_its_delay_a_setting() -> None:
    h = PureHarness([FLOW], channels=("sms",), survey_after_days=1)
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
    h.event("order.fulfilled", "cus_1", order_id="o-1")
    h.advance(days=1, seconds=-1)
    assert h.to("cus_1") == []
    h.advance(seconds=1)
    question = h.last("cus_1")
    assert question.text == TEXTS["es"]["nps"].format(first_name="Ana")
    assert question.at == DEFAULT_START + timedelta(days=1)


def test_promoter_is_asked_for_a_review() -> None:
    h = surveyed(review_url="https://tienda.example/reviews")
    h.reply("cus_1", "un 9!")
    assert h.last("cus_1").text == (
        "¡Qué alegría, Ana! ¿Nos dejarías una reseña? Ayuda mucho a otros clientes: "
        "https://tienda.example/reviews")
    assert h.customer_doc("cus_1")["attrs"]["nps"] == 9
    assert outcome(h) == "promoter"
    [run] = h.runs(FLOW.name)
    assert ("nps", "9") in [(s["step"], s["outcome"]) for s in run["history"]]


def test_passive_is_thanked() -> None:
    h = surveyed(locale="pt")
    h.reply("cus_1", "oito")
    assert h.last("cus_1").text == "Obrigado pela resposta, Ana! Isso nos ajuda a melhorar."
    assert h.customer_doc("cus_1")["attrs"]["nps"] == 8
    assert h.active_flows("cus_1") == {}


def test_detractor_is_asked_what_went_wrong_thanked_and_handed_to_a_person() -> None:
    h = surveyed(locale="en")
    h.reply("cus_1", "3/10")
    assert h.last("cus_1").text == TEXTS["en"]["what_went_wrong"]
    h.reply("cus_1", "The box arrived broken")
    assert h.last("cus_1").text == TEXTS["en"]["sorry_thanks"].format(first_name="Ana")
    doc = h.customer_doc("cus_1")
    assert doc["attrs"]["nps"] == 3
    assert doc["conversations"]["sms"]["status"] == "needs_agent"
    assert doc["conversations"]["sms"]["handoff_reason"] == "NPS 3: The box arrived broken"
    assert outcome(h) == "detractor"


def test_nonsense_is_asked_again_once_then_the_flow_ends() -> None:
    h = surveyed()
    h.reply("cus_1", "qué?")
    assert h.last("cus_1").text == TEXTS["es"]["reask"]
    h.reply("cus_1", "no sé")
    assert len(h.to("cus_1")) == 2
    assert h.active_flows("cus_1") == {}
    assert "nps" not in h.customer_doc("cus_1")["attrs"]
    assert outcome(h) == "no_score"


def test_nonsense_then_a_score_counts() -> None:
    h = surveyed()
    h.reply("cus_1", "bien")
    h.reply("cus_1", "10")
    assert h.customer_doc("cus_1")["attrs"]["nps"] == 10


def test_no_answer_in_three_days_ends_silently() -> None:
    h = surveyed()
    h.advance(days=3)
    assert len(h.to("cus_1")) == 1
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "no_answer"


def test_one_survey_for_orders_close_together() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True})
    h.event("order.fulfilled", "cus_1", order_id="o-1")
    h.advance(days=1)
    h.event("order.fulfilled", "cus_1", order_id="o-2")
    h.advance(days=3)
    h.reply("cus_1", "8")
    h.event("order.fulfilled", "cus_1", order_id="o-3")
    h.advance(days=10)
    assert len(h.to("cus_1")) == 2  # one question, one thanks


def test_a_survey_whose_question_another_flow_replaced_still_times_out() -> None:
    h = PureHarness([FLOW, cart_recovery.FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True})
    h.event("order.fulfilled", "cus_1", order_id="o-1")
    h.advance(days=3)
    h.event("cart.abandoned", "cus_1", checkout_id="k1", recovery_url="https://s/r")
    assert h.customer_doc("cus_1")["question"]["flow"] == cart_recovery.FLOW.name
    h.advance(days=3, seconds=1)  # the survey's own 3-day timeout
    assert FLOW.name not in h.active_flows("cus_1")
    assert [run["outcome"] for run in h.runs(FLOW.name)] == ["no_answer"]
