"""Consent and help keywords in Spanish, Portuguese and English.

A message that is only a keyword or a clear opt-out phrase (case, accents
and punctuation ignored, polite filler at the edges allowed) is a command
to the service, not an answer to a flow. What counts is the table in
:mod:`bot.core.optout_phrases`; :func:`match` says which entry matched and
whether a stop is explicit (at once everywhere) or ambiguous (confirmed
first where the channel allows).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.core.optout_phrases import COMPILED, MAX_WORDS, Keyword

__all__ = ["Keyword", "KeywordMatch", "detect", "localized", "match", "normalize"]


@dataclass(frozen=True)
class KeywordMatch:
    """What a whole message asks of the service, and the table entry that said so.

    ``phrase`` (the entry's name, e.g. "no me escriban más") goes into the
    consent ledger with the customer's words, so each opt-out shows why it
    was one.
    """

    keyword: Keyword
    explicit: bool
    phrase: str


HELP_TEXT = {
    "es": "Te escribimos por tus compras en nuestra tienda. Responde BAJA para no recibir "
          "más mensajes promocionales, o ALTA para volver a recibirlos.",
    "pt": "Escrevemos sobre suas compras em nossa loja. Responda SAIR para não receber mais "
          "mensagens promocionais, ou VOLTAR para recebê-las de novo.",
    "en": "We message you about your orders at our store. Reply STOP to stop promotional "
          "messages, or START to get them again.",
}
STOPPED_TEXT = {
    "es": "Listo, no te enviaremos más mensajes promocionales por aquí. "
          "Responde ALTA para volver.",
    "pt": "Pronto, não enviaremos mais mensagens promocionais por aqui. "
          "Responda VOLTAR para voltar.",
    "en": "Done: you will get no more promotional messages here. Reply START to opt back in.",
}
STARTED_TEXT = {
    "es": "¡Bienvenido de vuelta! Volverás a recibir nuestras novedades. Responde BAJA para salir.",
    "pt": "Bem-vindo de volta! Você voltará a receber nossas novidades. Responda SAIR para sair.",
    "en": "Welcome back! You will get our news again. Reply STOP to opt out.",
}


def normalize(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9 ]+", " ", plain).strip()


def match(text: str) -> KeywordMatch | None:
    """The table entry the whole message is, if any.

    "Baja.", "STOP please" and "no me escriban más" count; "quiero cancelar
    mi pedido" and "stop by tomorrow?" do not.
    """
    words = normalize(re.sub(r"['’`´]", "", text)).split()
    if not words or len(words) > MAX_WORDS:
        return None
    plain = " ".join(words)
    for entry in COMPILED:
        if entry.regex.fullmatch(plain):
            phrase = entry.phrase
            return KeywordMatch(phrase.keyword, phrase.explicit, phrase.name)
    return None


def detect(text: str) -> Keyword | None:
    """The keyword the whole message is, if any (see :func:`match`)."""
    found = match(text)
    return found.keyword if found else None


def localized(texts: dict[str, str], locale: str) -> str:
    return texts.get((locale or "es")[:2].lower(), texts["es"])
