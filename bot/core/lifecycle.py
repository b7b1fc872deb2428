"""Triggers the service derives from store events: pure decisions on the customer.

- ``cart.abandoned``: a ``checkout.started`` schedules a wait at
  ``occurred_at + CART_ABANDON_AFTER``; an ``order.placed`` for that checkout
  cancels it (and a checkout whose order is already known never schedules
  one). A checkout whose time has passed on arrival is abandoned at once.
- ``customer.birthday``: a wait at 10:00 on the customer's next birthday in
  their own timezone, renewed every year.
- ``customer.inactive``: a wait ``INACTIVE_AFTER_DAYS`` after the last order
  (or sign-up), pushed back by every order.
- ``customer.sunset``: a wait ``SUNSET_AFTER_DAYS`` after the last order or
  message, pushed back by either.

The waits live in the customer document (``bot.core.waits``), so the daily sweep
is the scheduler's indexed ``next_due`` query: it touches only customers
that are due, in batches, and resumes wherever it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core import waits
from bot.types import Doc

BIRTHDAY_HOUR = time(10, 0)
MAX_INTERESTS = 50


@dataclass(frozen=True)
class TriggerPolicy:
    abandon_after: float = 3600
    inactive_after_days: int = 90
    sunset_after_days: int = 180
    default_timezone: str = "America/Argentina/Buenos_Aires"


def on_store_event(doc: Doc, event: dict[str, Any], now: datetime,
                   policy: TriggerPolicy) -> list[dict[str, Any]]:
    """Update derived state for a store event; returns events to post at once."""
    kind = event["type"]
    data = event.get("data", {})
    occurred = event["occurred_at"]
    immediate: list[dict[str, Any]] = []
    checkouts = doc.setdefault("checkouts", {})
    if kind == "checkout.started" and data.get("checkout_id"):
        checkout_id = str(data["checkout_id"])
        known = checkouts.get(checkout_id, {})
        checkouts[checkout_id] = {**known, "occurred_at": occurred,
                                  "ordered": known.get("ordered", False)}
        if not known.get("ordered"):
            due = occurred + timedelta(seconds=policy.abandon_after)
            abandoned = {"type": "cart.abandoned", "checkout_id": checkout_id,
                         **{k: v for k, v in data.items() if k != "checkout_id"}}
            if due <= now:
                waits.cancel(doc, f"cart:{checkout_id}")
                if not known.get("abandoned"):
                    checkouts[checkout_id]["abandoned"] = True
                    immediate.append(abandoned)
            else:
                waits.schedule(doc, f"cart:{checkout_id}", due, abandoned)
    elif kind == "product.viewed":
        remember_interest(doc, data.get("product_id") or data.get("sku"))
    elif kind == "order.placed":
        if data.get("checkout_id"):
            checkout_id = str(data["checkout_id"])
            checkouts.setdefault(checkout_id, {})["ordered"] = True
            waits.cancel(doc, f"cart:{checkout_id}")
        doc["last_order_at"] = max(doc.get("last_order_at") or occurred, occurred)
    if kind == "checkout.started":  # had it in a cart: interested too (back in stock)
        for line in data.get("items") or []:
            remember_interest(doc, line.get("product_id") or line.get("sku"))
    schedule_lifecycle(doc, now, policy)
    return immediate


def remember_interest(doc: Doc, product: Any) -> None:
    """Keep ``product`` among the customer's interests (most recent last, bounded)."""
    if product:
        interests = [p for p in doc.get("interests", []) if p != str(product)]
        doc["interests"] = [*interests, str(product)][-MAX_INTERESTS:]


def on_wait_fired(doc: Doc, event: dict[str, Any]) -> None:
    """Bookkeeping when a derived trigger fires (e.g. mark the cart abandoned)."""
    if event.get("type") == "cart.abandoned":
        doc.setdefault("checkouts", {}).setdefault(event["checkout_id"], {})["abandoned"] = True


def _zone(doc: Doc, policy: TriggerPolicy) -> ZoneInfo:
    try:
        return ZoneInfo(doc.get("profile", {}).get("timezone") or policy.default_timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file can have
        return ZoneInfo(policy.default_timezone)


def parse_birthday(value: str) -> tuple[int, int] | None:
    """(month, day) from ``YYYY-MM-DD`` or ``--MM-DD``; None when malformed."""
    try:
        _, month, day = value.rsplit("-", 2)
        return int(month), int(day)
    except ValueError:
        return None


def next_birthday(month: int, day: int, now: datetime, zone: ZoneInfo) -> datetime:
    """The next 10:00 local on the birthday (29 Feb falls on 28 Feb in common years)."""
    local_today = now.astimezone(zone).date()
    for year in (local_today.year, local_today.year + 1, local_today.year + 2):
        try:
            day_of = date(year, month, day)
        except ValueError:
            day_of = date(year, month, 28)
        moment = datetime.combine(day_of, BIRTHDAY_HOUR, tzinfo=zone)
        if moment > now:
            return moment.astimezone(now.tzinfo)
    raise ValueError("no next birthday")


def schedule_lifecycle(doc: Doc, now: datetime, policy: TriggerPolicy) -> None:
    """(Re)schedule the birthday, inactivity and sunset waits from the document."""
    birthday = doc.get("profile", {}).get("birthday")
    parsed = parse_birthday(birthday) if birthday else None
    if parsed:
        due = next_birthday(*parsed, now, _zone(doc, policy))
        current = next((w for w in doc.get("waits", []) if w["id"] == "birthday"), None)
        if current is None or current["due"] != due:
            waits.schedule(doc, "birthday", due, {"type": "customer.birthday"})
    last_order = doc.get("last_order_at") or doc.get("created_at") or now
    _schedule_once(doc, "inactive", last_order + timedelta(days=policy.inactive_after_days),
                   "customer.inactive")
    seen = [x for x in (doc.get("last_order_at"), doc.get("last_reply_at"),
                        doc.get("created_at")) if x is not None]
    last_seen = max(seen, default=now)
    _schedule_once(doc, "sunset", last_seen + timedelta(days=policy.sunset_after_days),
                   "customer.sunset")


def _schedule_once(doc: Doc, wait_id: str, due: datetime, event_type: str) -> None:
    """Schedule a lifecycle wait unless it already fired for this same due time."""
    if doc.get("fired", {}).get(wait_id) == due:
        return
    waits.schedule(doc, wait_id, due, {"type": event_type, "for": due.isoformat()})


def mark_fired(doc: Doc, wait: Doc) -> None:
    """Remember that a lifecycle wait fired, so it is not scheduled again for the same time."""
    if wait["id"] in ("inactive", "sunset"):
        doc.setdefault("fired", {})[wait["id"]] = wait["due"]
