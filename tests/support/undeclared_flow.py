"""A flow whose rules use a step its declaration lacks: the declared-steps check must catch it.

Not in a flows package: the tests read its source and its ``FLOW`` directly.
"""

from __future__ import annotations

from bot.commands import ask, exit_flow, send, step
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow(
    "t_undeclared",
    triggers=("t.go",),
    marketing=False,
    steps={"hello": "send", "orphan": "send"},
    edges=(("started", "hello", "t.go"), ("hello", "exit:done")),
)

with ruleset(FLOW.name):

    @when_all(m.type == "t.go")
    def go(c):
        send(c, "hola", step="hello")
        ask(c, "¿y?", name="followup")  # its step is the question's name: not declared
        step(c, "noted", "ok")  # not declared either
        send(c, "sin paso")  # no step=: would record send<n>
        exit_flow(c, "left")  # no edge to exit:left
