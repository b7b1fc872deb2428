"""The flow settings file (FLOWS_CONFIG, bot/infra/flow_config.py).

Read and checked at start-up against the package's flows, with every
problem named by file, table and key; its switches choose the flows, its
texts reach ``say``, its timings ``timing``, its windows the policy (the
decisions run on the pure harness here; over HTTP in
tests/rules/test_flow_settings_e2e.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from bot.infra.flow_config import NO_CONFIG, FlowConfigError, load_flow_config, select_flows
from bot.infra.settings import Settings
from bot.testing import PureHarness
from rules.cart_recovery import FLOW, TEXTS

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+5491122334455"
URL = "https://tienda.example/cart/recover/k1"
CART: dict[str, Any] = {"checkout_id": "k1", "recovery_url": URL, "total": 25000, "currency": "ARS",
        "items": [{"sku": "Z-1", "title": "Zapatillas Runner", "quantity": 1, "price": 25000}]}
SWITCHES = "tests.support.switch_rules"

GOOD = """
[send_window]
not_between = [["2026-12-24", "2026-12-26"]]

[flows.cart_recovery]
enabled = true

[flows.cart_recovery.texts.es]
interested = "¡{first_name}! ¿Te ayudamos con {cart}?"

[flows.cart_recovery.timings]
ask_timeout = "12h"
max_run = 86400

[flows.cart_recovery.send_window]
at = "10:00"
days = "Mon-Fri"

[flows.cart_recovery.steps.reminder.send_window]
days = ["Sat", "Sun"]
at = false

[flows.sunset]
enabled = false
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "flows.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_good_file_becomes_switches_texts_timings_and_windows(tmp_path: Path) -> None:
    config = load_flow_config(Settings(flows_config=write(tmp_path, GOOD)))
    assert config.enabled == {"cart_recovery": True, "sunset": False}
    assert config.overrides.text("cart_recovery", "es", "interested") == (
        "¡{first_name}! ¿Te ayudamos con {cart}?")
    assert config.overrides.text("cart_recovery", "en", "interested") is None
    assert config.overrides.timings == {"cart_recovery": {"ask_timeout": 43200.0,
                                                          "max_run": 86400.0}}
    christmas = ((date(2026, 12, 24), date(2026, 12, 26)),)
    assert config.windows.store == {"not_between": christmas}
    assert config.windows.flows == {"cart_recovery": {"at": time(10, 0),
                                                      "days": frozenset(range(5))}}
    assert config.windows.steps == {("cart_recovery", "reminder"): {
        "days": frozenset({5, 6}), "at": None}}


