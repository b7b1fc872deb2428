"""durable_rules' rule-writing words, typed once so flows need no ignore per rule.

durable_rules ships no type hints: under mypy its ``when_all`` is an untyped
decorator, which makes every rule an untyped function. Flows import these
names instead (through ``bot.flows``); they are the same objects at run time
but for ``when_all``, a function that registers the rule with durable_rules
exactly as its own decorator does and hands back the function itself::

    from bot.flows import Context, Flow, m, ruleset, when_all

    with ruleset(FLOW.name):

        @when_all(m.type == "order.placed")
        def placed(c: Context) -> None:
            send(c, "¡Gracias!", step="thanks")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from durable import lang as durable_lang


class Context(Protocol):
    """What a rule receives (durable_rules' ``Closure``), as rules use it.

    ``m`` is the event that matched and ``s`` the customer's state in this
    flow, both attribute-style dicts whose fields are the flow's own (a
    missing one reads as None), hence ``Any``.
    """

    m: Any
    s: Any


Action = Callable[[Context], None]

# durable_rules' condition builder: ``m.type == "x"``, ``(a) & (b)``. Every
# operator is overloaded to build a condition, so there is nothing to check.
m: Any = durable_lang.m


def when_all(*conditions: Any) -> Callable[[Action], Action]:
    """Run the decorated rule when every condition holds (durable's ``when_all``)."""
    rule = durable_lang.when_all(*conditions)

    def register(action: Action) -> Action:
        rule(action)
        return action

    return register


@contextmanager
def ruleset(name: str) -> Iterator[None]:
    """Collect the rules defined inside the block as the ruleset ``name``."""
    with durable_lang.ruleset(name):
        yield
