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
- **Last chance and goodbye** (``SUNSET_LAST_CHANCE``, off by default, so a
  store that does not ask for them sends exactly the above): instead of
  pausing at once when the question (or its re-ask) goes unanswered,
  1. ``last_chance``: "this is our last message unless you tell us you want
     to stay" [yes / no], waits ``last_chance_timeout`` (3 days); yes and no
     end as above; an unclear answer exits ``unclear`` with nothing changed,
     as a second unclear answer does (the customer wrote: they are not
     quiet, and the service's sunset clock starts again from that reply);
  2. no answer -> ``goodbye``: "we will stop writing; reply ALTA any time to
     come back", a marketing message decided while consent is still
     granted, so the policy holds it in quiet hours and skips it without
     consent like any other. Consent is revoked only once the goodbye has
     left: the flow watches it (``watch``) and pauses marketing as above
     (exit ``no_answer``) when it is delivered, when it fails or is skipped,
     or ``pause_after_goodbye`` (1 day) after it was decided, whichever
     comes first. Revoking in the same decision would have made the sender
     skip the goodbye (it checks consent again at send time); calling it
     transactional would have sent it in quiet hours and after a STOP.
     The tag ``marketing_paused`` is set with the goodbye, so a START
     before the pause (which clears the tag) keeps consent: exit
     ``came_back``.
  A customer who opted out anywhere during the run (a STOP) gets neither
  message: marketing is paused at once, as without the setting. An order
  during the run exits ``ordered`` silently (a buying customer is not
  sunset; without the setting the run goes on, as it always has).
  ``MAX_RUN`` grows to cover the longest run: two answer timeouts, the last
  chance, the goodbye's wait and a day (19 days with the defaults).
- **WhatsApp templates**: ``sunset_keep_subscribed`` (question),
  ``sunset_last_chance``, ``sunset_goodbye``; {{1}}=first name. START /
  ALTA / VOLTAR grants consent again at any time.

```mermaid
stateDiagram-v2
    [*] --> keep_question: customer.sunset
    keep_question --> sunset: yes / no / 7 days
    keep_question --> keep_reask: unclear
    keep_question --> last_chance: 7 days, SUNSET_LAST_CHANCE
    keep_question --> [*]: 15 days, 19 with the last chance (expired)
    keep_question --> [*]: an order, SUNSET_LAST_CHANCE (ordered)
    keep_reask --> sunset: an answer / 7 days
    keep_reask --> last_chance: 7 days, SUNSET_LAST_CHANCE
    last_chance --> sunset: an answer
    last_chance --> goodbye: 3 days
    goodbye --> sunset: delivered / failed / 1 day
    sunset --> kept: yes
    sunset --> declined: no, revoked everywhere
    sunset --> [*]: no answer, revoked, tag marketing_paused (no_answer)
    sunset --> [*]: unclear twice, or to the last chance (unclear)
    sunset --> [*]: START after the goodbye (came_back)
    kept --> [*]: kept
    declined --> [*]: declined
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import (
    after,
    ask,
    config,
    customer,
    days,
    exit_flow,
    send,
    set_consent,
    step,
    tag,
    timing,
    untag,
    watch,
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
        "last_chance": "Hola, {first_name}. Este es nuestro último mensaje, salvo que nos "
                       "digas que quieres seguir: responde SÍ para seguir recibiendo nuestras "
                       "ofertas.",
        "goodbye": "Hola, {first_name}. Como no tuvimos respuesta, dejaremos de escribirte. "
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
        "last_chance": "Olá, {first_name}. Esta é nossa última mensagem, a menos que você "
                       "diga que quer continuar: responda SIM para continuar recebendo "
                       "nossas ofertas.",
        "goodbye": "Olá, {first_name}. Como não tivemos resposta, vamos parar de escrever. "
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
        "last_chance": "Hi {first_name}, this is our last message unless you tell us you "
                       "want to stay: reply YES to keep getting our offers.",
        "goodbye": "Hi {first_name}, as we have not heard back, we will stop writing. Reply "
                   "START any time to come back.",
        "customer": "there",
    },
}

FLOW = Flow(
    "sunset",
    triggers=("customer.sunset",),
    reentry_after=days(30),
    marketing=True,
    templates={"keep_question": "sunset_keep_subscribed",
               "last_chance": "sunset_last_chance", "goodbye": "sunset_goodbye"},
    steps={
        "keep_question": "ask",
        "keep_reask": "ask",
        "last_chance": "ask",
        "goodbye": "send",
        "sunset": "record",
        "kept": "send",
        "declined": "send",
    },
    edges=(
        ("started", "keep_question", "customer.sunset"),
        ("keep_question", "sunset", "yes / no / 7 days"),
        ("keep_question", "keep_reask", "unclear"),
        ("keep_question", "last_chance", "7 days, SUNSET_LAST_CHANCE"),
        ("keep_question", "exit:expired", "15 days, 19 with the last chance"),
        ("keep_question", "exit:ordered", "an order, SUNSET_LAST_CHANCE"),
        ("keep_reask", "sunset", "an answer / 7 days"),
        ("keep_reask", "last_chance", "7 days, SUNSET_LAST_CHANCE"),
        ("last_chance", "sunset", "an answer"),
        ("last_chance", "goodbye", "3 days"),
        ("goodbye", "sunset", "delivered / failed / 1 day"),
        ("sunset", "kept", "yes"),
        ("sunset", "declined", "no, revoked everywhere"),
        ("sunset", "exit:no_answer", "no answer, revoked, tag marketing_paused"),
        ("sunset", "exit:unclear", "unclear twice, or to the last chance"),
        ("sunset", "exit:came_back", "START after the goodbye"),
        ("kept", "exit:kept"),
        ("declined", "exit:declined"),
    ),
    description="After long silence, ask whether to keep messaging; pause marketing if not.",
)

ANSWER_TIMEOUT = days(7)
MAX_RUN = days(15)
LAST_CHANCE_TIMEOUT = days(3)
# At most this long from the goodbye to the pause, when no delivery report comes first.
PAUSE_AFTER_GOODBYE = days(1)
MARGIN = days(1)
# The waits a store may change (flow settings file, [flows.sunset.timings]).
TIMINGS = {"answer_timeout": ANSWER_TIMEOUT, "max_run": MAX_RUN,
           "last_chance_timeout": LAST_CHANCE_TIMEOUT,
           "pause_after_goodbye": PAUSE_AFTER_GOODBYE}
KEEP = {
    "yes": (*YES, "si quiero seguir", "quiero seguir", "seguir", "sim quero continuar",
            "quero continuar", "continuar", "yes keep them", "keep them", "keep"),
    "no": (*NO, "ya no", "no quiero", "nao quero", "no more"),
}
PAUSED = "marketing_paused"


def last_chance_on(c: Any) -> bool:
    """Whether the store asked for the last chance and the goodbye (``SUNSET_LAST_CHANCE``)."""
    return bool(config(c, "sunset_last_chance", False))


def max_run(c: Any) -> float:
    """The safety net's wait: the store's ``max_run``, else one that outlasts the longest run.

    Without the last chance that is ``MAX_RUN`` (15 days), as it always was.
    With it, a run may take two answer timeouts (question and re-ask), the
    last chance and the goodbye's wait: the net must not end it before the
    pause, so it is their sum plus a day (19 days with the shipped waits).
    """
    if not last_chance_on(c):
        return timing(c, "max_run", MAX_RUN)
    longest = (2 * timing(c, "answer_timeout", ANSWER_TIMEOUT)
               + timing(c, "last_chance_timeout", LAST_CHANCE_TIMEOUT)
               + timing(c, "pause_after_goodbye", PAUSE_AFTER_GOODBYE) + MARGIN)
    return timing(c, "max_run", longest)


def granted(c: Any) -> list[str]:
    consents = customer(c)["consents"]
    return sorted(ch for ch, state in consents.items() if state == "granted")


def revoke_marketing(c: Any, source: str) -> list[str]:
    """Revoke consent on every channel the customer has granted; returns those channels."""
    channels = granted(c)
    for channel in channels:
        set_consent(c, channel, "revoked", source)
    return channels


def opted_out(c: Any) -> bool:
    """Whether a channel granted when the run started is no longer (a STOP or other opt-out).

    Such a customer gets no last chance and no goodbye on another channel:
    they told us to stop, so marketing is paused without a word.
    """
    now = set(granted(c))
    return any(channel not in now for channel in c.s.granted or [])


def pause(c: Any) -> None:
    """Marketing paused: every granted channel revoked, tagged, exit ``no_answer``."""
    channels = revoke_marketing(c, "sunset:no_answer")
    step(c, "sunset", "paused", channels=channels)
    tag(c, PAUSED)
    exit_flow(c, "no_answer")


def settle(c: Any, said: str) -> None:
    """A clear yes or no to the question, its re-ask or the last chance."""
    if said == "yes":
        step(c, "sunset", "kept")
        send(c, say(c, TEXTS, "kept"), step="kept")
        exit_flow(c, "kept")
    else:
        # The confirmation answers the customer, so it goes out although consent is gone.
        channels = revoke_marketing(c, "sunset:declined")
        step(c, "sunset", "declined", channels=channels)
        send(c, say(c, TEXTS, "declined"), step="declined")
        exit_flow(c, "declined")


def choices(c: Any) -> list[tuple[str, str]]:
    return [(choice, say(c, TEXTS, choice)) for choice in KEEP]


with ruleset(FLOW.name):

    @when_all(m.type == "customer.sunset")
    def sunset(c):
        c.s.granted = granted(c)
        after(c, max_run(c), {"type": "sunset.expired"}, key="expire")
        ask(c, say(c, TEXTS, "keep"), name="keep", step="keep_question", choices=choices(c),
            timeout=timing(c, "answer_timeout", ANSWER_TIMEOUT),
            template=(FLOW.templates["keep_question"], [template_name(c, TEXTS)]))

    @when_all(m.type == "sunset.expired")
    def expired(c):
        exit_flow(c, "expired")

    @when_all((m.type == "message") & (m.question == "keep"))
    def keep_reply(c):
        said = answer(c, KEEP)
        if said is not None:
            settle(c, said)
        elif not c.s.reasked:
            c.s.reasked = True
            ask(c, say(c, TEXTS, "reask"), name="keep", step="keep_reask",
                choices=choices(c), timeout=timing(c, "answer_timeout", ANSWER_TIMEOUT))
        else:
            step(c, "sunset", "unclear", text=str(c.m.text or ""))
            exit_flow(c, "unclear")

    @when_all((m.type == "timeout") & (m.question == "keep"))
    def no_answer(c):
        if not last_chance_on(c) or opted_out(c):
            pause(c)
            return
        ask(c, say(c, TEXTS, "last_chance"), name="last_chance", step="last_chance",
            choices=choices(c),
            timeout=timing(c, "last_chance_timeout", LAST_CHANCE_TIMEOUT),
            template=(FLOW.templates["last_chance"], [template_name(c, TEXTS)]))

    @when_all((m.type == "message") & (m.question == "last_chance"))
    def last_chance_reply(c):
        said = answer(c, KEEP)
        if said is not None:
            settle(c, said)
        else:  # they wrote, so they are not quiet: nothing changes, no third question
            step(c, "sunset", "unclear", text=str(c.m.text or ""))
            exit_flow(c, "unclear")

    @when_all((m.type == "timeout") & (m.question == "last_chance"))
    def goodbye(c):
        if opted_out(c):
            pause(c)
            return
        # Decided while consent is granted; revoked once it has left (below).
        c.s.goodbye = True
        tag(c, PAUSED)
        send(c, say(c, TEXTS, "goodbye"), step="goodbye",
             template=(FLOW.templates["goodbye"], [template_name(c, TEXTS)]))
        watch(c, "goodbye", until="delivered",
              timeout=timing(c, "pause_after_goodbye", PAUSE_AFTER_GOODBYE))

    @when_all((m.step == "goodbye") & ((m.type == "message.delivered")
                                       | (m.type == "message.failed")
                                       | (m.type == "message.timeout")))
    def gone(c):
        if PAUSED not in customer(c)["tags"]:  # START / ALTA since the goodbye cleared it
            step(c, "sunset", "came_back")
            exit_flow(c, "came_back")
        else:
            pause(c)

    @when_all(m.type == "order.placed")
    def ordered(c):
        if last_chance_on(c):
            if c.s.goodbye:
                untag(c, PAUSED)
            exit_flow(c, "ordered")
