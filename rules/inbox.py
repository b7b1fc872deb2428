"""Inbox: every customer message no flow was waiting for gets an answer.

The contract's "never silence": a customer who writes "hola, ¿dónde está mi
pedido?" while no flow waits for them must not be left unanswered.

- **Trigger**: ``message.unanswered``, posted by the service
  (``bot.core.route``) for a customer's message that no running flow took:
  no flow asked a question on that channel, and no active run that takes
  messages recorded anything for it. Keywords (STOP, HELP...) never come
  here (the service answers them), nor messages on a conversation a person
  has (``agent``) or has been asked for (``needs_agent``): the person answers,
  and the customer was told once, at the hand-off. A message on a
  ``closed`` conversation reopens it first, then comes here the same way.
  Not marketing (it answers the customer); a run starts and ends with each
  message.
- **Steps** (the first that applies):
  1. ``faq_answer``: the FAQ (``rules/_faq.py``) is sure of the topic -> its
     answer, and "if that was not it, tell us more". Exit ``faq``. (A
     media message, e.g. a photo, always goes to a person.)
  2. ``greeting`` / ``thanks``: the message is only a greeting ("hola",
     "buenas tardes", "oi", "hi"...) or only thanks or an okay ("gracias",
     "obrigado", "ok", 👍...) -> a polite answer, no person. Exits
     ``greeting`` / ``thanks``.
  3. ``handoff_notice``: anything else -> "a person will answer you": "en
     breve" within business hours (setting ``BUSINESS_HOURS``, in
     ``STORE_TIMEZONE``), otherwise when ("el lunes a las 09:00"); then
     ``handoff`` with the customer's words as the reason. Exit ``handoff``.
- **Waits**: none.

```mermaid
stateDiagram-v2
    [*] --> faq: FAQ sure
    faq --> faq_answer
    faq_answer --> [*]: faq
    [*] --> greeting: only a greeting
    greeting --> [*]: greeting
    [*] --> thanks: only thanks / ok
    thanks --> [*]: thanks
    [*] --> handoff_notice: anything else
    handoff_notice --> handoff
    handoff --> [*]: needs_agent, reason = the words (handoff)
```
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.commands import config, exit_flow, handoff, send, step
from bot.core import business_hours
from bot.core.keywords import normalize
from bot.core.route import UNANSWERED
from bot.flows import Flow, m, ruleset, when_all
from rules._faq import best_topic, match_faq
from rules._texts import locale_of, pick, say

TEXTS = {
    "es": {
        "greeting": "¡Hola, {first_name}! ¿En qué podemos ayudarte?",
        "thanks": "¡Con gusto, {first_name}! Aquí estamos si necesitas algo más.",
        "faq_more": "Si no era eso lo que buscabas, cuéntanos un poco más y te ayudamos.",
        "handoff_open": "Gracias por escribirnos. Una persona te responde en breve por aquí.",
        "handoff_closed": "Gracias por escribirnos. Ahora estamos fuera de horario: una persona "
                          "te responde {when} por aquí.",
        "today": "hoy a las {time}",
        "tomorrow": "mañana a las {time}",
        "later": "el {day} a las {time}",
        "days": "lunes|martes|miércoles|jueves|viernes|sábado|domingo",
    },
    "pt": {
        "greeting": "Olá, {first_name}! Como podemos ajudar?",
        "thanks": "Disponha, {first_name}! Estamos aqui se precisar de mais alguma coisa.",
        "faq_more": "Se não era isso que você procurava, conte um pouco mais e ajudamos você.",
        "handoff_open": "Obrigado por escrever. Uma pessoa da equipe responde em breve por aqui.",
        "handoff_closed": "Obrigado por escrever. Agora estamos fora do horário de atendimento: "
                          "uma pessoa responde {when} por aqui.",
        "today": "hoje às {time}",
        "tomorrow": "amanhã às {time}",
        "later": "{day} às {time}",
        "days": "na segunda-feira|na terça-feira|na quarta-feira|na quinta-feira|"
                "na sexta-feira|no sábado|no domingo",
    },
    "en": {
        "greeting": "Hi {first_name}! How can we help you?",
        "thanks": "Happy to help, {first_name}! We are here if you need anything else.",
        "faq_more": "If that is not what you were looking for, tell us a bit more and we will "
                    "help.",
        "handoff_open": "Thanks for writing. A person from our team will answer you here "
                        "shortly.",
        "handoff_closed": "Thanks for writing. We are out of office hours now: a person will "
                          "answer you here {when}.",
        "today": "today at {time}",
        "tomorrow": "tomorrow at {time}",
        "later": "on {day} at {time}",
        "days": "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday",
    },
}

FLOW = Flow(
    "inbox",
    triggers=(UNANSWERED,),
    reentry_after=0,
    marketing=False,
    steps={
        "faq": "record",
        "faq_answer": "send",
        "greeting": "send",
        "thanks": "send",
        "handoff_notice": "send",
        "handoff": "handoff",
    },
    edges=(
        ("started", "faq", "FAQ sure"),
        ("faq", "faq_answer"),
        ("faq_answer", "exit:faq"),
        ("started", "greeting", "only a greeting"),
        ("greeting", "exit:greeting"),
        ("started", "thanks", "only thanks / ok"),
        ("thanks", "exit:thanks"),
        ("started", "handoff_notice", "anything else"),
        ("handoff_notice", "handoff"),
        ("handoff", "exit:handoff", "needs_agent, reason = the words"),
    ),
    description="Answers what no flow waits for: the FAQ, greetings and thanks; "
                "otherwise a person, saying when.",
)

MAX_REASON = 500  # characters of the customer's words kept as the hand-off reason
DEFAULT_HOURS = "Mon-Fri 09:00-18:00"

# Whole messages that are small talk (normalised: lower case, no accents or
# punctuation). Letters repeated for emphasis count once ("holaaa", "hiii").
GREETINGS = ("hola", "holi", "buenas", "buen dia", "buenos dias", "buenas tardes",
             "buenas noches", "saludos", "que tal", "como estas", "como esta", "como andan",
             "como va", "hey", "alo", "ola", "oi", "oie", "bom dia", "boa tarde", "boa noite",
             "tudo bem", "tudo bom", "e ai", "hello", "hi", "hiya", "good morning",
             "good afternoon", "good evening", "how are you")
THANKS = ("gracias", "muchas gracias", "mil gracias", "muchisimas gracias", "te agradezco",
          "se agradece", "obrigado", "obrigada", "muito obrigado", "muito obrigada", "valeu",
          "brigado", "brigada", "thanks", "thank you", "thx", "ty", "cheers", "ok", "okay",
          "oka", "vale", "dale", "listo", "perfecto", "perfeito", "genial", "excelente",
          "buenisimo", "entendido", "de acuerdo", "beleza", "certo", "otimo", "great", "perfect",
          "got it", "cool", "nice")
FILLERS = ("muy amable", "por todo", "por tu ayuda", "por la ayuda", "pela ajuda",
           "for your help", "for the help", "so much", "very much", "a lot", "a todos",
           "equipo", "chicos", "amigo", "amiga", "gente", "pessoal", "everyone", "team",
           "there", "y", "e", "and", "bien", "bem", "muito", "super", "no", "nao", "si", "sim",
           "yes")
# Emoji that are an okay or thanks on their own (a lone 😡 goes to a person).
KIND_EMOJI = set("👍👌🙏❤♥😊🙂😀😁😃😄🤗✅💪🥰😍👏🙌")
IGNORED_MARKS = set("\ufe0f\u200d🏻🏼🏽🏾🏿 \n\t!.")


def _squeeze(word: str) -> str:
    """ "holaaa" -> "hola", "hiii" -> "hi" (and "hello" -> "helo", on both sides alike)."""
    return "".join(ch for i, ch in enumerate(word) if i == 0 or ch != word[i - 1])


def _phrases(kind: str, phrases: tuple[str, ...]) -> list[tuple[list[str], str]]:
    return [([_squeeze(w) for w in p.split()], kind) for p in phrases]


SMALL_TALK = sorted(_phrases("greeting", GREETINGS) + _phrases("thanks", THANKS)
                    + _phrases("filler", FILLERS), key=lambda item: -len(item[0]))


def small_talk(text: str) -> Literal["greeting", "thanks"] | None:
    """Whether the whole message is a greeting or thanks (thanks wins: "hola, gracias").

    None when it says anything else: "hola, ¿dónde está mi pedido?" is a
    question for a person, not a greeting.
    """
    said = [_squeeze(word) for word in normalize(text).split()]
    if not said:
        marks = {ch for ch in text if ch not in IGNORED_MARKS}
        return "thanks" if marks and marks <= KIND_EMOJI else None
    found: set[str] = set()
    position = 0
    while position < len(said):
        for words, kind in SMALL_TALK:
            if said[position:position + len(words)] == words:
                found.add(kind)
                position += len(words)
                break
        else:
            return None  # a word that is not small talk
    if "thanks" in found:
        return "thanks"
    return "greeting" if "greeting" in found else None


def reason(text: str, kind: str) -> str:
    """The hand-off reason: the customer's own words (a caption, or what was sent)."""
    words = text.strip() or f"({kind})"
    return words if len(words) <= MAX_REASON else words[:MAX_REASON - 1] + "…"


