"""Offers: one marketing send per ``product.viewed``, shaped by the event's ``mode``.

- ``chain``: ``send(..., channels=("whatsapp", "sms"))``, the fallback chain;
- ``burst``: five messages on WhatsApp at once (per-recipient pacing);
- anything else: one message on the first consented channel.

Outside WhatsApp's window the offer goes as the template ``promo_offer``.
A failed send is recorded as the step ``failure_seen``.
"""

from __future__ import annotations

from bot.commands import exit_flow, send, step
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("offers", triggers=("product.viewed",), reentry_after=0, marketing=True,
            templates={"offer": "promo_offer"})

with ruleset(FLOW.name):

    @when_all(m.type == "product.viewed")
    def offer(c):
        product = str(c.m.product_id or "")
        mode = str(c.m.mode or "")
        if mode == "chain":
            send(c, f"OFERTA {product}", step="offer", channels=("whatsapp", "sms"))
        elif mode == "burst":
            for n in range(5):
                send(c, f"MENSAJE {n}", step=f"burst{n}", channel="whatsapp")
            exit_flow(c, "sent")
        else:
            send(c, f"OFERTA {product}", step="offer")

    @when_all(m.type == "message.failed")
    def failed(c):
        step(c, "failure_seen", "failed")
        exit_flow(c, "failed")
