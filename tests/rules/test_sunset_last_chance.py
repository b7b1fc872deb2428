"""The sunset's last chance and goodbye (rules/sunset.py, ``SUNSET_LAST_CHANCE``).

On the pure harness (the real decisions, in memory): it delivers nothing, so
the goodbye's watch ends at its 1-day limit here; a delivery report ending
it sooner is in test_sunset_last_chance_e2e.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.infra.settings import Settings
from bot.testing import DEFAULT_START, PureHarness
from rules.sunset import FLOW, TEXTS
from tests.support.library_flows import PHONE, agent, outcomes, skipped

BOTH = {"whatsapp": True, "sms": True}
QUESTION_AT = DEFAULT_START + timedelta(days=180)


def asked(consents: dict[str, bool] | None = None, *, on: bool = True, locale: str = "es",
          start: datetime = DEFAULT_START, **settings: Any) -> PureHarness:
    """Ana, asked the sunset question after 180 quiet days; the last chance ``on``."""
    h = PureHarness([FLOW], start=start, channels=("whatsapp", "sms"),
                    sunset_last_chance=on, **settings)
    h.customer("cus_1", phone=PHONE, consents=consents or {"sms": True}, first_name="Ana",
               locale=locale)
    h.advance(days=180)
    return h


def last_chance(consents: dict[str, bool] | None = None, **kwargs: Any) -> PureHarness:
    """Ana, who let the question go unanswered for 7 days: the last chance is out."""
    h = asked(consents, **kwargs)
    h.advance(days=7)
    return h


def steps(h: PureHarness) -> list[str]:
    """The sunset steps that reached Ana (queued and due), in order."""
    sent = {s.message_id for s in h.to("cus_1")}
    return [str(m["step"]) for m in h.messages("cus_1")
            if m["_id"] in sent and m.get("flow") == FLOW.name]


def states(h: PureHarness) -> dict[str, tuple[str, str]]:
    consents = h.customer_doc("cus_1")["consents"]
    return {ch: (entry["state"], entry["source"]) for ch, entry in consents.items()}


def tags(h: PureHarness) -> list[str]:
    return list(h.customer_doc("cus_1").get("tags", []))


def test_off_by_default_the_silence_pauses_without_a_last_chance() -> None:
    assert Settings().sunset_last_chance is False
    h = asked(BOTH, on=False)
    h.advance(days=7)
    assert steps(h) == ["keep_question"]
    assert states(h)["sms"] == ("revoked", "sunset:no_answer")
    assert outcomes(h, FLOW.name) == ["no_answer"]


def test_last_chance_then_goodbye_then_marketing_paused() -> None:
    h = asked(BOTH)
    h.advance(days=7, seconds=-1)
    assert steps(h) == ["keep_question"]
    h.advance(seconds=1)
    offer = h.last("cus_1")
    # Outside WhatsApp's window (the customer never wrote): the approved template.
    assert (offer.channel, offer.template) == ("whatsapp", "sunset_last_chance")
    assert states(h)["whatsapp"][0] == "granted"
    h.advance(days=3)
    goodbye = h.last("cus_1")
    assert (goodbye.channel, goodbye.template) == ("whatsapp", "sunset_goodbye")
    assert goodbye.at == QUESTION_AT + timedelta(days=10)
    # Decided and queued while consent is still granted: the sender may send it.
    assert states(h)["whatsapp"] == ("granted", "test:customer.created")
    assert h.active_flows("cus_1") == {FLOW.name: "goodbye"}
    h.advance(days=1)  # no delivery report on this harness: the watch's limit
    assert states(h) == {"whatsapp": ("revoked", "sunset:no_answer"),
                         "sms": ("revoked", "sunset:no_answer")}
    assert "marketing_paused" in tags(h)
    assert outcomes(h, FLOW.name) == ["no_answer"]
    h.advance(days=400)
    assert steps(h) == ["keep_question", "last_chance", "goodbye"]


def test_the_texts_on_sms() -> None:
    h = last_chance(locale="en")
    assert h.last("cus_1").text == (
        "Hi Ana, this is our last message unless you tell us you want to stay: reply YES "
        "to keep getting our offers.")
    assert h.last("cus_1").choices == ["yes", "no"]
    h.advance(days=3)
    assert h.last("cus_1").text == TEXTS["en"]["goodbye"].format(first_name="Ana")


def test_yes_to_the_last_chance_keeps_everything() -> None:
    h = last_chance(locale="pt")
    h.reply("cus_1", "sim", channel="sms")
    assert h.last("cus_1").text == TEXTS["pt"]["kept"].format(first_name="Ana")
    assert states(h)["sms"][0] == "granted"
    assert outcomes(h, FLOW.name) == ["kept"]
    h.advance(days=10)
    assert steps(h) == ["keep_question", "last_chance", "kept"]
    assert "marketing_paused" not in tags(h)


def test_no_to_the_last_chance_revokes_everywhere() -> None:
    h = last_chance(BOTH)
    h.reply("cus_1", choice="no")
    assert states(h) == {"whatsapp": ("revoked", "sunset:declined"),
                         "sms": ("revoked", "sunset:declined")}
    assert h.last("cus_1").text == TEXTS["es"]["declined"].format(first_name="Ana")
    assert outcomes(h, FLOW.name) == ["declined"]
    h.advance(days=10)
    assert steps(h) == ["keep_question", "last_chance", "declined"]


def test_an_unclear_answer_to_the_last_chance_changes_nothing() -> None:
    h = last_chance()
    h.reply("cus_1", "¿quién habla?", channel="sms")
    assert outcomes(h, FLOW.name) == ["unclear"]
    h.advance(days=10)
    assert steps(h) == ["keep_question", "last_chance"]
    assert states(h)["sms"][0] == "granted"


def test_a_reask_then_silence_outlasts_the_old_fifteen_days() -> None:
    h = asked()
    h.advance(days=6)
    h.reply("cus_1", "hmm", channel="sms")  # re-asked on day 6; its 7 days end on day 13
    h.advance(days=7)
    assert steps(h)[-1] == "last_chance"
    h.advance(days=3)  # day 16: past the 15 days of the run without the last chance
    assert steps(h)[-1] == "goodbye"
    h.advance(days=1)
    assert outcomes(h, FLOW.name) == ["no_answer"]
    assert states(h)["sms"] == ("revoked", "sunset:no_answer")


def test_a_stop_during_the_wait_means_no_goodbye_on_any_channel() -> None:
    h = last_chance(BOTH)
    h.reply("cus_1", "STOP", channel="whatsapp")
    assert states(h)["whatsapp"] == ("revoked", "keyword:whatsapp")
    h.advance(days=3)
    # SMS is still granted, but the customer said stop: no goodbye there either.
    assert steps(h) == ["keep_question", "last_chance"]
    assert states(h) == {"whatsapp": ("revoked", "keyword:whatsapp"),
                         "sms": ("revoked", "sunset:no_answer")}
    assert outcomes(h, FLOW.name) == ["no_answer"]


def test_quiet_hours_hold_the_last_chance_and_the_goodbye_until_nine() -> None:
    start = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)  # 00:00 in Buenos Aires
    h = last_chance(start=start)
    assert steps(h) == ["keep_question"]
    h.advance(hours=9)
    assert steps(h) == ["keep_question", "last_chance"]
    assert h.last("cus_1").at == start + timedelta(days=187, hours=9)  # 09:00 local
    h.advance(days=3, hours=-9)
    assert steps(h) == ["keep_question", "last_chance"]
    h.advance(hours=9)
    assert h.last("cus_1").at == start + timedelta(days=190, hours=9)
    # The pause waits for the goodbye: consent is there when it is due at 09:00.
    assert states(h)["sms"][0] == "granted"
    h.advance(hours=15)
    assert states(h)["sms"] == ("revoked", "sunset:no_answer")


def test_an_order_during_the_wait_ends_the_run_silently() -> None:
    h = last_chance()
    h.event("order.placed", "cus_1", order_id="o-1")
    assert outcomes(h, FLOW.name) == ["ordered"]
    h.advance(days=10)
    assert steps(h) == ["keep_question", "last_chance"]
    assert states(h)["sms"][0] == "granted"


def test_an_order_after_the_goodbye_keeps_consent_and_clears_the_tag() -> None:
    h = last_chance()
    h.advance(days=3)
    assert "marketing_paused" in tags(h)
    h.event("order.placed", "cus_1", order_id="o-1")
    h.advance(days=2)
    assert outcomes(h, FLOW.name) == ["ordered"]
    assert states(h)["sms"][0] == "granted"
    assert "marketing_paused" not in tags(h)


def test_alta_after_the_goodbye_keeps_consent() -> None:
    h = last_chance()
    h.advance(days=3)
    h.reply("cus_1", "ALTA", channel="sms")
    h.advance(days=1)
    assert outcomes(h, FLOW.name) == ["came_back"]
    assert states(h)["sms"] == ("granted", "test:customer.created")
    assert "marketing_paused" not in tags(h)


def test_an_agent_holding_the_conversation_holds_the_goodbye_and_pauses_at_once() -> None:
    h = last_chance(agent_idle_release=30 * 86400)
    agent(h, "cus_1", "takeover")
    h.advance(days=3)
    assert skipped(h, "cus_1") == [("goodbye", "an agent has the conversation")]
    # Skipped when decided: its fate is known at once, so marketing is paused then.
    assert states(h)["sms"] == ("revoked", "sunset:no_answer")
    assert outcomes(h, FLOW.name) == ["no_answer"]
