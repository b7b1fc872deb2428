"""Flow versions are data: the source of every version that ran is kept.

A flow's version is its declared ``version`` or the hash of its module's
source (``bot.core.stats.flow_version``): the statistics are filed under it
and a run keeps the one it started on. What the version *was* would be lost
with the next deploy unless it is kept, so at start each worker records the
source of every flow it loaded, one document per (flow, version)::

    {"_id": "cart_recovery|3f2a9c01b7d4", "flow", "version", "module",
     "source", "first_seen", "last_seen"}

``first_seen`` is when a worker first ran it, ``last_seen`` when one last
started with it: the version with the latest ``last_seen`` is the one the
store runs now. The backtest (``bot.backtest``) replays that source against
the store's history next to a changed flow, so a developer sees what the
change would do before it runs. The collection is small (a document per
version ever deployed) and read whole.

One ``bulk_write`` of upserts at start, unjournaled: losing it in a crash
loses a record that the next start writes again, never an input or a send.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import UpdateOne

from bot.core.flows import Flow
from bot.core.stats import flow_source, flow_version
from bot.infra.database import Database
from bot.types import Doc

COLLECTION = "flow_versions"


def version_id(flow: str, version: str) -> str:
    return f"{flow}|{version}"


async def record_versions(database: Database, flows: Iterable[Flow], now: datetime) -> None:
    """Keep the source of each flow's current version (a flow without a readable module
    is recorded without one)."""
    operations = []
    for flow in flows:
        version = flow_version(flow)
        found = flow_source(flow)
        module, source = found if found else (None, None)
        operations.append(UpdateOne(
            {"_id": version_id(flow.name, version)},
            {"$set": {"last_seen": now},
             "$setOnInsert": {"flow": flow.name, "version": version, "module": module,
                              "source": source, "first_seen": now}},
            upsert=True))
    if operations:
        await database.unjournaled(COLLECTION).bulk_write(operations, ordered=False)


async def versions(database: Database, flow: str | None = None) -> list[Doc]:
    """The recorded versions (of one flow, or all), the one run most recently first."""
    query = {} if flow is None else {"flow": flow}
    found = await database.db[COLLECTION].find(query).to_list(None)
    return sorted(found, key=lambda doc: doc["last_seen"], reverse=True)


async def find_version(database: Database, flow: str, version: str) -> Doc | None:
    """One recorded version, its source included."""
    found: Doc | None = await database.db[COLLECTION].find_one({"_id": version_id(flow, version)})
    return found


async def current_versions(database: Database) -> dict[str, Doc]:
    """Flow name -> the version the store ran last (its latest ``last_seen``)."""
    latest: dict[str, Doc] = {}
    for doc in await versions(database):
        latest.setdefault(doc["flow"], doc)
    return latest
