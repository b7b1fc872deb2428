"""Back in stock (rules/back_in_stock.py): a notice, one reminder, a last chance.

The branches run on the pure harness (which delivers the event to the named
customer); the fan-out to the interested customers, on the real runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules.back_in_stock import FLOW
from tests.support.library_flows import PHONE, agent, outcomes, skipped

MATE: dict[str, Any] = {"product_id": "p-mate", "title": "Mate imperial",
                        "url": "https://tienda.example/mate"}
DAY = timedelta(days=1)


def harness(locale: str = "es", start: datetime = DEFAULT_START, **settings: Any,
            ) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=("sms",), **settings)
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana", locale=locale)
    return h


def sent_days(h: PureHarness) -> list[float]:
    return [(s.at - DEFAULT_START) / DAY for s in h.to("cus_1")]


# -------------------------------------------------------- the pure decisions


def test_notice_reminder_and_last_chance() -> None:
    h = harness()
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.advance(days=6)
    assert [s.text for s in h.to("cus_1")] == [
        "¡Buenas noticias, Ana! Volvió Mate imperial: https://tienda.example/mate",
        "Hola, Ana. Mate imperial sigue disponible, pero vuela: https://tienda.example/mate",
        "Última oportunidad, Ana: quedan pocas unidades de Mate imperial. "
        "https://tienda.example/mate"]
    assert sent_days(h) == [0, 2, 5]
    assert outcomes(h, FLOW.name) == ["last_chance"]


def test_the_flow_settings_file_changes_the_waits_and_texts(tmp_path: Path) -> None:
    path = tmp_path / "flows.toml"
    path.write_text('[flows.back_in_stock.timings]\nreminder_after = "6h"\n'
                    'last_chance_after = "1d"\n[flows.back_in_stock.texts.es]\n'
                    'notify = "¡Volvió {product}, {first_name}! {url}"\n', encoding="utf-8")
    h = harness(flows_config=str(path))
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.advance(days=2)
    assert sent_days(h) == [0, 0.25, 1]
    assert h.to("cus_1")[0].text == "¡Volvió Mate imperial, Ana! https://tienda.example/mate"


def test_the_delays_are_settings_and_texts_follow_the_locale() -> None:
    h = harness(locale="en", back_in_stock_reminder_days=1, back_in_stock_last_chance_days=3)
    h.event("product.back_in_stock", "cus_1", sku="YERBA-1KG")  # no title, no link
    h.advance(days=6)
    assert sent_days(h) == [0, 1, 3]
    assert h.to("cus_1")[0].text == "Good news, Ana! the product you liked is back: at our store"


def test_an_order_of_that_product_ends_the_run_silently() -> None:
    h = harness()
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.advance(days=1)
    h.event("order.placed", "cus_1", order_id="o-1", items=[{"product_id": "p-other"}])
    assert h.active_flows("cus_1") == {FLOW.name: "notify"}  # another product: goes on
    h.event("order.placed", "cus_1", order_id="o-2",
            items=[{"sku": "MATE-IMP", "product_id": "p-mate", "title": "Mate imperial"}])
    assert outcomes(h, FLOW.name) == ["purchased"]
    h.advance(days=6)
    assert len(h.to("cus_1")) == 1


def test_a_purchase_before_the_notice_does_not_stop_the_reminder() -> None:
    h = harness()
    h.event("order.placed", "cus_1", order_id="o-0", items=[{"product_id": "p-mate"}])
    h.advance(days=40)
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.advance(days=2)
    assert len(h.to("cus_1")) == 2


def test_one_product_per_run_and_not_told_twice_within_30_days() -> None:
    h = harness()
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.event("product.back_in_stock", "cus_1", product_id="p-bombilla", title="Bombilla")
    h.advance(days=6)
    assert len(h.to("cus_1")) == 3  # the bombilla was left out of the mate's run
    h.event("product.back_in_stock", "cus_1", **MATE)  # reported again (a store edit)
    assert len(h.to("cus_1")) == 3
    assert outcomes(h, FLOW.name) == ["last_chance", "already_told"]
    h.advance(days=25)
    h.event("product.back_in_stock", "cus_1", **MATE)  # 31 days after the notice
    assert len(h.to("cus_1")) == 4


def test_opt_out_skips_the_reminder_and_the_last_chance() -> None:
    h = harness()
    h.event("product.back_in_stock", "cus_1", **MATE)
    h.reply("cus_1", "STOP")
    h.advance(days=6)
    assert skipped(h, "cus_1") == [("reminder", "no channel the customer consented to"),
                                   ("last_chance", "no channel the customer consented to")]


def test_an_agent_holding_the_conversation_holds_the_reminder() -> None:
    h = harness(agent_idle_release=10 * 86400)
    h.event("product.back_in_stock", "cus_1", **MATE)
    agent(h, "cus_1", "takeover")
    h.advance(days=2)
    assert skipped(h, "cus_1") == [("reminder", "an agent has the conversation")]


def test_quiet_hours_hold_the_notice_until_nine() -> None:
    late = datetime(2026, 1, 15, 1, 30, tzinfo=UTC)  # 22:30 in Buenos Aires
    h = harness(start=late)
    h.event("product.back_in_stock", "cus_1", **MATE)
    assert h.to("cus_1") == []
    h.advance(hours=11)
    assert h.last("cus_1").at == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 local


def test_no_marketing_consent_no_run() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": False})
    h.event("product.back_in_stock", "cus_1", **MATE)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


# ------------------------------------------------------------- the real runtime


async def test_everyone_who_viewed_it_or_had_it_in_a_cart_is_told(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        phones = {name: f"+54911000000{n}" for n, name in enumerate(["viewer", "carter",
                                                                      "other", "shop"])}
        for name, phone in phones.items():
            await h.customer(name, phone=phone, consents={"whatsapp": True}, first_name="Ana")
        await h.event("product.viewed", "viewer", product_id="p-mate")
        await h.event("checkout.started", "carter", checkout_id="k1",
                      recovery_url="https://tienda.example/r/k1", total="42000", currency="ARS",
                      items=[{"product_id": "p-mate", "sku": "MATE-IMP", "title": "Mate",
                              "quantity": 1, "price": "42000"}])
        await h.event("product.viewed", "other", product_id="p-bombilla")
        await h.event("product.back_in_stock", "shop", **MATE)
        await h.runtime.drain()
        told = sorted(s.to for s in h.sent if s.template == "back_in_stock_notify")
        assert told == sorted([phones["viewer"], phones["carter"], phones["shop"]])
        await h.advance(days=5)
        assert [s.template for s in h.to("carter")] == [
            "back_in_stock_notify", "back_in_stock_reminder", "back_in_stock_last_chance"]
        out = [m for m in await h.messages("carter") if m["direction"] == "out"]
        assert out[0]["template"]["params"] == ["Ana", "Mate imperial",
                                                "https://tienda.example/mate"]
