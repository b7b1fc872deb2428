"""Sunset: ask customers who went quiet whether they still want our messages.

- **Trigger**: ``customer.sunset``, fired by the service ``SUNSET_AFTER_DAYS``
  (default 180) after the customer's last order or message. Marketing (it
  only reaches customers who still consent). A customer may enter again 30
  days after a run ends; in practice the next sunset comes 180 days after
  their next order or reply.
- **Steps**:
  1. ``keep_question``: "are you still interested in our messages?" [yes / no];
     waits 7 days.
  2. yes -> thanks, nothing changes, exit ``kept``.
  3. no -> marketing consent revoked on every channel the customer had granted
     (source ``sunset:declined``), one confirmation, exit ``declined``.
  4. anything else -> asked again once (``keep_reask``, 7 more days); a second
     unclear answer changes nothing and exits ``unclear`` (the customer wrote,
     so the service's sunset clock starts again from that reply).
- **Exits**: 7 days without an answer -> marketing paused: consent revoked on
  every granted channel (source ``sunset:no_answer``), tag
  ``marketing_paused``, no message, exit ``no_answer``. At most ``MAX_RUN``
  (15 days) in all, then ``expired`` silently, nothing changed: a safety
  net so no run outlives its purpose.
- **WhatsApp template** for the question: ``sunset_keep_subscribed``
  {{1}}=first name. START / ALTA / VOLTAR grants consent again at any time.

```mermaid
stateDiagram-v2
    [*] --> keep_question: customer.sunset
    keep_question --> sunset: yes / no / 7 days
    keep_question --> keep_reask: unclear
    keep_question --> [*]: 15 days (expired)
    keep_reask --> sunset: an answer / 7 days
    sunset --> kept: yes
    sunset --> declined: no, revoked everywhere
    sunset --> [*]: 7 days, revoked, tag marketing_paused (no_answer)
    sunset --> [*]: unclear twice (unclear)
    kept --> [*]: kept
    declined --> [*]: declined
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import (
    after,
    ask,
    customer,
    days,
    exit_flow,
    send,
    set_consent,
    step,
    tag,
    timing,
)
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import NO, YES, answer, say, template_name

TEXTS = {
    "es": {
        "keep": "Hola, {first_name}. Hace tiempo que no sabemos de ti. ¿Sigues interesado en "
                "recibir nuestros mensajes?",
        "yes": "Sí, quiero seguir",
        "no": "No, gracias",
        "reask": "Perdona, no te entendí. ¿Quieres seguir recibiendo nuestros mensajes?",
        "kept": "¡Qué bueno, {first_name}! Seguirás recibiendo nuestras novedades.",
        "declined": "Entendido, {first_name}. No te enviaremos más mensajes promocionales. "
                    "Si algún día quieres volver, responde ALTA.",
        "customer": "cliente",
    },
    "pt": {
        "keep": "Olá, {first_name}. Faz tempo que não temos notícias suas. Ainda quer "
                "receber nossas mensagens?",
        "yes": "Sim, quero continuar",
        "no": "Não, obrigado",
        "reask": "Desculpe, não entendi. Quer continuar recebendo nossas mensagens?",
        "kept": "Que bom, {first_name}! Você continuará recebendo nossas novidades.",
        "declined": "Entendido, {first_name}. Não enviaremos mais mensagens promocionais. "
                    "Se quiser voltar, responda VOLTAR.",
        "customer": "cliente",
    },
    "en": {
        "keep": "Hi {first_name}, we have not heard from you in a while. Would you still "
                "like to get our messages?",
        "yes": "Yes, keep them",
        "no": "No, thanks",
        "reask": "Sorry, I did not get that. Would you like to keep getting our messages?",
        "kept": "Great, {first_name}! You will keep getting our news.",
        "declined": "Understood, {first_name}. No more promotional messages. If you ever "
                    "want them back, reply START.",
        "customer": "there",
    },
}

FLOW = Flow(
    "sunset",
    triggers=("customer.sunset",),
    reentry_after=days(30),
    marketing=True,
    templates={"keep_question": "sunset_keep_subscribed"},
    steps={
        "keep_question": "ask",
        "keep_reask": "ask",
        "sunset": "record",
        "kept": "send",
        "declined": "send",
    },
    edges=(
        ("started", "keep_question", "customer.sunset"),
        ("keep_question", "sunset", "yes / no / 7 days"),
        ("keep_question", "keep_reask", "unclear"),
        ("keep_question", "exit:expired", "15 days"),
        ("keep_reask", "sunset", "an answer / 7 days"),
        ("sunset", "kept", "yes"),
        ("sunset", "declined", "no, revoked everywhere"),
        ("sunset", "exit:no_answer", "7 days, revoked, tag marketing_paused"),
        ("sunset", "exit:unclear", "unclear twice"),
        ("kept", "exit:kept"),
        ("declined", "exit:declined"),
    ),
    description="After long silence, ask whether to keep messaging; pause marketing if not.",
)

ANSWER_TIMEOUT = days(7)
MAX_RUN = days(15)
# The waits a store may change (flow settings file, [flows.sunset.timings]).
TIMINGS = {"answer_timeout": ANSWER_TIMEOUT, "max_run": MAX_RUN}
KEEP = {
    "yes": (*YES, "si quiero seguir", "quiero seguir", "seguir", "sim quero continuar",
            "quero continuar", "continuar", "yes keep them", "keep them", "keep"),
    "no": (*NO, "ya no", "no quiero", "nao quero", "no more"),
}


def revoke_marketing(c: Any, source: str) -> list[str]:
    """Revoke consent on every channel the customer has granted; returns those channels."""
    consents = customer(c)["consents"]
    granted = sorted(ch for ch, state in consents.items() if state == "granted")
    for channel in granted:
        set_consent(c, channel, "revoked", source)
    return granted


def choices(c: Any) -> list[tuple[str, str]]:
    return [(choice, say(c, TEXTS, choice)) for choice in KEEP]


with ruleset(FLOW.name):

    @when_all(m.type == "customer.sunset")
    def sunset(c):
        after(c, timing(c, "max_run", MAX_RUN), {"type": "sunset.expired"}, key="expire")
        ask(c, say(c, TEXTS, "keep"), name="keep", step="keep_question", choices=choices(c),
            timeout=timing(c, "answer_timeout", ANSWER_TIMEOUT),
            template=(FLOW.templates["keep_question"], [template_name(c, TEXTS)]))

    @when_all(m.type == "sunset.expired")
    def expired(c):
        exit_flow(c, "expired")

    @when_all((m.type == "message") & (m.question == "keep"))
    def keep_reply(c):
        said = answer(c, KEEP)
        if said == "yes":
            step(c, "sunset", "kept")
            send(c, say(c, TEXTS, "kept"), step="kept")
            exit_flow(c, "kept")
        elif said == "no":
            # The confirmation answers the customer, so it goes out although consent is gone.
            channels = revoke_marketing(c, "sunset:declined")
            step(c, "sunset", "declined", channels=channels)
            send(c, say(c, TEXTS, "declined"), step="declined")
            exit_flow(c, "declined")
        elif not c.s.reasked:
            c.s.reasked = True
            ask(c, say(c, TEXTS, "reask"), name="keep", step="keep_reask",
                choices=choices(c), timeout=timing(c, "answer_timeout", ANSWER_TIMEOUT))
        else:
            step(c, "sunset", "unclear", text=str(c.m.text or ""))
            exit_flow(c, "unclear")

    @when_all((m.type == "timeout") & (m.question == "keep"))
    def no_answer(c):
        channels = revoke_marketing(c, "sunset:no_answer")
        step(c, "sunset", "paused", channels=channels)
        tag(c, "marketing_paused")
        exit_flow(c, "no_answer")
