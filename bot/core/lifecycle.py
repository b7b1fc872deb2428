"""Triggers the service derives from store events: pure decisions on the customer.

- ``cart.abandoned``: a ``checkout.started`` schedules a wait at
  ``occurred_at + CART_ABANDON_AFTER``; an ``order.placed`` for that checkout
  cancels it (and a checkout whose order is already known never schedules
  one). A checkout whose time has passed on arrival is abandoned at once.
- ``customer.birthday``: a wait at 10:00 on the customer's next birthday in
  their own timezone, renewed every year.
- ``customer.birthday_soon``: a wait at 10:00 local ``birthday_notice_days``
  days before the next birthday, renewed every year, with the birthday it
  announces (``{"type": "customer.birthday_soon", "on": "YYYY-MM-DD"}``).
  Only when a flow starts on it (the birthday series; the policy's
  ``birthday_notice_days`` is 0 otherwise, and no wait is kept). A birthday
  closer than the notice gets next year's notice: that year the day's
  ``customer.birthday`` starts the run itself.
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
    birthday_notice_days: int = 0  # 0: no customer.birthday_soon (no flow starts on it)


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
    """(month, day) from ``YYYY-MM-DD`` or ``--MM-DD``; None when malformed.

    A day no year has ("--13-45", "1990-02-30") is malformed too: scheduling
    it would fail every decision of the customer.
    """
    try:
        _, month, day = value.rsplit("-", 2)
        date(2000, int(month), int(day))  # 2000: a leap year, so 29 February is a day
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
    _schedule_notice(doc, parsed, now, policy)
    last_order = doc.get("last_order_at") or doc.get("created_at") or now
    _schedule_once(doc, "inactive", last_order + timedelta(days=policy.inactive_after_days),
                   "customer.inactive")
    seen = [x for x in (doc.get("last_order_at"), doc.get("last_reply_at"),
                        doc.get("created_at")) if x is not None]
    last_seen = max(seen, default=now)
    _schedule_once(doc, "sunset", last_seen + timedelta(days=policy.sunset_after_days),
                   "customer.sunset")


def birthday_notice(month: int, day: int, now: datetime, zone: ZoneInfo,
                    notice_days: int) -> tuple[datetime, date]:
    """(when, the birthday it announces): 10:00 local ``notice_days`` before the next
    birthday whose notice is still ahead; a birthday closer than that: next year's."""
    birthday = next_birthday(month, day, now, zone)
    while True:
        local_day = birthday.astimezone(zone).date()
        notice = datetime.combine(local_day - timedelta(days=notice_days), BIRTHDAY_HOUR,
                                  tzinfo=zone).astimezone(now.tzinfo)
        if notice > now:
            return notice, local_day
        birthday = next_birthday(month, day, birthday, zone)


def _schedule_notice(doc: Doc, parsed: tuple[int, int] | None, now: datetime,
                     policy: TriggerPolicy) -> None:
    """Keep the ``birthday_soon`` wait in step with the birthday (or drop it when off)."""
    current = next((w for w in doc.get("waits", []) if w["id"] == "birthday_soon"), None)
    if not parsed or policy.birthday_notice_days <= 0:
        if current is not None:
            waits.cancel(doc, "birthday_soon")
        return
    due, day_of = birthday_notice(*parsed, now, _zone(doc, policy), policy.birthday_notice_days)
    event = {"type": "customer.birthday_soon", "on": day_of.isoformat()}
    if current is None or current["due"] != due or current["event"] != event:
        waits.schedule(doc, "birthday_soon", due, event)


def _schedule_once(doc: Doc, wait_id: str, due: datetime, event_type: str) -> None:
    """Schedule a lifecycle wait unless it already fired for this same due time."""
    if doc.get("fired", {}).get(wait_id) == due:
        return
    waits.schedule(doc, wait_id, due, {"type": event_type, "for": due.isoformat()})


def mark_fired(doc: Doc, wait: Doc) -> None:
    """Remember that a lifecycle wait fired, so it is not scheduled again for the same time."""
    if wait["id"] in ("inactive", "sunset"):
        doc.setdefault("fired", {})[wait["id"]] = wait["due"]
