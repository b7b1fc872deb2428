"""A tiny flow that reads the purchase facts, for ``tests/bot/test_purchases.py``.

It branches on ``m.customer.orders_count`` in its conditions and copies
``customer(c)``'s purchase facts into an attribute in its actions, so a test
sees what rules see. Here and not in a test module: a durable ruleset must
be defined once.
"""

from __future__ import annotations

from bot.commands import customer, exit_flow, set_attr
from bot.flows import Flow, m, ruleset, when_all

FACTS = ("orders_count", "first_order_at", "last_order_at", "total_spent", "products_bought",
         "categories_bought", "last_order_items")

FLOW = Flow(
    "t_purchase_facts",
    triggers=("order.placed",),
    marketing=False,
    edges=(("started", "exit:first", "order.placed"), ("started", "exit:repeat")),
)

with ruleset(FLOW.name):

    @when_all((m.type == "order.placed") & (m.customer.orders_count < 2))
    def first(c):
        set_attr(c, "seen", {name: customer(c)[name] for name in FACTS})
        exit_flow(c, "first")

    @when_all((m.type == "order.placed") & (m.customer.orders_count >= 2))
    def repeat(c):
        set_attr(c, "seen", {name: customer(c)[name] for name in FACTS})
        exit_flow(c, "repeat")
