"""Post-purchase survey: a Net Promoter Score question some days after delivery.

- **Trigger**: ``order.fulfilled`` (carries ``order_id``). Marketing (needs
  consent). One survey per run; a customer may enter again 30 days after a
  run ends, so several orders in a month give one survey.
- **Steps**:
  1. waits ``survey_after_days`` (setting ``SURVEY_AFTER_DAYS``, default 3).
  2. ``nps_question``: "from 0 to 10, how likely are you to recommend us?";
     waits 3 days, then exits ``no_answer`` silently. The answer is read by
     :func:`parse_score` ("9", "9/10", "un 9", "nueve", "nove", "nine"...);
     an unreadable answer is asked again once (``nps_reask``), a second one
     is recorded (``nps_unreadable``) and ends the run (``no_score``) silently.
  3. the score is stored: step ``nps`` with the score as outcome, attr ``nps``.
     - 0-6 -> ``nps_detail``: "what went wrong?"; the reply goes to a person
       (``handoff "NPS <score>: <text>"``) with thanks, exit ``detractor``;
       3 days of silence -> exit ``detractor`` without a handoff.
     - 7-8 -> thanks, exit ``passive``.
     - 9-10 -> thanks and the review link (setting ``REVIEW_URL``), exit
       ``promoter``.
- **Exits**: the ones above; and at most ``MAX_ANSWERING`` (10 days) after
  the wait, ``expired`` silently: a safety net so no run outlives its purpose.
- **WhatsApp template** for the question the flow starts on its own:
  ``post_purchase_nps`` {{1}}=first name. Every later message answers the
  customer, inside the 24 h window.

The question has no buttons: eleven options are more than a WhatsApp list
(10 rows) holds and read badly as a numbered SMS list.

```mermaid
stateDiagram-v2
    [*] --> nps_question: survey_after_days after order.fulfilled
    nps_question --> nps: a score
    nps_question --> nps_reask: unreadable
    nps_question --> [*]: 3 days (no_answer)
    nps_question --> [*]: 10 days (expired)
    nps_reask --> nps: a score
    nps_reask --> nps_unreadable: unreadable
    nps_reask --> [*]: 3 days (no_answer)
    nps_unreadable --> [*]: no_score
    nps --> nps_detail: 0-6
    nps --> thanks: 7-8
    nps --> review: 9-10
    nps_detail --> sorry_thanks: reply
    nps_detail --> [*]: 3 days (detractor)
    sorry_thanks --> handoff
    handoff --> [*]: detractor
    thanks --> [*]: passive
    review --> [*]: promoter
```
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from bot.commands import (
    after,
    ask,
    config,
    days,
    exit_flow,
    handoff,
    send,
    set_attr,
    step,
    timing,
)
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "nps": "¡Hola, {first_name}! Esperamos que estés disfrutando tu compra. Del 0 al 10, "
               "¿qué tan probable es que nos recomiendes a un amigo? Responde con un número.",
        "reask": "Perdona, no te entendí. ¿Nos respondes solo con un número del 0 al 10?",
        "what_went_wrong": "Lamentamos que tu experiencia no haya sido la mejor. "
                           "¿Nos cuentas qué salió mal?",
        "sorry_thanks": "Gracias por contarnos, {first_name}. Una persona de nuestro equipo "
                        "lo revisará y te escribirá.",
        "thanks": "¡Gracias por tu respuesta, {first_name}! Nos ayuda a mejorar.",
        "review": "¡Qué alegría, {first_name}! ¿Nos dejarías una reseña? Ayuda mucho a otros "
                  "clientes: {url}",
        "customer": "cliente",
    },
    "pt": {
        "nps": "Olá, {first_name}! Esperamos que esteja gostando da sua compra. De 0 a 10, "
               "qual a chance de você nos recomendar a um amigo? Responda com um número.",
        "reask": "Desculpe, não entendi. Pode responder só com um número de 0 a 10?",
        "what_went_wrong": "Sentimos muito que sua experiência não tenha sido a melhor. "
                           "Pode nos contar o que deu errado?",
        "sorry_thanks": "Obrigado por nos contar, {first_name}. Uma pessoa da nossa equipe "
                        "vai analisar e falar com você.",
        "thanks": "Obrigado pela resposta, {first_name}! Isso nos ajuda a melhorar.",
        "review": "Que alegria, {first_name}! Pode deixar uma avaliação? Ajuda muito outros "
                  "clientes: {url}",
        "customer": "cliente",
    },
    "en": {
        "nps": "Hi {first_name}! We hope you are enjoying your order. From 0 to 10, how "
               "likely are you to recommend us to a friend? Reply with a number.",
        "reask": "Sorry, I did not get that. Could you reply with just a number from 0 to 10?",
        "what_went_wrong": "We are sorry it was not a great experience. Would you tell us "
                           "what went wrong?",
        "sorry_thanks": "Thank you for telling us, {first_name}. Someone from our team will "
                        "look into it and get back to you.",
        "thanks": "Thanks for your answer, {first_name}! It helps us improve.",
        "review": "So glad to hear it, {first_name}! Would you leave us a review? It really "
                  "helps other customers: {url}",
        "customer": "there",
    },
}

FLOW = Flow(
    "post_purchase_survey",
    triggers=("order.fulfilled",),
    reentry_after=days(30),
    marketing=True,
    templates={"nps_question": "post_purchase_nps"},
    steps={
        "nps_question": "ask",
        "nps_reask": "ask",
        "nps_unreadable": "record",
        "nps": "record",
        "nps_detail": "ask",
        "sorry_thanks": "send",
        "handoff": "handoff",
        "thanks": "send",
        "review": "send",
    },
    edges=(
        ("started", "nps_question", "survey_after_days after order.fulfilled"),
        ("nps_question", "nps", "a score"),
        ("nps_question", "nps_reask", "unreadable"),
        ("nps_question", "exit:no_answer", "3 days"),
        ("nps_question", "exit:expired", "10 days"),
        ("nps_reask", "nps", "a score"),
        ("nps_reask", "nps_unreadable", "unreadable"),
        ("nps_reask", "exit:no_answer", "3 days"),
        ("nps_unreadable", "exit:no_score"),
        ("nps", "nps_detail", "0-6"),
        ("nps", "thanks", "7-8"),
        ("nps", "review", "9-10"),
        ("nps_detail", "sorry_thanks", "reply"),
        ("nps_detail", "exit:detractor", "3 days"),
        ("sorry_thanks", "handoff"),
        ("handoff", "exit:detractor"),
        ("thanks", "exit:passive"),
        ("review", "exit:promoter"),
    ),
    description="NPS some days after delivery; detractors go to a person.",
)

ANSWER_TIMEOUT = days(3)
MAX_ANSWERING = days(10)
# The waits a store may change (flow settings file, [flows.post_purchase_survey.timings]);
# ``survey_after`` defaults to the SURVEY_AFTER_DAYS setting.
TIMINGS = {"survey_after": days(3), "answer_timeout": ANSWER_TIMEOUT,
           "max_answering": MAX_ANSWERING}

NUMBER_WORDS = {
    # es
    "cero": 0, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10,
    # pt
    "zero": 0, "dois": 2, "duas": 2, "quatro": 4, "sete": 7, "oito": 8, "nove": 9, "dez": 10,
    # en
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10,
}
ARTICLES = {"un": 1, "una": 1, "um": 1, "uma": 1}  # "un 9": a one only when alone
OUT_OF = ({"/"}, {"de", "sobre", "em", "of"}, {"out"})
TENS = {"10", "diez", "dez", "ten"}


def _tokens(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.replace("🔟", " 10 "))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.findall(r"\d+|[a-z]+|/", plain)


def _without_out_of_ten(tokens: list[str]) -> list[str]:
    """Drop "/ 10", "de 10", "sobre diez", "out of 10" after a score ("9/10" -> "9")."""
    kept: list[str] = []
    i = 0
    while i < len(tokens):
        rest = tokens[i:i + 3]
        if kept and len(rest) >= 2 and rest[0] in OUT_OF[0] | OUT_OF[1] and rest[1] in TENS:
            i += 2
            continue
        if kept and rest[:2] == ["out", "of"] and len(rest) == 3 and rest[2] in TENS:
            i += 3
            continue
        kept.append(tokens[i])
        i += 1
    return kept


def parse_score(text: str | None) -> int | None:
    """The 0-10 score in a reply, or None when there is none or it is unclear.

    Digits win over words ("un 9" is 9, "gostei dos produtos, 10" is 10);
    number words count in Spanish, Portuguese and English; "out of ten"
    forms are dropped; decimals, negatives, numbers over 10 and two
    different numbers ("7 u 8") are unclear.
    """
    raw = text or ""
    if re.search(r"\d\s*[.,]\s*\d", raw) or re.search(r"(^|\s)-\s*\d", raw):
        return None
    tokens = _without_out_of_ten(_tokens(raw))
    digits = {int(t) for t in tokens if t.isdigit()}
    found = digits or {NUMBER_WORDS[t] for t in tokens if t in NUMBER_WORDS}
    if not found:
        found = {ARTICLES[t] for t in tokens if t in ARTICLES}
    if len(found) != 1:
        return None
    score = found.pop()
    return score if 0 <= score <= 10 else None


def answer_timeout(c: Any) -> float:
    """How long a question waits for its answer (the store may change it)."""
    return timing(c, "answer_timeout", ANSWER_TIMEOUT)


with ruleset(FLOW.name):

    @when_all(m.type == "order.fulfilled")
    def order_fulfilled(c):
        if c.s.order_id:
            return  # one survey per run
        c.s.order_id = str(c.m.order_id or "?")
        wait = timing(c, "survey_after", days(config(c, "survey_after_days", 3)))
        after(c, wait, {"type": "survey.due"})
        after(c, wait + timing(c, "max_answering", MAX_ANSWERING), {"type": "survey.expired"},
              key="expire")

    @when_all(m.type == "survey.due")
    def survey_due(c):
        ask(c, say(c, TEXTS, "nps"), name="nps", step="nps_question", timeout=answer_timeout(c),
            template=(FLOW.templates["nps_question"], [template_name(c, TEXTS)]))

    @when_all(m.type == "survey.expired")
    def expired(c):
        exit_flow(c, "expired")

    @when_all((m.type == "timeout") & (m.question == "nps"))
    def no_answer(c):
        exit_flow(c, "no_answer")

    @when_all((m.type == "message") & (m.question == "nps"))
    def score_given(c):
        score = parse_score(c.m.text)
        if score is None and not c.s.reasked:
            c.s.reasked = True
            ask(c, say(c, TEXTS, "reask"), name="nps", step="nps_reask", timeout=answer_timeout(c))
        elif score is None:
            step(c, "nps_unreadable", "skipped", text=str(c.m.text or ""))
            exit_flow(c, "no_score")
        else:
            step(c, "nps", str(score))
            set_attr(c, "nps", score)
            if score <= 6:
                c.s.score = score
                ask(c, say(c, TEXTS, "what_went_wrong"), name="nps_detail",
                    timeout=answer_timeout(c))
            elif score <= 8:
                send(c, say(c, TEXTS, "thanks"), step="thanks")
                exit_flow(c, "passive")
            else:
                send(c, say(c, TEXTS, "review", url=config(c, "review_url")), step="review")
                exit_flow(c, "promoter")

    @when_all((m.type == "message") & (m.question == "nps_detail"))
    def what_went_wrong(c):
        send(c, say(c, TEXTS, "sorry_thanks"), step="sorry_thanks")  # before the agent holds it
        handoff(c, f"NPS {c.s.score}: {str(c.m.text or '').strip() or '(no text)'}")
        exit_flow(c, "detractor")

    @when_all((m.type == "timeout") & (m.question == "nps_detail"))
    def detail_not_given(c):
        exit_flow(c, "detractor")
