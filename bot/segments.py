"""The flow author's import path for segments: the code lives in ``bot.core.segments``.

Test a segment in an action on ``customer(c)`` (see ``bot.core.segments``).
"""

from bot.core.segments import (
    Segment,
    and_,
    bought_category,
    bought_product,
    consented,
    no_order_since,
    not_,
    or_,
    orders_at_least,
    spent_over,
    tagged,
)

__all__ = [
    'Segment',
    'and_',
    'bought_category',
    'bought_product',
    'consented',
    'no_order_since',
    'not_',
    'or_',
    'orders_at_least',
    'spent_over',
    'tagged',
]
