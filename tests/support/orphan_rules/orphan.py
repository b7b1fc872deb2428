"""Declares a flow but forgets its ruleset."""

from bot.flows import Flow

FLOW = Flow("orphan_without_ruleset", triggers=("order.placed",))
