"""Flow counters: skip reasons, attribution, and what recording costs in round trips.

The runtime is the real one (``FlowHarness``: inbox, processor, sender on a
real database, virtual clock); the figures are read back as the API reads
them (``bot.runtime.flow_stats.period_figures``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.core import policy
from bot.core.policy import may_send, reason_code
from bot.core.stats import Counters, attribute, escape, from_outcome, summarize, unescape
from bot.runtime.flow_stats import period_figures
from bot.testing import FlowHarness
from rules import cart_recovery
from tests.support.batching import ECHO, accept_replies, introduce
from tests.support.monitoring import CommandLog
from tests.support.policy_cases import NOON, POLICY, conversation, customer, message, revoked

NIGHT = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 22:00 in Buenos Aires: quiet hours
CART: dict[str, Any] = {"checkout_id": "k1", "recovery_url": "https://shop.example/r/k1",
                        "total": "50", "currency": "ARS", "items": []}


async def figures(h: FlowHarness, flow: Any) -> dict[str, Any]:
    today = h.clock.now().date()
    return await period_figures(h.database, flow, today - timedelta(days=30), today)


def row(stats: dict[str, Any], step: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in stats["steps"] if r["step"] == step]
    assert found, f"no step {step} in {stats['steps']}"
    return found[0]


async def test_skips_are_counted_by_reason_quiet_hours_and_consent(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [cart_recovery.FLOW], start=NIGHT, channels=("whatsapp",),
                           quiet_hours=True, cart_abandon_after=3600) as h:
        for name in ("q1", "q2"):
            await h.customer(name, phone=f"+54911000000{name[1]}", consents={"whatsapp": True},
                             first_name="Ana", timezone="America/Argentina/Buenos_Aires")
            await h.event("checkout.started", name, occurred_at=NIGHT - timedelta(hours=2),
                          **CART)
        # Both questions are held until 09:00 (quiet hours); q2 then withdraws consent.
        await h.advance(hours=2)
        await h.event("customer.updated", "q2", _customer={"consents": {"whatsapp": False}})
        await h.advance(hours=9)  # 12:00 UTC, 09:00 local: q1's goes, q2's is skipped
        assert len(h.to("q1")) == 1 and h.to("q2") == []
        # 24 h after the questions were decided (22:00 local), the reminders: q1's is
        # held again until 09:00; q2's cannot go anywhere (no consented channel).
        await h.advance(days=2)
        assert len(h.to("q1")) == 2 and h.to("q2") == []
        stats = await figures(h, cart_recovery.FLOW)
    assert row(stats, "interested") == {
        "step": "interested", "reached": 2, "sent": 1, "delivered": 0, "read": 0, "replied": 0,
        "failed": 0, "skipped": {"consent": 1, "quiet_hours": 2}}
    assert row(stats, "reminder") == {
        "step": "reminder", "reached": 2, "sent": 1, "delivered": 0, "read": 0, "replied": 0,
        "failed": 0, "skipped": {"consent": 1, "quiet_hours": 1}}
    assert stats["runs"]["started"] == 2


async def test_a_run_that_cannot_start_counts_as_skipped_for_consent(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [cart_recovery.FLOW], channels=("whatsapp",),
                           cart_abandon_after=3600) as h:
        await h.customer("c1", phone="+5491100000001", consents={"whatsapp": False})
        await h.event("checkout.started", "c1", occurred_at=h.clock.now() - timedelta(hours=2),
                      **CART)
        await h.advance(0)
        stats = await figures(h, cart_recovery.FLOW)
    assert stats["runs"] == {"started": 0, "active": 0, "ended": {}}
    assert row(stats, "started")["skipped"] == {"consent": 1}


async def test_an_order_counts_only_within_the_attribution_window(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [cart_recovery.FLOW], channels=("whatsapp",),
                           cart_abandon_after=3600, attribution_days=2) as h:
        for name in ("in", "out"):
            await h.customer(name, phone=f"+54911000001{len(name)}", consents={"whatsapp": True})
            await h.event("checkout.started", name, occurred_at=h.clock.now() - timedelta(hours=2),
                          **CART)
        await h.advance(0)  # both asked (sent; the collecting channel reports no delivery)
        await h.advance(hours=47)
        await h.event("order.placed", "in", order_id="o1", total="19.99", currency="BRL")
        await h.advance(hours=2)  # "out": the reminder went out 25 h ago, the question 49 h
        await h.advance(days=2)  # now every message of "out" is older than 2 days
        await h.event("order.placed", "out", order_id="o2", total="5", currency="BRL")
        stats = await figures(h, cart_recovery.FLOW)
    assert stats["conversions"] == {"orders": 1, "revenue": {"BRL": "19.99"}}


async def test_recording_costs_one_write_per_pass_and_can_be_switched_off(
        mongo_uri: str) -> None:
    log = CommandLog()
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), listeners=[log]) as h:
        await introduce(h, 30)
        await accept_replies(h, range(30), "hola")
        log.commands.clear()
        assert await h.runtime.processor.inbox_pass() == 30
        assert log.count("flow_stats") == {"update": 1}  # 30 decisions, one $inc bulk
        [write] = log.on("flow_stats")
        assert len(write.command["updates"]) == 2  # the day's document and the all-time one
        log.commands.clear()
        await h.runtime.sender.send_pass()
        assert log.count("flow_stats") == {"update": 1}  # 30 sends, one $inc bulk

        h.runtime.processor.stats = h.runtime.sender.stats = False
        await accept_replies(h, range(30), "otra")
        log.commands.clear()
        await h.runtime.drain()
        assert log.count("flow_stats") == {}
        stats = await figures(h, ECHO)
    assert stats["runs"]["started"] == 30
    assert row(stats, "send1")["sent"] == 30
    assert "send2" not in [r["step"] for r in stats["steps"]]  # not counted while off


# ------------------------------------------------------------------ pure parts


def test_attribution_takes_delivery_else_send_time_and_the_latest_run_per_flow() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    messages: dict[str, dict[str, Any]] = {
        "m1": {"status": "read", "status_rank": 3, "sent_at": t,
               "status_history": [{"status": "delivered", "at": t + timedelta(days=1)}]},
        "m2": {"status": "sent", "status_rank": 1, "sent_at": t + timedelta(days=2)},
        "m3": {"status": "failed", "status_rank": 4, "sent_at": t + timedelta(days=3)},
        "m4": {"status": "queued"},
    }
    run1 = {"flow": "f", "run": "f:1", "messages": ["m1"]}
    run2 = {"flow": "f", "run": "f:2", "messages": ["m2"]}
    other = {"flow": "g", "run": "g:1", "messages": ["m3", "m4"]}
    window = timedelta(days=5)
    # Delivered on day 1: an order on day 5 counts, one on day 6 1 ms later does not.
    assert attribute(t + timedelta(days=6), [run1], messages, window) == [run1]
    assert attribute(t + timedelta(days=6, milliseconds=1), [run1], messages, window) == []
    assert attribute(t + timedelta(hours=12), [run1], messages, window) == []  # before it
    # Per flow, the latest run that reached the customer; failed and unsent never count.
    assert attribute(t + timedelta(days=4), [run1, run2, other], messages, window) == [run2]


def test_counters_merge_by_document_and_keep_money_exact() -> None:
    run = {"flow": "f", "version": "v1", "variant": None}
    at = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    counters = Counters()
    counters.conversion(run, at, Decimal("0.10"), "USD")
    counters.conversion(run, at, Decimal("0.20"), "USD")
    counters.run_ended(run, at, "exit:order.placed")
    [(day_id, day), (all_id, all_time)] = counters.updates()
    assert day_id == "f|v1|-|2026-03-01" and all_id == "f|v1|-|all"
    assert day["$inc"] == {"conversions.orders": 2, "revenue.USD": Decimal("0.30"),
                           "runs.ended.exit:order%2Eplaced": 1}
    assert day["$setOnInsert"] == {"flow": "f", "version": "v1", "variant": None,
                                   "day": "2026-03-01"}
    assert all_time["$inc"] == {"runs.ended.exit:order%2Eplaced": 1}
    for name in ("a.b", "$x", "50%", "", "%2E"):
        assert unescape(escape(name)) == name and "." not in escape(name)


def test_transitions_are_summed_by_day_and_left_out_when_a_day_lacks_them() -> None:
    run = {"flow": "f", "version": "v1", "variant": None}
    counters = Counters()
    day1, day2 = datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    facts = [{"kind": "started", **run}, {"kind": "reached", **run, "step": "started"},
             {"kind": "reached", **run, "step": "ask", "from": "started"},
             {"kind": "ended", **run, "outcome": "order.placed", "from": "ask"}]
    from_outcome(counters, facts, [], day1)
    from_outcome(counters, facts[:3], [], day2)
    days = [{**update["$setOnInsert"], **unflatten(update["$inc"])}
            for _, update in counters.updates() if update["$setOnInsert"]["day"]]
    moved = summarize(None, days, [])["transitions"]
    assert moved == [{"from": "ask", "to": "exit:order.placed", "count": 1},
                     {"from": "started", "to": "ask", "count": 2}]
    # A day counted before transitions were: the period has no exact edges to give.
    legacy = {"flow": "f", "day": "2026-02-28", "runs": {"started": 1},
              "steps": {"started": {"reached": 1}, "ask": {"reached": 1}}}
    assert "transitions" not in summarize(None, [*days, legacy], [])


def unflatten(incs: dict[str, Any]) -> dict[str, Any]:
    """A fresh document's fields after ``$inc`` of dotted paths."""
    doc: dict[str, Any] = {}
    for path, amount in incs.items():
        *parents, last = path.split(".")
        here = doc
        for name in parents:
            here = here.setdefault(name, {})
        here[last] = amount
    return doc


@pytest.mark.parametrize(("fields", "who", "code"), [
    ({"channel": None}, {}, "consent"),
    ({"channel": None, "marketing": False}, {}, "no_channel"),
    ({"channel": "telegram"}, {}, "no_channel"),
    ({}, {"consents": revoked("sms")}, "consent"),
    ({"to": None}, {}, "no_channel"),
    ({}, {"marketing_log": [NOON - timedelta(hours=h) for h in (1, 2)]}, "frequency_cap"),
    ({}, {"conversations": conversation("agent")}, "agent"),
    ({"channel": "whatsapp", "marketing": False}, {"last_in": {}}, "window"),
    ({}, None, "other"),
])
def test_every_skip_has_a_stable_code_also_read_back_from_its_text(
        fields: dict[str, Any], who: dict[str, Any] | None, code: str) -> None:
    doc = customer(**who) if who is not None else None
    verdict = may_send(message(**fields), doc, NOON, POLICY, stage="decision")
    assert verdict.skipped and verdict.code == code, verdict
    assert code in policy.REASON_CODES
    assert reason_code(verdict.reason) == code  # a reason stored as text gives it back
