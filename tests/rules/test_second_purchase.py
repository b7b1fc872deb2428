"""The second-purchase flow (rules/second_purchase.py), off by default.

Branches and texts on the pure harness; the codes collection and an agent's
hold on the real runtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core import flow_graph
from bot.core.flows import load_flows
from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import second_purchase
from rules.second_purchase import FLOW, TEXTS

PHONE = "+5491122334455"
MATE: dict[str, Any] = {"order_id": "o-1", "total": "15000", "currency": "ARS", "items": [
    {"product_id": "p-1", "title": "Mate imperial", "category": "Mates", "quantity": 1,
     "price": "15000"}]}
MONTH = timedelta(days=30)


def pure(channel: str = "sms", consent: bool = True, start: datetime = DEFAULT_START,
         locale: str = "es", **settings: object) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=(channel,), **settings)
    h.customer("cus_1", phone=PHONE, consents={channel: consent}, first_name="Ana",
               locale=locale)
    return h


def code(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["attrs"]["code_second_purchase"])


def outcome(h: PureHarness) -> str:
    [run] = h.runs(FLOW.name)
    return str(run["outcome"])


def test_declared_steps_and_the_docstring_diagram_match_the_rules() -> None:
    source = Path(str(second_purchase.__file__)).read_text(encoding="utf-8")
    assert flow_graph.problems(FLOW) == []
    assert flow_graph.undeclared(FLOW, source, "second_purchase.py") == []
    assert re.findall(r"```mermaid\n.*?```", second_purchase.__doc__ or "", flags=re.S) == [
        FLOW.mermaid()]


def test_off_unless_the_store_names_it() -> None:
    assert "second_purchase" not in load_flows("rules")
    assert list(load_flows("rules", ["second_purchase"])) == ["second_purchase"]


def test_a_month_after_the_first_order_a_suggestion_from_its_category() -> None:
    h = pure()
    h.event("order.placed", "cus_1", **MATE)
    assert h.active_flows("cus_1") == {FLOW.name: "first_order"}
    h.advance(MONTH.total_seconds() - 1)
    assert h.to("cus_1") == []
    h.advance(seconds=1)
    suggestion = h.last("cus_1")
    assert suggestion.at == DEFAULT_START + MONTH
    assert suggestion.text == TEXTS["es"]["category"].format(first_name="Ana", what="Mates",
                                                            code=code(h))
    assert outcome(h) == "suggested"
    h.advance(days=60)
    assert len(h.to("cus_1")) == 1


def test_without_a_category_the_product_is_named_and_without_items_nothing() -> None:
    h = pure()
    h.event("order.placed", "cus_1", order_id="o-1",
            items=[{"product_id": "p-2", "title": "Bombilla de alpaca"}])
    h.advance(days=30)
    assert h.last("cus_1").text == TEXTS["es"]["product"].format(
        first_name="Ana", what="Bombilla de alpaca", code=code(h))
    h = pure(locale="en")
    h.event("order.placed", "cus_1", order_id="o-1")
    h.advance(days=30)
    assert h.last("cus_1").text == TEXTS["en"]["general"].format(first_name="Ana",
                                                                code=code(h))


def test_a_second_order_ends_the_wait_silently() -> None:
    h = pure()
    h.event("order.placed", "cus_1", **MATE)
    h.advance(days=10)
    h.event("order.placed", "cus_1", **{**MATE, "order_id": "o-2"})
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "second_order"
    h.advance(days=60)
    assert h.to("cus_1") == []


def test_the_first_order_delivered_again_is_no_second_order() -> None:
    h = pure()
    h.event("order.placed", "cus_1", **MATE)
    h.event("order.placed", "cus_1", **MATE)  # a store's retry: another event, same order
    assert h.active_flows("cus_1") == {FLOW.name: "first_order"}
    h.advance(days=30)
    assert len(h.to("cus_1")) == 1


def test_a_customer_who_had_ordered_before_never_gets_it() -> None:
    h = pure(consent=False)
    h.event("order.placed", "cus_1", **MATE)  # no consent: no run, but the order counts
    h.customer("cus_1", phone=PHONE, consents={"sms": True})
    h.event("order.placed", "cus_1", **{**MATE, "order_id": "o-2"})
    assert outcome(h) == "not_first"
    h.event("order.placed", "cus_1", **{**MATE, "order_id": "o-3"})
    assert len(h.runs(FLOW.name)) == 1  # once per customer
    h.advance(days=60)
    assert h.to("cus_1") == []


def test_an_opt_out_during_the_wait_means_no_suggestion() -> None:
    h = pure()
    h.event("order.placed", "cus_1", **MATE)
    h.reply("cus_1", "BAJA")
    confirmations = len(h.to("cus_1"))
    h.advance(days=30)
    assert len(h.to("cus_1")) == confirmations
    assert outcome(h) == "opted_out"


def test_no_consent_no_run() -> None:
    h = pure(consent=False)
    h.event("order.placed", "cus_1", **MATE)
    h.advance(days=60)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


def test_quiet_hours_hold_the_suggestion_until_nine() -> None:
    evening = datetime(2026, 1, 16, 1, 0, tzinfo=UTC)  # 22:00 in Buenos Aires
    h = pure(start=evening)
    h.event("order.placed", "cus_1", **MATE)
    h.advance((MONTH + timedelta(hours=12)).total_seconds())
    assert h.last("cus_1").at == evening + MONTH + timedelta(hours=11)  # 09:00 local


def test_the_wait_is_a_setting_and_whatsapp_gets_the_template() -> None:
    h = pure(channel="whatsapp", second_purchase_after_days=10)
    h.event("order.placed", "cus_1", **MATE)
    h.advance(days=10)
    [out] = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert out["due_at"] == DEFAULT_START + timedelta(days=10)
    assert out["template"] == {"name": "second_purchase_suggestion", "language": "es",
                               "params": ["Ana", "Mates", code(h)]}


# ------------------------------------------------------------- the real runtime


async def test_an_agent_holds_the_suggestion(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",),
                           agent_idle_release=40 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await h.event("order.placed", "cus_1", **MATE)
        internal = (await h.customer_doc("cus_1"))["_id"]
        await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(MONTH.total_seconds())
        assert h.to("cus_1") == []
        [held] = [m for m in await h.messages("cus_1") if m.get("step") == "suggestion"]
        assert held["status"] == "skipped" and held["error"].startswith("an agent has")
        [issued] = await h.database.codes.find({"purpose": "second_purchase"}).to_list(None)
        assert issued["_id"] in held["text"]
