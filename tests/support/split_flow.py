"""A tiny flow that splits its runs in two, for the split tests (``tests/bot/test_split.py``).

Here and not in a test module: a module that defines a durable ruleset must
be imported once, and tests import builders only from ``tests/support``.
"""

from __future__ import annotations

from bot.commands import exit_flow, send, split
from bot.flows import Flow, m, ruleset, when_all

WEIGHTS = {"a": 50, "b": 50}
TEXTS = {"a": "Hola (A)", "b": "Hola (B)"}

FLOW = Flow(
    "t_split",
    triggers=("t.split",),
    marketing=False,
    steps={"greeting_test": "record", "hello": "send", "again": "send"},
    edges=(("started", "greeting_test", "t.split"), ("greeting_test", "hello"),
           ("hello", "again", "t.again"), ("again", "exit:done")),
)

with ruleset(FLOW.name):

    @when_all(m.type == "t.split")
    def start(c):
        variant = split(c, "greeting_test", WEIGHTS)
        send(c, TEXTS[variant], step="hello")

    @when_all(m.type == "t.again")
    def again(c):
        variant = split(c, "greeting_test", WEIGHTS)  # the same run: the same variant
        send(c, f"otra vez {TEXTS[variant]}", step="again")
        exit_flow(c, "done")
