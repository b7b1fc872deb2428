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


class RuleShapeError(TypeError):
    """A rule that would wait for more than one event: refused where it is written."""


def when_all(*conditions: Any) -> Callable[[Action], Action]:
    """Run the decorated rule when its condition holds (durable's ``when_all``).

    One condition on one event: tests on that event are joined with ``&``.
    durable_rules reads ``when_all(a, b)`` as two *events*, the first kept as
    partly matched until a second arrives; ``count``, ``none`` and nested
    ``all``/``any`` wait for events in the same way. The runtime decides
    one event at a time and drops the customer's engine state after each
    (``bot.core.engine``), and durable_rules 2.0.28 corrupts its heap when
    a state holding a partly matched event is deleted: the worker dies
    (``free(): invalid pointer``), and the input, processed again after the
    restart, would kill it again. Such a rule is refused here,
    when its module is imported, so ``load_flows`` names the flow and line.

    Raises:
        RuleShapeError: not exactly one condition on the event.
    """
    if len(conditions) != 1 or not isinstance(conditions[0], durable_lang.value):
        shown = ", ".join(type(c).__name__ for c in conditions) or "nothing"
        raise RuleShapeError(
            f"when_all takes one condition on one event, got {len(conditions)} ({shown}): "
            "rules here match a single event; join its tests with &, as in "
            "when_all((m.type == 'order.placed') & (m.total > 100))")
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
