"""The inbox flow (rules/inbox.py) and the routing that brings it messages (bot/core/route.py).

"Never silence": a message no running flow waits for is answered from the
FAQ, greeted or thanked, or handed to a person with the customer told when.
All on the pure harness (the runtime's own decisions, in memory); the
service end to end is in tests/rules/test_flows_e2e.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.commands import step
from bot.core import keywords
from bot.flows import Flow, m, ruleset, when_all
from bot.runtime.inbox import make_item
from bot.testing import PureHarness
from rules import cart_recovery, inbox, optout_confirmation
from rules._faq import FAQ
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
THURSDAY_NOON = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)  # 12:00 in Buenos Aires
FRIDAY_EVENING = datetime(2026, 1, 16, 22, 0, tzinfo=UTC)  # 19:00 in Buenos Aires
SATURDAY_MORNING = datetime(2026, 1, 17, 11, 0, tzinfo=UTC)  # 08:00 in Buenos Aires

# A flow that takes messages but does nothing with them: such a message is still unanswered.
LISTENER = Flow("test_inbox_listener", triggers=("listen.start",), marketing=False,
                receives_messages=True)

with ruleset(LISTENER.name):

    @when_all(m.type == "listen.start")
    def listen(c):
        step(c, "listening", "ok")


def harness(locale: str = "es", start: datetime = THURSDAY_NOON, *,
            flows: list[Flow] | None = None, **settings: object) -> PureHarness:
    """Ana on WhatsApp, with the inbox flow (and ``flows``) loaded."""
    h = PureHarness([inbox.FLOW, *(flows or [])], start=start, channels=("whatsapp",),
                    **settings)
    h.customer("cus_1", phone=PHONE, consents={"whatsapp": True}, first_name="Ana",
               locale=locale)
    return h


def texts(h: PureHarness) -> list[str | None]:
    return [sent.text for sent in h.to("cus_1")]


def conversation(h: PureHarness) -> dict[str, object]:
    return dict(h.customer_doc("cus_1")["conversations"]["whatsapp"])


def agent(h: PureHarness, action: str, by: str = "eva@shop.example") -> None:
    """An agent's action, as the agent API queues it (``Runtime.accept_agent_action``)."""
    internal = h.customer_doc("cus_1")["_id"]
    h._decide(make_item(dedupe_id=f"agent:{action}:{len(h.outbox)}", kind="agent",
                        source="agent", keys=[f"id:{internal}"],
                        payload={"action": action, "channel": "whatsapp", "agent": by,
                                 "text": None, "by": by, "template": None}))


def outcomes(h: PureHarness) -> list[str]:
    return [str(run["outcome"]) for run in h.runs(inbox.FLOW.name)]


# ------------------------------------------------------------- small talk


@pytest.mark.parametrize(("said", "locale", "answer"), [
    ("hola", "es", "¡Hola, Ana! ¿En qué podemos ayudarte?"),
    ("Buenas!!", "es", "¡Hola, Ana! ¿En qué podemos ayudarte?"),
    ("Holaaa, buenas tardes", "es", "¡Hola, Ana! ¿En qué podemos ayudarte?"),
    ("oi, tudo bem?", "pt", "Olá, Ana! Como podemos ajudar?"),
    ("hello", "en", "Hi Ana! How can we help you?"),
    ("Hi!", "en", "Hi Ana! How can we help you?"),
])
def test_a_greeting_gets_a_greeting_not_a_person(said: str, locale: str, answer: str) -> None:
    h = harness(locale)
    h.reply("cus_1", said)
    assert texts(h) == [answer]
    assert conversation(h)["status"] == "bot"
    assert outcomes(h) == ["greeting"]


@pytest.mark.parametrize(("said", "locale", "answer"), [
    ("gracias", "es", "¡Con gusto, Ana! Aquí estamos si necesitas algo más."),
    ("¡Muchas gracias, muy amable!", "es", "¡Con gusto, Ana! Aquí estamos si necesitas algo más."),
    ("hola, gracias", "es", "¡Con gusto, Ana! Aquí estamos si necesitas algo más."),
    ("ok 👍", "es", "¡Con gusto, Ana! Aquí estamos si necesitas algo más."),
    ("👍", "es", "¡Con gusto, Ana! Aquí estamos si necesitas algo más."),
    ("Obrigado!", "pt", "Disponha, Ana! Estamos aqui se precisar de mais alguma coisa."),
    ("thanks a lot", "en", "Happy to help, Ana! We are here if you need anything else."),
])
def test_thanks_get_a_polite_answer_not_a_person(said: str, locale: str, answer: str) -> None:
    h = harness(locale)
    h.reply("cus_1", said)
    assert texts(h) == [answer]
    assert conversation(h)["status"] == "bot"
    assert outcomes(h) == ["thanks"]


