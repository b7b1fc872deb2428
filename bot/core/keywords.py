"""Consent and help keywords in Spanish, Portuguese and English.

A message that is only a keyword (case, accents and punctuation ignored) is
a command to the service, not an answer to a flow.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Keyword = Literal["stop", "start", "help"]

KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("stop", "baja", "cancelar", "parar", "sair", "unsubscribe",
                     "stopall", "cancel", "end", "quit"), "stop"),
    **dict.fromkeys(("start", "alta", "voltar", "unstop", "subscribe"), "start"),
    **dict.fromkeys(("help", "ayuda", "ajuda", "info"), "help"),
}

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


def detect(text: str) -> Keyword | None:
    """The keyword the whole message is, if any ("Baja." and "STOP" count; "no pares" does not)."""
    words = normalize(text).split()
    return KEYWORDS.get(words[0]) if len(words) == 1 else None


def localized(texts: dict[str, str], locale: str) -> str:
    return texts.get((locale or "es")[:2].lower(), texts["es"])
