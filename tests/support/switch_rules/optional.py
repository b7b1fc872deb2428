"""A library flow, off by default: ``t.hello`` -> one message ``optional``."""

from __future__ import annotations

from bot.commands import exit_flow, send
from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("t_optional", triggers=("t.hello",), marketing=False, on_by_default=False,
            steps={"optional": "send"},
            edges=(("started", "optional"), ("optional", "exit:done")))

with ruleset(FLOW.name):

    @when_all(m.type == "t.hello")
    def optional(c):
        send(c, "optional", step="optional")
        exit_flow(c, "done")
