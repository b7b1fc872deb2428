"""Back in stock: tell the customers who wanted a product that it is available again.

A library flow: off until the store names it in ``FLOWS`` (``on_by_default=False``).

- **Trigger**: ``product.back_in_stock`` (``product_id`` or ``sku``;
  ``title``, ``url`` and ``price`` when the store gives them). The service
  expands it to every interested customer (``Runtime.fanout_pass``): those
  who viewed the product (``product.viewed``) or had it in a cart
  (``checkout.started`` lines), and the event's own customer, e.g. a
  "notify me" sign-up posted to ``POST /events``. Marketing (needs consent).
  One product per run: a restock of another product during a run is left
  out (the next run can tell it). A product the customer was told about in
  the last ``RETELL_DAYS`` (30) is not announced again (``already_told``),
  since a store may report one restock more than once.
- **Steps**:
  1. ``notify``: "{product} is back", with the link.
  2. ``reminder``: ``BACK_IN_STOCK_REMINDER_DAYS`` (2; timing
     ``reminder_after``) after the notice,
     one reminder, unless they bought it since the notice (the purchase
     facts: ``last_order_items``, ``last_order_at``); a purchase of it
     before the notice does not count.
  3. ``last_chance``: ``BACK_IN_STOCK_LAST_CHANCE_DAYS`` (5; timing
     ``last_chance_after``) after the
     notice, a last-chance message (same condition), exit ``last_chance``.
- **Exits**: an ``order.placed`` with the product among its lines (by
  ``product_id`` or ``sku``) ends the run silently (``purchased``); an
  order of other products does not. The purchase facts are checked again
  before each later message (``purchased`` too). Opt-out: the run goes on,
  the send policy skips its messages. An agent holding the conversation:
  messages due meanwhile are skipped by the policy.
- **WhatsApp templates**: ``back_in_stock_notify``,
  ``back_in_stock_reminder``, ``back_in_stock_last_chance``, each
  {{1}}=first name {{2}}=product {{3}}=link.

```mermaid
stateDiagram-v2
    [*] --> notify: product.back_in_stock
    [*] --> [*]: told in the last 30 days (already_told)
    notify --> reminder: reminder_days, not bought
    notify --> [*]: order.placed with the product, any step (purchased)
    reminder --> last_chance: last_chance_days after the notice, not bought
    last_chance --> [*]: last_chance
```
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.commands import after, customer, days, exit_flow, send, set_attr, timing
from bot.flows import Flow, m, ruleset, when_all
from rules._library import setting_days
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "notify": "¡Buenas noticias, {first_name}! Volvió {product}: {url}",
        "reminder": "Hola, {first_name}. {product} sigue disponible, pero vuela: {url}",
        "last_chance": "Última oportunidad, {first_name}: quedan pocas unidades de {product}. "
                       "{url}",
        "the_product": "el producto que te gustó",
        "the_store": "en nuestra tienda",
        "customer": "cliente",
    },
    "pt": {
        "notify": "Boa notícia, {first_name}! {product} voltou: {url}",
        "reminder": "Olá, {first_name}. {product} continua disponível, mas está saindo rápido: "
                    "{url}",
        "last_chance": "Última chance, {first_name}: restam poucas unidades de {product}. {url}",
        "the_product": "o produto que você gostou",
        "the_store": "na nossa loja",
        "customer": "cliente",
    },
    "en": {
        "notify": "Good news, {first_name}! {product} is back: {url}",
        "reminder": "Hi {first_name}. {product} is still available, but going fast: {url}",
        "last_chance": "Last chance, {first_name}: only a few {product} left. {url}",
        "the_product": "the product you liked",
        "the_store": "at our store",
        "customer": "there",
    },
}

FLOW = Flow(
    "back_in_stock",
    triggers=("product.back_in_stock",),
    reentry_after=0,
    marketing=True,
    on_by_default=False,
    templates={
        "notify": "back_in_stock_notify",
        "reminder": "back_in_stock_reminder",
        "last_chance": "back_in_stock_last_chance",
    },
    steps={"notify": "send", "reminder": "send", "last_chance": "send"},
    edges=(
        ("started", "notify", "product.back_in_stock"),
        ("started", "exit:already_told", "told in the last 30 days"),
        ("notify", "reminder", "reminder_days, not bought"),
        ("notify", "exit:purchased", "order.placed with the product, any step"),
        ("reminder", "last_chance", "last_chance_days after the notice, not bought"),
        ("last_chance", "exit:last_chance"),
    ),
    description="A product someone wanted is back: a notice, one reminder, a last chance.",
)

RETELL_DAYS = 30  # a product told about is not announced again to the customer within this
MAX_TOLD = 20  # products remembered in attr back_in_stock_told
# The store's flow settings file ([flows.back_in_stock.timings]) wins over the settings.
TIMINGS = {"reminder_after": days(2), "last_chance_after": days(5)}


def product_of(c: Any) -> str:
    """The product an event names: its id, else its SKU ("" when neither)."""
    return str(c.m.product_id or c.m.sku or "")


def told_recently(c: Any, product: str, now: datetime) -> bool:
    told = (customer(c)["attrs"].get("back_in_stock_told") or {}).get(product)
    return bool(told) and now - datetime.fromisoformat(str(told)) < timedelta(days=RETELL_DAYS)


def remember_told(c: Any, product: str, now: datetime) -> None:
    """Keep when the customer was told about ``product`` (the latest ``MAX_TOLD`` products)."""
    told = dict(customer(c)["attrs"].get("back_in_stock_told") or {})
    told.pop(product, None)
    told[product] = now.isoformat()
    set_attr(c, "back_in_stock_told", dict(list(told.items())[-MAX_TOLD:]))


def bought(c: Any) -> bool:
    """Whether the customer bought the run's product since the notice (the purchase facts:
    an earlier purchase of it is why many want it again, and no reason to stay quiet)."""
    facts = customer(c)
    lines = {str(item.get(key)) for item in facts["last_order_items"]
             for key in ("product_id", "sku") if item.get(key)}
    return (str(c.s.product) in lines and bool(facts["last_order_at"])
            and datetime.fromisoformat(facts["last_order_at"])
            >= datetime.fromisoformat(str(c.s.notified_at)))


def message(c: Any, key: str) -> tuple[str, tuple[str, list[str]]]:
    """Text ``key`` ("notify", "reminder", "last_chance") about the run's product, and its
    template; the rules send it with their own literal ``step=`` (the declarations test)."""
    product = str(c.s.title or say(c, TEXTS, "the_product"))
    url = str(c.s.url or say(c, TEXTS, "the_store"))
    return (say(c, TEXTS, key, product=product, url=url),
            (FLOW.templates[key], [template_name(c, TEXTS), product, url]))


with ruleset(FLOW.name):

    @when_all(m.type == "product.back_in_stock")
    def back_in_stock(c):
        if c.s.notified:
            return  # one product per run
        product = product_of(c)
        now = datetime.fromisoformat(str(c.m.at))
        if product and told_recently(c, product, now):
            exit_flow(c, "already_told")
            return
        c.s.notified = True
        c.s.notified_at = now.isoformat()
        c.s.product = product
        c.s.title = str(c.m.title or "")
        c.s.url = str(c.m.url or "")
        if product:
            remember_told(c, product, now)
        text, template = message(c, "notify")
        send(c, text, step="notify", template=template)
        after(c, timing(c, "reminder_after",
                        setting_days(c, "back_in_stock_reminder_days", 2)),
              {"type": "back_in_stock.reminder"})
        after(c, timing(c, "last_chance_after",
                        setting_days(c, "back_in_stock_last_chance_days", 5)),
              {"type": "back_in_stock.last_chance"})

    @when_all(m.type == "order.placed")
    def order_placed(c):
        lines = [item for item in (c.m["items"] or []) if isinstance(item, dict)]
        ids = {str(item.get(key)) for item in lines for key in ("product_id", "sku")
               if item.get(key)}
        if c.s.product and c.s.product in ids:
            exit_flow(c, "purchased")

    @when_all(m.type == "back_in_stock.reminder")
    def reminder(c):
        if bought(c):
            exit_flow(c, "purchased")
        else:
            text, template = message(c, "reminder")
            send(c, text, step="reminder", template=template)

    @when_all(m.type == "back_in_stock.last_chance")
    def last_chance(c):
        if bought(c):
            exit_flow(c, "purchased")
        else:
            text, template = message(c, "last_chance")
            send(c, text, step="last_chance", template=template)
            exit_flow(c, "last_chance")
