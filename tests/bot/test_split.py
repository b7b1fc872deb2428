"""split(): a deterministic variant per (customer, run, split), recorded as a step and
made the run's variant, so flow statistics compare variants."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bot.core import commands as cmd
from bot.core.customers import add_keys, identity_keys, new_customer
from bot.core.decide import Decider, Outcome
from bot.core.inputs import CustomerInfo, StoreEvent
from bot.core.stats import Counters, from_outcome, summarize
from bot.infra.settings import Settings
from bot.runtime.inbox import make_item
from bot.runtime.loops import decision_context
from bot.testing import DEFAULT_START, PureHarness, build_traits
from bot.types import Doc
from tests.support import split_flow

PHONE = "+5491122334455"


def test_the_same_customer_run_and_split_get_the_same_variant() -> None:
    weights = {"a": 50, "b": 50}
    first = cmd.split_variant("c_1", "promo:1", "subject", weights)
    assert all(cmd.split_variant("c_1", "promo:1", "subject", weights) == first
               for _ in range(20))
    # The order the weights are written in does not matter.
    assert cmd.split_variant("c_1", "promo:1", "subject", {"b": 50, "a": 50}) == first
    # Another run, split or customer draws again: over 200 of them both variants occur.
    assert {cmd.split_variant("c_1", f"promo:{n}", "subject", weights)
            for n in range(200)} == {"a", "b"}
    assert {cmd.split_variant("c_1", "promo:1", f"s{n}", weights) for n in range(200)} == {
        "a", "b"}


def test_variants_are_drawn_by_weight() -> None:
    weights = {"control": 70, "discount": 20, "gift": 10}
    drawn = Counter(cmd.split_variant(f"c_{n}", "promo:1", "offer", weights)
                    for n in range(10_000))
    for variant, weight in weights.items():
        # 10,000 draws: the standard deviation is at most 50, so 4 % is over 8 of them.
        assert abs(drawn[variant] - weight * 100) < 400, drawn
    assert cmd.split_variant("c_1", "promo:1", "only", {"solo": 1}) == "solo"


@pytest.mark.parametrize(("name", "weights", "message"), [
    ("", {"a": 1}, "split name must be a non-empty string"),
    ("t", {}, "'t': weights must be a non-empty dict"),
    ("t", [("a", 1)], "'t': weights must be a non-empty dict"),
    ("t", {"a": 0, "b": 1}, "'t': weight of 'a' must be a positive int, not 0"),
    ("t", {"a": -5}, "weight of 'a' must be a positive int, not -5"),
    ("t", {"a": 0.5}, "weight of 'a' must be a positive int, not 0.5"),
    ("t", {"a": True}, "weight of 'a' must be a positive int, not True"),
    ("t", {"a": "50"}, "weight of 'a' must be a positive int, not '50'"),
    ("t", {"": 1}, "variant '' must be a non-empty string"),
    ("t", {1: 1}, "variant 1 must be a non-empty string"),
])
def test_bad_weights_or_name_raise_value_error_naming_them(name: str, weights: Any,
                                                           message: str) -> None:
    recorder = cmd.Recorder(flow="f", customer="c_1", run="f:1")
    token = cmd.recording(recorder)
    try:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            cmd.split(None, name, weights)
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            cmd.split_variant("c_1", "f:1", name, weights)
    finally:
        cmd.stop_recording(token)
    assert recorder.commands == []


def test_split_records_its_variant_for_the_run() -> None:
    recorder = cmd.Recorder(flow="f", customer="c_1", run="f:1")
    token = cmd.recording(recorder)
    try:
        variant = cmd.split(None, "subject", {"a": 1, "b": 3})
    finally:
        cmd.stop_recording(token)
    assert variant == cmd.split_variant("c_1", "f:1", "subject", {"a": 1, "b": 3})
    assert recorder.commands == [cmd.Split("subject", variant)]
    with pytest.raises(RuntimeError, match="inside a rule"):
        cmd.split(None, "subject", {"a": 1})


def test_through_the_decisions_the_variant_is_the_runs_and_its_messages() -> None:
    h = PureHarness([split_flow.FLOW], channels=("sms",))
    customers = [f"cus_{n}" for n in range(24)]
    for n, name in enumerate(customers):
        h.customer(name, phone=f"+54911223344{n:02d}")
        h.event("t.split", name)
    chosen = {}
    for name in customers:
        doc = h.customer_doc(name)
        run = doc["flows"]["t_split"]
        variant = run["variant"]
        chosen[name] = variant
        assert variant == cmd.split_variant(doc["_id"], run["run"], "greeting_test",
                                            split_flow.WEIGHTS)
        assert [(e["step"], e["outcome"], e.get("variant")) for e in run["history"]] == [
            ("started", "ok", None), ("greeting_test", variant, variant),
            ("hello", "queued", None)]
        [message] = [m for m in h.messages(name) if m["direction"] == "out"]
        assert (message["text"], message["variant"]) == (split_flow.TEXTS[variant], variant)
    assert set(chosen.values()) == {"a", "b"}
    for name in customers:
        h.event("t.again", name)  # the same run splits again: the same variant
    for run in h.runs("t_split"):
        name = next(n for n in customers if h.customer_doc(n)["_id"] == run["customer"])
        assert run["variant"] == chosen[name]
        assert [e["step"] for e in run["history"]] == [
            "started", "greeting_test", "hello", "again"]  # the split's step once
        assert h.last(name).text == f"otra vez {split_flow.TEXTS[chosen[name]]}"


def _decide(decider: Decider, doc: Doc, event_type: str, n: int) -> Outcome:
    event = StoreEvent(id=f"evt_{n}", type=event_type, occurred_at=DEFAULT_START,
                       customer=CustomerInfo(id=doc["store_id"], phone=PHONE), source="test")
    item = make_item(dedupe_id=f"test:evt_{n}", kind="event", source="test",
                     keys=identity_keys(store_id=doc["store_id"], phone=PHONE),
                     payload=event.model_dump(mode="json"))
    return decider.apply_input(doc, item, DEFAULT_START)


def _stored(counters: Counters) -> tuple[list[Doc], list[Doc]]:
    """The ``$inc`` of a pass as the documents it makes: (daily ones, all-time ones)."""
    days: list[Doc] = []
    all_time: list[Doc] = []
    for _, update in counters.updates():
        doc = dict(update["$setOnInsert"])
        for path, amount in update["$inc"].items():
            *parents, leaf = path.split(".")
            node = doc
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = node.get(leaf, 0) + amount
        (days if doc["day"] else all_time).append(doc)
    return days, all_time


def test_flow_statistics_count_each_run_under_its_variant() -> None:
    settings = Settings()
    decider = Decider(decision_context(settings, build_traits(settings, ("sms",)),
                                       {split_flow.FLOW.name: split_flow.FLOW}))
    counters = Counters()
    chosen: Counter[str] = Counter()
    for n in range(12):
        doc = new_customer(identity_keys(store_id=f"cus_{n}", phone=PHONE), DEFAULT_START)
        add_keys(doc, [])
        out = _decide(decider, doc, "t.split", 2 * n)
        out.extend(_decide(decider, doc, "t.again", 2 * n + 1))
        from_outcome(counters, out.stats, out.messages, DEFAULT_START)
        chosen[out.finished_runs[0]["variant"]] += 1
    days, all_time = _stored(counters)
    figures = summarize(split_flow.FLOW, days, all_time)
    assert figures["runs"]["started"] == 12
    assert set(figures["variants"]) == set(chosen) == {"a", "b"}
    for variant, count in chosen.items():
        one = figures["variants"][variant]
        assert one["runs"]["started"] == count
        assert one["runs"]["ended"] == {"done": count}
        assert one["runs"]["active"] == 0
        steps = {row["step"]: row["reached"] for row in one["steps"]}
        assert steps == {"started": count, "greeting_test": count, "hello": count,
                         "again": count}
