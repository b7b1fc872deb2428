"""The opt-out confirmation flow (rules/optout_confirmation.py) with the service's keywords.

It asks about the ambiguous words (CANCELAR, PARAR, CANCEL...); explicit ones
(STOP, BAJA, SAIR...) apply at once (tests/bot/test_optout_phrases.py).

The answers run on the pure harness (the real decisions, in memory); the
whole round trip with the ledger and ALTA runs on the real runtime.
"""

from __future__ import annotations

from typing import Any

from bot.core import keywords
from bot.testing import FlowHarness, PureHarness
from rules.optout_confirmation import FLOW, TEXTS

PHONE = "+5491122334455"
CONSENTS = {"whatsapp": True, "sms": True}


def pure(locale: str = "es", channel: str = "whatsapp") -> PureHarness:
    h = PureHarness([FLOW], channels=(channel,))
    h.customer("cus_1", phone=PHONE, consents=CONSENTS, first_name="Ana", locale=locale)
    return h


def state(h: PureHarness, channel: str = "whatsapp") -> str:
    return str(h.customer_doc("cus_1")["consents"][channel]["state"])


def outcome(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["flow_history"][FLOW.name]["last_outcome"])


async def test_cancelar_is_confirmed_then_revoked_and_alta_opts_back_in(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await h.customer("cus_1", phone=PHONE, consents=CONSENTS, first_name="Ana")

        async def consent(channel: str) -> dict[str, Any]:
            return dict((await h.customer_doc("cus_1"))["consents"][channel])

        await h.reply("cus_1", "CANCELAR")
        question = h.last("cus_1")
        assert question.channel == "whatsapp" and question.template is None
        assert question.text == (
            "¿Confirmas que no quieres recibir más mensajes promocionales por WhatsApp?")
        assert question.choices == ["yes", "no"]
        assert (await consent("whatsapp"))["state"] == "granted"
        await h.reply("cus_1", choice="yes")
        answered_at = h.clock.now()
        await h.advance(seconds=10)  # a second message to one person may wait its turn
        assert h.last("cus_1").text == (
            "Listo, Ana: no te enviaremos más mensajes promocionales por WhatsApp. "
            "Si cambias de opinión, responde ALTA.")
        revoked = await consent("whatsapp")
        assert (revoked["state"], revoked["source"], revoked["at"]) == (
            "revoked", "optout_confirmation:whatsapp", answered_at)
        assert (await consent("sms"))["state"] == "granted"  # only the channel asked about
        await h.reply("cus_1", "ALTA")
        assert (await consent("whatsapp"))["state"] == "granted"
        assert (await consent("whatsapp"))["source"] == "keyword:whatsapp"
        assert h.last("cus_1").text == keywords.STARTED_TEXT["es"]
        ledger = [(e["state"], e["source"]) for e in
                  (await h.customer_doc("cus_1"))["consent_ledger"] if e["channel"] == "whatsapp"]
        assert ledger[-2:] == [("revoked", "optout_confirmation:whatsapp"),
                               ("granted", "keyword:whatsapp")]


def test_yes_revokes_only_the_channel_asked_about() -> None:
    h = pure()
    h.reply("cus_1", "cancelar")
    h.reply("cus_1", choice="yes")
    assert (state(h), state(h, "sms")) == ("revoked", "granted")
    assert h.customer_doc("cus_1")["consents"]["whatsapp"]["source"] == (
        "optout_confirmation:whatsapp")
    assert outcome(h) == "revoked"


def test_no_keeps_the_customer_subscribed() -> None:
    h = pure(locale="pt")
    h.reply("cus_1", "parar")
    assert h.last("cus_1").text == TEXTS["pt"]["confirm"].format(channel="WhatsApp")
    h.reply("cus_1", choice="no")
    assert h.last("cus_1").text == TEXTS["pt"]["kept"]
    assert state(h) == "granted"
    assert outcome(h) == "kept"


def test_a_typed_yes_counts() -> None:
    h = pure(locale="en")
    h.reply("cus_1", "CANCEL")
    h.reply("cus_1", "Yes please")
    assert state(h) == "revoked"
    assert h.last("cus_1").text == TEXTS["en"]["revoked"].format(first_name="Ana",
                                                                channel="WhatsApp")


def test_a_stop_again_while_asked_is_a_yes() -> None:
    h = pure()
    h.reply("cus_1", "parar")
    h.reply("cus_1", "Parar!")
    assert state(h) == "revoked"
    assert len(h.to("cus_1")) == 2


def test_unclear_twice_changes_nothing() -> None:
    h = pure()
    h.reply("cus_1", "cancelar")
    h.reply("cus_1", "¿de qué?")
    assert h.last("cus_1").text == TEXTS["es"]["reask"].format(channel="WhatsApp")
    assert h.last("cus_1").choices == ["yes", "no"]
    h.reply("cus_1", "mmm")
    assert h.last("cus_1").text == TEXTS["es"]["kept"]
    assert state(h) == "granted"
    assert outcome(h) == "kept"


def test_no_answer_changes_nothing_and_a_new_stop_asks_again() -> None:
    h = pure()
    h.reply("cus_1", "CANCELAR")
    h.advance(hours=24)
    assert len(h.to("cus_1")) == 1
    assert state(h) == "granted"
    assert outcome(h) == "no_answer"
    h.reply("cus_1", "CANCELAR")  # re-entry at once
    assert len(h.to("cus_1")) == 2
    assert h.last("cus_1").choices == ["yes", "no"]


def test_sms_stop_applies_at_once_without_the_flow() -> None:
    h = pure(channel="sms")
    h.reply("cus_1", "cancelar")  # ambiguous, yet at once on SMS
    assert state(h, "sms") == "revoked"
    assert h.customer_doc("cus_1")["consents"]["sms"]["source"] == "keyword:sms"
    assert [s.text for s in h.to("cus_1")] == [keywords.STOPPED_TEXT["es"]]
    assert FLOW.name not in h.customer_doc("cus_1").get("flow_history", {})
