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
from contextvars import ContextVar
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


_loading_version: ContextVar[str | None] = ContextVar("loading_version", default=None)


def versioned_name(name: str, version: str) -> str:
    """The ruleset of an earlier version of flow ``name``, beside the current one."""
    return f"{name}@{version}"


@contextmanager
def loading_version(version: str) -> Iterator[None]:
    """While an earlier version's module runs, its rulesets take ``versioned_name``.

    durable_rules keeps rulesets in one global host by name, so the
    current ``cart_recovery`` and the one a run started on can only live
    side by side under two names (``bot.runtime.flow_versions``).
    """
    token = _loading_version.set(version)
    try:
        yield
    finally:
        _loading_version.reset(token)


@contextmanager
def ruleset(name: str) -> Iterator[None]:
    """Collect the rules defined inside the block as the ruleset ``name``."""
    version = _loading_version.get()
    with durable_lang.ruleset(name if version is None else versioned_name(name, version)):
        yield
