"""Browse abandonment: someone looked at something twice and added nothing to a cart.

Off by default: a store switches it on by naming it in ``FLOWS``.

- **Trigger**: ``product.viewed`` (``data``: ``product_id`` or ``sku``, and
  ``title``, ``url``, ``category`` when the store knows them; a category page
  can be reported as a ``product.viewed`` with only ``category``). Marketing
  (needs consent). The first view opens a window of ``BROWSE_WINDOW_HOURS``
  (24) in which views are counted, per product and per category.
- **Steps**:
  1. ``viewed``: recorded at the first view; the window starts.
  2. At the end of the window, if one product (or, failing that, one
     category) was viewed at least twice and no cart was started: ``nudge``,
     ONE helpful message naming it (with its link when the view carried one)
     and inviting questions, which the inbox flow answers. Ends ``nudged``.
     Nothing viewed twice: ends ``browsed`` silently.
- **Exits**: ``cart.updated`` or ``checkout.started`` in the window ends the run
  silently (``carted``: cart recovery takes over), ``order.placed`` too
  (``purchased``). No channel with consent left at the window's end:
  ``opted_out``. While a person holds the conversation the send policy holds
  the message (skipped, reason recorded).
- **Frequency**: at most one message per ``BROWSE_REENTRY_DAYS`` (7). The time
  of the last one is the customer's attribute ``browse_abandonment_sent_at``;
  a view within that time starts a run that only rests (``resting``) until
  the time is up, taking the views meanwhile, and ends ``rested``. Why not
  ``Flow.reentry_after``: it would also hold back customers whose window
  ended without a message, and it is no setting.
- **WhatsApp template**: ``browse_abandonment_help`` {{1}}=first name
  {{2}}=what they looked at.

```mermaid
stateDiagram-v2
    [*] --> viewed: product.viewed
    [*] --> resting: a message in the last 7 days
    resting --> [*]: 7 days after it (rested)
    viewed --> nudge: 24 h, viewed twice, no cart
    viewed --> [*]: 24 h, nothing viewed twice (browsed)
    viewed --> [*]: cart.updated / checkout.started (carted)
    viewed --> [*]: order.placed (purchased)
    viewed --> [*]: no consent left (opted_out)
    nudge --> [*]: nudged
```
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.commands import after, customer, days, exit_flow, hours, send, set_attr, step, timing
from bot.flows import Context, Flow, m, ruleset, when_all
from rules._library import moment, reachable, setting_days, setting_hours
from rules._texts import say, template_name

TEXTS = {
    "es": {
        "nudge": "¡Hola, {first_name}! Vimos que te interesó {what}. ¿Te quedó alguna duda "
                 "sobre talles, envío o pagos? Respóndenos por aquí y te ayudamos.",
        "link": "Aquí lo tienes: {url}",
        "category": "lo que tenemos de {category}",
        "product": "un producto",
        "customer": "cliente",
    },
    "pt": {
        "nudge": "Olá, {first_name}! Vimos que você se interessou por {what}. Ficou alguma "
                 "dúvida sobre tamanhos, frete ou pagamento? Responda por aqui que ajudamos.",
        "link": "Aqui está: {url}",
        "category": "o que temos de {category}",
        "product": "um produto",
        "customer": "cliente",
    },
    "en": {
        "nudge": "Hi {first_name}! We saw you were interested in {what}. Any question about "
                 "sizes, shipping or payment? Reply here and we will help.",
        "link": "Here it is: {url}",
        "category": "our {category}",
        "product": "a product",
        "customer": "there",
    },
}

FLOW = Flow(
    "browse_abandonment",
    triggers=("product.viewed",),
    reentry_after=0,
    marketing=True,
    on_by_default=False,
    templates={"nudge": "browse_abandonment_help"},
    steps={"viewed": "record", "resting": "record", "nudge": "send"},
    edges=(
        ("started", "viewed", "product.viewed"),
        ("started", "resting", "a message in the last 7 days"),
        ("resting", "exit:rested", "7 days after it"),
        ("viewed", "nudge", "24 h, viewed twice, no cart"),
        ("viewed", "exit:browsed", "24 h, nothing viewed twice"),
        ("viewed", "exit:carted", "cart.updated / checkout.started"),
        ("viewed", "exit:purchased", "order.placed"),
        ("viewed", "exit:opted_out", "no consent left"),
        ("nudge", "exit:nudged"),
    ),
    description="Viewed a product or category twice without a cart: one helpful message.",
)

# The waits a store may change (flow settings file, [flows.browse_abandonment.timings]);
# they win over BROWSE_WINDOW_HOURS and BROWSE_REENTRY_DAYS.
TIMINGS = {"window": hours(24), "rest": days(7)}
SENT_AT = "browse_abandonment_sent_at"  # the customer attribute: the last message's time


def rest_until(c: Context, now: datetime) -> datetime | None:
    """When the customer may get the next message, if that is still ahead."""
    sent = moment(customer(c)["attrs"].get(SENT_AT))
    if sent is None:
        return None
    rest = timing(c, "rest", setting_days(c, "browse_reentry_days", 7))
    until = sent + timedelta(seconds=rest)
    return until if until > now else None


def views(c: Context) -> dict[str, Any]:
    """The window's views: ``{"products": {id: {views, title, url}}, "categories": {name: n}}``.

    Kept as JSON text in the flow's state: durable_rules hands nested
    objects back as its own proxies, which are no dicts.
    """
    saved: dict[str, Any] = json.loads(str(c.s.views or "{}"))
    return {"products": saved.get("products", {}), "categories": saved.get("categories", {})}


def count_view(c: Context) -> None:
    """Count this view for its product and its category, keeping the latest title and link."""
    seen = views(c)
    product = str(c.m.product_id or c.m.sku or "")
    if product:
        entry = seen["products"].get(product) or {"views": 0, "title": "", "url": ""}
        seen["products"][product] = {"views": int(entry["views"]) + 1,
                                     "title": str(c.m.title or c.m.name or entry["title"]),
                                     "url": str(c.m.url or entry["url"])}
    category = str(c.m.category or "")
    if category:
        seen["categories"][category] = int(seen["categories"].get(category) or 0) + 1
    c.s.views = json.dumps(seen, sort_keys=True)


def viewed_twice(c: Context) -> tuple[str, str] | None:
    """(what to name, its link) for the most viewed product seen twice, else such a category."""
    seen = views(c)
    products = [(int(p["views"]), str(p["title"]), str(p["url"]))
                for p in seen["products"].values() if int(p["views"]) >= 2]
    if products:
        _, title, url = max(products, key=lambda p: p[0])
        return title or say(c, TEXTS, "product"), url
    categories = [(int(n), name) for name, n in seen["categories"].items() if int(n) >= 2]
    if categories:
        _, name = max(categories)
        return say(c, TEXTS, "category", category=name), ""
    return None


def nudge(c: Context, what: str, url: str) -> None:
    text = say(c, TEXTS, "nudge", what=what)
    if url:
        text = f"{text}\n{say(c, TEXTS, 'link', url=url)}"
    send(c, text, step="nudge",
         template=(FLOW.templates["nudge"], [template_name(c, TEXTS), what]))
    set_attr(c, SENT_AT, str(c.m.at))


with ruleset(FLOW.name):

    @when_all(m.type == "product.viewed")
    def product_viewed(c: Context) -> None:
        if c.s.phase == "watching":
            count_view(c)
            return
        if c.s.phase == "resting":
            return
        now = moment(c.m.at)
        assert now is not None  # every event carries the decision's time
        until = rest_until(c, now)
        if until is not None:
            c.s.phase = "resting"
            step(c, "resting", "ok", until=until.isoformat())
            after(c, at=until, event={"type": "browse.rested"}, key="rest")
            return
        c.s.phase = "watching"
        step(c, "viewed", "ok")
        count_view(c)
        window = timing(c, "window", setting_hours(c, "browse_window_hours", 24))
        after(c, window, {"type": "browse.window_end"}, key="window")

    @when_all(m.type == "browse.rested")
    def rested(c: Context) -> None:
        exit_flow(c, "rested")

    @when_all(m.type == "order.placed")
    def order_placed(c: Context) -> None:
        if c.s.phase == "watching":
            exit_flow(c, "purchased")

    @when_all((m.type == "cart.updated") | (m.type == "checkout.started"))
    def cart_started(c: Context) -> None:
        if c.s.phase == "watching":
            exit_flow(c, "carted")

    @when_all(m.type == "browse.window_end")
    def window_end(c: Context) -> None:
        found = viewed_twice(c)
        if found is None:
            exit_flow(c, "browsed")
        elif not reachable(c):
            exit_flow(c, "opted_out")
        else:
            nudge(c, *found)
            exit_flow(c, "nudged")
