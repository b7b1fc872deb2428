"""What counts as an opt-out (bot/core/optout_phrases.py), both ways, and what the service does.

The tables are pure: every sentence a customer might send that must opt
out (explicit or ambiguous), and every sentence about an order that must
not. The behaviour tests run the real decisions on the pure harness: an
explicit phrase revokes at once on WhatsApp, an ambiguous word asks first
there and revokes at once on SMS, and a sentence that is not an opt-out
reaches the flows.
"""

from __future__ import annotations

import pytest

from bot.core import keywords, optout_phrases
from bot.testing import PureHarness
from rules import inbox
from rules.optout_confirmation import FLOW, TEXTS

EXPLICIT, AMBIGUOUS = True, False

MUST_OPT_OUT = [
    # Spanish
    ("es", "BAJA", EXPLICIT),
    ("es", "Baja por favor", EXPLICIT),
    ("es", "Hola, quiero darme de baja", EXPLICIT),
    ("es", "No me escriban más", EXPLICIT),
    ("es", "no me manden más mensajes, gracias", EXPLICIT),
    ("es", "Ya no quiero recibir más mensajes", EXPLICIT),
    ("es", "Número equivocado", EXPLICIT),
    ("es", "se equivocaron de número", EXPLICIT),
    ("es", "Dejen de escribirme!!", EXPLICIT),
    ("es", "sáquenme de la lista", EXPLICIT),
    ("es", "CANCELAR", AMBIGUOUS),
    ("es", "No más", AMBIGUOUS),
    ("es", "parar", AMBIGUOUS),
    ("es", "Fin.", AMBIGUOUS),
    # Portuguese
    ("pt", "SAIR", EXPLICIT),
    ("pt", "Descadastrar", EXPLICIT),
    ("pt", "oi, quero me descadastrar", EXPLICIT),
    ("pt", "Pare de me mandar mensagens", EXPLICIT),
    ("pt", "Não quero mais receber mensagens", EXPLICIT),
    ("pt", "não me mandem mais nada por favor", EXPLICIT),
    ("pt", "Me tira dessa lista", EXPLICIT),
    ("pt", "número errado", EXPLICIT),
    ("pt", "me deixem em paz", EXPLICIT),
    ("pt", "PARAR", AMBIGUOUS),
    ("pt", "pare", AMBIGUOUS),
    ("pt", "Cancelar, obrigado", AMBIGUOUS),
    ("pt", "fim", AMBIGUOUS),
    # English
    ("en", "STOP", EXPLICIT),
    ("en", "stop please", EXPLICIT),
    ("en", "STOP STOP STOP", EXPLICIT),
    ("en", "Unsubscribe", EXPLICIT),
    ("en", "opt out", EXPLICIT),
    ("en", "REVOKE", EXPLICIT),
    ("en", "Wrong number", EXPLICIT),
    ("en", "Please remove me from this list", EXPLICIT),
    ("en", "Don't text me again", EXPLICIT),
    ("en", "leave me alone", EXPLICIT),
    ("en", "I don't want these messages anymore", EXPLICIT),
    ("en", "stop texting me", EXPLICIT),
    ("en", "CANCEL", AMBIGUOUS),
    ("en", "end", AMBIGUOUS),
    ("en", "Quit.", AMBIGUOUS),
]

MUST_NOT = [
    # Spanish
    ("es", "quiero cancelar mi pedido"),
    ("es", "¿cuándo sale mi pedido?"),
    ("es", "no, más tarde"),
    ("es", "¿Puedo cancelar el pedido 1234?"),
    ("es", "no me mandaron el pedido"),
    ("es", "me equivoqué de número de pedido"),
    ("es", "¿la baja de precio sigue?"),
    ("es", "fin de semana puedo retirar?"),
    ("es", "ya no quiero esa talla, ¿la cambian?"),
    ("es", "no me llegó la factura"),
    ("es", "basta con que llegue el lunes"),
    ("es", "hola"),
    # Portuguese
    ("pt", "pare o pedido 123"),
    ("pt", "quero cancelar meu pedido"),
    ("pt", "não recebi meu pedido"),
    ("pt", "para quando é a entrega?"),
    ("pt", "chega amanhã?"),
    ("pt", "vou sair agora, entreguem amanhã"),
    ("pt", "o número do pedido está errado"),
    ("pt", "não quero mais esse produto, posso trocar?"),
    ("pt", "obrigado!"),
    ("pt", "não me mande nada até eu pagar"),
    ("pt", "ajuda com meu pedido"),
    # English
    ("en", "stop by tomorrow?"),
    ("en", "can I cancel my order?"),
    ("en", "when will my order ship?"),
    ("en", "the end of the box was damaged"),
    ("en", "please stop the delivery until Monday"),
    ("en", "I gave you the wrong number for my apartment"),
    ("en", "no more than two please"),
    ("en", "I don't want this color"),
    ("en", "quit sending the wrong size"),
    ("en", "where is my package?"),
    ("en", "thanks!"),
    ("en", "help me with my order please"),
]


def test_the_tables_cover_each_language() -> None:
    for language in ("es", "pt", "en"):
        assert sum(1 for lang, *_ in MUST_OPT_OUT if lang == language) >= 10
        assert sum(1 for lang, _ in MUST_NOT if lang == language) >= 10


@pytest.mark.parametrize(("language", "text", "explicit"), MUST_OPT_OUT)
def test_must_opt_out(language: str, text: str, explicit: bool) -> None:
    found = keywords.match(text)
    assert found is not None, f"{language}: {text!r} is not an opt-out"
    assert (found.keyword, found.explicit) == ("stop", explicit), found
    assert keywords.detect(text) == "stop"


