"""``Flow.replaces``: a flow that stands in for another leaves that one out when both are chosen.

The birthday series replaces the one-message birthday greeting, which is on
by default: switching the series on must not greet anyone twice.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.core.flows import Flow
from bot.infra.flow_config import select_flows, without_replaced
from bot.infra.settings import Settings


def test_a_replacing_flow_leaves_out_the_flow_it_replaces() -> None:
    simple = Flow("simple", triggers=("x",))
    fuller = Flow("fuller", triggers=("x",), replaces=("simple", "absent"))
    other = Flow("other", triggers=("y",))
    chosen = without_replaced({"simple": simple, "fuller": fuller, "other": other})
    assert chosen == {"fuller": fuller, "other": other}
    assert without_replaced({"simple": simple, "other": other}) == {"simple": simple,
                                                                    "other": other}


def test_naming_both_in_flows_keeps_the_birthday_series_only(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.infra.flow_config"):
        chosen = select_flows(Settings(flows="birthday,birthday_series,cart_recovery"))
    assert set(chosen) == {"birthday_series", "cart_recovery"}
    assert "flow 'birthday' is left out: flow 'birthday_series' replaces it" in caplog.text


def test_switching_the_series_on_in_the_file_switches_the_simple_greeting_off(
        tmp_path: Path) -> None:
    assert "birthday" in select_flows(Settings())
    path = tmp_path / "flows.toml"
    path.write_text("[flows.birthday_series]\nenabled = true\n", encoding="utf-8")
    chosen = select_flows(Settings(flows_config=str(path)))
    assert "birthday_series" in chosen
    assert "birthday" not in chosen
    assert set(chosen) == set(select_flows(Settings())) - {"birthday"} | {"birthday_series"}
