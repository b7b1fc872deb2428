"""Notify: marketing messages a flow starts on its own (no customer message first).

``order.fulfilled`` -> "shipped" (has a WhatsApp template, so it goes out as
the template outside the 24-hour window); ``product.back_in_stock`` ->
"restock" (no template: skipped on WhatsApp outside the window).
"""

from __future__ import annotations

from bot.commands import exit_flow, send
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("notify", triggers=("order.fulfilled", "product.back_in_stock"),
            templates={"shipped": "order_shipped"})

with ruleset(FLOW.name):

    @when_all(m.type == "order.fulfilled")
    def shipped(c):
        send(c, f"Tu pedido {c.m.order_id} ya salió.", step="shipped")
        exit_flow(c, "sent")

    @when_all(m.type == "product.back_in_stock")
    def restock(c):
        send(c, "¡Volvió el producto que mirabas!", step="restock")
        exit_flow(c, "sent")
