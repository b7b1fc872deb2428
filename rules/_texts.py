"""Helpers the flows share: texts in the customer's language and reading their answers.

Not a flow (the module name starts with "_"). Every flow keeps its own
``TEXTS = {"es": {...}, "pt": {...}, "en": {...}}``; these helpers pick the
customer's language (Spanish when unknown), format ``{first_name}`` and
friends in, and turn a reply into one of the choices offered, whether the
customer tapped a button, answered an SMS list with its number ("2") or
typed the answer ("sí, claro").

The customer's facts are read with ``customer(c)`` (``bot.commands``), the
one way flows read them in actions; ``m.customer`` is for rule conditions.

A store may replace any text of a flow in its flow settings file
(``[flows.<flow>.texts.<locale>]``, README "Flow settings file"): ``say``
and ``pick`` use the store's text for the running flow when there is one,
so a flow needs nothing to make its texts the marketer's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.commands import customer, text_overrides
from bot.core.keywords import normalize

Texts = Mapping[str, Mapping[str, str]]
DEFAULT_LOCALE = "es"
MAX_ANSWER_WORDS = 3  # "sí", "no gracias", "no, gracias amigo": longer text is not a bare answer

YES = ("si", "yes", "sim", "s", "y", "claro", "dale", "ok", "okay", "vale", "bueno", "quiero",
       "confirmo", "confirmar", "correcto", "por supuesto", "of course", "sure", "yep", "yeah",
       "isso", "pode ser", "com certeza", "claro que si", "claro que sim")
NO = ("no", "nao", "n", "nope", "nah", "no gracias", "nao obrigado", "nao obrigada",
      "no thanks", "no thank you", "negativo", "para nada", "de jeito nenhum")


def locale_of(c: Any) -> str:
    """The customer's two-letter language."""
    return str(customer(c)["locale"] or DEFAULT_LOCALE)


def pick(texts: Texts, locale: str | None) -> Mapping[str, str]:
    """The texts of ``locale``; Spanish when the store does not speak it.

    With the store's own texts for the running flow in place of the flow's.
    """
    chosen = spoken(texts, locale)
    changed = text_overrides(None, chosen)
    return {**texts[chosen], **changed} if changed else texts[chosen]


def spoken(texts: Texts, locale: str | None) -> str:
    """The locale of ``texts`` a customer of ``locale`` reads: theirs, else Spanish."""
    wanted = (locale or DEFAULT_LOCALE)[:2].lower()
    return wanted if wanted in texts else DEFAULT_LOCALE


def say(c: Any, texts: Texts, key: str, **values: Any) -> str:
    """Text ``key`` in the customer's language with ``{first_name}`` and ``values`` filled in.

    Without a first name, ", {first_name}" and " {first_name}" disappear, so
    "¡Hola, {first_name}!" reads "¡Hola!". The store's text for the running
    flow (flow settings file) replaces the flow's own.
    """
    text = pick(texts, locale_of(c))[key]
    name = str(customer(c)["first_name"] or "")
    if not name:
        text = text.replace(", {first_name}", "").replace(" {first_name}", "")
    return text.format(first_name=name, **values)


def template_name(c: Any, texts: Texts) -> str:
    """The first name as a template parameter; the flow's ``customer`` text when unknown.

    WhatsApp refuses a template whose parameter is empty.
    """
    return str(customer(c)["first_name"] or "") or say(c, texts, "customer")


def words(text: str | None) -> list[str]:
    return normalize(text or "").split()


def answer(c: Any, options: Mapping[str, Iterable[str]]) -> str | None:
    """Which of ``options`` (choice id -> typed synonyms, in the order offered) the reply is.

    A tapped button gives its id; a number picks the option at that position
    (SMS shows choices as "1) Sí"); otherwise the normalised text must be one
    of the synonyms, or start with a one-word synonym in a short answer that
    is not a question ("no, gracias" but not "¿si compro hoy?"). None when
    the reply is none of these.
    """
    ids = list(options)
    choice = str(c.m.choice or "")
    if choice in options:
        return choice
    said = words(c.m.text)
    if len(said) == 1 and said[0].isdigit() and 1 <= int(said[0]) <= len(ids):
        return ids[int(said[0]) - 1]
    phrase = " ".join(said)
    for option, synonyms in options.items():
        if phrase in synonyms or normalize(option.replace("_", " ")) == phrase:
            return option
    if 0 < len(said) <= MAX_ANSWER_WORDS and len(said[0]) > 1 and "?" not in str(c.m.text):
        for option, synonyms in options.items():
            if said[0] in synonyms:
                return option
    return None