def test_the_readmes_example_is_a_good_file(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Flow settings file\n", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_flow_config(Settings(flows_config=write(tmp_path, example)))
    assert config.enabled == {"welcome": True, "post_purchase_survey": False}
    assert config.overrides.timing("cart_recovery", "ask_timeout") == 12 * 3600
    assert config.windows.steps[("cart_recovery", "reminder")] == {"at": time(10, 0)}


def test_without_a_file_nothing_changes() -> None:
    assert load_flow_config(Settings()) is NO_CONFIG


BAD = [
    ("unknown flow", "[flows.cart_recovry]\nenabled = true",
     "[flows.cart_recovry]: no flow 'cart_recovry' in rules (its flows: "),
    ("unknown locale", '[flows.cart_recovery.texts.fr]\ninterested = "Salut"',
     "[flows.cart_recovery.texts.fr]: flow 'cart_recovery' has no 'fr' texts "
     "(its locales: en, es, pt)"),
    ("unknown text", '[flows.cart_recovery.texts.es]\ninteresado = "Hola"',
     "[flows.cart_recovery.texts.es] interesado: not a text of flow 'cart_recovery' "
     "(its texts: and_more, anything_else,"),
    ("unknown placeholder", '[flows.cart_recovery.texts.es]\ninterested = "Hola {nombre}"',
     "[flows.cart_recovery.texts.es] interested: uses {nombre}, which this text does not "
     "fill in (it fills in {cart}, {first_name})"),
    ("a brace left open", '[flows.cart_recovery.texts.es]\ninterested = "Hola {first_name"',
     "[flows.cart_recovery.texts.es] interested: expected '}' before end of string"),
    ("text not in quotes", "[flows.cart_recovery.texts.es]\ninterested = 3",
     "[flows.cart_recovery.texts.es] interested: must be text in quotes, not 3"),
    ("bad time", '[flows.cart_recovery.send_window]\nat = "25:00"',
     "[flows.cart_recovery.send_window] at: '25:00' is not a time of day like 10:00"),
    ("bad day", '[flows.birthday.send_window]\ndays = "Mon-Fry"',
     "[flows.birthday.send_window] days: 'Mon-Fry': 'fry' is not a day (Mon, Tue, ... Sun)"),
    ("bad date", '[send_window]\nnot_between = [["2026-12-24", "2026-13-01"]]',
     "[send_window] not_between: '2026-13-01' is not a date like 2026-12-24"),
    ("reversed dates", '[send_window]\nnot_between = [["2026-12-26", "2026-12-24"]]',
     "[send_window] not_between: 2026-12-26..2026-12-24 ends before it starts"),
    ("bad quiet hours", '[send_window]\nquiet_hours = "21-9"',
     "[send_window] quiet_hours: '21-9' is not a time range like 21:00-09:00"),
    ("bad timing", '[flows.cart_recovery.timings]\nask_timeout = "2 days"',
     "[flows.cart_recovery.timings] ask_timeout: '2 days' is not a duration like \"2d\""),
    ("negative timing", "[flows.cart_recovery.timings]\nask_timeout = -5",
     "[flows.cart_recovery.timings] ask_timeout: -5 must be between 0 and 5 years"),
    ("unknown timing", '[flows.cart_recovery.timings]\nask_timeot = "2h"',
     "[flows.cart_recovery.timings] ask_timeot: not a timing of flow 'cart_recovery' "
     "(its timings: ask_timeout, last_chance_after, listen_after_last_chance, "
     "listen_after_link, listen_after_reminder, max_run, testimonial_after)"),
    ("unknown step", '[flows.cart_recovery.steps.remind.send_window]\nat = "10:00"',
     "[flows.cart_recovery.steps.remind]: not a step of flow 'cart_recovery' (its steps: "),
    ("unknown key", "[flows.cart_recovery]\nenable = false",
     "[flows.cart_recovery] enable: unknown key (the keys here are: enabled, texts, "
     "timings, send_window, steps)"),
    ("unknown window key", '[flows.cart_recovery.send_window]\nhour = "10:00"',
     "[flows.cart_recovery.send_window] hour: unknown key (the keys here are: at, days, "
     "not_between, quiet_hours)"),
    ("unknown table", "[flow.cart_recovery]\nenabled = true",
     "(top level) flow: unknown key (the keys here are: flows, send_window)"),
    ("enabled not a boolean", '[flows.cart_recovery]\nenabled = "yes"',
     "[flows.cart_recovery] enabled: must be true or false, not 'yes'"),
    ("not TOML", "[flows.cart_recovery\nenabled = true", "not valid TOML: "),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])
def test_a_bad_file_names_the_file_the_table_and_the_key(tmp_path: Path, text: str,
                                                         expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FlowConfigError) as caught:
        load_flow_config(Settings(flows_config=path))
    message = str(caught.value)
    assert message.startswith(f"invalid flow settings file {path} (FLOWS_CONFIG):\n  ")
    assert expected in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[flows.nope]\n[flows.sunset.timings]\nforever = "1d"\n'
                           '[flows.sunset.texts.es]\nkeep = "{x}"\n')
    with pytest.raises(FlowConfigError) as caught:
        load_flow_config(Settings(flows_config=path))
    assert [line.split(":")[0] for line in caught.value.problems] == [
        "[flows.nope]", "[flows.sunset.texts.es] keep", "[flows.sunset.timings] forever"]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.toml")
    with pytest.raises(FlowConfigError) as caught:
        load_flow_config(Settings(flows_config=path))
    assert caught.value.problems == ["cannot read it: No such file or directory"]


def test_a_flow_without_texts_has_none_to_change(tmp_path: Path) -> None:
    path = write(tmp_path, '[flows.t_optional.texts.es]\noptional = "x"\n')
    with pytest.raises(FlowConfigError) as caught:
        load_flow_config(Settings(flows_package=SWITCHES, flows_config=path))
    assert caught.value.problems == [
        "[flows.t_optional.texts.es]: flow 't_optional' has no texts to change (no TEXTS)"]


