"""Which pending inputs a decision pass reads: a window of the queue, not all of it.

The obvious query, "the first ``BATCH`` pending inputs by ``seq``", reads
*every* pending input on the embedded database before it sorts and cuts
(measured: 2 s a pass at 49,000 pending, and growing with the backlog), so a
backlog made every pass slower and the service fell further behind the
longer a burst lasted. A query bounded on both sides of ``seq`` reads only
what lies in its range (16 ms for 500), whatever waits behind it.

:class:`PendingScan` therefore keeps a *floor* (no pending input below it,
as far as it knows) and a *span*, and reads ``[floor, floor + span)``:

- the floor is the lowest pending ``seq`` the last read found, so an input
  left pending (its customer leased by another worker, its chunk failed) is
  read again by the next pass, and one customer's inputs still go in order;
- the span adapts so a window holds about a batch: halved when it held more
  than two, doubled when it held less than half;
- a window with nothing pending moves the floor past it, but never into
  the last ``GRACE_SECONDS`` of wall time: an input takes its ``seq`` when
  its request arrives and is stored a little later (batched, at most
  ``INTAKE_SECONDS``), and another worker's clock may run a little behind;
- an input stored even later than that (its database paused for longer)
  is reported by this process's inbox (:meth:`PendingScan.lower`), and the
  floor goes back to it;
- every ``LOOK_BACK_SECONDS`` the hour below the floor is read
  (``LOOK_BACK_NS``): only inputs still pending there are read, so it is
  cheap, and it finds an input another worker stored late and could not
  report;
- the whole queue is read, as before, when there is no floor: at start,
  and when the windows reach the grace period empty (the queue has been
  caught up with, so the read is small and finds anything later still).
  A full read that returns less than a batch is the whole queue, so a
  small queue is always read whole, exactly as before. Full reads are kept
  to those moments because the embedded server holds its global lock while
  it reads: at 100,000 pending, seconds in which no other read is served
  (an earlier version read the whole queue every few minutes, and the
  load run's webhooks timed out while it did).
"""

from __future__ import annotations

import time
from typing import Any

from bot.types import Doc

GRACE_SECONDS = 10.0  # the newest inputs are always looked at again (late stores, clock skew)
LOOK_BACK_SECONDS = 30.0  # how often the hour below the floor is read again
LOOK_BACK_NS = 3600 * 1_000_000_000
FIRST_SPAN = 1_000_000_000  # ns: one second of arrivals, before a read tells better
MAX_SPAN = 86_400 * 1_000_000_000  # ns: a day
MAX_PROBES = 8  # empty windows stepped over in one call before a full read
PENDING: Doc = {"state": "pending"}


def window_filter(low: int, high: int) -> Doc:
    """The pending inputs with ``low <= seq < high``: a range of the ``state_seq`` index.

    Fan-outs (the runtime's own pass expands them) are left out after the
    read, not by the filter: a ``kind: {$ne: ...}`` clause made the embedded
    server scan the whole collection (explain: COLLSCAN), 1.5 s a read at
    50,000 inputs.
    """
    return {**PENDING, "seq": {"$gte": low, "$lt": high}}


def to_decide(items: list[Doc]) -> list[Doc]:
    """All but the fan-outs, which the runtime's own pass expands."""
    return [item for item in items if item["kind"] != "fanout"]


class PendingScan:
    """The pending inputs of the next pass, in ``seq`` order, at most ``batch``."""

    def __init__(self, inbox: Any, batch: int) -> None:
        self.inbox = inbox
        self.batch = batch
        self.floor: int | None = None
        self.span = FIRST_SPAN
        self.looked_back_at = time.monotonic()

    async def next(self) -> list[Doc]:
        if self.floor is not None and time.monotonic() - self.looked_back_at >= LOOK_BACK_SECONDS:
            await self.look_back()
        items: list[Doc] = []
        for _ in range(MAX_PROBES):
            if self.floor is None:
                break
            items, widen = await self.window()
            if not widen:
                break
        if self.floor is None or not items:
            return to_decide(await self.full())  # never "nothing" while something is pending
        return to_decide(items[:self.batch])

    def lower(self, seq: int) -> None:
        """An input with this ``seq`` was stored late (after the grace period): look from there."""
        if self.floor is not None and seq < self.floor:
            self.floor = seq

    async def look_back(self) -> None:
        """Lower the floor to an input still pending in the hour below it, if any."""
        assert self.floor is not None
        self.looked_back_at = time.monotonic()
        below = await self.inbox.find(window_filter(self.floor - LOOK_BACK_NS, self.floor),
                                      {"seq": 1}).sort("seq", 1).limit(1).to_list(None)
        if below:
            self.floor = below[0]["seq"]

    async def full(self) -> list[Doc]:
        """The first pending inputs of the whole queue (reads all of it)."""
        items: list[Doc] = await self.inbox.find(PENDING).sort("seq", 1).limit(
            self.batch).to_list(None)
        self.looked_back_at = time.monotonic()
        if len(items) < self.batch:
            self.floor = None  # that was all of it: the next pass reads the whole queue again
        else:
            self.floor = items[0]["seq"]
            self.span = min(MAX_SPAN, max(1, items[-1]["seq"] - self.floor + 1))
        return items

    async def window(self) -> tuple[list[Doc], bool]:
        """The pending inputs in ``[floor, floor + span)``, and whether to look further.

        Looking further (a wider window) is worth it when this one held too
        few for a pass and ended before the recent past; an empty window
        that reaches the recent past clears the floor (a full read follows).
        """
        assert self.floor is not None
        low, high = self.floor, self.floor + self.span
        items: list[Doc] = await self.inbox.find(window_filter(low, high)).sort(
            "seq", 1).to_list(None)
        past = high <= time.time_ns() - int(GRACE_SECONDS * 1e9)
        if not items:
            self.floor = high if past else None
        else:
            self.floor = items[0]["seq"]
        if len(items) > 2 * self.batch:
            self.span = max(1, self.span // 2)
            return items, False
        if len(items) < self.batch // 2 and past:
            self.span = min(MAX_SPAN, self.span * 2)
            return items, True
        return items, False
