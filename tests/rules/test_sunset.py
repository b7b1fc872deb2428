"""The sunset flow (rules/sunset.py), fired by the service's own sunset trigger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.testing import DEFAULT_START, FlowHarness
from rules.sunset import FLOW, TEXTS

PHONE = "+5491122334455"
ALL = {"whatsapp": True, "sms": True, "telegram": False}


async def ana(h: FlowHarness, consents: dict[str, bool] | None = None,
              locale: str = "es") -> None:
    await h.customer("cus_1", phone=PHONE, consents=consents or {"sms": True},
                     first_name="Ana", locale=locale)


async def states(h: FlowHarness) -> dict[str, tuple[str, str]]:
    doc = await h.customer_doc("cus_1")
    return {ch: (entry["state"], entry["source"]) for ch, entry in doc["consents"].items()}


async def outcome(h: FlowHarness) -> str:
    return (await h.customer_doc("cus_1"))["flow_history"][FLOW.name]["last_outcome"]


async def test_asked_after_180_quiet_days(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.advance(days=180, seconds=-1)
        assert h.to("cus_1") == []
        await h.advance(seconds=1)
        question = h.last("cus_1")
        assert question.text == (
            "Hola, Ana. Hace tiempo que no sabemos de ti. ¿Sigues interesado en recibir "
            "nuestros mensajes?")
        assert question.choices == ["yes", "no"]
        assert question.at == DEFAULT_START + timedelta(days=180)


async def test_a_reply_pushes_the_sunset_back(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h)
        await h.advance(days=100)
        await h.reply("cus_1", "hola, ¿tienen ofertas?")
        await h.advance(days=100)
        assert h.to("cus_1") == []
        await h.advance(days=80)
        assert h.last("cus_1").at == DEFAULT_START + timedelta(days=280)


async def test_whatsapp_question_uses_the_template(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await ana(h, {"whatsapp": True})
        await h.advance(days=180)
        assert h.last("cus_1").template == "sunset_keep_subscribed"


async def test_yes_keeps_everything(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h, locale="pt")
        await h.advance(days=180)
        await h.reply("cus_1", "1")  # "1) Sim, quero continuar" on SMS
        assert h.last("cus_1").text == "Que bom, Ana! Você continuará recebendo nossas novidades."
        assert (await states(h))["sms"][0] == "granted"
        assert await outcome(h) == "kept"
        assert "marketing_paused" not in (await h.customer_doc("cus_1"))["tags"]


async def test_no_revokes_marketing_on_every_granted_channel(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp", "sms")) as h:
        await ana(h, ALL)
        await h.advance(days=180)
        await h.reply("cus_1", choice="no")
        assert await states(h) == {"whatsapp": ("revoked", "sunset:declined"),
                                   "sms": ("revoked", "sunset:declined"),
                                   "telegram": ("revoked", "test:customer.created")}
        confirmation = h.last("cus_1")
        assert confirmation.channel == "whatsapp"
        assert confirmation.text == TEXTS["es"]["declined"].format(first_name="Ana")
        assert await outcome(h) == "declined"
        await h.advance(days=400)
        assert len(h.to("cus_1")) == 2


async def test_no_answer_pauses_marketing_silently(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp", "sms")) as h:
        await ana(h, ALL)
        await h.advance(days=180)
        await h.advance(days=7, seconds=-1)
        assert (await states(h))["whatsapp"] == ("granted", "test:customer.created")
        await h.advance(seconds=1)
        assert await states(h) == {"whatsapp": ("revoked", "sunset:no_answer"),
                                   "sms": ("revoked", "sunset:no_answer"),
                                   "telegram": ("revoked", "test:customer.created")}
        doc: dict[str, Any] = await h.customer_doc("cus_1")
        assert "marketing_paused" in doc["tags"]
        assert await outcome(h) == "no_answer"
        await h.advance(days=400)
        assert len(h.to("cus_1")) == 1


async def test_unclear_is_asked_again_once(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("sms",)) as h:
        await ana(h, locale="en")
        await h.advance(days=180)
        await h.reply("cus_1", "who is this?")
        assert h.last("cus_1").text == TEXTS["en"]["reask"]
        await h.reply("cus_1", "hmm")
        assert len(h.to("cus_1")) == 2
        assert (await states(h))["sms"][0] == "granted"
        assert await outcome(h) == "unclear"
