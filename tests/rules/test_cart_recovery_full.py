"""Cart recovery's fuller sequence (rules/cart_recovery.py, ``CART_RECOVERY_FULL``).

Where a run would end without a purchase (no reply to the reminder, silence
after the link), the switched-on flow goes on with a testimonial and a last
chance. These run on the pure harness: the real decisions, in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.testing import DEFAULT_START, PureHarness
from rules._faq import FAQ
from rules.cart_recovery import FLOW, TEXTS
from tests.support.library_flows import PHONE, agent, outcomes, skipped

URL = "https://tienda.example/cart/recover/k1"
CART: dict[str, Any] = {"checkout_id": "k1", "recovery_url": URL, "total": 25000, "currency": "ARS",
        "items": [{"sku": "Z-1", "title": "Zapatillas Runner", "quantity": 1, "price": 25000}]}
DAY = timedelta(days=1)


def cart(channel: str = "sms", locale: str = "es", start: datetime = DEFAULT_START,
         **settings: Any) -> PureHarness:
    """Ana, consenting on ``channel``, whose cart was just abandoned; the sequence on."""
    h = PureHarness([FLOW], start=start, channels=(channel,),
                    **{"cart_recovery_full": True, **settings})
    h.customer("cus_1", phone=PHONE, consents={channel: True}, first_name="Ana", locale=locale)
    h.event("cart.abandoned", "cus_1", **CART)
    return h


def steps(h: PureHarness) -> list[str]:
    """The steps of the messages sent to Ana so far, oldest first."""
    return [str(m.get("step")) for m in h.messages("cus_1")
            if m["direction"] == "out" and m["status"] == "queued"
            and m["due_at"] <= h.clock.now()]


def sent_days(h: PureHarness) -> list[float]:
    return [(s.at - DEFAULT_START) / DAY for s in h.to("cus_1")]


def code(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["attrs"]["code_cart"])


def text(key: str, locale: str = "es", **values: Any) -> str:
    return TEXTS[locale][key].format(first_name="Ana", **values)


def test_off_by_default_the_run_ends_after_the_reminder_as_before() -> None:
    h = cart(cart_recovery_full=False)
    assert PureHarness([FLOW]).settings.flow_settings()["cart_recovery_full"] is False
    h.advance(days=12)
    assert steps(h) == ["interested", "reminder"]
    assert outcomes(h, FLOW.name) == ["no_reply"]


def test_silence_gets_the_testimonial_then_the_last_chance_with_the_same_code() -> None:
    h = cart(channel="whatsapp")
    h.advance(days=12)
    assert [s.template for s in h.to("cus_1")] == [
        "cart_recovery_interested", "cart_recovery_reminder", "cart_recovery_testimonial",
        "cart_recovery_last_chance"]
    # 24 h to the reminder, 48 h of listening, then 1 day and 2 days.
    assert sent_days(h) == [0, 1, 4, 6]
    out = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert out[2]["text"] == text("testimonial", url=URL)
    assert out[2]["template"]["params"] == ["Ana", URL]
    assert out[3]["text"] == text("last_chance", url=URL, code=code(h))
    assert out[3]["template"]["params"] == ["Ana", code(h), URL]
    assert out[1]["template"]["params"] == ["Ana", code(h), URL]  # the reminder's code
    assert [c["_id"] for c in h.codes] == [code(h)]  # no second code
    assert outcomes(h, FLOW.name) == ["last_chance"]
    [run] = h.runs(FLOW.name)
    assert [s["step"] for s in run["history"]] == [
        "started", "interested", "reminder", "testimonial", "last_chance"]


def test_after_the_link_the_sequence_goes_on_and_the_last_chance_issues_the_code() -> None:
    h = cart(locale="en")
    h.reply("cus_1", choice="yes")
    assert h.last("cus_1").text == text("link", "en", url=URL)
    assert h.codes == []
    h.advance(days=12)
    assert steps(h) == ["interested", "link", "testimonial", "last_chance"]
    assert sent_days(h) == [0, 0, 2, 4]  # 24 h listening, 1 day, 2 days
    assert h.to("cus_1")[2].text == (
        "\"Arrived fast and looks just like the photos. I'll be back!\" a customer wrote to us "
        f"this week. Your cart is waiting, Ana: {URL}")
    assert h.last("cus_1").text == (
        f"Ana, your cart is about to expire. Last chance: the code {code(h)} still works "
        f"here: {URL}")
    assert [c["purpose"] for c in h.codes] == ["cart"]
    assert outcomes(h, FLOW.name) == ["last_chance"]


def test_an_order_while_waiting_for_the_testimonial_ends_it_with_thanks() -> None:
    h = cart()
    h.advance(days=3.25)  # 18:00 local: the thanks is not held by quiet hours
    assert h.active_flows("cus_1") == {FLOW.name: "reminder"}
    h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
    assert h.last("cus_1").text == text("thanks")
    assert outcomes(h, FLOW.name) == ["purchased"]
    h.advance(days=12)
    assert steps(h) == ["interested", "reminder", "thanks"]


def test_an_order_after_the_testimonial_ends_it_with_thanks() -> None:
    h = cart()
    h.advance(days=5)
    assert h.active_flows("cus_1") == {FLOW.name: "testimonial"}
    h.event("order.placed", "cus_1", order_id="o-1", checkout_id="k1")
    assert outcomes(h, FLOW.name) == ["purchased"]
    h.advance(days=12)
    assert steps(h) == ["interested", "reminder", "testimonial", "thanks"]


def test_no_to_the_last_chance_asks_why() -> None:
    h = cart()
    h.advance(days=6)
    assert steps(h)[-1] == "last_chance"
    h.reply("cus_1", "no gracias")
    assert h.last("cus_1").text == text("why")
    h.reply("cus_1", choice="price")
    assert h.customer_doc("cus_1")["attrs"]["cart_declined_reason"] == "price"
    assert outcomes(h, FLOW.name) == ["declined"]
    h.advance(days=12)
    assert steps(h) == ["interested", "reminder", "testimonial", "last_chance", "why",
                        "thanks_reason"]


def test_yes_to_the_testimonial_sends_the_link_with_the_code_then_the_last_chance() -> None:
    h = cart()
    h.advance(days=4)
    h.reply("cus_1", "sí, lo quiero")
    assert h.last("cus_1").text == text("link_code", url=URL, code=code(h))
    h.advance(days=12)
    # 24 h of silence after the link, then the last chance 2 days later; once each.
    assert steps(h) == ["interested", "reminder", "testimonial", "link", "last_chance"]
    assert sent_days(h)[-1] == 7
    assert outcomes(h, FLOW.name) == ["last_chance"]


def test_a_question_to_the_testimonial_is_answered_and_ends_the_sequence() -> None:
    h = cart()
    h.advance(days=4)
    h.reply("cus_1", "¿Cuánto tarda el envío a Córdoba?")
    assert h.last("cus_1").text == (
        f"{FAQ['shipping']['answers']['es']}\n\n{TEXTS['es']['anything_else']}")
    h.advance(days=12)
    assert outcomes(h, FLOW.name) == ["chat_idle"]
    assert "last_chance" not in steps(h)


def test_an_opt_out_gets_neither_the_testimonial_nor_the_last_chance() -> None:
    h = cart()
    h.advance(days=2)
    h.reply("cus_1", "STOP")
    h.advance(days=12)
    assert steps(h)[:2] == ["interested", "reminder"]
    assert "testimonial" not in steps(h) and "last_chance" not in steps(h)
    assert skipped(h, "cus_1") == [("testimonial", "no channel the customer consented to"),
                                   ("last_chance", "no channel the customer consented to")]


def test_quiet_hours_delay_the_testimonial_and_the_last_chance_to_nine() -> None:
    h = cart()  # 12:00 in Buenos Aires
    h.advance(hours=10.5)  # 22:30
    h.reply("cus_1", "sí")
    assert h.last("cus_1").at == DEFAULT_START + timedelta(hours=10.5)  # an answer: at once
    h.advance(days=2)  # the testimonial is decided at 22:30, two days later
    assert steps(h) == ["interested", "link"]
    h.advance(hours=11)
    nine = datetime(2026, 1, 18, 12, 0, tzinfo=UTC)  # 09:00 local
    assert h.last("cus_1").at == nine
    assert steps(h)[-1] == "testimonial"
    h.advance(days=12)
    assert h.last("cus_1").at == nine + 2 * DAY
    assert steps(h)[-1] == "last_chance"


def test_an_agent_holding_the_conversation_holds_the_messages_and_the_run_goes_on() -> None:
    h = cart(agent_idle_release=10 * 86400)
    agent(h, "cus_1", "takeover")
    h.advance(days=5)
    assert skipped(h, "cus_1") == [("reminder", "an agent has the conversation"),
                                   ("testimonial", "an agent has the conversation")]
    agent(h, "cus_1", "release")
    h.advance(days=12)
    assert steps(h) == ["interested", "last_chance"]
    assert outcomes(h, FLOW.name) == ["last_chance"]


def test_the_flow_settings_file_changes_the_waits_and_the_testimonial(tmp_path: Path) -> None:
    path = tmp_path / "flows.toml"
    path.write_text('[flows.cart_recovery.timings]\ntestimonial_after = "6h"\n'
                    'last_chance_after = "2h"\nlisten_after_last_chance = "1h"\n'
                    '[flows.cart_recovery.texts.es]\n'
                    'testimonial = "«Excelente atención», dice Marta. {url}"\n', encoding="utf-8")
    h = cart(flows_config=str(path))
    h.advance(days=12)
    testimonial = DEFAULT_START + timedelta(days=3, hours=6)  # 18:00 local
    assert [s.at for s in h.to("cus_1")][2:] == [testimonial, testimonial + timedelta(hours=2)]
    assert h.to("cus_1")[2].text == f"«Excelente atención», dice Marta. {URL}"
    [run] = h.runs(FLOW.name)
    assert run["outcome"] == "last_chance"
    assert run["ended_at"] == testimonial + timedelta(hours=3)


def test_the_run_limit_grows_by_the_waits_the_sequence_adds(tmp_path: Path) -> None:
    path = tmp_path / "flows.toml"
    path.write_text('[flows.cart_recovery.timings]\nmax_run = "1d"\n', encoding="utf-8")
    h = cart(flows_config=str(path))
    h.advance(days=12)
    # max_run 1 day + testimonial 1 day + last chance 2 days + listening 1 day = 5 days:
    # the testimonial (day 4) goes, the last chance (day 6) does not.
    assert steps(h) == ["interested", "reminder", "testimonial"]
    [run] = h.runs(FLOW.name)
    assert run["outcome"] == "expired"
    assert run["ended_at"] == DEFAULT_START + 5 * DAY
