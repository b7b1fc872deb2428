"""The table of what a customer may write to opt out, opt back in or ask for help.

People do not only type STOP. They write "no me escriban más", "número
equivocado", "pare de me mandar mensagens" or "please unsubscribe me", and
each of those must revoke marketing on the channel it came on (the
contract's "any reasonable opt-out"). They also write "quiero cancelar mi
pedido" or "stop by tomorrow?", which must not. So a phrase counts only
when it is the whole message, after :func:`bot.core.keywords.normalize`
(case, accents and punctuation ignored; apostrophes dropped first, so
"don't" is "dont"), with polite filler allowed at the edges only ("hola,
baja por favor", "STOP thanks"), never as words inside a sentence.

Each entry is a regular expression over that normalised text, matched with
``fullmatch``, with its keyword and, for a stop, whether it is explicit:

* **explicit** stops say what they mean (STOP, UNSUBSCRIBE, BAJA, SAIR,
  DESCADASTRAR, "no me escriban más", "wrong number"...): they apply at once
  on every channel;
* **ambiguous** stops could be about an order (CANCEL, CANCELAR, END, PARAR,
  FIN, NO MÁS...): at once where the channel requires it (carriers do for
  SMS), otherwise the opt-out confirmation flow asks first.

HELP is matched bare: "ayuda con mi pedido, por favor" wants a person (the
inbox flow), not the help text. The table is the one place to add a phrase;
``tests/bot/test_optout_phrases.py`` holds sentences that must and must not
match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Keyword = Literal["stop", "start", "help"]


@dataclass(frozen=True)
class Phrase:
    """One table entry: its name (what the ledger records), a pattern over
    normalised text, what it asks for and, for a stop, how clearly."""

    name: str
    pattern: str
    keyword: Keyword = "stop"
    explicit: bool = True
    language: str = ""  # es / pt / en, for readers; "" when shared


def words(keyword: Keyword, explicit: bool, language: str, *each: str) -> list[Phrase]:
    """Single keywords, one entry each, named in capitals as people are told them."""
    return [Phrase(word.upper(), word, keyword, explicit, language) for word in each]


def said(language: str, name: str, pattern: str, explicit: bool = True) -> Phrase:
    """A stop phrase and the variants of it that mean the same."""
    return Phrase(name, pattern, "stop", explicit, language)


# Filler allowed before and after a phrase (normalised: no accents, no punctuation).
LEADING = ("hola", "hi", "hello", "hey", "oi", "ola", "ok", "okay", "ya", "ja", "bueno",
           "buenas", "por favor", "porfa", "please", "pls", "plz", "senores", "gente")
TRAILING = ("por favor", "porfa", "porfavor", "pls", "plz", "please", "gracias",
            "muchas gracias", "thanks", "thank you", "thx", "ty", "obrigado", "obrigada",
            "obg", "valeu", "ok", "ya", "ja", "now", "ahora", "agora", "ya mismo")

# Reusable pieces of the patterns below.
_ES_WRITE = "(?:escriban|escribas|escriba|contacten|contactes|molesten|molestes)"
_ES_SEND = "(?:manden|mandes|mande|envien|envies|envie)"
_ES_ADS = "(?:mensajes|promociones|publicidad|ofertas|notificaciones)"
_ES_WHAT = f"(?:{_ES_ADS}|nada)"
_ES_WHERE = "(?: de ustedes| por (?:aqui|este medio|whatsapp|sms|telegram))?"
_ES_LIST = "(?: de (?:la )?(?:lista|difusion)(?: de (?:difusion|contactos|correo))?)?"
_PT_ADS = "(?:mensagens|mensagem|promocoes|propagandas?|ofertas|notificacoes)"
_PT_WHAT = f"(?:{_PT_ADS}|nada)"
_PT_WHERE = "(?: de voces| pra mim| para mim| por aqui| pelo (?:whatsapp|sms|telegram))?"
_EN_WHAT = ("(?:(?:these |your |any )?"
            "(?:messages|texts|promos|promotions|ads|offers|notifications|spam))")

PHRASES: tuple[Phrase, ...] = (
    # -- explicit: at once on every channel
    *words("stop", True, "en", "stop", "stopall", "unsubscribe", "optout", "revoke"),
    *words("stop", True, "es", "baja", "desuscribirme"),
    *words("stop", True, "pt", "sair", "descadastrar"),
    said("en", "STOP STOP", r"stop(?: stop)+|stop all"),
    said("en", "OPT OUT", r"opt out|opt me out|unsub|(?:please )?unsubscribe me"),
    said("en", "remove me from this list",
         r"remove me(?: from (?:this|your|the)(?: mailing| contact)? list)?|"
         r"take me off (?:this|your|the)(?: mailing| contact)? list"),
    said("en", "stop texting me",
         r"stop (?:texting|messaging|contacting|emailing|writing to|spamming) me"
         rf"(?: with {_EN_WHAT})?|stop sending (?:me )?{_EN_WHAT}"),
    said("en", "no more messages", rf"no more {_EN_WHAT}"),
    said("en", "don't text me",
         r"dont (?:text|message|contact|write to|send) (?:me|us)(?: again| anymore| any more)?"),
    said("en", "I don't want these messages",
         rf"(?:i )?dont want (?:to (?:receive|get) )?(?:any more |anymore |more )?"
         rf"{_EN_WHAT}(?: anymore| any more)?"),
    said("en", "leave me alone", r"leave me alone"),
    said("en", "wrong number",
         r"(?:this is |its )?(?:the )?wrong (?:number|person)|"
         r"(?:you have|youve got|you got) the wrong (?:number|person)"),
    said("es", "BAJA de la lista",
         r"(?:quiero )?la baja|"
         r"baja de (?:todo|la lista|los mensajes|las promociones|whatsapp|sms)"),
    said("es", "darme de baja",
         rf"(?:quiero |quisiera )?(?:darme|dame|denme|deme|dar|me doy|me dan) de baja{_ES_LIST}|"
         r"(?:quiero )?(?:desuscribanme|desuscribeme|desuscribir)"),
    said("es", "no me escriban más",
         rf"(?:ya )?no me {_ES_WRITE}(?: mas)?{_ES_WHERE}|"
         rf"(?:ya )?no (?:me )?(?:{_ES_WRITE}|{_ES_SEND}) mas(?: {_ES_WHAT})?{_ES_WHERE}|"
         rf"(?:ya )?no me {_ES_SEND} (?:mas )?{_ES_ADS}{_ES_WHERE}|no me molesten mas"),
    said("es", "no quiero recibir más mensajes",
         rf"(?:ya )?no quiero (?:recibir )?mas {_ES_WHAT}{_ES_WHERE}|"
         rf"(?:ya )?no quiero recibir {_ES_WHAT}{_ES_WHERE}|"
         r"(?:ya )?no quiero (?:mensajes|promociones|publicidad)(?: de ustedes)?"),
    said("es", "no más mensajes",
         r"(?:no mas|basta de) (?:mensajes|promociones|publicidad|spam)"),
    said("es", "dejen de escribirme",
         r"dej(?:en|a|e) de (?:escribirme|molestarme|mandarme|enviarme|contactarme)"
         rf"(?: {_ES_WHAT})?"),
    said("es", "sáquenme de la lista",
         r"(?:sacame|saquenme|sacarme|borrame|borrenme|eliminame|eliminenme|quitame|"
         rf"quitenme) de (?:la|su|tu|esta|vuestra) (?:lista|base){_ES_LIST}"),
    said("es", "número equivocado",
         r"(?:es (?:un )?)?numero equivocado|(?:se )?equivoca(?:ron|ste|do) de numero"),
    said("pt", "quero sair",
         r"(?:quero )?sair (?:da lista|dessa lista|desta lista|das mensagens|de tudo)|quero sair"),
    said("pt", "me descadastre",
         r"(?:quero )?(?:me )?descadastr(?:ar|e|em|a)(?: me)?(?: da lista)?"),
    said("pt", "me tira da lista",
         r"(?:me )?(?:tira|tire|tirem|remova|removam|remove|exclua|excluam)(?: me)? "
         r"d(?:a|essa|esta|a sua|e sua) lista(?: de (?:transmissao|contatos|envio))?"),
    said("pt", "pare de me mandar mensagens",
         rf"(?:pare|parem|para) de (?:me )?(?:mandar|enviar) (?:mais )?{_PT_WHAT}{_PT_WHERE}|"
         r"(?:pare|parem|para) de me (?:mandar|enviar|escrever|incomodar|chamar)"),
    said("pt", "não quero mais receber mensagens",
         rf"nao (?:quero|desejo) (?:mais )?receber (?:mais )?{_PT_WHAT}{_PT_WHERE}|"
         rf"nao quero mais {_PT_WHAT}{_PT_WHERE}"),
    said("pt", "não me mandem mais mensagens",
         rf"nao (?:me )?(?:mande|mandem|envie|enviem|escreva|escrevam) mais"
         rf"(?: {_PT_WHAT})?{_PT_WHERE}|"
         rf"nao me (?:mande|mandem|envie|enviem) {_PT_ADS}{_PT_WHERE}|"
         r"chega de (?:mensagens|promocoes|propaganda|spam)"),
    said("pt", "número errado",
         r"(?:e |e o )?numero errado|(?:voce|voces) (?:esta|estao) com o numero errado"),
    said("pt", "me deixa em paz", r"me deix(?:a|e|em) em paz"),
    # -- ambiguous: could be about an order; confirmed first where the channel allows
    *words("stop", False, "en", "cancel", "end", "quit", "enough"),
    *words("stop", False, "es", "cancelar", "cancela", "cancelen", "anular", "parar", "paren",
           "fin", "finalizar", "terminar", "basta", "salir"),
    *words("stop", False, "pt", "pare", "parem", "para", "cancele", "encerrar", "fim"),
    said("es", "NO MÁS", r"no mas", explicit=False),
    said("en", "cancel my subscription", r"cancel (?:my |the )?subscription", explicit=False),
    said("es", "cancelar mi suscripción", r"cancelar (?:la |mi )?suscripcion", explicit=False),
    said("pt", "cancelar minha inscrição",
         r"cancelar (?:a |minha )?(?:inscricao|assinatura)", explicit=False),
    # -- back in, and help (help only bare: see the module docstring)
    *words("start", True, "", "start", "alta", "voltar", "unstop", "subscribe"),
    Phrase("darme de alta", r"(?:darme|dame|denme) de alta", "start", True, "es"),
    *words("help", True, "", "help", "ayuda", "ajuda", "info"),
)


@dataclass(frozen=True)
class Compiled:
    phrase: Phrase
    regex: re.Pattern[str]


def _edges(words: tuple[str, ...]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def compile_table(table: tuple[Phrase, ...] = PHRASES) -> tuple[Compiled, ...]:
    """Each pattern with the filler it allows at its edges, ready for ``fullmatch``."""
    lead, trail = _edges(LEADING), _edges(TRAILING)
    compiled = []
    for phrase in table:
        if phrase.keyword == "help":
            full = f"(?:{phrase.pattern})"
        else:
            full = f"(?:(?:{lead}) )*(?:{phrase.pattern})(?: (?:{trail}))*"
        compiled.append(Compiled(phrase, re.compile(full)))
    return tuple(compiled)


COMPILED = compile_table()
MAX_WORDS = 16  # longer messages are sentences, never a keyword
