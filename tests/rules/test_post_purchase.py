"""The post-purchase series (rules/post_purchase.py): thanks, shipping, reviews, cross-sell.

The branches run on the pure harness (the real decisions, in memory); the
WhatsApp templates on the real runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules.post_purchase import FLOW
from tests.support.library_flows import PHONE, agent, outcomes, skipped

RELATED = {"Mates": ["Bombilla de alpaca", "p-mate", "Yerba orgánica 1 kg", "Termo 1 l"],
           "yerbas": ["Mate imperial"]}
MATE: dict[str, Any] = {"product_id": "p-mate", "title": "Mate imperial", "quantity": 2,
                        "price": "21000.00", "category": "Mates"}
YERBA: dict[str, Any] = {"product_id": "p-yerba", "title": "Yerba orgánica 1 kg", "quantity": 1,
                         "price": "6500.00", "category": "Yerbas"}
TRACKING: dict[str, Any] = {"tracking_company": "Andreani", "tracking_number": "AR123",
            "tracking_url": "https://seguimiento.example/AR123"}


def harness(locale: str = "es", start: datetime = DEFAULT_START, **settings: Any,
            ) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=("sms",),
                    **{"related_products": RELATED, **settings})
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana", locale=locale)
    return h


def order(h: PureHarness, order_id: str = "o-1", *items: dict[str, Any], **data: Any) -> None:
    h.event("order.placed", "cus_1", order_id=order_id, order_number=f"#{order_id[2:]}",
            total="42000.00", currency="ARS", items=list(items or [MATE]), **data)


def texts(h: PureHarness) -> list[str | None]:
    return [s.text for s in h.to("cus_1")]


# -------------------------------------------------------- the pure decisions


def test_thanks_with_the_order_summary() -> None:
    h = harness()
    order(h)
    assert texts(h) == ["¡Gracias por tu compra, Ana! Tu pedido #1: 2 × Mate imperial. "
                        "Total: ARS 42000.00. Te avisamos cuando salga."]
    assert h.active_flows("cus_1") == {FLOW.name: "thanks"}


def test_a_long_order_is_summarised_in_portuguese() -> None:
    h = harness(locale="pt")
    lines = [{"title": f"Produto {n}", "quantity": 1} for n in range(1, 6)]
    order(h, "o-7", *lines)
    assert texts(h) == ["Obrigado pela sua compra, Ana! Seu pedido #7: 1 × Produto 1, "
                        "1 × Produto 2, 1 × Produto 3 e mais 2 produto(s). Total: ARS 42000.00. "
                        "Avisamos quando sair."]


def test_an_order_without_lines_or_total_is_thanked_plainly() -> None:
    h = harness(locale="en")
    h.event("order.placed", "cus_1", order_id="o-9")
    assert texts(h) == ["Thank you for your order, Ana! We got your order o-9. "
                        "We will tell you when it ships."]


def test_shipping_status_with_the_tracking_link_once_per_order() -> None:
    h = harness()
    order(h)
    h.event("order.fulfilled", "cus_1", order_id="o-1", order_number="#1", **TRACKING)
    assert h.last("cus_1").text == ("¡Tu pedido #1 ya está en camino, Ana! Andreani AR123. "
                                    "Síguelo aquí: https://seguimiento.example/AR123")
    h.event("order.fulfilled", "cus_1", order_id="o-1", order_number="#1", **TRACKING)
    assert len(h.to("cus_1")) == 2  # a repeated fulfilment is not told twice
    shipping = [m for m in h.messages("cus_1") if m.get("step") == "shipping"]
    assert [m["marketing"] for m in shipping] == [False]  # transactional


def test_shipping_falls_back_to_the_status_page_then_to_no_link() -> None:
    h = harness()
    order(h, "o-1")
    order(h, "o-2")
    h.event("order.fulfilled", "cus_1", order_id="o-1",
            status_url="https://tienda.example/orders/o-1")
    assert h.last("cus_1").text == ("¡Tu pedido o-1 ya está en camino, Ana! Síguelo aquí: "
                                    "https://tienda.example/orders/o-1")
    h.event("order.fulfilled", "cus_1", order_id="o-2")
    assert h.last("cus_1").text == "¡Tu pedido o-2 ya está en camino, Ana!"


def test_a_fulfilment_of_an_order_outside_the_run_is_left_alone() -> None:
    h = harness()
    order(h, "o-1")
    h.event("order.fulfilled", "cus_1", order_id="o-older", **TRACKING)
    assert len(h.to("cus_1")) == 1


def test_a_month_later_a_review_per_product_and_related_products_not_bought() -> None:
    h = harness()
    order(h, "o-1", MATE, YERBA)
    h.advance(days=30, seconds=-1)
    assert len(h.to("cus_1")) == 1
    h.advance(seconds=1)
    assert texts(h)[1:] == [
        "Hola, Ana. ¿Qué te pareció Mate imperial? Tu opinión ayuda a otros clientes: "
        "https://example.com/reviews",
        "Hola, Ana. ¿Qué te pareció Yerba orgánica 1 kg? Tu opinión ayuda a otros clientes: "
        "https://example.com/reviews",
        # "p-mate" (its id) and the yerba (its name) were bought; categories match without case
        "Para acompañar tu compra, Ana, te puede gustar: Bombilla de alpaca y Termo 1 l.",
    ]
    assert outcomes(h, FLOW.name) == ["reviewed"]


def test_what_they_bought_before_is_not_offered_either() -> None:
    h = harness()
    h.event("order.placed", "cus_0", order_id="o-0",
            _customer={"phone": PHONE, "first_name": "Ana"},
            items=[{"product_id": "Bombilla de alpaca", "title": "Bombilla"}])
    h.advance(days=31)
    order(h, "o-1", MATE)
    h.advance(days=30)
    assert h.last("cus_1").text == (
        "Para acompañar tu compra, Ana, te puede gustar: Yerba orgánica 1 kg y Termo 1 l.")


def test_the_wait_is_a_setting_and_the_settings_file_wins(tmp_path: Path) -> None:
    h = harness(review_after_days=10)
    order(h)
    h.advance(days=10)
    assert [m["step"] for m in h.messages("cus_1")][-1] == "cross_sell"
    path = tmp_path / "flows.toml"
    path.write_text('[flows.post_purchase.timings]\nreview_after = "3d"\n', encoding="utf-8")
    h = harness(review_after_days=10, flows_config=str(path))
    order(h)
    h.advance(days=3)
    assert outcomes(h, FLOW.name) == ["reviewed"]


def test_nothing_related_left_means_no_cross_sell() -> None:
    h = harness(related_products={"Mates": ["p-mate"]})
    order(h)
    h.advance(days=30)
    assert [m["step"] for m in h.messages("cus_1")] == ["thanks", "review"]
    assert outcomes(h, FLOW.name) == ["reviewed"]


def test_a_new_order_gets_its_own_thanks_and_the_month_counts_from_it() -> None:
    h = harness(review_after_days=10)
    order(h, "o-1", MATE)
    h.advance(days=6)
    order(h, "o-2", YERBA)
    assert len(h.to("cus_1")) == 2 and texts(h)[1] is not None
    assert "Yerba orgánica 1 kg" in str(texts(h)[1])
    h.advance(days=9)
    assert len(h.to("cus_1")) == 2  # 15 days after the first order: not yet
    h.advance(days=1)
    reviews = [m["text"] for m in h.messages("cus_1") if m["step"] == "review"]
    assert len(reviews) == 2  # both orders' products, one run
    assert len(h.runs(FLOW.name)) == 1
    order(h, "o-3")
    assert h.active_flows("cus_1") == {FLOW.name: "thanks"}  # after the run: a new series


def test_opt_out_stops_the_marketing_but_not_the_shipping_status() -> None:
    h = harness()
    order(h)
    h.reply("cus_1", "STOP")
    h.event("order.fulfilled", "cus_1", order_id="o-1", **TRACKING)
    assert "Andreani AR123" in str(h.last("cus_1").text)
    h.advance(days=30)
    assert skipped(h, "cus_1") == [("review", "no channel the customer consented to"),
                                   ("cross_sell", "no channel the customer consented to")]


def test_an_agent_holding_the_conversation_holds_the_review() -> None:
    h = harness()
    order(h)
    agent(h, "cus_1", "takeover")
    h.advance(hours=3)  # before the idle release
    h.event("order.fulfilled", "cus_1", order_id="o-1", **TRACKING)
    assert skipped(h, "cus_1") == [("shipping", "an agent has the conversation")]
    agent(h, "cus_1", "release")
    h.advance(days=30)
    assert str(texts(h)[1]).startswith("Hola, Ana. ¿Qué te pareció Mate imperial?")


def test_quiet_hours_hold_the_thanks_until_nine() -> None:
    late = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)  # 23:00 in Buenos Aires
    h = harness(start=late)
    order(h)
    assert h.to("cus_1") == []
    h.advance(hours=10)
    assert h.last("cus_1").at == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 local


def test_no_marketing_consent_no_run() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": False})
    order(h)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


# ------------------------------------------------------------- the real runtime


async def test_whatsapp_gets_the_templates_outside_the_window(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",),
                           related_products=RELATED) as h:
        await h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana")
        await h.event("order.placed", "cus_1", order_id="o-1", items=[MATE])
        await h.event("order.fulfilled", "cus_1", order_id="o-1", **TRACKING)
        await h.advance(days=30)
        assert [s.template for s in h.to("cus_1")] == [
            "post_purchase_thanks", "post_purchase_shipping", "post_purchase_review",
            "post_purchase_cross_sell"]
        out = sorted((m for m in await h.messages("cus_1") if m["direction"] == "out"),
                     key=lambda m: m["seq"])
        assert out[1]["template"]["params"] == ["Ana", "o-1", TRACKING["tracking_url"]]
        assert out[2]["template"]["params"] == ["Ana", "Mate imperial",
                                                "https://example.com/reviews"]
        assert [run["outcome"] async for run in h.database.flow_runs.find(
            {"flow": FLOW.name})] == ["reviewed"]
        assert DEFAULT_START + timedelta(days=30) == h.to("cus_1")[-1].at
