"""A flow module with a mistake in it, for the start-up test."""

from bot.flows import Flow

FLOW = Flow("bad_flow", triggers=("order.placed",))
raise NameError("name 'sned' is not defined")  # the author's typo
