"""Reactivation (rules/reactivation.py): check-in, incentive, last offer, then the sunset.

The service fires ``customer.inactive`` ``INACTIVE_AFTER_DAYS`` after the
last order; the branches run on the pure harness, the templates and the
hand-over to the sunset flow also on the real runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import sunset
from rules.reactivation import FLOW
from tests.support.library_flows import PHONE, agent, outcomes, skipped

DAY = timedelta(days=1)


def harness(locale: str = "es", start: datetime = DEFAULT_START, *, ordered: bool = True,
            **settings: Any) -> PureHarness:
    """Ana, who bought once at ``start``; nothing is sent before day 90."""
    h = PureHarness([FLOW, sunset.FLOW], start=start, channels=("sms",),
                    **{"sunset_after_days": 1000, **settings})
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana", locale=locale)
    if ordered:
        h.event("order.placed", "cus_1", order_id="o-1")
    return h


def sent_days(h: PureHarness, start: datetime = DEFAULT_START) -> list[float]:
    return [(s.at - start) / DAY for s in h.to("cus_1")]


def code_of(h: PureHarness) -> str:
    [code] = {c["_id"] for c in h.codes if c.get("purpose") == "reactivation"}  # one code
    return str(code)


# -------------------------------------------------------- the pure decisions


def test_check_in_incentive_last_offer_then_the_sunset_question() -> None:
    h = harness()
    h.advance(days=89)
    assert h.to("cus_1") == []
    h.advance(days=1)
    assert [s.text for s in h.to("cus_1")] == [
        "Hola, Ana. Hace tiempo que no te vemos por la tienda. ¿Todo bien? Si necesitas algo, "
        "escríbenos por aquí."]
    h.advance(days=280)  # day 370
    code = code_of(h)
    assert [s.text for s in h.to("cus_1")][1:] == [
        f"¡Te extrañamos, Ana! Para tu próxima compra tienes un 10% de descuento con el código "
        f"{code}.",
        f"Última oportunidad, Ana: tu código {code} sigue activo. Si no sabemos de ti, en 15 "
        f"días dejaremos de escribirte."]
    h.advance(days=5)
    assert sent_days(h) == [90, 180, 360, 375]
    assert h.last("cus_1").text == sunset.TEXTS["es"]["keep"].format(first_name="Ana")
    assert outcomes(h, FLOW.name) == ["sunset"]
    assert h.active_flows("cus_1") == {sunset.FLOW.name: "keep_question"}


def test_thresholds_and_the_sunset_delay_are_settings() -> None:
    h = harness(locale="en", inactive_after_days=60, reactivation_months="2,4,5",
                reactivation_sunset_days=10)
    h.advance(days=400)
    assert sent_days(h) == [60, 120, 150, 160]
    assert h.to("cus_1")[2].text == (
        f"Last chance, Ana: your code {code_of(h)} is still active. If we do not hear from "
        f"you, we will stop writing in 10 days.")


def test_the_settings_file_sets_the_sunset_delay(tmp_path: Path) -> None:
    path = tmp_path / "flows.toml"
    path.write_text('[flows.reactivation.timings]\nsunset_after = "7d"\n', encoding="utf-8")
    h = harness(flows_config=str(path))
    h.advance(days=400)
    assert sent_days(h) == [90, 180, 360, 367]
    assert "en 7 días" in str(h.to("cus_1")[2].text)


def test_a_threshold_already_past_comes_at_once() -> None:
    h = harness(inactive_after_days=200)
    h.advance(days=400)
    assert sent_days(h) == [200, 200, 360, 375]


def test_an_order_ends_the_run_at_any_step() -> None:
    h = harness(locale="pt")
    h.advance(days=200)  # check-in and incentive sent
    h.event("order.placed", "cus_1", order_id="o-2")
    assert outcomes(h, FLOW.name) == ["ordered"]
    h.advance(days=200)
    # the next run counts from the new order (day 200): check-in at 290, incentive at 380
    assert sent_days(h) == [90, 180, 290, 380]
    assert str(h.to("cus_1")[2].text).startswith("Olá, Ana. Faz tempo")


def test_a_customer_who_never_ordered_is_not_reactivated() -> None:
    h = harness(ordered=False)
    h.advance(days=400)
    assert h.to("cus_1") == []
    assert outcomes(h, FLOW.name) == ["no_orders"]


def test_opt_out_skips_every_later_message() -> None:
    h = harness()
    h.advance(days=90)
    h.reply("cus_1", "BAJA")
    h.advance(days=300)
    assert [step for step, _ in skipped(h, "cus_1")] == ["incentive", "last_offer"]
    assert {reason for _, reason in skipped(h, "cus_1")} == {
        "no channel the customer consented to"}


def test_an_agent_holding_the_conversation_holds_the_incentive() -> None:
    h = harness(agent_idle_release=100 * 86400)
    h.advance(days=179)
    agent(h, "cus_1", "takeover")
    h.advance(days=1)
    assert skipped(h, "cus_1") == [("incentive", "an agent has the conversation")]


def test_quiet_hours_hold_the_check_in_until_nine() -> None:
    start = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)  # 00:00 in Buenos Aires
    h = harness(start=start)
    h.advance(days=90)
    assert h.to("cus_1") == []
    h.advance(hours=9)
    assert h.last("cus_1").at == start + timedelta(days=90, hours=9)  # 09:00 local


def test_no_marketing_consent_no_run() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": False})
    h.event("order.placed", "cus_1", order_id="o-1")
    h.advance(days=400)
    assert h.to("cus_1") == []
    assert FLOW.name not in h.customer_doc("cus_1").get("flow_history", {})


# ------------------------------------------------------------- the real runtime


async def test_templates_and_the_hand_over_on_the_real_runtime(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW, sunset.FLOW], channels=("whatsapp",),
                           sunset_after_days=1000) as h:
        await h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana")
        await h.event("order.placed", "cus_1", order_id="o-1")
        await h.advance(days=380)
        assert [s.template for s in h.to("cus_1")] == [
            "reactivation_checkin", "reactivation_incentive", "reactivation_last_offer",
            "sunset_keep_subscribed"]
        code = (await h.database.codes.find_one({"purpose": "reactivation"}) or {})["_id"]
        out = sorted((m for m in await h.messages("cus_1") if m["direction"] == "out"),
                     key=lambda m: m["seq"])
        assert out[2]["template"]["params"] == ["Ana", code, "15"]
        assert await h.active_flows("cus_1") == {sunset.FLOW.name: "keep_question"}
