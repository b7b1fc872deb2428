"""Flow discovery: every module loads at start-up, and a broken one stops it by name."""

from __future__ import annotations

import durable.lang
import pytest

from bot.core.engine import QuietHost, get_host
from bot.core.flows import FlowLoadError, load_flows
from bot.core.rulesets import RuleShapeError, m, when_all


def test_the_shipped_flows_load() -> None:
    flows = load_flows("rules")
    assert {"cart_recovery", "post_purchase_survey", "optout_confirmation", "sunset",
            "birthday"} <= set(flows)
    assert "cart.abandoned" in flows["cart_recovery"].triggers


def load_refusal(package: str) -> str:
    """The message of the FlowLoadError loading ``package`` raises."""
    with pytest.raises(FlowLoadError) as caught:
        load_flows(package)
    return str(caught.value)


def test_a_broken_flow_module_fails_with_its_name_and_line() -> None:
    message = load_refusal("tests.support.broken_rules")
    assert "tests.support.broken_rules.bad_flow" in message
    assert "bad_flow.py, line 6" in message
    assert "NameError" in message


def test_a_flow_without_its_ruleset_is_refused() -> None:
    with pytest.raises(FlowLoadError, match="defines no ruleset"):
        load_flows("tests.support.orphan_rules")


def test_the_rules_engine_runs_no_background_dispatch_threads() -> None:
    # durable_rules' stock host keeps two timer threads calling start_action;
    # they raced with the runtime's own post and once took a decision's action.
    load_flows("rules")
    host = get_host()
    assert isinstance(host, QuietHost)
    assert durable.lang.get_host() is host  # anyone else gets the same quiet host
    assert not hasattr(host, "_d_timer") and not hasattr(host, "_t_timer")


def test_a_rule_waiting_for_two_events_is_refused_at_its_line() -> None:
    # durable_rules reads when_all(a, b) as two events and keeps the first
    # partly matched; deleting such a state after the decision corrupts its
    # heap (the worker died with "free(): invalid pointer" in delete_state).
    message = load_refusal("tests.support.multi_event_rules")
    assert "tests.support.multi_event_rules.two_events" in message
    assert "two_events.py, line 9" in message
    assert "RuleShapeError" in message and "one condition on one event" in message


@pytest.mark.parametrize("conditions", [
    (),
    (durable.lang.count(2), m.type == "order.placed"),
    (durable.lang.none(m.type == "order.placed"),),
    (durable.lang.all(m.type == "a", m.type == "b"),),
])
def test_when_all_refuses_every_shape_that_waits_for_more_than_one_event(
        conditions: tuple[object, ...]) -> None:
    with pytest.raises(RuleShapeError, match="one condition on one event"):
        when_all(*conditions)


def test_tests_on_one_event_joined_with_and_make_one_condition() -> None:
    def action(c: object) -> None:
        pass

    assert when_all((m.type == "order.placed") & (m.total > 100))(action) is action
