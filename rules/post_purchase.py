"""Post-purchase series: thanks with the order, its shipping, then reviews and a cross-sell.

A library flow: off until the store names it in ``FLOWS`` (``on_by_default=False``).

- **Trigger**: ``order.placed`` (``order_id``, ``order_number``, ``total``,
  ``currency``, ``items``: each line's ``product_id``/``sku``, ``title``,
  ``quantity``, ``category``). Marketing (needs consent; a customer with no
  consented channel gets no run, so no shipping message either).
- **Steps**:
  1. ``thanks``: a thank-you with the order summary (up to three lines
     "2 × Mate imperial", "and N more", and the total).
  2. ``shipping``: on ``order.fulfilled`` of an order of this run, its
     status with the tracking link the adapters parse (``tracking_url``,
     else ``status_url``; company and number when given). Transactional:
     it goes without marketing consent and outside quiet hours. Once per
     order; a fulfilment of an order this run did not see is left alone.
  3. ``review``: ``REVIEW_AFTER_DAYS`` (30; timing ``review_after``) after
     the run's last order, one
     review request per product bought in the run (at most
     ``MAX_REVIEWS``), with the ``REVIEW_URL`` link; an order without
     lines gets one request for the order as a whole.
  4. ``cross_sell``: products related to the categories bought
     (``RELATED_PRODUCTS``, JSON ``{"category": ["product id or name",
     ...]}``, categories compared without case), leaving out every product
     the customer ever bought (``products_bought``) or bought in this run,
     by id or name; at most ``MAX_SUGGESTIONS``. Nothing related left: no
     message. Then exit ``reviewed``.
- **A new order during the run** does not start a second series: it gets
  its own thank-you, its products join the reviews, and the month counts
  again from it (so a customer who keeps buying is asked once, a month
  after the last order). After the run ends, the next order starts a new one.
- **Exits**: ``reviewed``. Opt-out: the run goes on but the send policy
  skips its marketing (the shipping status still goes: it is
  transactional). An agent holding the conversation: every message due
  meanwhile is skipped by the policy. The NPS survey stays its own flow
  (``rules/post_purchase_survey.py``, on ``order.fulfilled``); this one
  asks no score.
- **WhatsApp templates**: ``post_purchase_thanks`` {{1}}=first name
  {{2}}=order summary, ``post_purchase_shipping`` {{1}}=first name
  {{2}}=order {{3}}=tracking link, ``post_purchase_review`` {{1}}=first name
  {{2}}=product {{3}}=review link, ``post_purchase_cross_sell``
  {{1}}=first name {{2}}=products.

```mermaid
stateDiagram-v2
    [*] --> thanks: order.placed
    thanks --> thanks: another order.placed
    thanks --> shipping: order.fulfilled (transactional)
    thanks --> review: review_after_days after the last order
    shipping --> review: review_after_days after the last order
    review --> cross_sell: related products not bought
    review --> [*]: nothing related (reviewed)
    cross_sell --> [*]: reviewed
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import after, config, customer, days, exit_flow, send, timing
from bot.flows import Flow, m, ruleset, when_all
from rules._library import setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "thanks": "¡Gracias por tu compra, {first_name}! Tu pedido {order}: {summary}. "
                  "Te avisamos cuando salga.",
        "thanks_plain": "¡Gracias por tu compra, {first_name}! Recibimos tu pedido {order}. "
                        "Te avisamos cuando salga.",
        "and_more": "y {n} producto(s) más",
        "total": "Total: {amount}",
        "shipping": "¡Tu pedido {order} ya está en camino, {first_name}! Síguelo aquí: {link}",
        "shipping_carrier": "¡Tu pedido {order} ya está en camino, {first_name}! "
                            "{carrier}. Síguelo aquí: {link}",
        "shipping_no_link": "¡Tu pedido {order} ya está en camino, {first_name}!",
        "no_link": "te escribimos cuando llegue",
        "review": "Hola, {first_name}. ¿Qué te pareció {product}? Tu opinión ayuda a otros "
                  "clientes: {url}",
        "your_order": "tu compra",
        "cross_sell": "Para acompañar tu compra, {first_name}, te puede gustar: {products}.",
        "and": "y",
        "customer": "cliente",
    },
    "pt": {
        "thanks": "Obrigado pela sua compra, {first_name}! Seu pedido {order}: {summary}. "
                  "Avisamos quando sair.",
        "thanks_plain": "Obrigado pela sua compra, {first_name}! Recebemos seu pedido {order}. "
                        "Avisamos quando sair.",
        "and_more": "e mais {n} produto(s)",
        "total": "Total: {amount}",
        "shipping": "Seu pedido {order} já está a caminho, {first_name}! Acompanhe aqui: {link}",
        "shipping_carrier": "Seu pedido {order} já está a caminho, {first_name}! "
                            "{carrier}. Acompanhe aqui: {link}",
        "shipping_no_link": "Seu pedido {order} já está a caminho, {first_name}!",
        "no_link": "avisamos quando chegar",
        "review": "Olá, {first_name}. O que achou de {product}? Sua opinião ajuda outros "
                  "clientes: {url}",
        "your_order": "sua compra",
        "cross_sell": "Para acompanhar sua compra, {first_name}, você pode gostar de: "
                      "{products}.",
        "and": "e",
        "customer": "cliente",
    },
    "en": {
        "thanks": "Thank you for your order, {first_name}! Your order {order}: {summary}. "
                  "We will tell you when it ships.",
        "thanks_plain": "Thank you for your order, {first_name}! We got your order {order}. "
                        "We will tell you when it ships.",
        "and_more": "and {n} more item(s)",
        "total": "Total: {amount}",
        "shipping": "Your order {order} is on its way, {first_name}! Track it here: {link}",
        "shipping_carrier": "Your order {order} is on its way, {first_name}! {carrier}. "
                            "Track it here: {link}",
        "shipping_no_link": "Your order {order} is on its way, {first_name}!",
        "no_link": "we will write when it arrives",
        "review": "Hi {first_name}. How do you like {product}? Your review helps other "
                  "customers: {url}",
        "your_order": "your order",
        "cross_sell": "To go with your order, {first_name}, you may like: {products}.",
        "and": "and",
        "customer": "there",
    },
}

FLOW = Flow(
    "post_purchase",
    triggers=("order.placed",),
    reentry_after=0,
    marketing=True,
    on_by_default=False,
    templates={
        "thanks": "post_purchase_thanks",
        "shipping": "post_purchase_shipping",
        "review": "post_purchase_review",
        "cross_sell": "post_purchase_cross_sell",
    },
    steps={"thanks": "send", "shipping": "send", "review": "send", "cross_sell": "send"},
    edges=(
        ("started", "thanks", "order.placed"),
        ("thanks", "thanks", "another order.placed"),
        ("thanks", "shipping", "order.fulfilled (transactional)"),
        ("thanks", "review", "review_after_days after the last order"),
        ("shipping", "review", "review_after_days after the last order"),
        ("review", "cross_sell", "related products not bought"),
        ("review", "exit:reviewed", "nothing related"),
        ("cross_sell", "exit:reviewed"),
    ),
    description="Thanks with the order, its shipping, then reviews and related products.",
)

SUMMARY_LINES = 3  # order lines named in the thank-you; the rest are counted
MAX_REVIEWS = 3  # review requests at most, one per product, in the order bought
MAX_SUGGESTIONS = 3  # related products offered at most
MAX_PRODUCTS = 20  # products of the run remembered
# The store's flow settings file ([flows.post_purchase.timings]) wins over REVIEW_AFTER_DAYS.
TIMINGS = {"review_after": days(30)}


def lines_of(c: Any) -> list[dict[str, Any]]:
    """The order's lines as dicts (``c.m.items`` is a method, hence the subscript)."""
    return [item for item in (c.m["items"] or []) if isinstance(item, dict)]


