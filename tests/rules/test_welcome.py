"""The welcome series (rules/welcome.py), off by default.

Branches, texts and timings on the pure harness; the codes collection and
an agent's hold (the sender's re-check) on the real runtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core import flow_graph
from bot.core.flows import load_flows
from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules import welcome
from rules.welcome import FLOW, TEXTS

PHONE = "+5491122334455"


def pure(channel: str = "sms", locale: str = "es", consent: bool = True,
         start: datetime = DEFAULT_START, **settings: object) -> PureHarness:
    """Ana signs up (``customer.created``), consenting on ``channel`` unless told otherwise."""
    h = PureHarness([FLOW], start=start, channels=(channel,), **settings)
    h.customer("cus_1", phone=PHONE, consents={channel: consent}, first_name="Ana",
               locale=locale)
    return h


def series(h: PureHarness) -> list[tuple[str, datetime]]:
    """(step, when due) of the flow's queued messages, in order."""
    return [(m["step"], m["due_at"]) for m in h.messages("cus_1")
            if m["flow"] == FLOW.name and m["status"] == "queued"]


def code(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["attrs"]["code_welcome"])


def outcome(h: PureHarness) -> str:
    [run] = h.runs(FLOW.name)
    return str(run["outcome"])


def test_declared_steps_and_the_docstring_diagram_match_the_rules() -> None:
    source = Path(str(welcome.__file__)).read_text(encoding="utf-8")
    assert flow_graph.problems(FLOW) == []
    assert flow_graph.undeclared(FLOW, source, "welcome.py") == []
    assert re.findall(r"```mermaid\n.*?```", welcome.__doc__ or "", flags=re.S) == [
        FLOW.mermaid()]


def test_off_unless_the_store_names_it() -> None:
    assert "welcome" not in load_flows("rules")
    assert list(load_flows("rules", ["welcome"])) == ["welcome"]


def test_the_whole_series_in_order_then_it_ends() -> None:
    h = pure()
    first = h.last("cus_1")
    assert first.text == TEXTS["es"]["welcome"].format(first_name="Ana", code=code(h))
    assert code(h).startswith("VUELVE-")
    h.advance(days=8)
    day = timedelta(days=1)
    assert series(h) == [("welcome", DEFAULT_START), ("education", DEFAULT_START + day),
                         ("reminder", DEFAULT_START + 2 * day),
                         ("testimonial", DEFAULT_START + 4 * day),
                         ("last_reminder", DEFAULT_START + 7 * day)]
    texts = [sent.text or "" for sent in h.to("cus_1")]
    assert code(h) in texts[2] and code(h) in texts[4]
    assert texts[3].startswith("«Llegó rápido")
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "completed"
    assert [c["purpose"] for c in h.codes] == ["welcome"]
    h.advance(days=30)
    assert len(h.to("cus_1")) == 5


def test_the_first_order_ends_the_series_silently() -> None:
    h = pure()
    h.advance(days=1, hours=1)
    h.event("order.placed", "cus_1", order_id="o-1", total="9000", currency="ARS")
    assert h.active_flows("cus_1") == {}
    assert outcome(h) == "purchased"
    h.advance(days=10)
    assert [step for step, _ in series(h)] == ["welcome", "education"]


def test_a_customer_who_already_ordered_gets_no_welcome() -> None:
    """Stores may deliver the first order before the sign-up."""
    h = PureHarness([FLOW], channels=("sms",))
    h.event("order.placed", "cus_1", _customer={"phone": PHONE, "consents": {"sms": True}},
            order_id="o-1")
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
    h.advance(days=10)
    assert h.to("cus_1") == []
    assert outcome(h) == "already_customer"


def test_an_opt_out_ends_the_series_at_its_next_step() -> None:
    h = pure()
    h.reply("cus_1", "STOP")  # SMS: revoked at once, with one confirmation
    h.advance(days=10)
    assert [step for step, _ in series(h)] == ["welcome"]
    assert outcome(h) == "opted_out"


def test_no_consent_no_welcome() -> None:
    """Pending (double opt-in) or refused: nothing until consent is granted."""
    h = pure(consent=False)
    h.advance(days=10)
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


def test_quiet_hours_hold_the_welcome_until_nine() -> None:
    night = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)  # 01:00 in Buenos Aires
    h = pure(start=night)
    assert h.to("cus_1") == []
    h.advance(hours=8)
    assert h.last("cus_1").at == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 09:00 local


def test_a_sign_up_delivered_twice_starts_one_series() -> None:
    h = pure()
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
    assert len(h.to("cus_1")) == 1
    assert len(h.codes) == 1


def test_timings_are_settings() -> None:
    h = pure(welcome_reminder_days=3, welcome_education_days=0.25)
    h.advance(days=3)
    steps = {step: due - DEFAULT_START for step, due in series(h)}
    assert steps == {"welcome": timedelta(0), "education": timedelta(hours=6),
                     "reminder": timedelta(days=3)}


def test_the_flow_settings_file_changes_texts_and_timings(tmp_path: Path) -> None:
    config = tmp_path / "flows.toml"
    config.write_text('[flows.welcome.timings]\nreminder_after = "3d"\n'
                      '[flows.welcome.texts.es]\nwelcome = "Bienvenida, {first_name}: {code}"\n',
                      encoding="utf-8")
    h = pure(flows_config=str(config), welcome_reminder_days=5)  # the file wins
    assert h.last("cus_1").text == f"Bienvenida, Ana: {code(h)}"
    h.advance(days=3)
    assert series(h)[-1] == ("reminder", DEFAULT_START + timedelta(days=3))


def test_whatsapp_templates_carry_the_name_and_the_code() -> None:
    h = pure(channel="whatsapp")
    h.advance(days=7)
    out = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert [m["template"]["name"] for m in out] == [
        "welcome_code", "welcome_education", "welcome_code_reminder", "welcome_testimonial",
        "welcome_code_last_reminder"]
    assert out[0]["template"]["params"] == ["Ana", code(h)]
    assert out[1]["template"]["params"] == ["Ana"]
    assert out[4]["template"]["params"] == ["Ana", code(h)]


def test_portuguese_and_english() -> None:
    h = pure(locale="pt")
    assert h.last("cus_1").text == TEXTS["pt"]["welcome"].format(first_name="Ana", code=code(h))
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True}, locale="en")
    assert h.last("cus_1").text == f"Hi! Welcome aboard 🎉 Your first order gets a discount " \
                                   f"with the code {code(h)}."


# ------------------------------------------------------------- the real runtime


async def test_an_agent_holds_the_series_while_they_have_the_conversation(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",),
                           agent_idle_release=3 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana")
        [issued] = await h.database.codes.find({"purpose": "welcome"}).to_list(None)
        assert issued["_id"] in (h.last("cus_1").text or "")
        internal = (await h.customer_doc("cus_1"))["_id"]
        await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(days=1)
        assert len(h.to("cus_1")) == 1  # the tip was not sent
        [tip] = [m for m in await h.messages("cus_1") if m.get("step") == "education"]
        assert tip["status"] == "skipped" and tip["error"].startswith("an agent has")
        await h.runtime.agent_action(internal, "sms", "release", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(days=1)
        reminder = h.last("cus_1")
        assert reminder.text == TEXTS["es"]["reminder"].format(first_name="Ana",
                                                               code=issued["_id"])
        assert await h.active_flows("cus_1") == {FLOW.name: "reminder"}
