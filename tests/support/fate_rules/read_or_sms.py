"""Read or SMS: "if not read in 2 days, send by SMS instead" (``watch``).

- Trigger: ``product.viewed``; ``offer`` on WhatsApp (template ``promo_offer``
  outside the window), watched until ``read`` for 2 days.
- ``message.read`` -> exit ``read``; ``message.timeout`` or ``message.failed``
  -> ``sms`` by SMS, exit ``sms`` (after a failure the run stays open, so
  that a timeout still owed would show).
"""

from __future__ import annotations

from bot.commands import days, exit_flow, send, watch
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("read_or_sms", triggers=("product.viewed",), reentry_after=0, marketing=True,
            templates={"offer": "promo_offer"})

with ruleset(FLOW.name):

    @when_all(m.type == "product.viewed")
    def offer(c):
        send(c, "OFERTA", step="offer", channel="whatsapp")
        watch(c, "offer", until="read", timeout=days(2))

    @when_all(m.type == "message.read")
    def read(c):
        exit_flow(c, "read")

    @when_all(m.type == "message.timeout")
    def not_read(c):
        send(c, f"OFERTA por SMS ({c.m.step})", step="sms", channel="sms")
        exit_flow(c, "sms")

    @when_all(m.type == "message.failed")
    def failed(c):
        # The run stays open: a timeout after this would send a second SMS.
        send(c, f"OFERTA por SMS ({c.m.step}, fallida)", step="sms", channel="sms")
