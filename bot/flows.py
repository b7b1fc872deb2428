"""The flow author's import path, kept stable: the code lives in ``bot.core.flows``."""

from bot.core.flows import (
    Flow,
    FlowLoadError,
    load_flows,
)

__all__ = [
    'Flow',
    'FlowLoadError',
    'load_flows',
]
