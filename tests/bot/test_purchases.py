"""bot.core.purchases: a customer's purchase history from their orders, and its facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core import purchases
from bot.core.customers import facts, new_customer
from bot.core.purchases import MAX_CATEGORIES, MAX_ORDER_IDS, MAX_PRODUCTS, record_order
from bot.testing import DEFAULT_START, PureHarness, stored
from bot.types import Doc
from tests.support import purchase_flow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MATE = {"sku": "MATE-1", "title": "Mate imperial", "quantity": 1, "price": "42000.00",
        "product_id": "8021", "category": "Mates", "tags": ["regalo"]}
BOMBILLA = {"sku": "BOMB-1", "title": "Bombilla", "quantity": 2, "price": "8500.00",
            "product_id": "8022", "category": "Bombillas", "tags": []}


def order(order_id: str, total: str | None = "59000.00", currency: str | None = "ARS",
          items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"order_id": order_id, "checkout_id": None,
                            "items": [MATE, BOMBILLA] if items is None else items}
    if total is not None:
        data["total"] = total
    if currency is not None:
        data["currency"] = currency
    return data


def customer_doc() -> Doc:
    return new_customer(["store:cus_1"], T0)


def test_a_first_order_makes_the_whole_history() -> None:
    doc = customer_doc()
    record_order(doc, order("o1"), T0)
    assert purchases.facts(doc) == {
        "orders_count": 1,
        "first_order_at": "2026-03-01T12:00:00+00:00",
        "last_order_at": "2026-03-01T12:00:00+00:00",
        "total_spent": {"ARS": "59000.00"},
        "products_bought": ["8021", "8022"],
        "categories_bought": ["Mates", "Bombillas"],
        "last_order_items": [
            {"product_id": "8021", "title": "Mate imperial", "category": "Mates",
             "quantity": 1, "price": "42000.00"},
            {"product_id": "8022", "title": "Bombilla", "category": "Bombillas",
             "quantity": 2, "price": "8500.00"}],
    }


def test_the_same_order_repeated_counts_once() -> None:
    doc = customer_doc()
    record_order(doc, order("o1"), T0)
    record_order(doc, order("o1"), T0 + timedelta(hours=1))  # a store re-posting it
    record_order(doc, order("o2", "1000.00"), T0 + timedelta(days=1))
    record_order(doc, order("o1"), T0 + timedelta(days=2))
    seen = purchases.facts(doc)
    assert seen["orders_count"] == 2
    assert seen["total_spent"] == {"ARS": "60000.00"}
    assert seen["last_order_at"] == (T0 + timedelta(days=1)).isoformat()


def test_totals_per_currency_stay_exact() -> None:
    doc = customer_doc()
    record_order(doc, order("o1", "0.1"), T0)
    record_order(doc, order("o2", "0.2"), T0)
    record_order(doc, order("o3", "19.90", "usd"), T0)
    # 20 digits on each side of the point: beyond a float, and beyond Decimal's default 28.
    record_order(doc, order("o4", "99999999999999999999.99999999999999999999", "EUR"), T0)
    record_order(doc, order("o5", "0.00000000000000000001", "EUR"), T0)
    assert purchases.facts(doc)["total_spent"] == {
        "ARS": "0.3", "USD": "19.90", "EUR": "100000000000000000000.00000000000000000000"}


def test_an_order_without_total_or_currency_still_counts() -> None:
    doc = customer_doc()
    record_order(doc, order("o1", total=None), T0)
    record_order(doc, order("o2", currency=None), T0)
    seen = purchases.facts(doc)
    assert (seen["orders_count"], seen["total_spent"]) == (2, {})


def test_an_order_without_an_id_is_not_counted() -> None:
    doc = customer_doc()
    record_order(doc, {"order_id": "", "total": "5", "currency": "ARS"}, T0)
    record_order(doc, {"total": "5", "currency": "ARS"}, T0)
    assert purchases.facts(doc)["orders_count"] == 0


def test_an_older_order_arriving_late_changes_the_first_time_not_the_last_order() -> None:
    doc = customer_doc()
    record_order(doc, order("o2", items=[BOMBILLA]), T0)
    record_order(doc, order("o1", items=[{**MATE, "product_id": "7000", "category": "Yerbas"},
                                         BOMBILLA]), T0 - timedelta(days=30))
    seen = purchases.facts(doc)
    assert seen["first_order_at"] == (T0 - timedelta(days=30)).isoformat()
    assert seen["last_order_at"] == T0.isoformat()
    assert [item["product_id"] for item in seen["last_order_items"]] == ["8022"]
    # Most recent last: the late, older order's products go before the kept ones.
    assert seen["products_bought"] == ["7000", "8022"]
    assert seen["categories_bought"] == ["Yerbas", "Bombillas"]


def test_a_product_bought_again_moves_to_the_end() -> None:
    doc = customer_doc()
    record_order(doc, order("o1"), T0)
    record_order(doc, order("o2", items=[MATE]), T0 + timedelta(days=1))
    seen = purchases.facts(doc)
    assert seen["products_bought"] == ["8022", "8021"]
    assert seen["categories_bought"] == ["Bombillas", "Mates"]


def test_lists_are_bounded_keeping_the_latest() -> None:
    doc = customer_doc()
    for n in range(MAX_ORDER_IDS + 10):
        item = {"product_id": f"p{n}", "category": f"cat{n}", "title": "x", "quantity": 1,
                "price": "1"}
        record_order(doc, order(f"o{n}", "1", items=[item]), T0 + timedelta(minutes=n))
    seen = purchases.facts(doc)
    last = MAX_ORDER_IDS + 9
    assert seen["orders_count"] == MAX_ORDER_IDS + 10
    assert seen["products_bought"] == [f"p{n}" for n in range(last - MAX_PRODUCTS + 1, last + 1)]
    assert seen["categories_bought"] == [
        f"cat{n}" for n in range(last - MAX_CATEGORIES + 1, last + 1)]
    assert len(doc["purchases"]["order_ids"]) == MAX_ORDER_IDS
    assert doc["purchases"]["order_ids"][-1] == f"o{last}"
    record_order(doc, order(f"o{last}", "1"), T0)  # the latest ones are still known
    assert purchases.facts(doc)["orders_count"] == MAX_ORDER_IDS + 10


def test_a_line_without_product_id_is_known_by_its_sku() -> None:
    doc = customer_doc()
    record_order(doc, order("o1", items=[{"sku": "YERBA-1", "title": "Yerba", "quantity": 1,
                                          "price": 3000}, {"title": "Sin nada"}]), T0)
    seen = purchases.facts(doc)
    assert seen["products_bought"] == ["YERBA-1"]
    assert seen["categories_bought"] == []
    assert seen["last_order_items"] == [
        {"product_id": "YERBA-1", "title": "Yerba", "category": None, "quantity": 1,
         "price": "3000"},
        {"product_id": None, "title": "Sin nada", "category": None, "quantity": None,
         "price": None}]


def test_facts_are_json_and_survive_the_database() -> None:
    doc = customer_doc()
    assert {k: v for k, v in facts(doc).items() if k in purchases.facts(doc)} == {
        "orders_count": 0, "first_order_at": "", "last_order_at": "", "total_spent": {},
        "products_bought": [], "categories_bought": [], "last_order_items": []}
    record_order(doc, order("o1"), T0)
    kept = stored(doc)  # a BSON round trip, as the commit stores it
    record_order(kept, order("o2", "1.00"), T0 + timedelta(days=1))
    seen = facts(kept)
    assert json.loads(json.dumps(seen)) == seen
    assert seen["orders_count"] == 2
    assert seen["total_spent"] == {"ARS": "59001.00"}


def test_rules_see_the_purchase_history_of_the_order_they_get() -> None:
    """``order.placed`` updates the history before rules run: conditions on
    ``m.customer`` and actions on ``customer(c)`` both see it; a repeat counts once."""
    h = PureHarness([purchase_flow.FLOW], channels=("sms",))
    h.customer("cus_1", phone="+5491122334455")
    h.event("order.placed", "cus_1", order_id="o1", total="59000.00", currency="ARS",
            items=[MATE, BOMBILLA])
    assert [run["outcome"] for run in h.runs("t_purchase_facts")] == ["first"]
    h.advance(days=1)
    h.event("order.placed", "cus_1", order_id="o2", total="0.10", currency="ARS",
            items=[{**MATE, "product_id": "9000", "category": "Yerbas"}])
    h.event("order.placed", "cus_1", order_id="o2", total="0.10", currency="ARS",
            items=[{**MATE, "product_id": "9000", "category": "Yerbas"}])  # re-posted
    assert [run["outcome"] for run in h.runs("t_purchase_facts")] == [
        "first", "repeat", "repeat"]
    seen = h.customer_doc("cus_1")["attrs"]["seen"]
    assert seen["orders_count"] == 2
    assert seen["total_spent"] == {"ARS": "59000.10"}
    assert seen["first_order_at"] == DEFAULT_START.isoformat()
    assert seen["last_order_at"] == (DEFAULT_START + timedelta(days=1)).isoformat()
    assert seen["products_bought"] == ["8021", "8022", "9000"]
    assert seen["categories_bought"] == ["Mates", "Bombillas", "Yerbas"]
    assert seen["last_order_items"] == [{"product_id": "9000", "title": "Mate imperial",
                                         "category": "Yerbas", "quantity": 1,
                                         "price": "42000.00"}]