# ----------------------------------------------------------------------- FAQ


def test_a_question_the_faq_is_sure_of_is_answered_from_it() -> None:
    h = harness()
    h.reply("cus_1", "¿Cuánto tarda el envío a Córdoba?")
    [answer] = texts(h)
    assert answer is not None and answer.startswith(FAQ["shipping"]["answers"]["es"])
    assert answer.endswith("cuéntanos un poco más y te ayudamos.")
    assert conversation(h)["status"] == "bot"
    assert outcomes(h) == ["faq"]
    [run] = h.runs(inbox.FLOW.name)
    assert ("faq", "shipping") in [(s["step"], s["outcome"]) for s in run["history"]]


# ------------------------------------------------------------------- a person


def test_anything_else_goes_to_a_person_with_the_words_as_the_reason() -> None:
    h = harness()
    h.reply("cus_1", "hola, ¿dónde está mi pedido?")
    assert texts(h) == ["Gracias por escribirnos. Una persona te responde en breve por aquí."]
    state = conversation(h)
    assert state["status"] == "needs_agent"
    assert state["handoff_reason"] == "hola, ¿dónde está mi pedido?"
    assert outcomes(h) == ["handoff"]


WITH_SATURDAY = "Mon-Fri 09:00-18:00; Sat 10:00-13:00"


@pytest.mark.parametrize(("start", "hours", "locale", "notice"), [
    (FRIDAY_EVENING, None, "es", "Gracias por escribirnos. Ahora estamos fuera de horario: una "
                                 "persona te responde el lunes a las 09:00 por aquí."),
    (FRIDAY_EVENING, None, "pt", "Obrigado por escrever. Agora estamos fora do horário de "
                                 "atendimento: uma pessoa responde na segunda-feira às 09:00 "
                                 "por aqui."),
    (FRIDAY_EVENING, None, "en", "Thanks for writing. We are out of office hours now: a "
                                 "person will answer you here on Monday at 09:00."),
    (FRIDAY_EVENING, WITH_SATURDAY, "es", "Gracias por escribirnos. Ahora estamos fuera de "
                                          "horario: una persona te responde mañana a las 10:00 "
                                          "por aquí."),
    (SATURDAY_MORNING, WITH_SATURDAY, "en", "Thanks for writing. We are out of office hours "
                                            "now: a person will answer you here today at "
                                            "10:00."),
])
def test_outside_business_hours_the_customer_is_told_when(
        start: datetime, hours: str | None, locale: str, notice: str) -> None:
    """The default hours are Mon-Fri 09:00-18:00 in Buenos Aires."""
    h = (harness(locale, start=start) if hours is None
         else harness(locale, start=start, business_hours=hours))
    h.reply("cus_1", "Mi pedido llegó roto")
    assert texts(h) == [notice]
    assert conversation(h)["status"] == "needs_agent"


def test_business_hours_are_the_stores_timezone() -> None:
    """20:00 UTC on a Thursday: 17:00 in Buenos Aires (open), 21:00 in Madrid (closed)."""
    thursday_evening = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)
    h = harness(start=thursday_evening, store_timezone="Europe/Madrid")
    h.reply("cus_1", "Mi pedido llegó roto")
    assert texts(h) == ["Gracias por escribirnos. Ahora estamos fuera de horario: una persona "
                        "te responde mañana a las 09:00 por aquí."]


def test_a_photo_goes_to_a_person() -> None:
    h = harness()
    message = h._inbound("cus_1", "gracias", None, "whatsapp").model_copy(
        update={"kind": "media"})
    h._decide(make_item(dedupe_id="whatsapp:photo", kind="message", source="whatsapp",
                        keys=h.traits["whatsapp"].sender_keys(message),
                        payload=message.model_dump()))
    assert conversation(h)["status"] == "needs_agent"
    assert conversation(h)["handoff_reason"] == "gracias"


def test_the_person_notice_is_said_once_per_hand_off() -> None:
    h = harness()
    h.reply("cus_1", "Mi pedido llegó roto")
    h.reply("cus_1", "es el pedido 1234")
    h.reply("cus_1", "hola?")
    assert len(texts(h)) == 1
    assert conversation(h)["handoff_reason"] == "Mi pedido llegó roto"
    assert outcomes(h) == ["handoff"]
    # Released to the bot and handed off again: a new hand-off, a new notice.
    agent(h, "release")
    h.reply("cus_1", "otra consulta sobre mi factura")
    assert len(texts(h)) == 2
    assert conversation(h)["handoff_reason"] == "otra consulta sobre mi factura"


