"""The flow author's import path, kept stable: the code lives in ``bot.core.flows``.

durable_rules' words (``ruleset``, ``when_all``, ``m``) come typed from
``bot.core.rulesets``, so a flow's rules type-check with no ignore.
"""

from bot.core.flows import (
    Flow,
    FlowLoadError,
    load_flows,
)
from bot.core.rulesets import Context, m, ruleset, when_all

__all__ = [
    'Context',
    'Flow',
    'FlowLoadError',
    'load_flows',
    'm',
    'ruleset',
    'when_all',
]
