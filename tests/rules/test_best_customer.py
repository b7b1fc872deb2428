"""The best-customer reward (rules/best_customer.py), off by default.

Branches, the threshold and the delay on the pure harness; the codes
collection and an agent's hold on the real runtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core import flow_graph
from bot.core.flows import load_flows
from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import best_customer
from rules.best_customer import FLOW, TEXTS

PHONE = "+5491122334455"
DELAY = timedelta(days=14)


def pure(channel: str = "sms", consent: bool = True, start: datetime = DEFAULT_START,
         **settings: object) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=(channel,), **settings)
    h.customer("cus_1", phone=PHONE, consents={channel: consent}, first_name="Ana")
    return h


def order(h: PureHarness, order_id: str, total: str, currency: str = "ARS") -> None:
    h.event("order.placed", "cus_1", order_id=order_id, total=total, currency=currency)


def outcomes(h: PureHarness) -> list[str]:
    return [str(run["outcome"]) for run in h.runs(FLOW.name)]


def code(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["attrs"]["code_best_customer"])


def test_declared_steps_and_the_docstring_diagram_match_the_rules() -> None:
    source = Path(str(best_customer.__file__)).read_text(encoding="utf-8")
    assert flow_graph.problems(FLOW) == []
    assert flow_graph.undeclared(FLOW, source, "best_customer.py") == []
    assert re.findall(r"```mermaid\n.*?```", best_customer.__doc__ or "", flags=re.S) == [
        FLOW.mermaid()]


def test_off_unless_the_store_names_it() -> None:
    assert "best_customer" not in load_flows("rules")
    assert list(load_flows("rules", ["best_customer"])) == ["best_customer"]


def test_passing_the_threshold_brings_a_reward_after_a_quiet_spell() -> None:
    h = pure()  # the default: more than 100000 ARS
    order(h, "o-1", "60000")
    assert outcomes(h) == ["below_threshold"]
    h.advance(days=1)
    order(h, "o-2", "50000.50")
    assert h.active_flows("cus_1") == {FLOW.name: "qualified"}
    h.advance(DELAY.total_seconds() - 1)
    assert h.to("cus_1") == []
    h.advance(seconds=1)
    reward = h.last("cus_1")
    assert reward.at == DEFAULT_START + timedelta(days=1) + DELAY
    assert reward.text == TEXTS["es"]["reward"].format(first_name="Ana", code=code(h))
    assert outcomes(h) == ["below_threshold", "rewarded"]
    assert h.customer_doc("cus_1")["attrs"]["best_customer_rewarded_at"] == reward.at.isoformat()


def test_an_order_during_the_wait_postpones_the_reward() -> None:
    h = pure(best_customer_threshold="500")
    order(h, "o-1", "800")
    h.advance(days=10)
    order(h, "o-2", "100")
    h.advance(days=4)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {FLOW.name: "postponed"}
    h.advance(days=10)
    assert h.last("cus_1").at == DEFAULT_START + timedelta(days=10) + DELAY
    [run] = [r for r in h.runs(FLOW.name) if r["outcome"] == "rewarded"]
    assert [s["step"] for s in run["history"]] == ["started", "qualified", "postponed", "reward"]


def test_at_most_one_reward_a_year() -> None:
    h = pure(best_customer_threshold="500")
    order(h, "o-1", "800")
    h.advance(days=14)
    order(h, "o-2", "800")
    h.advance(days=30)
    assert outcomes(h) == ["rewarded", "already_rewarded"]
    assert len(h.to("cus_1")) == 1
    h.advance(days=335)  # a year after the reward (day 14)
    order(h, "o-3", "800")
    h.advance(days=14)
    assert outcomes(h) == ["rewarded", "already_rewarded", "rewarded"]
    assert len(h.to("cus_1")) == 2


def test_the_threshold_counts_only_its_currency() -> None:
    h = pure(best_customer_threshold="500", best_customer_currency="usd")
    order(h, "o-1", "90000", "ARS")
    order(h, "o-2", "500", "USD")  # not more than 500
    assert outcomes(h) == ["below_threshold", "below_threshold"]
    order(h, "o-3", "0.01", "USD")
    h.advance(days=14)
    assert outcomes(h)[-1] == "rewarded"


def test_an_opt_out_during_the_wait_means_no_reward() -> None:
    h = pure(best_customer_threshold="500")
    order(h, "o-1", "800")
    h.reply("cus_1", "STOP")
    confirmations = len(h.to("cus_1"))
    h.advance(days=14)
    assert len(h.to("cus_1")) == confirmations
    assert outcomes(h) == ["opted_out"]


def test_no_consent_no_run() -> None:
    h = pure(consent=False, best_customer_threshold="500")
    order(h, "o-1", "800")
    h.advance(days=20)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


def test_quiet_hours_hold_the_reward_until_nine() -> None:
    late = datetime(2026, 1, 16, 2, 0, tzinfo=UTC)  # 23:00 in Buenos Aires
    h = pure(start=late, best_customer_threshold="500")
    order(h, "o-1", "800")
    h.advance(days=15)
    assert h.last("cus_1").at == late + DELAY + timedelta(hours=10)  # 09:00 local


def test_the_delay_is_a_setting_and_whatsapp_gets_the_template() -> None:
    h = pure(channel="whatsapp", best_customer_threshold="500", best_customer_delay_days=3)
    order(h, "o-1", "800")
    h.advance(days=3)
    [out] = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert out["due_at"] == DEFAULT_START + timedelta(days=3)
    assert out["template"] == {"name": "best_customer_reward", "language": "es",
                               "params": ["Ana", code(h)]}


# ------------------------------------------------------------- the real runtime


async def test_an_agent_holds_the_reward(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",), best_customer_threshold="500",
                           agent_idle_release=20 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        await h.event("order.placed", "cus_1", order_id="o-1", total="800", currency="ARS")
        internal = (await h.customer_doc("cus_1"))["_id"]
        await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(DELAY.total_seconds())
        assert h.to("cus_1") == []
        [held] = [m for m in await h.messages("cus_1") if m.get("step") == "reward"]
        assert held["status"] == "skipped" and held["error"].startswith("an agent has")
        [issued] = await h.database.codes.find({"purpose": "best_customer"}).to_list(None)
        assert issued["_id"] in held["text"]