def order_label(c: Any) -> str:
    """How the customer knows the order: its number ("#1001"), else its id."""
    return str(c.m.order_number or c.m.order_id or "")


def summary(c: Any) -> str:
    """ "2 × Mate imperial, 1 × Bombilla y 1 producto(s) más. Total: ARS 42000.00";
    "" when the order has neither lines nor total."""
    named = []
    for item in lines_of(c):
        title = str(item.get("title") or item.get("sku") or "").strip()
        if title:
            quantity = item.get("quantity")
            named.append(f"{quantity} × {title}" if isinstance(quantity, int) else title)
    parts = [", ".join(named[:SUMMARY_LINES])] if named else []
    if len(named) > SUMMARY_LINES:
        parts.append(say(c, TEXTS, "and_more", n=len(named) - SUMMARY_LINES))
    text = " ".join(parts)
    if c.m.total is not None:
        amount = f"{c.m.currency} {c.m.total}" if c.m.currency else str(c.m.total)
        total = say(c, TEXTS, "total", amount=amount)
        text = f"{text}. {total}" if text else total
    return text


def remember_order(c: Any) -> None:
    """Keep the run's order ids and the products bought in it (id, title, category)."""
    c.s.orders = [*(c.s.orders or []), str(c.m.order_id or "")]
    products = list(c.s.products or [])
    known = {product["key"] for product in products}
    for item in lines_of(c):
        key = str(item.get("product_id") or item.get("sku") or item.get("title") or "")
        if key and key not in known:
            known.add(key)
            products.append({"key": key, "title": str(item.get("title") or key),
                             "category": str(item.get("category") or "")})
    c.s.products = products[-MAX_PRODUCTS:]


