"""Clicked: a flow that starts when a customer clicks a link in one of our e-mails.

Shows that opens and clicks reach flows as events (``email.clicked``, with
``data.url``), as the contract says; transactional, so consent does not
get in the way of what the e-mail tests check.
"""

from __future__ import annotations

from bot.commands import exit_flow, send
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("clicked", triggers=("email.clicked",), marketing=False)

with ruleset(FLOW.name):

    @when_all(m.type == "email.clicked")
    def thanks(c):
        send(c, f"Gracias por mirar {c.m.url}", step="thanks")
        exit_flow(c, "thanked")
