"""Ping: ``customer.created`` -> wait ``data.delay`` seconds -> one SMS "ping <n>".

Transactional, so consent and the WhatsApp window do not get in the way of
what the process tests check: that a wait fires once and its message goes
out once, whatever happens to the processes.
"""

from __future__ import annotations

from bot.commands import after, exit_flow, send
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("ping", triggers=("customer.created",), marketing=False)

with ruleset(FLOW.name):

    @when_all(m.type == "customer.created")
    def schedule(c):
        c.s.n = c.m.n
        after(c, float(c.m.delay), {"type": "ping.due"})

    @when_all(m.type == "ping.due")
    def ping(c):
        send(c, f"ping {c.s.n}", channel="sms")
        exit_flow(c, "pinged")