# ------------------------------------------------------------------ switches


def test_the_file_switches_flows_on_and_off(tmp_path: Path) -> None:
    assert set(select_flows(Settings(flows_package=SWITCHES))) == {"t_standard"}
    path = write(tmp_path, "[flows.t_standard]\nenabled = false\n"
                           "[flows.t_optional]\nenabled = true\n")
    assert set(select_flows(Settings(flows_package=SWITCHES, flows_config=path))) == {
        "t_optional"}


def test_flows_named_in_the_flows_setting_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[flows.t_standard]\nenabled = false\n")
    chosen = select_flows(Settings(flows_package=SWITCHES, flows="standard", flows_config=path))
    assert set(chosen) == {"t_standard"}


def test_the_server_does_not_start_with_a_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[flows.cart_recovery.timings]\nask_timeout = "soon"\n')
    env = {**os.environ, "FLOWS_CONFIG": path, "PORT": "0"}
    done = subprocess.run([sys.executable, "server.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"invalid flow settings file {path} (FLOWS_CONFIG):\n"
        "  [flows.cart_recovery.timings] ask_timeout: 'soon' is not a duration like \"2d\", "
        "\"36h\", \"1d 12h\", \"30m\" or a number of seconds")


# ------------------------------------------------- texts and timings in flows


def cart(tmp_path: Path, config: str, locale: str = "es") -> PureHarness:
    """Ana, whose cart was just abandoned, under the flow settings file ``config``."""
    h = PureHarness([FLOW], channels=("sms",), flows_config=write(tmp_path, config))
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana", locale=locale)
    h.event("cart.abandoned", "cus_1", **CART)
    return h


def test_say_uses_the_stores_text_for_the_running_flow(tmp_path: Path) -> None:
    config = ('[flows.cart_recovery.texts.es]\n'
              'interested = "{first_name}, ¿te ayudamos con {cart}?"\n'
              'reminder = "Tu código: {code}"\n')
    h = cart(tmp_path, config)
    assert h.last("cus_1").text == "Ana, ¿te ayudamos con Zapatillas Runner?"
    h.advance(hours=24)
    assert h.last("cus_1").text == f"Tu código: {h.codes[0]['_id']}"


def test_a_locale_the_store_did_not_change_keeps_the_flows_text(tmp_path: Path) -> None:
    h = cart(tmp_path, '[flows.cart_recovery.texts.es]\ninterested = "Hola"\n', locale="en")
    assert h.last("cus_1").text == TEXTS["en"]["interested"].format(
        first_name="Ana", cart="Zapatillas Runner")


def test_timing_gives_the_stores_wait(tmp_path: Path) -> None:
    h = cart(tmp_path, '[flows.cart_recovery.timings]\nask_timeout = "2h"\n')
    h.advance(hours=2)
    [question, reminder] = h.to("cus_1")
    assert reminder.at - question.at == (datetime(2026, 1, 1, 2, tzinfo=UTC)
                                         - datetime(2026, 1, 1, tzinfo=UTC))
    assert h.codes[0]["_id"] in str(reminder.text)


def test_a_steps_window_holds_only_that_step(tmp_path: Path) -> None:
    """The question goes at once (Thursday 12:00 in Buenos Aires); the reminder, due on
    Friday at noon, waits for the step's window: Monday 10:00."""
    h = cart(tmp_path, '[flows.cart_recovery.steps.reminder.send_window]\n'
                       'at = "10:00"\ndays = "Mon-Fri"\n')
    h.advance(days=5)
    [question, reminder] = h.to("cus_1")
    assert question.at == datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
    assert reminder.at == datetime(2026, 1, 19, 13, 0, tzinfo=UTC)


def test_double_opt_in_without_its_flow_is_refused_at_start_up() -> None:
    from bot.infra.flow_config import FlowSelectionError, select_flows
    from bot.infra.settings import Settings

    with pytest.raises(FlowSelectionError, match="DOUBLE_OPT_IN=sms needs the double_opt_in"):
        select_flows(Settings(double_opt_in="sms", flows="cart_recovery"))
    assert "double_opt_in" in select_flows(
        Settings(double_opt_in="sms", flows="cart_recovery,double_opt_in"))
