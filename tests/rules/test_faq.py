"""The cart-assist FAQ (rules/_faq.py): content checks and the matcher."""

from __future__ import annotations

import pytest

from bot.core.keywords import normalize
from rules._faq import FAQ, best_topic, match_faq


def test_every_topic_answers_in_three_languages_with_plain_keywords() -> None:
    assert {"shipping", "payment", "sizes", "returns"} <= set(FAQ)
    for name, topic in FAQ.items():
        assert set(topic["answers"]) == {"es", "pt", "en"}, name
        assert all(answer.strip() for answer in topic["answers"].values()), name
        for keyword in topic["keywords"]:
            assert normalize(keyword) == keyword, f"{name}: write {keyword!r} plain"


@pytest.mark.parametrize(("text", "topic"), [
    ("¿Cuánto tarda el envío?", "shipping"),
    ("HACEN ENVIOS A CORDOBA???", "shipping"),
    ("¿Envían al código postal 5000?", "shipping"),
    ("Qual o prazo de entrega?", "shipping"),
    ("How long does shipping take?", "shipping"),
    ("¿Puedo pagar en cuotas sin interés?", "payment"),
    ("Aceitam Pix?", "payment"),
    ("Do you take credit cards?", "payment"),
    ("¿Qué talle me conviene?", "sizes"),
    ("Tienen tallas grandes?", "sizes"),
    ("Qual tamanho devo escolher?", "sizes"),
    ("What size should I get?", "sizes"),
    ("¿Cómo son las devoluciones?", "returns"),
    ("Posso trocar se não servir?", "returns"),
    ("Can I get a refund?", "returns"),
    ("¿Tienen algún cupón de descuento?", "discounts"),
])
def test_a_question_finds_its_topic(text: str, topic: str) -> None:
    assert best_topic(text) == topic


@pytest.mark.parametrize("text", [
    "", "hola", "¿Puedo retirar en el local de Palermo?", "cambio de talle",
    "!!!", "ok",
])
def test_unsure_means_none(text: str) -> None:
    assert match_faq(text, "es") is None


def test_the_answer_is_in_the_customer_language_spanish_by_default() -> None:
    question = "¿cuánto cuesta el envío?"
    assert match_faq(question, "es") == FAQ["shipping"]["answers"]["es"]
    assert match_faq(question, "pt") == FAQ["shipping"]["answers"]["pt"]
    assert match_faq(question, "en") == FAQ["shipping"]["answers"]["en"]
    assert match_faq(question, "fr") == FAQ["shipping"]["answers"]["es"]
    assert match_faq(question, "") == FAQ["shipping"]["answers"]["es"]
