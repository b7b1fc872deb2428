"""MongoDB access: the client, the collections, and every index, in one place.

PyMongo's own async API (``AsyncMongoClient``) is used, not Motor, which
MongoDB deprecated in its favour. Every query the service makes has an index
here. The embedded server uses an index only when a filter names exactly the
indexed fields (an ``_id`` plus any other condition scans the collection), so
conditional writes filter on ``_id`` alone and put their condition inside a
pipeline update (``$cond``), which a real MongoDB runs the same way.

Collections (each document's shape is described where it is written):
- ``customers``: one document per customer: profile, identity keys,
  consents, engine state, flow runs, pending waits, conversation status.
- ``inbox``: every accepted input (webhook, store event, agent action),
  keyed by its dedupe id, until processed.
- ``messages``: the conversation timelines; outbound ones are the outbox.
- ``conversations``: one summary per customer and channel (agent API view).
- ``flow_runs``: finished flow runs, for statistics.
- ``codes``: discount codes issued to customers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from bot.embedded_db import EmbeddedMongo
from bot.settings import Settings

log = logging.getLogger(__name__)

Doc = dict[str, Any]

INDEXES: dict[str, list[IndexModel]] = {
    "customers": [
        IndexModel([("keys", ASCENDING)], name="keys", unique=True),
        IndexModel([("next_due", ASCENDING)], name="next_due", sparse=True),
        IndexModel([("interests", ASCENDING)], name="interests", sparse=True),
    ],
    "inbox": [
        IndexModel([("state", ASCENDING), ("seq", ASCENDING)], name="state_seq"),
        IndexModel([("state", ASCENDING), ("kind", ASCENDING)], name="state_kind"),
    ],
    "messages": [
        IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], name="timeline"),
        IndexModel([("provider_id", ASCENDING)], name="provider_id", sparse=True),
        IndexModel([("outbox", ASCENDING), ("due_at", ASCENDING)], name="outbox", sparse=True),
    ],
    "conversations": [
        IndexModel([("status", ASCENDING), ("updated_at", DESCENDING)], name="status_updated"),
        IndexModel([("customer_id", ASCENDING)], name="customer"),
        IndexModel([("release_at", ASCENDING)], name="release_at", sparse=True),
    ],
    "flow_runs": [IndexModel([("flow", ASCENDING), ("ended_at", ASCENDING)], name="flow_ended")],
    "codes": [IndexModel([("customer_id", ASCENDING)], name="customer")],
}


@dataclass
class Database:
    """The service's collections on one database."""

    client: AsyncMongoClient[Doc]
    db: AsyncDatabase[Doc]

    @property
    def customers(self) -> AsyncCollection[Doc]:
        return self.db["customers"]

    @property
    def inbox(self) -> AsyncCollection[Doc]:
        return self.db["inbox"]

    @property
    def messages(self) -> AsyncCollection[Doc]:
        return self.db["messages"]

    @property
    def conversations(self) -> AsyncCollection[Doc]:
        return self.db["conversations"]

    @property
    def flow_runs(self) -> AsyncCollection[Doc]:
        return self.db["flow_runs"]

    @property
    def codes(self) -> AsyncCollection[Doc]:
        return self.db["codes"]

    async def ensure_indexes(self) -> None:
        """Create every declared index; a no-op when they exist."""
        for name, indexes in INDEXES.items():
            await self.db[name].create_indexes(indexes)

    async def ping(self) -> None:
        await self.client.admin.command("ping")


IN_CHUNK = 100  # values per $in list (see find_in)


async def find_in(collection: AsyncCollection[Doc], field: str, values: Iterable[Any],
                  projection: Doc | None = None) -> AsyncIterator[Doc]:
    """The documents whose ``field`` is one of ``values``, read ``IN_CHUNK`` at a time.

    The embedded server checks every candidate against the whole ``$in``
    list, so one query of 500 values costs several times five of 100.
    """
    values = list(values)
    for start in range(0, len(values), IN_CHUNK):
        async for doc in collection.find(
                {field: {"$in": values[start:start + IN_CHUNK]}}, projection):
            yield doc


async def update_each(collection: AsyncCollection[Doc], ids: list[Any],
                      update: Doc | list[Doc]) -> int:
    """Apply ``update`` to the documents with these ids, in one round trip.

    One ``UpdateOne`` per id in a single ``bulk_write``, not ``update_many``
    with ``$in``: the embedded server checks every candidate against the
    whole ``$in`` list, so that costs the square of the batch size. Returns
    how many documents changed.
    """
    if not ids:
        return 0
    written = await collection.bulk_write(
        [UpdateOne({"_id": item}, update) for item in ids], ordered=False)
    return written.modified_count


def make_client(uri: str, **options: Any) -> AsyncMongoClient[Doc]:
    """An ``AsyncMongoClient`` with the service's options (UTC-aware datetimes)."""
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
    return AsyncMongoClient(uri, **options)


def embedded_storage(settings: Settings) -> str:
    """Where the embedded database keeps its files: ``$DATA_DIR/db``, absolute."""
    return os.path.abspath(os.path.join(settings.data_dir, "db"))


@contextlib.asynccontextmanager
async def open_database(settings: Settings, **client_options: Any) -> AsyncIterator[Database]:
    """Connect to ``MONGODB_URI``, or start the embedded server when it is unset."""
    embedded: EmbeddedMongo | None = None
    uri = settings.mongodb_uri
    if uri is None:
        storage = embedded_storage(settings)
        embedded = EmbeddedMongo(storage)
        await embedded.start()
        uri = embedded.uri
        log.info("using the embedded database, files in %s", storage)
    client = make_client(uri, **client_options)
    try:
        database = Database(client, client[settings.mongodb_db])
        await database.ensure_indexes()
        yield database
    finally:
        await client.close()
        if embedded is not None:
            await embedded.astop()
