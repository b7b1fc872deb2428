"""The cart recovery flow through the real runtime (rules/cart_recovery.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness
from rules import cart_recovery
from rules._faq import FAQ
from rules.cart_recovery import FLOW, TEXTS

PHONE = "+5491122334455"
URL = "https://tienda.example/cart/recover/k1"
CART = {"checkout_id": "k1", "recovery_url": URL, "total": 25000, "currency": "ARS",
        "items": [{"sku": "Z-1", "title": "Zapatillas Runner", "quantity": 1, "price": 25000}]}


async def ana(h: FlowHarness, channel: str = "sms", locale: str = "es") -> None:
    await h.customer("cus_1", phone=PHONE, consents={channel: True}, first_name="Ana",
                     locale=locale)


async def finished(h: FlowHarness) -> list[dict[str, Any]]:
    return await h.database.flow_runs.find({"flow": FLOW.name}).to_list(None)


def texts(h: FlowHarness) -> list[str]:
    return [s.text or "" for s in h.to("cus_1")]


async def test_checkout_without_order_asks_after_the_abandon_delay(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("checkout.started", "cus_1", **CART)
        await h.advance(seconds=3599)
        assert h.to("cus_1") == []
        await h.advance(seconds=1)
        question = h.last("cus_1")
        assert question.text == (
            "¡Hola, Ana! Dejaste Zapatillas Runner en tu carrito. ¿Sigues interesado?")
        assert question.choices == ["yes", "question", "no"]
        assert question.at == DEFAULT_START + timedelta(hours=1)
        assert await h.active_flows("cus_1") == {FLOW.name: "interested"}


async def test_order_before_the_abandon_delay_sends_nothing(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",), cart_abandon_after=1800) as h:
        await ana(h)
        await h.event("checkout.started", "cus_1", **CART)
        await h.advance(minutes=20)
        await h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
        await h.advance(days=5)
        assert h.to("cus_1") == []
        doc = await h.customer_doc("cus_1")
        assert FLOW.name not in doc.get("flow_history", {})


async def test_yes_sends_the_link_and_ends_quietly(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", choice="yes")
        assert URL in h.last("cus_1").text
        assert "duda" in h.last("cus_1").text
        await h.advance(days=1)
        assert await h.active_flows("cus_1") == {}
        await h.advance(days=10)
        assert len(h.to("cus_1")) == 2
        [run] = await finished(h)
        assert run["outcome"] == "link_sent"


async def test_typed_yes_and_sms_number_work_like_the_buttons(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", "Sí, claro!")
        assert URL in h.last("cus_1").text
        await h.customer("cus_2", phone="+5491100000002", consents={"sms": True})
        await h.event("cart.abandoned", "cus_2", **CART)
        await h.reply("cus_2", "3")  # "3) No, gracias" on SMS
        assert h.last("cus_2").text == TEXTS["es"]["why"]


async def test_silence_gets_one_reminder_with_a_code_then_the_flow_ends(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.advance(hours=24)
        reminder = h.last("cus_1")
        code = (await h.customer_doc("cus_1"))["attrs"]["code_cart"]
        assert code.startswith("VUELVE-")
        assert code in reminder.text and URL in reminder.text
        assert reminder.at == DEFAULT_START + timedelta(hours=24)
        issued = await h.database.codes.find({"purpose": "cart"}).to_list(None)
        assert [c["_id"] for c in issued] == [code]
        await h.advance(hours=48)
        assert await h.active_flows("cus_1") == {}
        await h.advance(days=30)
        assert len(h.to("cus_1")) == 2
        [run] = await finished(h)
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


async def test_a_reply_to_the_reminder_is_still_answered(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, channel="whatsapp")
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.advance(hours=30)
        await h.reply("cus_1", "ok lo compro")
        code = (await h.customer_doc("cus_1"))["attrs"]["code_cart"]
        link = h.last("cus_1")
        assert link.template is None and URL in link.text and code in link.text


async def test_question_gets_faq_answers_then_a_person(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, channel="whatsapp")
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", choice="question")
        assert h.last("cus_1").text == "¡Claro! ¿Cuál es tu pregunta?"
        await h.reply("cus_1", "¿Cuánto tarda el envío a Córdoba?")
        answer = h.last("cus_1")
        assert answer.text.startswith(FAQ["shipping"]["answers"]["es"])
        assert answer.text.endswith(TEXTS["es"]["anything_else"])
        assert answer.choices == ["done"]
        await h.reply("cus_1", "¿Puedo retirar en el local de Palermo?")
        doc = await h.customer_doc("cus_1")
        conversation = doc["conversations"]["whatsapp"]
        assert conversation["status"] == "needs_agent"
        assert conversation["handoff_reason"] == (
            "cart question: ¿Puedo retirar en el local de Palermo?")
        assert await h.active_flows("cus_1") == {}
        [run] = await finished(h)
        assert run["outcome"] == "handoff"
        assert ("faq", "shipping") in [(s["step"], s["outcome"]) for s in run["history"]]


async def test_free_text_first_answer_is_taken_as_the_question(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h, locale="pt")
        await h.event("cart.abandoned", "cus_1", **CART)
        assert h.last("cus_1").text.startswith("Olá, Ana!")
        await h.reply("cus_1", "Vocês aceitam Pix?")
        assert h.last("cus_1").text.startswith(FAQ["payment"]["answers"]["pt"])
        await h.reply("cus_1", choice="done")
        assert h.last("cus_1").text == TEXTS["pt"]["close"].format(url=URL)
        [run] = await finished(h)
        assert run["outcome"] == "chat_done"


async def test_a_few_answers_then_a_person(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        for question in ("¿Hacen envíos?", "¿Puedo pagar en cuotas?", "¿Qué talle me va?"):
            await h.reply("cus_1", question)
            assert h.last("cus_1").choices == ["done"]
        await h.reply("cus_1", "¿Y si lo quiero devolver?")
        doc = await h.customer_doc("cus_1")
        assert doc["conversations"]["sms"]["status"] == "needs_agent"
        assert doc["conversations"]["sms"]["handoff_reason"] == (
            "cart question: ¿Y si lo quiero devolver?")


async def test_the_customer_is_told_that_a_person_will_answer(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", "¿Puedo retirar en el local de Palermo?")
        assert h.last("cus_1").text == TEXTS["es"]["handoff"]


async def test_no_asks_why_and_records_the_reason(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", choice="no")
        assert h.last("cus_1").choices == ["price", "shipping", "just_looking", "other"]
        await h.reply("cus_1", choice="price")
        assert h.last("cus_1").text == "¡Gracias por contarnos, Ana! Aquí estamos si nos necesitas."
        doc = await h.customer_doc("cus_1")
        assert doc["attrs"]["cart_declined_reason"] == "price"
        [run] = await finished(h)
        assert run["outcome"] == "declined"
        assert ("reason", "price") in [(s["step"], s["outcome"]) for s in run["history"]]


async def test_a_typed_reason_is_recognised_or_kept_as_other(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        for n, (said, reason) in enumerate([("el envío sale muy caro", "price"),
                                            ("2", "shipping"),
                                            ("me lo regalan", "other")]):
            customer = f"cus_{n}"
            await h.customer(customer, phone=f"+54911000000{n}", consents={"sms": True})
            await h.event("cart.abandoned", customer, **CART)
            await h.reply(customer, "no gracias")
            await h.reply(customer, said)
            doc = await h.customer_doc(customer)
            assert doc["attrs"]["cart_declined_reason"] == reason, said


async def test_the_order_of_this_checkout_ends_the_flow_with_thanks(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.event("order.placed", "cus_1", order_id="o-2", checkout_id="k2")
        await h.event("order.placed", "cus_1", order_id="o-3")
        assert await h.active_flows("cus_1") == {FLOW.name: "interested"}
        await h.advance(hours=24)
        assert "VUELVE-" in h.last("cus_1").text
        await h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
        assert h.last("cus_1").text == (
            "¡Gracias por tu compra, Ana! Ya estamos preparando tu pedido.")
        assert await h.active_flows("cus_1") == {}
        await h.advance(days=5)
        assert len(h.to("cus_1")) == 3
        [run] = await finished(h)
        assert run["outcome"] == "purchased"


async def test_a_newer_cart_during_the_run_updates_the_link_quietly(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        newer = "https://tienda.example/cart/recover/k2"
        await h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k2",
                                                    "recovery_url": newer})
        assert len(h.to("cus_1")) == 1
        await h.reply("cus_1", choice="yes")
        assert newer in h.last("cus_1").text
        await h.event("order.placed", "cus_1", order_id="o-2", checkout_id="k2")
        assert await h.active_flows("cus_1") == {}
        [run] = await finished(h)
        assert run["outcome"] == "purchased"


async def test_a_customer_enters_again_only_after_seven_days(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.event("cart.abandoned", "cus_1", **CART)
        await h.reply("cus_1", choice="no")
        await h.reply("cus_1", choice="other")
        sent = len(h.to("cus_1"))
        await h.advance(days=6)
        await h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k2"})
        assert len(h.to("cus_1")) == sent
        await h.advance(days=1)
        await h.event("cart.abandoned", "cus_1", **{**CART, "checkout_id": "k3"})
        assert h.last("cus_1").choices == ["yes", "question", "no"]


async def test_without_a_first_name_the_greeting_still_reads_well(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, locale="en")
        await h.event("cart.abandoned", "cus_1", **{**CART, "items": []})
        assert h.last("cus_1").text == "Hi! You left some products in your cart. Still interested?"


async def test_no_marketing_consent_no_run(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": False})
        await h.event("cart.abandoned", "cus_1", **CART)
        assert h.to("cus_1") == []
        assert await h.active_flows("cus_1") == {}


def test_cart_summary_names_the_first_item_and_counts_the_rest() -> None:
    class Event:
        def __init__(self, items: list[dict[str, Any]]) -> None:
            self.data = {"items": items}
            self.customer = type("Customer", (), {"locale": "en", "first_name": "Ana"})()

        def __getitem__(self, key: str) -> Any:
            return self.data[key]

    class Context:
        def __init__(self, items: list[dict[str, Any]]) -> None:
            self.m = Event(items)

    two = [{"title": "Shoes"}, {"title": "Socks"}]
    assert cart_recovery.cart_summary(Context(two)) == "Shoes and 1 more item(s)"
    assert cart_recovery.cart_summary(Context([])) == "some products"
