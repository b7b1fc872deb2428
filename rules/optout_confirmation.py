"""Opt-out confirmation: an ambiguous stop on WhatsApp or Telegram is confirmed first.

- **Trigger**: ``optout.requested`` (carries ``channel``), posted by the service
  when a customer's whole message is an ambiguous stop word, one that could
  be about an order (CANCELAR / PARAR / CANCEL / NO MÁS / ..., see
  ``bot/core/optout_phrases.py``), on WhatsApp or Telegram. Explicit ones
  (STOP / BAJA / SAIR / "no me escriban más" / "wrong number" / ...) never
  come here: the service applies them at once, as it does every stop on SMS
  (carriers require it). Transactional (the customer asked), so no consent
  is needed; a customer may enter again at once.
- **Steps**:
  1. ``confirm_question``: "no more promotional messages on <channel>?"
     [yes / no], on the channel the STOP came from; waits 24 h.
  2. yes (or a stop again, of either kind) -> consent revoked on that channel
     (``set_consent(channel, "revoked", "optout_confirmation:<channel>")``),
     one confirmation saying how to come back (ALTA/VOLTAR/START), exit
     ``revoked``.
  3. no -> "ok, you stay subscribed", nothing changes, exit ``kept``.
  4. anything else -> asked again once (``confirm_reask``); then treated as
     no (exit ``kept``). An ambiguous stop on another channel meanwhile
     replaces the question with one about that channel.
- **Exits**: 24 h without an answer -> nothing changes, no message, exit
  ``no_answer``. At most ``MAX_RUN`` (3 days) in all, then ``expired``
  silently: a safety net so no run outlives its purpose.
- Coming back: START / ALTA / VOLTAR grants consent again; the service
  handles that keyword itself.

```mermaid
stateDiagram-v2
    [*] --> confirm_question: optout.requested
    confirm_question --> confirm_question: STOP on another channel
    confirm_question --> revoked: yes / STOP again
    confirm_question --> confirm: no
    confirm_question --> confirm_reask: unclear
    confirm_question --> [*]: 24 h (no_answer)
    confirm_question --> [*]: 3 days (expired)
    confirm_reask --> revoked: yes
    confirm_reask --> confirm: no / unclear
    confirm_reask --> [*]: 24 h (no_answer)
    confirm --> kept
    kept --> [*]: kept
    revoked --> [*]: revoked
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import after, ask, days, exit_flow, hours, send, set_consent, step, timing
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import NO, YES, answer, say

TEXTS = {
    "es": {
        "confirm": "¿Confirmas que no quieres recibir más mensajes promocionales por "
                   "{channel}?",
        "yes": "Sí, darme de baja",
        "no": "No, seguir",
        "reask": "Perdona, no te entendí. ¿Te damos de baja de los mensajes promocionales "
                 "por {channel}?",
        "revoked": "Listo, {first_name}: no te enviaremos más mensajes promocionales por "
                   "{channel}. Si cambias de opinión, responde ALTA.",
        "kept": "¡Perfecto! Seguirás recibiendo nuestras novedades.",
    },
    "pt": {
        "confirm": "Você confirma que não quer mais receber mensagens promocionais pelo "
                   "{channel}?",
        "yes": "Sim, sair",
        "no": "Não, continuar",
        "reask": "Desculpe, não entendi. Quer sair das mensagens promocionais pelo "
                 "{channel}?",
        "revoked": "Pronto, {first_name}: não enviaremos mais mensagens promocionais pelo "
                   "{channel}. Se mudar de ideia, responda VOLTAR.",
        "kept": "Perfeito! Você continuará recebendo nossas novidades.",
    },
    "en": {
        "confirm": "Do you confirm you want no more promotional messages on {channel}?",
        "yes": "Yes, opt me out",
        "no": "No, keep them",
        "reask": "Sorry, I did not get that. Shall we stop promotional messages on "
                 "{channel}?",
        "revoked": "Done, {first_name}: no more promotional messages on {channel}. If you "
                   "change your mind, reply START.",
        "kept": "Great! You will keep getting our news.",
    },
}

FLOW = Flow(
    "optout_confirmation",
    triggers=("optout.requested",),
    reentry_after=0,
    marketing=False,
    steps={
        "confirm_question": "ask",
        "confirm_reask": "ask",
        "confirm": "record",
        "revoked": "send",
        "kept": "send",
    },
    edges=(
        ("started", "confirm_question", "optout.requested"),
        ("confirm_question", "confirm_question", "STOP on another channel"),
        ("confirm_question", "revoked", "yes / STOP again"),
        ("confirm_question", "confirm", "no"),
        ("confirm_question", "confirm_reask", "unclear"),
        ("confirm_question", "exit:no_answer", "24 h"),
        ("confirm_question", "exit:expired", "3 days"),
        ("confirm_reask", "revoked", "yes"),
        ("confirm_reask", "confirm", "no / unclear"),
        ("confirm_reask", "exit:no_answer", "24 h"),
        ("confirm", "kept"),
        ("kept", "exit:kept"),
        ("revoked", "exit:revoked"),
    ),
    description="Confirm an ambiguous WhatsApp/Telegram stop before revoking consent.",
)

CONFIRM_TIMEOUT = hours(24)
MAX_RUN = days(3)
# The waits a store may change (flow settings file, [flows.optout_confirmation.timings]).
TIMINGS = {"confirm_timeout": CONFIRM_TIMEOUT, "max_run": MAX_RUN}
CHANNEL_NAMES = {"whatsapp": "WhatsApp", "telegram": "Telegram", "sms": "SMS", "email": "e-mail"}
CONFIRM = {
    "yes": (*YES, "si darme de baja", "darme de baja", "dar de baja", "sim sair",
            "yes opt me out", "opt me out"),
    "no": (*NO, "no seguir", "seguir", "nao continuar", "continuar", "no keep them",
           "keep them", "keep"),
}


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def revoke(c: Any) -> None:
    """Yes: revoke consent on the channel asked about, confirm once, end."""
    channel = str(c.s.channel)
    set_consent(c, channel, "revoked", f"optout_confirmation:{channel}")
    send(c, say(c, TEXTS, "revoked", channel=channel_name(channel)), step="revoked")
    exit_flow(c, "revoked")


with ruleset(FLOW.name):

    @when_all(m.type == "optout.requested")
    def optout_requested(c):
        if c.s.channel == c.m.channel:
            revoke(c)  # a second stop while we ask: that is a yes
            return
        if not c.s.channel:
            after(c, timing(c, "max_run", MAX_RUN), {"type": "optout.expired"}, key="expire")
        c.s.channel = str(c.m.channel)
        ask(c, say(c, TEXTS, "confirm", channel=channel_name(c.s.channel)), name="confirm",
            step="confirm_question", choices=[(key, say(c, TEXTS, key)) for key in CONFIRM],
            timeout=timing(c, "confirm_timeout", CONFIRM_TIMEOUT), transactional=True)

    @when_all((m.type == "message") & (m.question == "confirm"))
    def confirmation(c):
        said = answer(c, CONFIRM)
        if said == "yes":
            revoke(c)
        elif said == "no" or c.s.reasked:
            step(c, "confirm", "kept" if said == "no" else "unclear")
            send(c, say(c, TEXTS, "kept"), step="kept")
            exit_flow(c, "kept")
        else:
            c.s.reasked = True
            ask(c, say(c, TEXTS, "reask", channel=channel_name(c.s.channel)), name="confirm",
                step="confirm_reask", choices=[(key, say(c, TEXTS, key)) for key in CONFIRM],
                timeout=timing(c, "confirm_timeout", CONFIRM_TIMEOUT), transactional=True)

    @when_all(m.type == "optout.expired")
    def expired(c):
        exit_flow(c, "expired")

    @when_all((m.type == "timeout") & (m.question == "confirm"))
    def no_answer(c):
        exit_flow(c, "no_answer")
