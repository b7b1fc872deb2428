"""``when_all`` with two conditions: durable_rules would wait for two events."""

from bot.flows import Flow, m, ruleset, when_all

FLOW = Flow("two_events", triggers=("order.placed",))

with ruleset(FLOW.name):

    @when_all(m.type == "order.placed", m.total > 100)
    def big_order(c: object) -> None:
        pass
