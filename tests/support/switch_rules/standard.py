"""A flow on by default: ``t.hello`` -> one message ``hello`` (its text in ``TEXTS``)."""

from __future__ import annotations

from bot.commands import exit_flow, send
from bot.flows import Flow, m, ruleset, when_all
from rules._texts import say

TEXTS = {"es": {"hello": "Hola, {first_name}"}, "en": {"hello": "Hi {first_name}"}}
FLOW = Flow("t_standard", triggers=("t.hello",), marketing=False,
            steps={"hello": "send"}, edges=(("started", "hello"), ("hello", "exit:done")))

with ruleset(FLOW.name):

    @when_all(m.type == "t.hello")
    def hello(c):
        send(c, say(c, TEXTS, "hello"), step="hello")
        exit_flow(c, "done")
