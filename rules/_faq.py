"""The cart-assist FAQ: what the cart recovery chat answers without a person.

Edit freely: each topic has ``keywords`` (single words and short phrases, in
any of the three languages, written without accents) and one ``answers``
text per language. A customer's message is matched by :func:`match_faq`.

Matching, kept simple and predictable:
- the text is lower-cased, accents and punctuation removed;
- phrases ("codigo postal") count first, two points each, and their words
  are not counted again; then single words count one point each, a plural
  ("envios", "devoluciones") counting as its singular ("envio", "devolucion");
- the topic with the most points answers; a tie, or no point at all, means
  "not sure": None, and the flow hands the question to a person.
"""

from __future__ import annotations

import re
from typing import TypedDict

from bot.core.keywords import normalize


class Topic(TypedDict):
    keywords: tuple[str, ...]
    answers: dict[str, str]


FAQ: dict[str, Topic] = {
    "shipping": {
        "keywords": (
            # es
            "envio", "enviar", "envian", "mandan", "despacho", "despachan", "entrega",
            "entregan", "llega", "llegar", "llegaria", "tarda", "tardan", "demora", "flete",
            "correo", "domicilio", "sucursal", "codigo postal", "cuanto tarda",
            "costo de envio", "envio gratis",
            # pt
            "frete", "prazo", "chega", "chegar", "entregam", "correios", "cep",
            "frete gratis", "quanto tempo",
            # en
            "shipping", "ship", "delivery", "deliver", "arrive", "courier", "zip code",
            "how long", "free shipping",
        ),
        "answers": {
            "es": "Enviamos a todo el país. El envío tarda de 3 a 7 días hábiles y su costo "
                  "se calcula en el checkout con tu código postal.",
            "pt": "Enviamos para todo o país. A entrega leva de 3 a 7 dias úteis e o frete é "
                  "calculado no checkout com o seu CEP.",
            "en": "We ship nationwide. Delivery takes 3 to 7 business days and the cost is "
                  "calculated at checkout from your postcode.",
        },
    },
    "payment": {
        "keywords": (
            # es
            "pago", "pagar", "tarjeta", "credito", "debito", "cuota", "cuotas", "efectivo",
            "transferencia", "mercadopago", "mercado pago", "medios de pago", "sin interes",
            # pt
            "pagamento", "pagar", "cartao", "parcela", "parcelar", "pix", "boleto",
            "formas de pagamento", "sem juros",
            # en
            "payment", "pay", "card", "credit card", "debit", "installment", "paypal",
            "cash", "bank transfer",
        ),
        "answers": {
            "es": "Aceptamos tarjetas de crédito y débito, transferencia y Mercado Pago. "
                  "Con tarjeta de crédito puedes pagar en cuotas.",
            "pt": "Aceitamos cartão de crédito e débito, Pix e boleto. No cartão de crédito "
                  "você pode parcelar.",
            "en": "We accept credit and debit cards, bank transfer and PayPal. Credit cards "
                  "can pay in instalments.",
        },
    },
    "sizes": {
        "keywords": (
            # es
            "talle", "talla", "tamano", "medida", "calce", "calza", "horma", "guia de talles",
            "tabla de talles", "que talle", "que talla",
            # pt
            "tamanho", "numeracao", "medidas", "veste", "tabela de medidas", "qual tamanho",
            # en
            "size", "sizing", "fit", "fits", "measurements", "size chart", "size guide",
            "what size",
        ),
        "answers": {
            "es": "Cada producto tiene su guía de talles en la página, debajo del precio. "
                  "Si dudas entre dos talles, te recomendamos el más grande.",
            "pt": "Cada produto tem sua tabela de medidas na página, abaixo do preço. Se "
                  "estiver entre dois tamanhos, recomendamos o maior.",
            "en": "Each product has its size guide on its page, below the price. If you are "
                  "between two sizes, we recommend the larger one.",
        },
    },
    "returns": {
        "keywords": (
            # es
            "devolucion", "devolver", "cambio", "cambiar", "reembolso", "garantia",
            "arrepentimiento",
            # pt
            "devolucao", "troca", "trocar", "reembolso", "estorno", "garantia",
            "nao serviu",
            # en
            "return", "refund", "exchange", "warranty", "money back",
        ),
        "answers": {
            "es": "Tienes 30 días desde que recibes el pedido para cambiarlo o devolverlo "
                  "sin costo. El producto debe estar sin uso y con su etiqueta.",
            "pt": "Você tem 30 dias a partir do recebimento para trocar ou devolver sem "
                  "custo. O produto deve estar sem uso e com etiqueta.",
            "en": "You have 30 days from delivery to exchange or return it for free. The "
                  "item must be unused and still tagged.",
        },
    },
    "discounts": {
        "keywords": (
            # es
            "descuento", "cupon", "promocion", "promo", "oferta", "codigo de descuento",
            # pt
            "desconto", "cupom", "promocao", "codigo de desconto",
            # en
            "discount", "coupon", "voucher", "promo code", "discount code",
        ),
        "answers": {
            "es": "Si tienes un código de descuento, ingrésalo en el checkout, en el campo "
                  "\"Código de descuento\", antes de pagar.",
            "pt": "Se você tem um cupom, informe-o no checkout, no campo \"Cupom de "
                  "desconto\", antes de pagar.",
            "en": "If you have a discount code, enter it at checkout, in the \"Discount "
                  "code\" field, before paying.",
        },
    },
}

DEFAULT_LOCALE = "es"


def _forms(word: str) -> set[str]:
    """The word and its possible singulars ("talles" -> "talle", "devoluciones" -> "devolucion")."""
    forms = {word}
    if len(word) > 3 and word.endswith("s"):
        forms.add(word[:-1])
    if len(word) > 4 and word.endswith("es"):
        forms.add(word[:-2])
    return forms


def score(text: str, keywords: tuple[str, ...]) -> int:
    """Points of ``text`` for one topic: 2 per phrase found, 1 per keyword word."""
    plain = f" {normalize(text)} "
    points = 0
    for phrase in (k for k in keywords if " " in k):
        pattern = f" {re.escape(phrase)} "
        found = len(re.findall(pattern, plain))
        if found:
            points += 2 * found
            plain = re.sub(pattern, "  ", plain)
    singles = {k for k in keywords if " " not in k}
    for word in plain.split():
        if _forms(word) & singles:
            points += 1
    return points


def best_topic(text: str) -> str | None:
    """The topic ``text`` is most clearly about, or None when unsure."""
    ranked = sorted(((score(text, topic["keywords"]), name) for name, topic in FAQ.items()),
                    reverse=True)
    (top, name), (second, _) = ranked[0], ranked[1]
    if top == 0 or top == second:
        return None
    return name


def match_faq(text: str, locale: str) -> str | None:
    """The FAQ answer to ``text`` in ``locale`` (Spanish when unknown), or None when unsure."""
    topic = best_topic(text or "")
    if topic is None:
        return None
    answers = FAQ[topic]["answers"]
    return answers.get((locale or DEFAULT_LOCALE)[:2].lower(), answers[DEFAULT_LOCALE])