def when_a_person_answers(c: Any) -> str:
    """ "Una persona te responde en breve", or when, from the business hours."""
    ranges = business_hours.parse(str(config(c, "business_hours") or DEFAULT_HOURS))
    zone = ZoneInfo(str(config(c, "store_timezone") or "America/Argentina/Buenos_Aires"))
    opening = business_hours.next_opening(ranges, datetime.fromisoformat(str(c.m.at)), zone)
    if opening is None:
        return say(c, TEXTS, "handoff_open")
    texts = pick(TEXTS, locale_of(c))
    day = texts["days"].split("|")[opening.weekday]
    when = texts[opening.day].format(time=opening.time, day=day)
    return say(c, TEXTS, "handoff_closed", when=when)


with ruleset(FLOW.name):

    @when_all(m.type == UNANSWERED)
    def unanswered(c):
        text = str(c.m.text or "").strip()
        kind = str(c.m.kind or "text")
        media = kind == "media"  # a photo of a broken product is for a person
        faq = None if media else match_faq(text, locale_of(c))
        talk = None if media else small_talk(text)
        if faq is not None:
            step(c, "faq", best_topic(text) or "answered")
            send(c, f"{faq}\n\n{say(c, TEXTS, 'faq_more')}", step="faq_answer",
                 transactional=True)
            exit_flow(c, "faq")
        elif talk is not None:
            send(c, say(c, TEXTS, talk), step=talk, transactional=True)
            exit_flow(c, talk)
        else:
            # The notice goes before the hand-off, which holds the bot's later messages.
            send(c, when_a_person_answers(c), step="handoff_notice", transactional=True)
            handoff(c, reason(text, kind))
            exit_flow(c, "handoff")
