"""Promo: a marketing message on every channel at once, for each ``product.viewed``.

The consent fuzz needs a flow that *tries* to send marketing on WhatsApp,
SMS and Telegram whenever the driver asks, so that every interleaving of
consent changes is tested against an actual send attempt on each channel.
The text carries ``PROMO <product_id>``; outside WhatsApp's 24-hour window
the step goes out as the template ``promo_offer``.
"""

from __future__ import annotations

from bot.commands import exit_flow, send
from bot.flows import Flow, m, ruleset, when_all

CHANNELS = ("whatsapp", "telegram", "sms")
TEMPLATE = "promo_offer"
FLOW = Flow("promo", triggers=("product.viewed",), reentry_after=0, marketing=True,
            templates={f"offer_{channel}": TEMPLATE for channel in CHANNELS})

with ruleset(FLOW.name):

    @when_all(m.type == "product.viewed")
    def offer(c):
        tag = str(c.m.product_id or "")
        for channel in CHANNELS:
            send(c, f"PROMO {tag} {channel}", step=f"offer_{channel}", channel=channel,
                 template=(TEMPLATE, [tag]))
        exit_flow(c, "sent")
