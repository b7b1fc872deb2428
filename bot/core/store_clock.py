"""A store's times against the service's clock: no store time counts as later than its arrival.

Store events carry the store's own times (``occurred_at``, a generic
``consent_at``, Shopify's ``consent_updated_at``), read off the store's
clock. A store whose clock runs ahead would stamp a consent a minute into
our future, and that consent would then count as newer than the STOP the
customer sends a moment later. So:

* The route stamps every event it accepts with the service clock at intake
  (``received_at``, an extra field of the stored :class:`StoreEvent`;
  :func:`stamp_received`). The decision reads it back with
  :func:`received_time`; an event without it (written by an older version,
  or by the testing harness, which decides at once) counts as received at
  the decision's ``now``, which is never earlier than its intake.
* Event-time logic (the cart abandonment timer, ``last_order_at``, the
  ``occurred_at`` flows see) uses :func:`clamp`: ``min(stated, received)``.
  A checkout stamped in our future starts its countdown when it arrived,
  not later.
* Consent uses :func:`consent_moment`, which also remembers what the store's
  clock said before. If the store stamped S1 on something we received at
  E1, its clock had reached S1 by our E1, so anything it stamps S <= S1
  happened, on our clock, no later than E1. Without that, a store repeating
  the same future-stamped consent (a new delivery, the same
  ``consent_updated_at``) after the customer's STOP would have it counted
  as of the repeat's arrival, after the STOP, and win. The observations are
  kept per customer and store in ``doc["store_clock"][store]`` as
  ``[stated, received]`` pairs, only those not implied by another (a pair
  with a later stated time and an earlier arrival says more), at most
  :data:`MAX_OBSERVATIONS`, so the list stays a few entries long.

  The price: after a store corrects a clock that ran ahead by D, its new
  consents count, for up to D, as of an earlier moment than they arrived,
  so an opt-out given in that window may still stand against them. That
  errs towards not sending marketing, which is the side consent must err on.

All functions are pure (the document is a plain dict) and keep times at
millisecond precision, as MongoDB stores them. This is consent logic, so it
lives in the core: the decision applies it, and the store route only calls
:func:`stamp_received` at intake.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.inputs import StoreEvent
from bot.infra.clock import to_millis
from bot.types import Doc

MAX_OBSERVATIONS = 16
RECEIVED_FIELD = "received_at"


def stamp_received(event: StoreEvent, now: datetime) -> StoreEvent:
    """``event`` with ``received_at`` set to ``now``, the service clock at intake."""
    return event.model_copy(update={RECEIVED_FIELD: to_millis(now)})


def _as_time(value: object) -> datetime | None:
    """A datetime or an ISO 8601 text (as a stored payload has it) in UTC; None otherwise.

    A naive time is taken to be UTC already, as everywhere in the contract.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    return to_millis(moment.replace(tzinfo=UTC) if moment.tzinfo is None
                     else moment.astimezone(UTC))


def received_time(event: StoreEvent, now: datetime) -> datetime:
    """When the service received ``event``: its ``received_at``, never later than ``now``."""
    stamped = _as_time((event.model_extra or {}).get(RECEIVED_FIELD))
    return to_millis(min(stamped, now) if stamped is not None else now)


def clamp(stated: datetime, received: datetime) -> datetime:
    """A store's time as it counts: no later than the moment the event was received."""
    return min(_utc(stated), _utc(received))


def consent_moment(doc: Doc, store: str, stated: datetime, received: datetime) -> datetime:
    """When a consent the store stamped ``stated`` counts as given, on the service's clock.

    No later than its arrival, nor than the arrival of anything this store
    stamped at or after ``stated`` before (see the module docstring).
    """
    stated = _utc(stated)
    moment = clamp(stated, received)
    seen: list[tuple[datetime, datetime]] = doc.get("store_clock", {}).get(store, [])
    for seen_stated, seen_received in seen:
        if seen_stated >= stated:
            return min(moment, seen_received)  # pairs are sorted, arrivals ascending too
    return moment


def observe(doc: Doc, store: str, stated: datetime, received: datetime) -> None:
    """Remember that ``store``'s clock said ``stated`` by the time we received its event."""
    pair = [_utc(stated), _utc(received)]
    pairs: list[list[datetime]] = doc.setdefault("store_clock", {}).get(store, [])
    if any(s >= pair[0] and r <= pair[1] for s, r in pairs):
        return  # implied by what is already known
    kept = [[s, r] for s, r in pairs if not (pair[0] >= s and pair[1] <= r)]
    kept.append(pair)
    kept.sort(key=lambda p: p[0])
    doc["store_clock"][store] = kept[-MAX_OBSERVATIONS:]
