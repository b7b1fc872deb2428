"""The birthday series (rules/birthday_series.py), off by default; it replaces ``birthday``.

Branches, exits, consent and quiet hours on the pure harness; an agent's
hold on the real runtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core import flow_graph
from bot.core.flows import load_flows
from bot.testing import FlowHarness, PureHarness
from rules import birthday_series
from rules.birthday_series import FLOW, TEXTS

PHONE = "+5491122334455"
START = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)  # 09:00 in Buenos Aires, the default zone
NOTICE_AT = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 10:00 local, 7 days before 10 March
BIRTHDAY_AT = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 10:00 local on the day
REMINDER_AT = BIRTHDAY_AT + timedelta(days=3)


def pure(channel: str = "sms", consent: bool = True, start: datetime = START,
         locale: str = "es", birthday: str = "1990-03-10", **settings: object) -> PureHarness:
    h = PureHarness([FLOW], start=start, channels=(channel,), **settings)
    h.customer("cus_1", phone=PHONE, consents={channel: consent}, first_name="Ana",
               locale=locale, birthday=birthday)
    return h


def until(h: PureHarness, moment: datetime) -> None:
    h.advance((moment - h.clock.now()).total_seconds())


def code(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["attrs"]["code_birthday"])


def texts(h: PureHarness) -> list[str | None]:
    return [sent.text for sent in h.to("cus_1")]


def outcome(h: PureHarness) -> str:
    [run] = h.runs(FLOW.name)
    return str(run["outcome"])


def test_declared_steps_and_the_docstring_diagram_match_the_rules() -> None:
    source = Path(str(birthday_series.__file__)).read_text(encoding="utf-8")
    assert flow_graph.problems(FLOW) == []
    assert flow_graph.undeclared(FLOW, source, "birthday_series.py") == []
    assert re.findall(r"```mermaid\n.*?```", birthday_series.__doc__ or "", flags=re.S) == [
        FLOW.mermaid()]


def test_off_unless_the_store_names_it_and_it_replaces_the_simple_greeting() -> None:
    assert "birthday_series" not in load_flows("rules")
    assert list(load_flows("rules", ["birthday_series"])) == ["birthday_series"]
    assert FLOW.replaces == ("birthday",)


def test_a_notice_seven_days_before_at_ten_local_without_a_code() -> None:
    h = pure()
    until(h, NOTICE_AT - timedelta(seconds=1))
    assert h.to("cus_1") == []
    h.advance(seconds=1)
    [notice] = h.to("cus_1")
    assert notice.at == NOTICE_AT  # 10:00 local: inside the hours, not held
    assert notice.text == TEXTS["es"]["notice"].format(first_name="Ana")
    assert h.codes == []  # the gift comes on the day
    assert h.active_flows("cus_1") == {FLOW.name: "notice"}


def test_the_greeting_on_the_day_then_thanks_for_an_order() -> None:
    h = pure()
    until(h, BIRTHDAY_AT)
    assert texts(h)[-1] == TEXTS["es"]["greeting"].format(first_name="Ana", code=code(h))
    assert h.to("cus_1")[-1].at == BIRTHDAY_AT
    h.advance(days=1)
    h.event("order.placed", "cus_1", order_id="o-1", total="9000", currency="ARS")
    assert texts(h)[-1] == TEXTS["es"]["thanks"].format(first_name="Ana")
    assert outcome(h) == "purchased"
    h.advance(days=10)
    assert len(h.to("cus_1")) == 3  # notice, greeting, thanks: no reminder


def test_without_an_order_the_code_again_after_three_days() -> None:
    h = pure(locale="en")
    until(h, REMINDER_AT - timedelta(seconds=1))
    assert len(h.to("cus_1")) == 2
    h.advance(seconds=1)
    reminder = h.last("cus_1")
    assert (reminder.at, reminder.text) == (
        REMINDER_AT, TEXTS["en"]["reminder"].format(first_name="Ana", code=code(h)))
    assert outcome(h) == "reminded"
    assert len(h.codes) == 1  # the same code, issued once


def test_an_order_between_the_notice_and_the_day_still_gets_the_greeting() -> None:
    h = pure()
    until(h, NOTICE_AT + timedelta(days=2))
    h.event("order.placed", "cus_1", order_id="o-1", total="9000", currency="ARS")
    assert h.active_flows("cus_1") == {FLOW.name: "notice"}
    until(h, REMINDER_AT)
    assert texts(h) == [TEXTS["es"]["notice"].format(first_name="Ana"),
                        TEXTS["es"]["greeting"].format(first_name="Ana", code=code(h)),
                        TEXTS["es"]["reminder"].format(first_name="Ana", code=code(h))]
    assert outcome(h) == "reminded"


def test_a_birthday_closer_than_the_notice_starts_on_the_day() -> None:
    h = pure(start=datetime(2026, 3, 6, 12, 0, tzinfo=UTC))  # four days before
    until(h, BIRTHDAY_AT)
    [greeting] = h.to("cus_1")
    assert greeting.text == TEXTS["es"]["greeting"].format(first_name="Ana", code=code(h))
    assert h.active_flows("cus_1") == {FLOW.name: "greeting"}
    until(h, REMINDER_AT)
    assert outcome(h) == "reminded"
    [notice] = [w for w in h.customer_doc("cus_1")["waits"] if w["id"] == "birthday_soon"]
    assert notice["due"] == datetime(2027, 3, 3, 13, 0, tzinfo=UTC)  # next year's


def test_once_a_year() -> None:
    h = pure()
    until(h, datetime(2027, 3, 20, tzinfo=UTC))
    assert len(h.runs(FLOW.name)) == 2
    assert [s.at for s in h.to("cus_1")][3:5] == [NOTICE_AT + timedelta(days=365),
                                                  BIRTHDAY_AT + timedelta(days=365)]


def test_an_opt_out_after_the_notice_means_no_gift_messages() -> None:
    h = pure()
    until(h, NOTICE_AT)
    h.reply("cus_1", "BAJA")
    sent = len(h.to("cus_1"))  # the notice and the opt-out's confirmation
    until(h, REMINDER_AT + timedelta(days=1))
    assert len(h.to("cus_1")) == sent
    assert outcome(h) == "opted_out"
    assert h.codes == []


def test_no_marketing_consent_no_messages() -> None:
    h = pure(consent=False)
    until(h, REMINDER_AT + timedelta(days=1))
    assert h.to("cus_1") == []
    assert h.active_flows("cus_1") == {}


def test_quiet_hours_hold_the_thanks_and_a_late_reminder_until_nine() -> None:
    h = pure()
    until(h, BIRTHDAY_AT + timedelta(hours=13))  # 23:00 local on the birthday
    h.event("order.placed", "cus_1", order_id="o-1", total="9000", currency="ARS")
    h.advance(hours=12)
    thanks = h.last("cus_1")
    assert thanks.text == TEXTS["es"]["thanks"].format(first_name="Ana")
    assert thanks.at == BIRTHDAY_AT + timedelta(hours=23)  # 09:00 local the next day
    h = pure(birthday_reminder_days=3.5)  # 22:00 local: quiet
    until(h, REMINDER_AT + timedelta(days=1))
    assert h.last("cus_1").at == REMINDER_AT + timedelta(hours=23)


def test_the_notice_days_are_a_setting_and_whatsapp_gets_the_templates() -> None:
    h = pure(channel="whatsapp", birthday_notice_days=3)
    until(h, REMINDER_AT)
    outs = [m for m in h.messages("cus_1") if m["direction"] == "out"]
    assert [(m["due_at"], m["template"]) for m in outs] == [
        (BIRTHDAY_AT - timedelta(days=3),
         {"name": "birthday_notice", "language": "es", "params": ["Ana"]}),
        (BIRTHDAY_AT, {"name": "birthday_greeting", "language": "es",
                       "params": ["Ana", code(h)]}),
        (REMINDER_AT, {"name": "birthday_reminder", "language": "es",
                       "params": ["Ana", code(h)]}),
    ]


def test_a_birthday_that_moved_after_the_notice_ends_the_run_quietly() -> None:
    h = pure()
    until(h, NOTICE_AT)
    h.event("customer.updated", "cus_1", _customer={"birthday": "1990-08-20"})
    until(h, NOTICE_AT + timedelta(days=13))
    assert len(h.to("cus_1")) == 1
    assert outcome(h) == "expired"


# ------------------------------------------------------------- the real runtime


async def test_an_agent_holds_the_greeting_and_the_series_goes_on(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], start=BIRTHDAY_AT - timedelta(days=1),
                           channels=("sms",), agent_idle_release=40 * 86400) as h:
        await h.customer("cus_1", phone=PHONE, consents={"sms": True}, first_name="Ana",
                         birthday="1990-03-10")
        internal = (await h.customer_doc("cus_1"))["_id"]
        await h.runtime.agent_action(internal, "sms", "takeover", agent="eva@shop.example")
        await h.runtime.drain()
        await h.advance(days=5)
        assert h.to("cus_1") == []
        held = {m["step"]: m for m in await h.messages("cus_1") if m.get("step")}
        assert set(held) == {"greeting", "reminder"}
        assert all(m["status"] == "skipped" and m["error"].startswith("an agent has")
                   for m in held.values())
        [run] = await h.database.flow_runs.find({"flow": FLOW.name}).to_list(None)
        assert run["outcome"] == "reminded"
