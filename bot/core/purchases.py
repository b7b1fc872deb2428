"""A customer's purchase history, kept in their document from the store's orders.

Rules branch on what a customer bought (a second-purchase flow, a reward for
top spenders, a cross-sell that leaves out what they have), so each
``order.placed`` the router decides updates ``doc["purchases"]``
(:func:`record_order`), in the commit that already happens, and
:func:`facts` gives rules the JSON-safe view that
:func:`bot.core.customers.facts` adds to every customer's facts::

    orders_count        3
    first_order_at      "2026-01-15T15:00:00+00:00"   ("" before any order)
    last_order_at       "2026-03-02T11:20:00+00:00"
    total_spent         {"ARS": "123000.50", "USD": "40.00"}
    products_bought     ["8021456789012", ...]  (most recent last, at most 50)
    categories_bought   ["Mates", ...]          (most recent last, at most 20)
    last_order_items    [{"product_id", "title", "category", "quantity", "price"}]

Why an order counts once by its id: stores deliver an order more than once
(Shopify retries, a backend re-posting it to ``/events`` with a new event
id), and the inbox only deduplicates deliveries. The ids of the latest
:data:`MAX_ORDER_IDS` orders counted are kept, so only a repeat of an order
older than all of those could count twice.

Money stays exact: amounts arrive as normalised decimal strings
(:data:`store_events.base.Money`), are added as :class:`~decimal.Decimal`
with enough precision for any amount a payload may carry, and are stored
as decimal strings, so the facts stay JSON (durable_rules needs that) and
no float ever rounds a total.

Pure: no database, no clock (the order's time is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from bot.types import Doc

MAX_ORDER_IDS = 200  # counted orders remembered, so a repeated one counts once
MAX_PRODUCTS = 50  # product ids kept in products_bought
MAX_CATEGORIES = 20  # category names kept in categories_bought
MAX_LAST_ITEMS = 30  # lines of the last order kept in last_order_items
# Money has at most 20 digits on each side of the point; sums of many orders stay exact.
_EXACT = Context(prec=80)


def record_order(doc: Doc, order_data: Mapping[str, Any], at: datetime) -> None:
    """Count an ``order.placed`` (its ``data``) placed at ``at`` into ``doc["purchases"]``.

    Idempotent per ``order_id``: an order already counted changes nothing.
    An order without an id is not counted (it could not be told from its
    repeats; every adapter requires one). Orders may arrive out of order:
    the first and last times are the earliest and latest seen, and only the
    latest order's items are ``last_order_items``. Amounts are added per
    currency; an order without a usable total or currency still counts as
    an order.
    """
    order_id = order_data.get("order_id")
    if order_id is None or str(order_id) == "":
        return
    order_id = str(order_id)
    history: Doc = doc.setdefault("purchases", {})
    counted: list[str] = history.setdefault("order_ids", [])
    if order_id in counted:
        return
    counted.append(order_id)
    del counted[:-MAX_ORDER_IDS]
    history["orders_count"] = int(history.get("orders_count", 0)) + 1
    first, last = history.get("first_order_at"), history.get("last_order_at")
    latest = last is None or at >= last
    if first is None or at < first:
        history["first_order_at"] = at
    if latest:
        history["last_order_at"] = at
    _add_total(history, order_data.get("total"), order_data.get("currency"))
    items = [item for item in order_data.get("items") or [] if isinstance(item, Mapping)]
    products = [pid for pid in (_product_id(item) for item in items) if pid]
    categories = [str(item["category"]) for item in items if item.get("category")]
    history["products"] = _remember(history.get("products", []), products, latest,
                                    MAX_PRODUCTS)
    history["categories"] = _remember(history.get("categories", []), categories, latest,
                                      MAX_CATEGORIES)
    if latest:
        history["last_order_items"] = [_line(item) for item in items][:MAX_LAST_ITEMS]


def facts(doc: Doc) -> dict[str, Any]:
    """The purchase history as rules read it (JSON-safe: times as ISO text, money as text)."""
    history = doc.get("purchases") or {}
    return {
        "orders_count": int(history.get("orders_count", 0)),
        "first_order_at": _iso(history.get("first_order_at")),
        "last_order_at": _iso(history.get("last_order_at")),
        "total_spent": dict(history.get("total_spent", {})),
        "products_bought": list(history.get("products", [])),
        "categories_bought": list(history.get("categories", [])),
        "last_order_items": [dict(item) for item in history.get("last_order_items", [])],
    }


def _add_total(history: Doc, total: Any, currency: Any) -> None:
    amount = money(total)
    if amount is None or not isinstance(currency, str) or not currency:
        return
    spent: dict[str, str] = history.setdefault("total_spent", {})
    code = currency.upper()
    before = money(spent.get(code)) or Decimal(0)
    spent[code] = decimal_text(_EXACT.add(before, amount))


def _product_id(item: Mapping[str, Any]) -> str | None:
    """A line's product: its product id, else its SKU (a store that sends only SKUs)."""
    for key in ("product_id", "sku"):
        value = item.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return None


def _line(item: Mapping[str, Any]) -> Doc:
    quantity = item.get("quantity")
    price = money(item.get("price"))
    return {"product_id": _product_id(item), "title": item.get("title") or "",
            "category": item.get("category") or None,
            "quantity": quantity if isinstance(quantity, int) and not isinstance(
                quantity, bool) else None,
            "price": decimal_text(price) if price is not None else None}


def _remember(kept: list[str], new: list[str], latest: bool, limit: int) -> list[str]:
    """``kept`` with ``new`` added, most recent last, each once, the oldest dropped past ``limit``.

    The latest order's names move to the end; an older order's only fill in
    names not kept, at the start (they are older than every kept one).
    """
    fresh = list(dict.fromkeys(new))
    if latest:
        merged = [name for name in kept if name not in fresh] + fresh
    else:
        merged = [name for name in fresh if name not in kept] + list(kept)
    return merged[-limit:]


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""


def money(value: Any) -> Decimal | None:
    """An amount as stored (a decimal string), or None when there is none usable.

    The same reading as :func:`bot.core.stats.money`, kept here because
    ``stats`` imports the customers module this one is part of.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def decimal_text(amount: Decimal) -> str:
    """An exact amount as a plain decimal string (no exponent)."""
    return format(amount, "f")
