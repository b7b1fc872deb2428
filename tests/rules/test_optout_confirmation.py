"""The opt-out confirmation flow (rules/optout_confirmation.py) with the service's keywords."""

from __future__ import annotations

from typing import Any

from bot.core import keywords
from bot.testing import FlowHarness
from rules.optout_confirmation import FLOW, TEXTS

PHONE = "+5491122334455"


async def ana(h: FlowHarness, locale: str = "es") -> None:
    await h.customer("cus_1", phone=PHONE, consents={"whatsapp": True, "sms": True},
                     first_name="Ana", locale=locale)


async def consent(h: FlowHarness, channel: str) -> dict[str, Any]:
    return (await h.customer_doc("cus_1"))["consents"][channel]


async def outcome(h: FlowHarness) -> str:
    return (await h.customer_doc("cus_1"))["flow_history"][FLOW.name]["last_outcome"]


async def test_stop_is_confirmed_then_revoked_and_alta_opts_back_in(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h)
        await h.reply("cus_1", "BAJA")
        question = h.last("cus_1")
        assert question.channel == "whatsapp" and question.template is None
        assert question.text == (
            "¿Confirmas que no quieres recibir más mensajes promocionales por WhatsApp?")
        assert question.choices == ["yes", "no"]
        assert (await consent(h, "whatsapp"))["state"] == "granted"
        await h.reply("cus_1", choice="yes")
        assert h.last("cus_1").text == (
            "Listo, Ana: no te enviaremos más mensajes promocionales por WhatsApp. "
            "Si cambias de opinión, responde ALTA.")
        assert await consent(h, "whatsapp") == {
            "state": "revoked", "source": "optout_confirmation:whatsapp", "at": h.clock.now()}
        assert (await consent(h, "sms"))["state"] == "granted"  # only the channel asked about
        assert await outcome(h) == "revoked"
        await h.reply("cus_1", "ALTA")
        assert (await consent(h, "whatsapp"))["state"] == "granted"
        assert (await consent(h, "whatsapp"))["source"] == "keyword:whatsapp"
        assert h.last("cus_1").text == keywords.STARTED_TEXT["es"]
        ledger = [(e["state"], e["source"]) for e in
                  (await h.customer_doc("cus_1"))["consent_ledger"] if e["channel"] == "whatsapp"]
        assert ledger[-2:] == [("revoked", "optout_confirmation:whatsapp"),
                               ("granted", "keyword:whatsapp")]


async def test_no_keeps_the_customer_subscribed(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, locale="pt")
        await h.reply("cus_1", "sair")
        assert h.last("cus_1").text.startswith("Você confirma")
        await h.reply("cus_1", choice="no")
        assert h.last("cus_1").text == TEXTS["pt"]["kept"]
        assert (await consent(h, "whatsapp"))["state"] == "granted"
        assert await outcome(h) == "kept"


async def test_a_typed_yes_counts(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, locale="en")
        await h.reply("cus_1", "STOP")
        await h.reply("cus_1", "Yes please")
        assert (await consent(h, "whatsapp"))["state"] == "revoked"
        assert h.last("cus_1").text.startswith("Done, Ana: no more promotional messages")


async def test_stop_again_while_asked_is_a_yes(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h)
        await h.reply("cus_1", "stop")
        await h.reply("cus_1", "STOP!")
        assert (await consent(h, "whatsapp"))["state"] == "revoked"
        assert len(h.to("cus_1")) == 2


async def test_unclear_twice_changes_nothing(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h)
        await h.reply("cus_1", "baja")
        await h.reply("cus_1", "¿de qué?")
        assert h.last("cus_1").text == TEXTS["es"]["reask"].format(channel="WhatsApp")
        assert h.last("cus_1").choices == ["yes", "no"]
        await h.reply("cus_1", "mmm")
        assert h.last("cus_1").text == TEXTS["es"]["kept"]
        assert (await consent(h, "whatsapp"))["state"] == "granted"
        assert await outcome(h) == "kept"


async def test_no_answer_changes_nothing_and_a_new_stop_asks_again(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h)
        await h.reply("cus_1", "BAJA")
        await h.advance(hours=24)
        assert len(h.to("cus_1")) == 1
        assert (await consent(h, "whatsapp"))["state"] == "granted"
        assert await outcome(h) == "no_answer"
        await h.reply("cus_1", "BAJA")  # re-entry at once
        assert len(h.to("cus_1")) == 2
        assert h.last("cus_1").choices == ["yes", "no"]


async def test_sms_stop_applies_at_once_without_the_flow(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.reply("cus_1", "BAJA")
        assert (await consent(h, "sms"))["state"] == "revoked"
        assert (await consent(h, "sms"))["source"] == "keyword:sms"
        assert [s.text for s in h.to("cus_1")] == [keywords.STOPPED_TEXT["es"]]
        assert FLOW.name not in (await h.customer_doc("cus_1")).get("flow_history", {})
