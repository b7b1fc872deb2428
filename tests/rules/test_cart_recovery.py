"""The cart recovery flow (rules/cart_recovery.py).

Its branches and texts run on the pure harness (the real decisions, in
memory); the abandonment trigger, the codes collection and WhatsApp's
templates at send time run on the real runtime.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules._faq import FAQ
from rules.cart_recovery import FLOW, TEXTS
from tests.support.flows import first_message_after

PHONE = "+5491122334455"
URL = "https://tienda.example/cart/recover/k1"
CART: dict[str, Any] = {"checkout_id": "k1", "recovery_url": URL, "total": 25000, "currency": "ARS",
        "items": [{"sku": "Z-1", "title": "Zapatillas Runner", "quantity": 1, "price": 25000}]}


def pure(channel: str = "sms", locale: str = "es") -> PureHarness:
    """Ana, consenting on ``channel``, whose cart was just abandoned."""
    h = PureHarness([FLOW], channels=(channel,))
    h.customer("cus_1", phone=PHONE, consents={channel: True}, first_name="Ana", locale=locale)
    h.event("cart.abandoned", "cus_1", **CART)
    return h


def outcome(h: PureHarness) -> str:
    [run] = h.runs(FLOW.name)
    return str(run["outcome"])


def ended(h: PureHarness, expected: str, messages: int) -> None:
    """The run is over with ``expected``, and nothing more is sent, even days later."""
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == expected
    h.advance(days=10)
    assert len(h.to("cus_1")) == messages


def history(h: PureHarness) -> list[tuple[str, str]]:
    [run] = h.runs(FLOW.name)
    return [(s["step"], s["outcome"]) for s in run["history"]]


# ------------------------------------------------------------- the real runtime


async def ana(h: FlowHarness, channel: str = "sms") -> None:
    await h.customer("cus_1", phone=PHONE, consents={channel: True}, first_name="Ana")


async def test_checkout_without_order_asks_after_the_abandon_delay(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("checkout.started", "cus_1", **CART)
        question = await first_message_after(h, "cus_1", timedelta(hours=1))
        assert question.text == (
            "¡Hola, Ana! Dejaste Zapatillas Runner en tu carrito. ¿Sigues interesado?")
        assert question.choices == ["yes", "question", "no"]
        assert await h.active_flows("cus_1") == {FLOW.name: "interested"}


async def test_silence_gets_one_reminder_with_a_code_then_the_flow_ends(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.advance(hours=24)
        reminder = h.last("cus_1")
        code = (await h.customer_doc("cus_1"))["attrs"]["code_cart"]
        assert code.startswith("VUELVE-")
        assert reminder.text is not None and code in reminder.text and URL in reminder.text
        assert reminder.at == DEFAULT_START + timedelta(hours=24)
        issued = await h.database.codes.find({"purpose": "cart"}).to_list(None)
        assert [c["_id"] for c in issued] == [code]
        await h.advance(hours=48)
        assert await h.active_flows("cus_1") == {}
        await h.advance(days=30)
        assert len(h.to("cus_1")) == 2
        [run] = await h.database.flow_runs.find({"flow": FLOW.name}).to_list(None)
        assert run["outcome"] == "no_reply"


async def test_whatsapp_uses_the_templates_outside_the_window(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, channel="whatsapp")
        await h.event("cart.abandoned", "cus_1", **CART)
        assert h.last("cus_1").template == "cart_recovery_interested"
        await h.advance(hours=24)
        assert h.last("cus_1").template == "cart_recovery_reminder"
        outgoing = sorted((m for m in await h.messages("cus_1") if m["direction"] == "out"),
                          key=lambda m: m["at"])
        code = (await h.customer_doc("cus_1"))["attrs"]["code_cart"]
        assert outgoing[0]["template"]["params"] == ["Ana"]
        assert outgoing[1]["template"] == {"name": "cart_recovery_reminder", "language": "es",
                                           "params": ["Ana", code, URL]}


async def test_question_handed_to_a_person_shows_in_the_conversation(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", "¿Puedo retirar en el local de Palermo?")
        assert h.last("cus_1").text == TEXTS["es"]["handoff"]
        [summary] = await h.database.conversations.find({}).to_list(None)
        assert summary["status"] == "needs_agent"
        assert summary["handoff_reason"] == "cart question: ¿Puedo retirar en el local de Palermo?"


# -------------------------------------------------------- the pure decisions


def test_order_before_the_abandon_delay_sends_nothing() -> None:
    h = PureHarness([FLOW], channels=("sms",), cart_abandon_after=1800)
    h.customer("cus_1", phone=PHONE, consents={"sms": True})
    h.event("checkout.started", "cus_1", **CART)
    h.advance(minutes=20)
    h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
    h.advance(days=5)
    assert h.to("cus_1") == []
    assert FLOW.name not in h.customer_doc("cus_1").get("flow_history", {})


def test_yes_sends_the_link_and_ends_quietly() -> None:
    h = pure()
    h.reply("cus_1", choice="yes")
    assert h.last("cus_1").text == TEXTS["es"]["link"].format(url=URL)
    h.advance(days=1)
    ended(h, "link_sent", messages=2)


def test_typed_yes_and_sms_number_work_like_the_buttons() -> None:
    h = pure()
    h.reply("cus_1", "Sí, claro!")
    assert h.last("cus_1").text == TEXTS["es"]["link"].format(url=URL)
    h = pure()
    h.reply("cus_1", "3")  # "3) No, gracias" on SMS
    assert h.last("cus_1").text == TEXTS["es"]["why"]


def test_a_reply_to_the_reminder_is_still_answered() -> None:
    h = pure(channel="whatsapp")
    h.advance(hours=30)
    assert h.last("cus_1").template == "cart_recovery_reminder"
    h.reply("cus_1", "ok lo compro")
    code = h.customer_doc("cus_1")["attrs"]["code_cart"]
    link = h.last("cus_1")
    assert link.template is None
    assert link.text == TEXTS["es"]["link_code"].format(url=URL, code=code)


def test_question_gets_faq_answers_then_a_person() -> None:
    h = pure(channel="whatsapp")
    h.reply("cus_1", choice="question")
    assert h.last("cus_1").text == "¡Claro! ¿Cuál es tu pregunta?"
    h.reply("cus_1", "¿Cuánto tarda el envío a Córdoba?")
    answer = h.last("cus_1")
    assert answer.text == (
        f"{FAQ['shipping']['answers']['es']}\n\n{TEXTS['es']['anything_else']}")
    assert answer.choices == ["done"]
    h.reply("cus_1", "¿Puedo retirar en el local de Palermo?")
    conversation = h.customer_doc("cus_1")["conversations"]["whatsapp"]
    assert conversation["status"] == "needs_agent"
    assert conversation["handoff_reason"] == (
        "cart question: ¿Puedo retirar en el local de Palermo?")
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "handoff"
    assert ("faq", "shipping") in history(h)


def test_free_text_first_answer_is_taken_as_the_question() -> None:
    h = pure(locale="pt")
    assert h.last("cus_1").text == (
        "Olá, Ana! Você deixou Zapatillas Runner no carrinho. Ainda tem interesse?")
    h.reply("cus_1", "Vocês aceitam Pix?")
    assert h.last("cus_1").text == (
        f"{FAQ['payment']['answers']['pt']}\n\n{TEXTS['pt']['anything_else']}")
    h.reply("cus_1", choice="done")
    assert h.last("cus_1").text == TEXTS["pt"]["close"].format(url=URL)
    assert outcome(h) == "chat_done"


def test_a_few_answers_then_a_person() -> None:
    h = pure()
    for question in ("¿Hacen envíos?", "¿Puedo pagar en cuotas?", "¿Qué talle me va?"):
        h.reply("cus_1", question)
        assert h.last("cus_1").choices == ["done"]
    h.reply("cus_1", "¿Y si lo quiero devolver?")
    conversation = h.customer_doc("cus_1")["conversations"]["sms"]
    assert conversation["status"] == "needs_agent"
    assert conversation["handoff_reason"] == "cart question: ¿Y si lo quiero devolver?"
    assert h.last("cus_1").text == TEXTS["es"]["handoff"]


def test_no_asks_why_and_records_the_reason() -> None:
    h = pure()
    h.reply("cus_1", choice="no")
    assert h.last("cus_1").choices == ["price", "shipping", "just_looking", "other"]
    h.reply("cus_1", choice="price")
    assert h.last("cus_1").text == "¡Gracias por contarnos, Ana! Aquí estamos si nos necesitas."
    assert h.customer_doc("cus_1")["attrs"]["cart_declined_reason"] == "price"
    assert outcome(h) == "declined"
    assert ("reason", "price") in history(h)


def test_a_typed_reason_is_recognised_or_kept_as_other() -> None:
    for said, reason in [("el envío sale muy caro", "price"), ("2", "shipping"),
                         ("me lo regalan", "other")]:
        h = pure()
        h.reply("cus_1", "no gracias")
        h.reply("cus_1", said)
        assert h.customer_doc("cus_1")["attrs"]["cart_declined_reason"] == reason, said


def test_the_order_of_this_checkout_ends_the_flow_with_thanks() -> None:
    h = pure()
    h.event("order.placed", "cus_1", order_id="o-2", checkout_id="k2")
    h.event("order.placed", "cus_1", order_id="o-3")
    assert h.active_flows("cus_1") == {FLOW.name: "interested"}
    h.advance(hours=24)
    assert "VUELVE-" in (h.last("cus_1").text or "")
    h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
    assert h.last("cus_1").text == "¡Gracias por tu compra, Ana! Ya estamos preparando tu pedido."
    ended(h, "purchased", messages=3)


def test_a_newer_cart_during_the_run_updates_the_link_quietly() -> None:
    h = pure()
    newer = "https://tienda.example/cart/recover/k2"
    h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k2", "recovery_url": newer})
    assert len(h.to("cus_1")) == 1
    h.reply("cus_1", choice="yes")
    assert h.last("cus_1").text == TEXTS["es"]["link"].format(url=newer)
    h.event("order.placed", "cus_1", order_id="o-2", checkout_id="k2")
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "purchased"


def test_a_customer_enters_again_only_after_seven_days() -> None:
    h = pure()
    h.reply("cus_1", choice="no")
    h.reply("cus_1", choice="other")
    sent = len(h.to("cus_1"))
    h.advance(days=6)
    h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k2"})
    assert len(h.to("cus_1")) == sent
    h.advance(days=1)
    h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k3"})
    assert h.last("cus_1").choices == ["yes", "question", "no"]


def test_without_a_first_name_the_greeting_still_reads_well() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, locale="en")
    h.event("cart.abandoned", "cus_1", **{**CART, "items": []})
    assert h.last("cus_1").text == "Hi! You left some products in your cart. Still interested?"


def test_the_cart_is_named_by_its_first_item_and_a_count_of_the_rest() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, locale="en")
    items: list[dict[str, Any]] = [{"title": "Shoes"}, {"title": "Socks"}, {"sku": "untitled"}]
    h.event("cart.abandoned", "cus_1", **{**CART, "items": items})
    assert h.last("cus_1").text == (
        "Hi! You left Shoes and 1 more item(s) in your cart. Still interested?")


def test_no_marketing_consent_no_run() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": False})
    h.event("cart.abandoned", "cus_1", **CART)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}
