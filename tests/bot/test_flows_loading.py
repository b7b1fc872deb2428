"""Flow discovery: every module loads at start-up, and a broken one stops it by name."""

from __future__ import annotations

import durable.lang
import pytest

from bot.core.engine import QuietHost, get_host
from bot.core.flows import FlowLoadError, load_flows


def test_the_shipped_flows_load() -> None:
    flows = load_flows("rules")
    assert {"cart_recovery", "post_purchase_survey", "optout_confirmation", "sunset",
            "birthday"} <= set(flows)
    assert "cart.abandoned" in flows["cart_recovery"].triggers


def test_a_broken_flow_module_fails_with_its_name_and_line() -> None:
    with pytest.raises(FlowLoadError) as caught:
        load_flows("tests.support.broken_rules")
    message = str(caught.value)
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