@pytest.mark.parametrize(("language", "text"), MUST_NOT)
def test_must_not_opt_out(language: str, text: str) -> None:
    assert keywords.match(text) is None, f"{language}: {text!r} taken as a keyword"


@pytest.mark.parametrize("entry", optout_phrases.PHRASES, ids=lambda e: e.name)
def test_every_entry_is_named_by_a_message_it_matches(entry: optout_phrases.Phrase) -> None:
    assert keywords.match(entry.name) == keywords.KeywordMatch(entry.keyword, entry.explicit,
                                                               entry.name)


@pytest.mark.parametrize(("text", "keyword"), [
    ("ALTA", "start"), ("voltar por favor", "start"), ("START", "start"),
    ("Ayuda", "help"), ("HELP", "help"), ("ajuda!", "help")])
def test_start_and_help_stay_keywords(text: str, keyword: str) -> None:
    assert keywords.detect(text) == keyword


# -- what the service does with them -----------------------------------------------------

PHONE = "+5491122334455"
CONSENTS = {"whatsapp": True, "sms": True}


def harness(channel: str, locale: str = "es") -> PureHarness:
    h = PureHarness([FLOW, inbox.FLOW], channels=(channel,))
    h.customer("cus_1", phone=PHONE, consents=CONSENTS, first_name="Ana", locale=locale)
    return h


def ledger(h: PureHarness, channel: str) -> list[dict[str, object]]:
    return [e for e in h.customer_doc("cus_1")["consent_ledger"] if e["channel"] == channel]


def test_an_explicit_phrase_on_whatsapp_revokes_at_once_with_the_words_as_evidence() -> None:
    h = harness("whatsapp")
    h.reply("cus_1", "No me escriban más, gracias")
    consent = h.customer_doc("cus_1")["consents"]["whatsapp"]
    assert (consent["state"], consent["source"]) == ("revoked", "keyword:whatsapp")
    entry = ledger(h, "whatsapp")[-1]
    assert entry["id"] == consent["entry"]
    evidence = entry["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["words"] == "No me escriban más, gracias"
    assert evidence["phrase"] == "no me escriban más"  # the table entry, by its name
    assert evidence["message_id"] and evidence["input"]
    assert [s.text for s in h.to("cus_1")] == [keywords.STOPPED_TEXT["es"]]  # no question
    assert FLOW.name not in h.active_flows("cus_1")


def test_an_ambiguous_word_on_whatsapp_asks_first() -> None:
    h = harness("whatsapp")
    h.reply("cus_1", "Cancelar, por favor")
    assert h.customer_doc("cus_1")["consents"]["whatsapp"]["state"] == "granted"
    assert len(ledger(h, "whatsapp")) == 1  # only the grant: nothing revoked yet
    assert h.last("cus_1").text == TEXTS["es"]["confirm"].format(channel="WhatsApp")
    assert FLOW.name in h.active_flows("cus_1")


def test_an_explicit_phrase_while_asked_is_the_yes() -> None:
    h = harness("whatsapp")
    h.reply("cus_1", "parar")
    h.reply("cus_1", "Número equivocado")
    consent = h.customer_doc("cus_1")["consents"]["whatsapp"]
    assert (consent["state"], consent["source"]) == ("revoked", "optout_confirmation:whatsapp")
    evidence = ledger(h, "whatsapp")[-1]["evidence"]
    assert isinstance(evidence, dict)
    assert (evidence["flow"], evidence["words"], evidence["phrase"]) == (
        FLOW.name, "Número equivocado", "número equivocado")
    assert h.last("cus_1").text == TEXTS["es"]["revoked"].format(first_name="Ana",
                                                                channel="WhatsApp")
    assert len(h.to("cus_1")) == 2  # the question, then one confirmation
    assert FLOW.name not in h.active_flows("cus_1")


def test_an_ambiguous_word_on_sms_revokes_at_once() -> None:
    h = harness("sms", locale="pt")
    h.reply("cus_1", "Parar")
    consent = h.customer_doc("cus_1")["consents"]["sms"]
    assert (consent["state"], consent["source"]) == ("revoked", "keyword:sms")
    assert ledger(h, "sms")[-1]["evidence"]["phrase"] == "PARAR"  # type: ignore[index]
    assert [s.text for s in h.to("cus_1")] == [keywords.STOPPED_TEXT["pt"]]


def test_start_is_recorded_with_its_words() -> None:
    h = harness("sms")
    h.reply("cus_1", "STOP")
    h.reply("cus_1", "Alta por favor")
    entry = ledger(h, "sms")[-1]
    assert (entry["state"], entry["source"]) == ("granted", "keyword:sms")
    assert entry["evidence"]["words"] == "Alta por favor"  # type: ignore[index]


@pytest.mark.parametrize("text", ["quiero cancelar mi pedido", "pare o pedido 123",
                                  "stop by tomorrow?", "no, más tarde"])
def test_a_sentence_about_an_order_reaches_the_flows(text: str) -> None:
    """A guard against matching too much: the words of a stop inside a sentence."""
    h = harness("whatsapp")
    h.reply("cus_1", text)
    assert h.customer_doc("cus_1")["consents"]["whatsapp"]["state"] == "granted"
    assert FLOW.name not in h.customer_doc("cus_1").get("flow_history", {})
    assert h.customer_doc("cus_1")["flow_history"][inbox.FLOW.name]["last_outcome"] == "handoff"
    assert ledger(h, "whatsapp")[-1]["state"] == "granted"
