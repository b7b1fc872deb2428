"""The sunset flow (rules/sunset.py), fired by the service's own sunset trigger.

The answers run on the pure harness (the real decisions, in memory); the
trigger after 180 quiet days and the WhatsApp template run on the real runtime.
"""

from __future__ import annotations

from datetime import timedelta

from bot.testing import DEFAULT_START, FlowHarness, PureHarness
from rules.sunset import FLOW, TEXTS
from tests.support.flows import first_message_after

PHONE = "+5491122334455"
ALL = {"whatsapp": True, "sms": True, "telegram": False}


def asked(consents: dict[str, bool] | None = None, locale: str = "es") -> PureHarness:
    """Ana, asked the sunset question after 180 quiet days."""
    h = PureHarness([FLOW], channels=("whatsapp", "sms"))
    h.customer("cus_1", phone=PHONE, consents=consents or {"sms": True}, first_name="Ana",
               locale=locale)
    h.advance(days=180)
    return h


def states(h: PureHarness) -> dict[str, tuple[str, str]]:
    consents = h.customer_doc("cus_1")["consents"]
    return {ch: (entry["state"], entry["source"]) for ch, entry in consents.items()}


def outcome(h: PureHarness) -> str:
    return str(h.customer_doc("cus_1")["flow_history"][FLOW.name]["last_outcome"])


# ------------------------------------------------------------- the real runtime


async def test_asked_after_180_quiet_days(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FLOW], channels=("whatsapp",)) as h:
        await h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana")
        question = await first_message_after(h, "cus_1", timedelta(days=180))
        assert question.template == "sunset_keep_subscribed"


# -------------------------------------------------------- the pure decisions


def test_the_question() -> None:
    h = asked()
    question = h.last("cus_1")
    assert question.text == (
        "Hola, Ana. Hace tiempo que no sabemos de ti. ¿Sigues interesado en recibir "
        "nuestros mensajes?")
    assert question.choices == ["yes", "no"]
    assert question.at == DEFAULT_START + timedelta(days=180)


def test_a_reply_pushes_the_sunset_back() -> None:
    h = PureHarness([FLOW], channels=("sms",))
    h.customer("cus_1", phone=PHONE, consents={"sms": True})
    h.advance(days=100)
    h.reply("cus_1", "hola, ¿tienen ofertas?")
    h.advance(days=100)
    assert h.to("cus_1") == []
    h.advance(days=80)
    assert h.last("cus_1").at == DEFAULT_START + timedelta(days=280)


def test_yes_keeps_everything() -> None:
    h = asked(locale="pt")
    h.reply("cus_1", "1", channel="sms")  # "1) Sim, quero continuar" on SMS
    assert h.last("cus_1").text == "Que bom, Ana! Você continuará recebendo nossas novidades."
    assert states(h)["sms"][0] == "granted"
    assert outcome(h) == "kept"
    assert "marketing_paused" not in h.customer_doc("cus_1")["tags"]


def test_no_revokes_marketing_on_every_granted_channel() -> None:
    h = asked(ALL)
    h.reply("cus_1", choice="no")
    assert states(h) == {"whatsapp": ("revoked", "sunset:declined"),
                         "sms": ("revoked", "sunset:declined"),
                         "telegram": ("revoked", "test:customer.created")}
    confirmation = h.last("cus_1")
    assert confirmation.channel == "whatsapp"
    assert confirmation.text == TEXTS["es"]["declined"].format(first_name="Ana")
    assert outcome(h) == "declined"
    h.advance(days=400)
    assert len(h.to("cus_1")) == 2


def test_no_answer_pauses_marketing_silently() -> None:
    h = asked(ALL)
    h.advance(days=7, seconds=-1)
    assert states(h)["whatsapp"] == ("granted", "test:customer.created")
    h.advance(seconds=1)
    assert states(h) == {"whatsapp": ("revoked", "sunset:no_answer"),
                         "sms": ("revoked", "sunset:no_answer"),
                         "telegram": ("revoked", "test:customer.created")}
    assert "marketing_paused" in h.customer_doc("cus_1")["tags"]
    assert outcome(h) == "no_answer"
    h.advance(days=400)
    assert len(h.to("cus_1")) == 1


def test_unclear_is_asked_again_once() -> None:
    h = asked(locale="en")
    h.reply("cus_1", "who is this?", channel="sms")
    assert h.last("cus_1").text == TEXTS["en"]["reask"]
    h.reply("cus_1", "hmm", channel="sms")
    assert len(h.to("cus_1")) == 2
    assert states(h)["sms"][0] == "granted"
    assert outcome(h) == "unclear"
