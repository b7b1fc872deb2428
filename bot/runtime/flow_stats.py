"""Writing a pass's flow counters, and the one read attribution needs.

The counters themselves are built by the pure ``bot.core.stats``; here they
become one ``bulk_write`` of ``$inc`` upserts per pass into ``flow_stats``
(each filtered on ``_id`` alone, as every write of the service is, see
``bot.infra.database``). Revenue is ``$inc``-ed as ``Decimal128``, which the
embedded server and MongoDB both add exactly.

Durability: the counters are written without a journal sync of their own,
after the facts they count are committed; the pass's next journaled write
(the conversations' summaries, the outcomes' sync) makes them durable. A
crash between a commit and its counters loses those increments (counts are
then a little low, never doubled: a replayed decision is skipped by
``done_inputs`` and counts nothing). Statistics, not records: the records
stay in ``messages`` and ``flow_runs``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bson.decimal128 import Decimal128
from pymongo import UpdateOne

from bot.core.flows import Flow
from bot.core.stats import Counters, count_order, summarize
from bot.infra.database import Database, find_in
from bot.types import Doc

COLLECTION = "flow_stats"
MESSAGE_FIELDS = {"status": 1, "status_rank": 1, "status_history": 1, "sent_at": 1}


def _stored(value: Any) -> Any:
    return Decimal128(value) if isinstance(value, Decimal) else value


async def write_counters(database: Database, counters: Counters) -> None:
    """One ``bulk_write`` of ``$inc`` upserts for the whole pass (nothing when empty)."""
    if not counters:
        return
    operations = []
    for key, update in counters.updates():
        update["$inc"] = {path: _stored(amount) for path, amount in update["$inc"].items()}
        operations.append(UpdateOne({"_id": key}, update, upsert=True))
    await database.unjournaled(COLLECTION).bulk_write(operations, ordered=False)


async def count_conversions(database: Database, orders: Iterable[Mapping[str, Any]],
                            window: timedelta, counters: Counters) -> None:
    """Count the orders of a pass for the runs whose messages reached the customer before.

    Each order carries the customer's recent runs and their latest messages
    (``bot.core.stats.remember_message``), taken before the order was
    decided; whether and when each message was delivered is read here, in
    one query for the whole pass (and none when no order has candidates).
    """
    orders = [order for order in orders if order.get("candidates")]
    if not orders:
        return
    ids = {mid for order in orders for run in order["candidates"] for mid in run["messages"]}
    messages: dict[Any, Doc] = {
        doc["_id"]: doc async for doc in find_in(database.messages, "_id", ids, MESSAGE_FIELDS)}
    for order in orders:
        count_order(counters, order, messages, window)


async def period_figures(database: Database, flow: Flow, first: date, last: date) -> Doc:
    """The stats answer: the period's daily counters summed, ``active`` from all time."""
    collection = database.flow_stats
    days = await collection.find(
        {"flow": flow.name, "day": {"$gte": first.isoformat(), "$lte": last.isoformat()}},
    ).to_list(None)
    all_time = await collection.find({"flow": flow.name, "day": None}).to_list(None)
    return {"flow": flow.name, "from": first.isoformat(), "to": last.isoformat(),
            **summarize(flow, days, all_time)}
