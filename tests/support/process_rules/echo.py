"""Echo: answers every customer message; "humano" asks for a person.

A transactional chat used by the channel and agent-API tests: what the
customer writes comes back as "eco: <text>" on the same channel.
"""

from __future__ import annotations

from bot.commands import handoff, send
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("echo", triggers=("message",), marketing=False, receives_messages=True)

with ruleset(FLOW.name):

    @when_all((m.type == "message") & (m.text == "humano"))
    def human(c):
        send(c, "Te paso con una persona.")
        handoff(c, "pidió hablar con una persona")

    @when_all(m.type == "message")
    def echo(c):
        send(c, f"eco: {c.m.text}" + (f" [{c.m.choice}]" if c.m.choice else ""))
