"""Reading a store's past inputs from the inbox, in arrival order, a window at a time.

The inbox keeps every input once decided (``state: "done"``), which is the
history a backtest replays. It is read in windows of ``seq`` (wall time in
nanoseconds when the input arrived) over the ``state_seq`` index, never
with "sort and take the first n": the embedded server reads every match
before it sorts (``bot.runtime.pending`` measured it). A window's span
adapts so it holds about :data:`TARGET` inputs; only one window is in
memory at a time.

Inputs the runtime made for one customer (a fan-out's share, a campaign's,
an e-mail click) name that customer by its internal id (``id:<_id>``),
which means nothing to a replay's own customers: such an input is given the
live customer's identity keys instead, read in one query per window.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from bot.infra.database import Database, find_in
from bot.types import Doc

TARGET = 2_000
FIRST_SPAN = 3600 * 1_000_000_000  # ns: an hour
MAX_SPAN = 7 * 86_400 * 1_000_000_000  # ns: a week
FIELDS = {"raw": 0}  # the provider's body as received is not needed to decide again


def ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


async def decided_inputs(database: Database, since: datetime,
                         until: datetime) -> AsyncIterator[Doc]:
    """Every input decided by the live service that arrived in ``[since, until)``, in order."""
    low, end, span = ns(since), ns(until), FIRST_SPAN
    while low < end:
        high = min(low + span, end)
        window = await database.inbox.find(
            {"state": "done", "seq": {"$gte": low, "$lt": high}}, FIELDS).to_list(None)
        window.sort(key=lambda item: item["seq"])
        await _named_by_identity(database, window)
        for item in window:
            yield item
        low = high
        if len(window) > 2 * TARGET:
            span = max(span // 2, 1_000_000)
        elif len(window) < TARGET // 2:
            span = min(span * 2, MAX_SPAN)


async def _named_by_identity(database: Database, items: list[Doc]) -> None:
    """Give inputs that name a customer by internal id that customer's identity keys."""
    direct = {key[3:] for item in items for key in item["keys"] if key.startswith("id:")}
    if not direct:
        return
    keys = {doc["_id"]: [key for key in doc.get("keys", []) if not key.startswith("id:")]
            async for doc in find_in(database.customers, "_id", direct, {"keys": 1})}
    for item in items:
        named = [key[3:] for key in item["keys"] if key.startswith("id:")]
        if named:
            item["keys"] = [*(key for key in item["keys"] if not key.startswith("id:")),
                            *(key for customer in named for key in keys.get(customer, []))]
