"""Flow discovery: every module loads at start-up, and a broken one stops it by name."""

from __future__ import annotations

import pytest

from bot.flows import FlowLoadError, load_flows


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