def related(c: Any) -> list[str]:
    """Products related to the run's categories that the customer has not bought."""
    mapping = {str(name).casefold(): list(names)
               for name, names in (config(c, "related_products") or {}).items()}
    products = list(c.s.products or [])
    bought = {str(name).casefold() for name in customer(c)["products_bought"]}
    bought |= {str(p[field]).casefold() for p in products for field in ("key", "title")}
    chosen: list[str] = []
    for category in dict.fromkeys(p["category"].casefold() for p in products if p["category"]):
        for name in mapping.get(category, []):
            if str(name).casefold() not in bought and name not in chosen:
                chosen.append(str(name))
    return chosen[:MAX_SUGGESTIONS]


def listing(c: Any, names: list[str]) -> str:
    """ "A, B y C" in the customer's language."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {say(c, TEXTS, 'and')} {names[-1]}"


with ruleset(FLOW.name):

    @when_all(m.type == "order.placed")
    def order_placed(c):
        remember_order(c)
        order, text = order_label(c), summary(c)
        thanks = say(c, TEXTS, "thanks", order=order, summary=text) if text else say(
            c, TEXTS, "thanks_plain", order=order)
        send(c, thanks, step="thanks",
             template=(FLOW.templates["thanks"], [template_name(c, TEXTS), text or order]))
        wait = timing(c, "review_after", setting_days(c, "review_after_days", 30))
        after(c, wait, {"type": "post_purchase.review"}, key="review")

    @when_all(m.type == "order.fulfilled")
    def order_fulfilled(c):
        order_id = str(c.m.order_id or "")
        if order_id not in (c.s.orders or []) or order_id in (c.s.shipped or []):
            return  # not an order of this run, or its shipment was already told
        c.s.shipped = [*(c.s.shipped or []), order_id]
        order = str(c.m.order_number or order_id)
        link = str(c.m.tracking_url or c.m.status_url or "")
        carrier = " ".join(str(part) for part in (c.m.tracking_company, c.m.tracking_number)
                           if part)
        if not link:
            text = say(c, TEXTS, "shipping_no_link", order=order)
        elif carrier:
            text = say(c, TEXTS, "shipping_carrier", order=order, carrier=carrier, link=link)
        else:
            text = say(c, TEXTS, "shipping", order=order, link=link)
        send(c, text, step="shipping", transactional=True,
             template=(FLOW.templates["shipping"],
                       [template_name(c, TEXTS), order, link or say(c, TEXTS, "no_link")]))

    @when_all(m.type == "post_purchase.review")
    def review_due(c):
        url = str(config(c, "review_url"))
        titles = [p["title"] for p in (c.s.products or [])][:MAX_REVIEWS]
        for title in titles or [say(c, TEXTS, "your_order")]:
            send(c, say(c, TEXTS, "review", product=title, url=url), step="review",
                 template=(FLOW.templates["review"], [template_name(c, TEXTS), title, url]))
        suggestions = related(c)
        if suggestions:
            products = listing(c, suggestions)
            send(c, say(c, TEXTS, "cross_sell", products=products), step="cross_sell",
                 template=(FLOW.templates["cross_sell"], [template_name(c, TEXTS), products]))
        exit_flow(c, "reviewed")