def test_a_conversation_a_person_holds_gets_no_bot_answer() -> None:
    h = harness()
    agent(h, "takeover")
    h.reply("cus_1", "hola")
    h.reply("cus_1", "¿Cuánto tarda el envío?")
    assert texts(h) == []
    assert outcomes(h) == []
    assert conversation(h)["status"] == "agent"
    agent(h, "release")  # the bot's again: it answers
    h.reply("cus_1", "hola")
    assert texts(h) == ["¡Hola, Ana! ¿En qué podemos ayudarte?"]


def test_a_new_message_reopens_a_closed_conversation() -> None:
    h = harness()
    h.reply("cus_1", "Mi pedido llegó roto")
    agent(h, "takeover")
    agent(h, "close")
    assert conversation(h)["status"] == "closed"
    h.reply("cus_1", "hola")
    assert conversation(h)["status"] == "bot"
    assert conversation(h)["handoff_reason"] is None
    assert texts(h)[-1] == "¡Hola, Ana! ¿En qué podemos ayudarte?"
    h.reply("cus_1", "me llegó otro roto")
    assert conversation(h)["status"] == "needs_agent"
    assert texts(h)[-1] == "Gracias por escribirnos. Una persona te responde en breve por aquí."


def test_keywords_are_still_the_services() -> None:
    h = harness()
    h.reply("cus_1", "AYUDA")
    assert texts(h) == [keywords.HELP_TEXT["es"]]
    assert outcomes(h) == []
    h.reply("cus_1", "ayuda con mi pedido")  # not only the keyword: a person
    assert conversation(h)["handoff_reason"] == "ayuda con mi pedido"


# ------------------------------------------------------------------- routing


def test_a_message_a_flow_waits_for_goes_to_that_flow() -> None:
    """CANCELAR asks to confirm; "gracias" is then an unclear answer to it, not small talk."""
    h = harness(flows=[optout_confirmation.FLOW])
    h.reply("cus_1", "CANCELAR")
    h.reply("cus_1", "gracias")
    assert texts(h)[-1] == ("Perdona, no te entendí. ¿Te damos de baja de los mensajes "
                            "promocionales por WhatsApp?")
    assert outcomes(h) == []
    h.reply("cus_1", "no")  # the question is answered and the run over
    h.reply("cus_1", "gracias")
    assert texts(h)[-1] == "¡Con gusto, Ana! Aquí estamos si necesitas algo más."
    assert outcomes(h) == ["thanks"]


def test_a_message_for_a_running_chat_goes_to_it() -> None:
    """The cart chat's own FAQ and hand-off answer, not the inbox."""
    h = harness(flows=[cart_recovery.FLOW])
    h.reply("cus_1", "hola")  # no chat yet: the inbox
    assert outcomes(h) == ["greeting"]
    h.event("cart.abandoned", "cus_1", checkout_id="k1", recovery_url="https://s/r",
            items=[{"title": "Zapatillas"}])
    h.reply("cus_1", "hola")
    assert outcomes(h) == ["greeting"]
    assert conversation(h)["handoff_reason"] == "cart question: hola"


def test_a_message_the_running_flows_ignore_goes_to_the_inbox() -> None:
    h = harness(flows=[LISTENER])
    h.event("listen.start", "cus_1")
    h.reply("cus_1", "hola")
    assert texts(h) == ["¡Hola, Ana! ¿En qué podemos ayudarte?"]
    assert h.active_flows("cus_1") == {LISTENER.name: "listening"}



# ------------------------------------------------------------ the real service


async def test_an_unexpected_whatsapp_message_reaches_a_person_over_http(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    """Signed webhook in; the notice at the fake provider; the hand-off in the API."""
    # Always open, so the notice does not depend on when the suite runs.
    settings = make_settings(mongo_uri, db_name, fakes, business_hours="Mon-Sun 00:00-24:00")
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now, phone=PHONE))
    await service.whatsapp(whatsapp_text_webhook("hola, ¿dónde está mi pedido?", phone=PHONE))
    await service.advance(0)
    [notice] = fakes.whatsapp.sent[PHONE.lstrip("+")]
    assert notice["text"]["body"] == (
        "Gracias por escribirnos. Una persona te responde en breve por aquí.")
    waiting = (await service.api("GET", "/api/conversations?status=needs_agent"))[
        "conversations"]
    assert [(c["customer_id"], c["channel"], c["handoff_reason"]) for c in waiting] == [
        ("cus_1", "whatsapp", "hola, ¿dónde está mi pedido?")]
    await service.whatsapp(whatsapp_text_webhook("es el pedido 1234", phone=PHONE))
    await service.advance(0)
    assert len(fakes.whatsapp.sent[PHONE.lstrip("+")]) == 1  # told once per hand-off
