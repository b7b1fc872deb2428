"""bot.core.segments: tests of a customer's facts, and their composition; all pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.core.customers import facts, new_customer
from bot.core.purchases import record_order
from bot.segments import (
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

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def buyer(**extra: Any) -> dict[str, Any]:
    """Facts as ``customer(c)`` gives them: two orders, tagged vip, SMS granted."""
    doc = new_customer(["store:cus_1"], NOW)
    doc["tags"] = ["vip"]
    doc["consents"] = {"sms": {"state": "granted", "source": "t", "at": NOW},
                       "email": {"state": "revoked", "source": "t", "at": NOW}}
    record_order(doc, {"order_id": "o1", "total": "30000.00", "currency": "ARS",
                       "items": [{"product_id": "8021", "category": "Mates"}]},
                 NOW - timedelta(days=100))
    record_order(doc, {"order_id": "o2", "total": "20000.50", "currency": "ARS",
                       "items": [{"sku": "YERBA-1", "category": "Yerbas"}]},
                 NOW - timedelta(days=40))
    return {**facts(doc), **extra}


NEWCOMER = facts(new_customer(["store:cus_2"], NOW))


def test_spent_over_compares_exactly_in_one_currency() -> None:
    who = buyer()  # 50000.50 ARS
    assert spent_over(50000, "ARS")(who)
    assert spent_over("50000.49", "ars")(who)
    assert not spent_over("50000.50", "ARS")(who)  # over, not equal
    assert not spent_over(Decimal("60000"), "ARS")(who)
    assert not spent_over(0, "USD")(who)  # nothing in that currency
    assert not spent_over(0, "ARS")(NEWCOMER)


def test_bought_category_and_product() -> None:
    who = buyer()
    assert bought_category("Mates")(who)
    assert bought_category("  yerbas ")(who)  # case and spaces ignored
    assert not bought_category("Termos")(who)
    assert bought_product(8021)(who) and bought_product("YERBA-1")(who)
    assert not bought_product("9999")(who)
    assert not bought_category("Mates")(NEWCOMER)


def test_orders_at_least() -> None:
    assert orders_at_least(2)(buyer())
    assert not orders_at_least(3)(buyer())
    assert orders_at_least(0)(NEWCOMER) and not orders_at_least(1)(NEWCOMER)


def test_no_order_since_counts_from_the_given_now() -> None:
    who = buyer()  # last order 40 days before NOW
    assert no_order_since(30, NOW)(who)
    assert not no_order_since(40, NOW)(who)  # exactly 40 days ago is within
    assert not no_order_since(60, NOW.isoformat())(who)  # the event's ``at`` as text
    assert no_order_since(60, "2026-08-01T12:00:00Z")(who)
    assert no_order_since(1, NOW)(NEWCOMER)  # never ordering is no order since
    assert not no_order_since(1, NOW)({"last_order_at": "not a time"})


def test_tagged_and_consented() -> None:
    who = buyer()
    assert tagged("vip")(who) and not tagged("wholesale")(who)
    assert consented("sms")(who)
    assert not consented("email")(who)  # revoked
    assert not consented("telegram")(who)  # never asked


def test_segments_compose_with_operators_and_functions() -> None:
    who = buyer()
    loyal = spent_over(40000, "ARS") & orders_at_least(2)
    assert loyal(who) and not loyal(NEWCOMER)
    either = tagged("wholesale") | bought_category("Mates")
    assert either(who) and not either(NEWCOMER)
    assert (~tagged("vip"))(NEWCOMER) and not (~tagged("vip"))(who)
    lapsed = and_(bought_category("Mates"), no_order_since(30, NOW), not_(tagged("blocked")))
    assert lapsed(who)
    assert or_(tagged("x"), tagged("y"), tagged("vip"))(who)
    assert not and_(tagged("vip"), consented("email"))(who)
    assert repr(loyal) == "Segment((spent_over(40000 ARS) & orders_at_least(2)))"


def test_missing_facts_count_as_nothing() -> None:
    """Facts of a document written before purchase history existed (or a rule's own dict)."""
    for segment in (spent_over(0, "ARS"), bought_category("Mates"), bought_product("1"),
                    orders_at_least(1), tagged("vip"), consented("sms")):
        assert segment({}) is False
    assert no_order_since(1, NOW)({}) is True


@pytest.mark.parametrize(("build", "message"), [
    (lambda: spent_over(-1, "ARS"), "amount must be a finite amount >= 0"),
    (lambda: spent_over("lots", "ARS"), "amount must be a number or a decimal string"),
    (lambda: spent_over(True, "ARS"), "amount must be a number"),
    (lambda: spent_over("NaN", "ARS"), "amount must be a finite amount"),
    (lambda: spent_over(10, "pesos"), "currency must be an ISO 4217 code"),
    (lambda: spent_over(10, ""), "currency must be a non-empty string"),
    (lambda: bought_category(""), "category must be a non-empty string"),
    (lambda: bought_product(""), "product_id must be a non-empty string"),
    (lambda: orders_at_least(-1), "count must be an int >= 0"),
    (lambda: orders_at_least(1.5), "count must be an int >= 0"),  # type: ignore[arg-type]
    (lambda: no_order_since(-3, NOW), "days must be a number >= 0"),
    (lambda: no_order_since(3, "yesterday"), "now must be an ISO 8601 time"),
    (lambda: no_order_since(3, ""), "now must be a datetime or ISO 8601 text"),
    (lambda: tagged(None), "tag must be a non-empty string"),  # type: ignore[arg-type]
    (lambda: consented(" "), "channel must be a non-empty string"),
    (lambda: and_(), "and_() needs at least one segment"),
    (lambda: or_(tagged("a"), "b"), "or_(): 'b' is not a segment"),  # type: ignore[arg-type]
    (lambda: not_(lambda facts: True), "is not a segment"),  # type: ignore[arg-type]
])
def test_bad_arguments_are_refused_when_the_segment_is_built(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_a_segment_is_a_plain_callable() -> None:
    seg = Segment("always", lambda facts: 1)
    assert seg({}) is True  # truthy results are booleans
