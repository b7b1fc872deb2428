"""Segments: small tests of a customer's facts that rules compose.

A segment is a callable ``facts -> bool`` over the dict
:func:`bot.core.commands.customer` returns (the facts of
:func:`bot.core.customers.facts`, purchase history included). Segments
combine with ``&``, ``|`` and ``~`` (or :func:`and_`, :func:`or_`,
:func:`not_`), so a flow names its audience once and reads it as a
sentence::

    from bot.commands import customer, exit_flow, send
    from bot.segments import bought_category, consented, no_order_since, spent_over, tagged

    LAPSED_MATE_FANS = (bought_category("Mates") & spent_over(50000, "ARS")
                        & ~tagged("vip"))

    @when_all(m.type == "customer.inactive")
    def start(c):
        facts = customer(c)
        if not (LAPSED_MATE_FANS & no_order_since(90, c.m.at))(facts):
            exit_flow(c, "not_in_segment")
            return
        send(c, "...", step="offer")

Why in an action and not in ``when_all``: a durable_rules condition can only
compare the event's fields (``m.customer.orders_count >= 2``); it cannot call
Python. Simple field tests can still go in the condition on ``m.customer``;
anything a segment expresses is tested in the action, on ``customer(c)``.
``no_order_since`` needs "now": pass the event's ``at`` (``c.m.at``, the
decision's time), never the wall clock, so a replayed decision decides alike.

Pure: no I/O, no clock. Bad arguments raise :class:`ValueError` naming them
when the segment is built, not when a customer is tested.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

Facts = Mapping[str, Any]


class Segment:
    """A named test of a customer's facts; ``&``, ``|`` and ``~`` combine segments."""

    __slots__ = ("_test", "name")

    def __init__(self, name: str, test: Callable[[Facts], object]) -> None:
        self.name = name
        self._test = test

    def __call__(self, facts: Facts) -> bool:
        """Whether the customer whose facts these are is in the segment."""
        return bool(self._test(facts))

    def __and__(self, other: Segment) -> Segment:
        return and_(self, other)

    def __or__(self, other: Segment) -> Segment:
        return or_(self, other)

    def __invert__(self) -> Segment:
        return not_(self)

    def __repr__(self) -> str:
        return f"Segment({self.name})"


def _segments(kind: str, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    if not segments:
        raise ValueError(f"{kind}() needs at least one segment")
    for segment in segments:
        if not isinstance(segment, Segment):
            raise ValueError(f"{kind}(): {segment!r} is not a segment")
    return segments


def and_(*segments: Segment) -> Segment:
    """In every one of ``segments``."""
    parts = _segments("and_", segments)
    return Segment("(" + " & ".join(s.name for s in parts) + ")",
                   lambda facts: all(s(facts) for s in parts))


def or_(*segments: Segment) -> Segment:
    """In at least one of ``segments``."""
    parts = _segments("or_", segments)
    return Segment("(" + " | ".join(s.name for s in parts) + ")",
                   lambda facts: any(s(facts) for s in parts))


def not_(segment: Segment) -> Segment:
    """Not in ``segment``."""
    (part,) = _segments("not_", (segment,))
    return Segment(f"~{part.name}", lambda facts: not part(facts))


# ----------------------------------------------------------------- helpers


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return value.strip()


def _amount(value: object) -> Decimal:
    """An amount given as an int, a Decimal or a decimal string (a float via its text)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"amount must be a number or a decimal string, not {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"amount must be a number or a decimal string, not {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount must be a finite amount >= 0, not {value!r}")
    return amount


def _stored_amount(value: object) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def _when(value: object, what: str) -> datetime | None:
    """An aware time from a datetime or ISO text (naive counts as UTC); None for ""."""
    if isinstance(value, str):
        if not value:
            return None
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} must be an ISO 8601 time, not {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime or ISO 8601 text, not {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def spent_over(amount: int | float | str | Decimal, currency: str) -> Segment:
    """Spent more than ``amount`` in ``currency`` over all orders (``total_spent``).

    Amounts in other currencies are not converted: a store selling in two
    currencies combines ``spent_over(..., "ARS") | spent_over(..., "USD")``.
    """
    threshold = _amount(amount)
    code = _text(currency, "currency").upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"currency must be an ISO 4217 code such as 'ARS', not {currency!r}")

    def test(facts: Facts) -> bool:
        spent = (facts.get("total_spent") or {}).get(code)
        return spent is not None and _stored_amount(spent) > threshold

    return Segment(f"spent_over({threshold} {code})", test)


def bought_category(name: str) -> Segment:
    """Bought a product of category ``name`` (among ``categories_bought``; case ignored)."""
    wanted = _text(name, "category").casefold()
    return Segment(f"bought_category({name!r})", lambda facts: any(
        str(category).casefold() == wanted for category in facts.get("categories_bought") or []))


def bought_product(product_id: str | int) -> Segment:
    """Bought the product ``product_id`` (among ``products_bought``: ids, else SKUs)."""
    wanted = _text(str(product_id) if isinstance(product_id, int) else product_id, "product_id")
    return Segment(f"bought_product({wanted!r})",
                   lambda facts: wanted in [str(p) for p in facts.get("products_bought") or []])


def orders_at_least(count: int) -> Segment:
    """Placed at least ``count`` orders (``orders_count``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0, not {count!r}")
    return Segment(f"orders_at_least({count})",
                   lambda facts: int(facts.get("orders_count") or 0) >= count)


def no_order_since(days: int | float, now: datetime | str) -> Segment:
    """No order in the ``days`` before ``now`` (the event's ``at``); never ordering counts.

    ``now`` is a datetime or ISO text (``c.m.at``). Combine with
    ``orders_at_least(1)`` for "bought once, not since".
    """
    if isinstance(days, bool) or not isinstance(days, int | float) or not days >= 0:
        raise ValueError(f"days must be a number >= 0, not {days!r}")
    moment = _when(now, "now")
    if moment is None:
        raise ValueError("now must be a datetime or ISO 8601 text, not ''")
    cutoff = moment - timedelta(days=days)

    def test(facts: Facts) -> bool:
        try:
            last = _when(facts.get("last_order_at") or "", "last_order_at")
        except ValueError:
            return False  # an unreadable time is no proof of silence
        return last is None or last < cutoff

    return Segment(f"no_order_since({days}d before {moment.isoformat()})", test)


def tagged(tag: str) -> Segment:
    """Carries the customer tag ``tag`` (``tags``, as ``tag()`` sets them)."""
    wanted = _text(tag, "tag")
    return Segment(f"tagged({wanted!r})", lambda facts: wanted in (facts.get("tags") or []))


def consented(channel: str) -> Segment:
    """Marketing consent on ``channel`` is granted now (``consents``)."""
    wanted = _text(channel, "channel")
    return Segment(f"consented({wanted!r})",
                   lambda facts: (facts.get("consents") or {}).get(wanted) == "granted")
