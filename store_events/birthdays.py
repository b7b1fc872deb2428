"""Birthdays in store customer data: Shopify metafields, WooCommerce ``meta_data``.

Neither platform has a birthday field of its own. Shopify stores keep it in
a customer metafield: the standard definition ``facts.birth_date`` (type
``date``), or one of their own (``custom.birthday``, an app's namespace);
a webhook subscription carries the customer's metafields in a
``metafields`` list (``{"namespace", "key", "value", "type", ...}``) when it
names their namespaces (``metafieldNamespaces``). WooCommerce plugins keep
it in the customer's ``meta_data`` (``[{"id", "key", "value"}]``) under one
of a few keys.

Only unambiguous dates are taken: ``YYYY-MM-DD`` and ``--MM-DD`` (no year),
checked to be real days (29 February included). "10/03/1990" could be
either of two days, so it and anything else is left out: the customer is
kept without a birthday (logged at DEBUG), and the rest of the webhook
counts as usual, never a 400 for a field the store did not mean for us.
The result is the profile's ``birthday``, as ``POST /events`` gives it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

log = logging.getLogger(__name__)

KEYS = ("birthday", "birth_date", "date_of_birth")  # a metafield's key, any namespace
STANDARD = ("facts", "birth_date")  # Shopify's standard customer metafield: first choice
WOOCOMMERCE_KEYS = (*KEYS, "billing_birth_date")  # what birthday plugins name their meta
_ISO = re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$")


def iso_birthday(value: Any) -> str | None:
    """``value`` when it is a real ``YYYY-MM-DD`` or ``--MM-DD`` day; else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _ISO.match(text)
    if match is None:
        return None
    year = 2000 if match.group(1) == "-" else int(match.group(1))  # 2000: a leap year
    try:
        date(year or 2000, int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None
    return text


def _entries(items: Any) -> Iterable[dict[str, Any]]:
    """The dictionaries of a list from a payload (anything else: none)."""
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def _pick(candidates: list[tuple[str, Any]], where: str) -> str | None:
    for name, value in candidates:
        found = iso_birthday(value)
        if found is not None:
            return found
        log.debug("%s %s is not a YYYY-MM-DD or --MM-DD birthday: %r (ignored)",
                  where, name, value)
    return None


def from_shopify_metafields(metafields: Any) -> str | None:
    """The birthday in a Shopify customer's ``metafields``: ``facts.birth_date`` first."""
    found = [(f"{item.get('namespace')}.{item.get('key')}", item.get("value"))
             for item in _entries(metafields) if item.get("key") in KEYS]
    standard = ".".join(STANDARD)
    found.sort(key=lambda candidate: candidate[0] != standard)
    return _pick(found, "Shopify metafield")


def from_woocommerce_meta(meta_data: Any) -> str | None:
    """The birthday in a WooCommerce customer's ``meta_data``, in the order of the keys."""
    by_key = {str(item.get("key")): item.get("value") for item in _entries(meta_data)}
    return _pick([(key, by_key[key]) for key in WOOCOMMERCE_KEYS if key in by_key],
                 "WooCommerce meta_data")
