"""The browse-abandonment flow (rules/browse_abandonment.py), off by default.

Branches, the window and the frequency limit on the pure harness; an
agent's hold on the real runtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core import flow_graph
from bot.core.flows import load_flows
from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import browse_abandonment
from rules.browse_abandonment import FLOW, TEXTS

PHONE = "+5491122334455"
URL = "https://tienda.example/p/zapatillas-runner"
SHOES: dict[str, Any] = {"product_id": "p-1", "title": "Zapatillas Runner", "url": URL,
                         "category": "Calzado"}
BOOTS: dict[str, Any] = {"product_id": "p-2", "title": "Botas", "category": "Calzado"}


def pure(channel: str = "sms", consent: bool = True, start: datetime = DEFAULT_START,
         **settings: object) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=(channel,), **settings)
    h.customer("cus_1", phone=PHONE, consents={channel: consent}, first_name="Ana")
    return h


def outcomes(h: PureHarness) -> list[str]:
    return [str(run["outcome"]) for run in h.runs(FLOW.name)]


def nudge_text(what: str, url: str = "") -> str:
    text = TEXTS["es"]["nudge"].format(first_name="Ana", what=what)
    return f"{text}\n{TEXTS['es']['link'].format(url=url)}" if url else text


def test_declared_steps_and_the_docstring_diagram_match_the_rules() -> None:
    source = Path(str(browse_abandonment.__file__)).read_text(encoding="utf-8")
    assert flow_graph.problems(FLOW) == []
    assert flow_graph.undeclared(FLOW, source, "browse_abandonment.py") == []
    assert re.findall(r"```mermaid\n.*?```", browse_abandonment.__doc__ or "",
                      flags=re.S) == [FLOW.mermaid()]


def test_off_unless_the_store_names_it() -> None:
    assert "browse_abandonment" not in load_flows("rules")
    assert list(load_flows("rules", ["browse_abandonment"])) == ["browse_abandonment"]


def test_a_product_viewed_twice_without_a_cart_gets_one_message_at_the_window_end() -> None:
    h = pure()
    h.event("product.viewed", "cus_1", **SHOES)
    assert h.active_flows("cus_1") == {FLOW.name: "viewed"}
    h.advance(hours=3)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(hours=21)
    [nudge] = h.to("cus_1")
    assert nudge.at == DEFAULT_START + timedelta(hours=24)
    assert nudge.text == nudge_text("Zapatillas Runner", URL)
    assert outcomes(h) == ["nudged"]
    attrs = h.customer_doc("cus_1")["attrs"]
    assert attrs["browse_abandonment_sent_at"] == nudge.at.isoformat()


def test_nothing_viewed_twice_ends_the_window_silently() -> None:
    h = pure()
    h.event("product.viewed", "cus_1", product_id="p-1")
    h.event("product.viewed", "cus_1", product_id="p-2")
    h.advance(days=2)
    assert h.to("cus_1") == []
    assert outcomes(h) == ["browsed"]


def test_a_category_viewed_twice_names_the_category() -> None:
    h = pure()
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **BOOTS)
    h.advance(hours=24)
    assert h.last("cus_1").text == nudge_text("lo que tenemos de Calzado")


@pytest.mark.parametrize(("event", "data", "expected"), [
    ("cart.updated", {}, "carted"),
    ("checkout.started", {"checkout_id": "k1", "recovery_url": "https://s/r", "items": []},
     "carted"),
    ("order.placed", {"order_id": "o-1"}, "purchased"),
])
def test_a_cart_or_an_order_in_the_window_ends_it_silently(
        event: str, data: dict[str, Any], expected: str) -> None:
    h = pure()
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(hours=5)
    h.event(event, "cus_1", **data)
    assert outcomes(h) == [expected]
    h.advance(days=3)
    assert h.to("cus_1") == []


def test_at_most_one_message_a_week() -> None:
    h = pure()
    for _ in range(2):
        h.event("product.viewed", "cus_1", **SHOES)
    h.advance(days=2)
    assert len(h.to("cus_1")) == 1  # at day 1
    for _ in range(3):
        h.event("product.viewed", "cus_1", **BOOTS)
    assert h.active_flows("cus_1") == {FLOW.name: "resting"}
    h.advance(days=6)  # day 8: a week after the message, the rest is over
    assert outcomes(h) == ["nudged", "rested"]
    assert len(h.to("cus_1")) == 1
    for _ in range(2):
        h.event("product.viewed", "cus_1", **BOOTS)
    h.advance(days=1)
    assert [sent.text for sent in h.to("cus_1")][-1] == nudge_text("Botas")
    assert outcomes(h) == ["nudged", "rested", "nudged"]


def test_a_window_without_a_message_does_not_hold_the_next_one() -> None:
    h = pure()
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(days=1)
    assert outcomes(h) == ["browsed"]
    h.event("product.viewed", "cus_1", **BOOTS)
    h.event("product.viewed", "cus_1", **BOOTS)
    h.advance(days=1)
    assert h.last("cus_1").text == nudge_text("Botas")


def test_the_window_and_the_rest_are_settings() -> None:
    h = pure(browse_window_hours=2, browse_reentry_days=1)
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(hours=2)
    assert h.last("cus_1").at == DEFAULT_START + timedelta(hours=2)
    h.advance(days=1)
    h.event("product.viewed", "cus_1", **BOOTS)
    h.event("product.viewed", "cus_1", **BOOTS)
    h.advance(hours=2)
    assert len(h.to("cus_1")) == 2


def test_an_opt_out_in_the_window_means_no_message() -> None:
    h = pure()
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.reply("cus_1", "STOP")
    confirmations = len(h.to("cus_1"))
    h.advance(days=1)
    assert len(h.to("cus_1")) == confirmations
    assert outcomes(h) == ["opted_out"]


def test_no_consent_no_run() -> None:
    h = pure(consent=False)
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(days=2)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


def test_quiet_hours_hold_the_message_until_nine() -> None:
    night = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)  # 00:00 in Buenos Aires
    h = pure(start=night)
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(days=1, hours=9)
    assert h.last("cus_1").at == datetime(2026, 1, 16, 12, 0, tzinfo=UTC)  # 09:00 local


def test_whatsapp_gets_the_template_with_what_they_looked_at() -> None:
    h = pure(channel="whatsapp")
    h.event("product.viewed", "cus_1", **SHOES)
    h.event("product.viewed", "cus_1", **SHOES)
    h.advance(days=1)
    [out] = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert out["template"] == {"name": "browse_abandonment_help", "language": "es",
                               "params": ["Ana", "Zapatillas Runner"]}


# ------------------------------------------------------------- the real runtime


async def test_an_agent_holds_the_message(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",),
                           agent_idle_release=2 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await h.event("product.viewed", "cus_1", **SHOES)
        await h.event("product.viewed", "cus_1", **SHOES)
        internal = (await h.customer_doc("cus_1"))["_id"]
        await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(days=1)
        assert h.to("cus_1") == []
        [held] = [m for m in await h.messages("cus_1") if m.get("step") == "nudge"]
        assert held["status"] == "skipped" and held["error"].startswith("an agent has")
        assert await h.active_flows("cus_1") == {}
