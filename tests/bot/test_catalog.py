"""bot.runtime.catalog: when an inventory item is in stock, and when a change is a restock.

Pure: catalog documents as dicts, no database.
"""

from __future__ import annotations

import pytest

from bot.runtime.catalog import in_stock, is_restock
from bot.types import Doc


@pytest.mark.parametrize(("doc", "expected"), [
    (None, None),  # never heard of
    ({"product_id": "p1"}, None),  # named by a product, quantity unknown
    ({"quantity": 0}, False),
    ({"quantity": -2}, False),
    ({"quantity": 3}, True),
    ({"levels": {"l1": 0, "l2": 2}}, True),  # known levels are summed
    ({"levels": {"l1": 0, "l2": -1}}, False),
    ({"quantity": 9, "levels": {"l1": 0}}, False),  # levels win over the product's quantity
    ({"quantity": 0, "levels": {"l1": 4}}, True),
    ({"quantity": 5, "levels": {"l1": None}}, True),  # no known level: the quantity
])
def test_in_stock(doc: Doc | None, expected: bool | None) -> None:
    assert in_stock(doc) is expected


def test_known_out_of_stock_then_in_stock_is_a_restock() -> None:
    assert is_restock({"quantity": 0}, {"quantity": 0, "levels": {"l1": 4}})
    assert is_restock({"levels": {"l1": 0}}, {"levels": {"l1": 1}})
    assert is_restock({"quantity": -1}, {"quantity": 2})


def test_more_stock_or_still_none_is_no_restock() -> None:
    assert not is_restock({"levels": {"l1": 4}}, {"levels": {"l1": 6}})  # 4 -> 6
    assert not is_restock({"quantity": 0}, {"quantity": 0, "levels": {"l1": 0}})
    assert not is_restock({"levels": {"l1": 3}}, {"levels": {"l1": 0}})  # sold out


def test_unknown_before_is_never_a_restock() -> None:
    # It may never have left: customers are not told "it is back".
    assert not is_restock(None, {"levels": {"l1": 4}})
    assert not is_restock({"product_id": "p1"}, {"product_id": "p1", "levels": {"l1": 4}})
