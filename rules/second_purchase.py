"""Second purchase: a month after a first order with no second one, a tailored suggestion.

Off by default: a store switches it on by naming it in ``FLOWS``.

- **Trigger**: ``order.placed`` that is the customer's first order (the purchase
  facts say ``orders_count == 1`` once it is counted). Marketing (needs
  consent). One run per customer: a later order never starts it again
  (``not_first`` when the first order the flow sees is not the first one, as
  for a store that switches the flow on with customers who already bought).
- **Steps**:
  1. ``first_order``: recorded; waits ``SECOND_PURCHASE_AFTER_DAYS`` (30).
  2. ``suggestion``: one message tailored to what they bought: the most recent
     category of ``categories_bought``, else the title of the first line of
     ``last_order_items``, else a general one; with a single-use code
     (``issue_code(c, "second_purchase")``). Ends ``suggested``.
- **Exits**: a second ``order.placed`` during the wait ends the run silently
  (``second_order``). No channel with consent left when the month is up:
  ``opted_out``, nothing sent. While a person holds the conversation the
  send policy holds the suggestion (skipped, reason recorded).
- **WhatsApp template**: ``second_purchase_suggestion`` {{1}}=first name
  {{2}}=what they bought (category or product) {{3}}=code.

```mermaid
stateDiagram-v2
    [*] --> first_order: order.placed, the first
    [*] --> [*]: not the first order (not_first)
    first_order --> suggestion: 30 days, no second order
    first_order --> [*]: order.placed (second_order)
    first_order --> [*]: no consent left (opted_out)
    suggestion --> [*]: suggested
```
"""

from __future__ import annotations

from typing import Any

from bot.commands import after, customer, days, exit_flow, issue_code, send, step, timing
from bot.flows import Context, Flow, m, ruleset, when_all
from rules._library import reachable, setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "category": "¡Hola, {first_name}! ¿Qué tal tu compra? Si te gustó, tenemos más de "
                    "{what} que te pueden encantar. Para tu segunda compra usa el código "
                    "{code}.",
        "product": "¡Hola, {first_name}! ¿Qué tal {what}? Tenemos más productos que "
                   "combinan con lo que elegiste. Para tu segunda compra usa el código {code}.",
        "general": "¡Hola, {first_name}! ¿Qué tal tu compra? Tenemos novedades que te pueden "
                   "gustar. Para tu segunda compra usa el código {code}.",
        "something": "lo que elegiste",
        "customer": "cliente",
    },
    "pt": {
        "category": "Olá, {first_name}! Como foi sua compra? Se gostou, temos mais de "
                    "{what} que você vai adorar. Na sua segunda compra use o cupom {code}.",
        "product": "Olá, {first_name}! O que achou de {what}? Temos mais produtos que "
                   "combinam com o que você escolheu. Na sua segunda compra use o cupom "
                   "{code}.",
        "general": "Olá, {first_name}! Como foi sua compra? Temos novidades que podem te "
                   "interessar. Na sua segunda compra use o cupom {code}.",
        "something": "o que você escolheu",
        "customer": "cliente",
    },
    "en": {
        "category": "Hi {first_name}! How is your order? If you liked it, we have more "
                    "{what} you may love. Your second order gets a discount with the code "
                    "{code}.",
        "product": "Hi {first_name}! How do you like {what}? We have more that goes well with "
                   "it. Your second order gets a discount with the code {code}.",
        "general": "Hi {first_name}! How is your order? We have new things you may like. "
                   "Your second order gets a discount with the code {code}.",
        "something": "what you chose",
        "customer": "there",
    },
}

FLOW = Flow(
    "second_purchase",
    triggers=("order.placed",),
    reentry_after=None,
    marketing=True,
    on_by_default=False,
    templates={"suggestion": "second_purchase_suggestion"},
    steps={"first_order": "record", "suggestion": "send"},
    edges=(
        ("started", "first_order", "order.placed, the first"),
        ("started", "exit:not_first", "not the first order"),
        ("first_order", "suggestion", "30 days, no second order"),
        ("first_order", "exit:second_order", "order.placed"),
        ("first_order", "exit:opted_out", "no consent left"),
        ("suggestion", "exit:suggested"),
    ),
    description="A month after a first order with no second one: a suggestion with a code.",
)


# The wait a store may change (flow settings file, [flows.second_purchase.timings]);
# it wins over SECOND_PURCHASE_AFTER_DAYS.
TIMINGS = {"suggestion_after": days(30)}


def orders(c: Context) -> int:
    return int(customer(c)["orders_count"] or 0)


def bought(c: Context) -> tuple[str, str]:
    """(text key, what they bought): the latest category, else the product, else general."""
    facts: dict[str, Any] = customer(c)
    categories = [str(name) for name in facts["categories_bought"] or [] if name]
    if categories:
        return "category", categories[-1]
    titles = [str(item.get("title") or "") for item in facts["last_order_items"] or []
              if isinstance(item, dict) and item.get("title")]
    if titles:
        return "product", titles[0]
    return "general", say(c, TEXTS, "something")


with ruleset(FLOW.name):

    @when_all(m.type == "order.placed")
    def order_placed(c: Context) -> None:
        if c.s.waiting:
            if orders(c) > 1:  # not the first order delivered again (it counts once)
                exit_flow(c, "second_order")
        elif orders(c) != 1:
            exit_flow(c, "not_first")
        else:
            c.s.waiting = True
            step(c, "first_order", "ok", order_id=str(c.m.order_id or ""))
            wait = setting_days(c, "second_purchase_after_days", 30)
            after(c, timing(c, "suggestion_after", wait), {"type": "second_purchase.due"},
                  key="due")

    @when_all(m.type == "second_purchase.due")
    def month_later(c: Context) -> None:
        if orders(c) > 1:
            exit_flow(c, "second_order")
            return
        if not reachable(c):
            exit_flow(c, "opted_out")
            return
        key, what = bought(c)
        code = issue_code(c, "second_purchase")
        send(c, say(c, TEXTS, key, what=what, code=code), step="suggestion",
             template=(FLOW.templates["suggestion"], [template_name(c, TEXTS), what, code]))
        exit_flow(c, "suggested")
