"""MongoDB access: the client, the collections, and every index, in one place.

PyMongo's own async API (``AsyncMongoClient``) is used, not Motor, which
MongoDB deprecated in its favour. Every query the service makes has an index
here. The embedded server uses an index only when a filter names exactly the
indexed fields (an ``_id`` plus any other condition scans the collection), so
conditional writes filter on ``_id`` alone and put their condition inside a
pipeline update (``$cond``), which a real MongoDB runs the same way.

Collections (each document's shape is described where it is written; a
document refers to a customer by ``customer``, the internal id, and
``customer_id`` is always the store's id: ``bot.types`` says why):
- ``customers``: one document per customer: profile, identity keys,
  consents, engine state, flow runs, pending waits, conversation status.
- ``inbox``: every accepted input (webhook, store event, agent action),
  keyed by its dedupe id; kept once decided (``state``), as the dedupe
  record and as the history a backtest replays (``bot.backtest``).
- ``messages``: the conversation timelines; outbound ones are the outbox.
- ``conversations``: one summary per customer and channel (agent API view).
- ``flow_runs``: finished flow runs: who, when, the last step, the outcome.
- ``flow_stats``: daily counters per (flow, version, variant), summed for a
  period's statistics (``bot.core.stats`` describes them).
- ``codes``: discount codes issued to customers.
- ``flow_versions``: the source of every flow version a worker ran
  (``bot.runtime.flow_versions``), read whole.
- ``syncs``: one tiny document per process, the target of :meth:`Database.sync`.

Durability. Every write whose loss would lose an acknowledged input or let a
message be sent twice is journaled (``j: true``, with ``w:
MONGODB_WRITE_CONCERN``, "majority" by default) before the service acts on
it. The embedded server does not sync a commit otherwise, and after a SIGKILL
of its process most of the last second's acknowledged writes were gone.

The collection properties below write with that concern. ``j: true`` costs
the embedded server one log sync (~2-3 ms on this project's disk) per commit,
and it commits an ``insert_many`` once but a bulk of updates once per
document. So the bulks of updates that must be durable go through
:meth:`Database.bulk_write_durably`: the bulk without ``j``, then one
journaled write (:meth:`Database.sync`). The journal is one sequential log
(WiredTiger's in the embedded server and in MongoDB; a majority
acknowledgement likewise covers every earlier write of the oplog), so that one
sync makes the whole bulk durable: one log sync per batch, not per document.
A few writes need no journaling at all (:meth:`Database.unjournaled` lists
them and why).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, UpdateOne, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from pymongo.results import BulkWriteResult

from bot.infra import db_credentials
from bot.infra.embedded_db import (
    EmbeddedMongo,
    files_in_use,
    read_port_file,
    remove_port_file,
    write_port_file,
)
from bot.infra.settings import Settings
from bot.types import Doc

log = logging.getLogger(__name__)

INDEXES: dict[str, list[IndexModel]] = {
    "customers": [
        IndexModel([("keys", ASCENDING)], name="keys", unique=True),
        IndexModel([("next_due", ASCENDING)], name="next_due", sparse=True),
        IndexModel([("interests", ASCENDING)], name="interests", sparse=True),
        # The consent audit export: customers with a ledger entry recorded in
        # a period (multikey; bot/http/consent_api.py).
        IndexModel([("consent_ledger.recorded_at", ASCENDING)], name="ledger_recorded"),
    ],
    "inbox": [
        IndexModel([("state", ASCENDING), ("seq", ASCENDING)], name="state_seq"),
        IndexModel([("state", ASCENDING), ("kind", ASCENDING)], name="state_kind"),
    ],
    "messages": [
        IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], name="timeline"),
        IndexModel([("provider_id", ASCENDING)], name="provider_id", sparse=True),
        IndexModel([("outbox", ASCENDING), ("due_at", ASCENDING)], name="outbox", sparse=True),
        # Proof of consent (bot/http/consent_api.py): the marketing sends of a
        # period, and of one customer. Not partial: the embedded server ignores
        # partial indexes.
        IndexModel([("marketing", ASCENDING), ("sent_at", ASCENDING)], name="marketing_sent"),
        IndexModel([("customer", ASCENDING), ("marketing", ASCENDING), ("sent_at", ASCENDING)],
                   name="customer_marketing_sent"),
        # A campaign's messages, counted by GET /api/campaigns/{id}.
        IndexModel([("campaign", ASCENDING)], name="campaign", sparse=True),
    ],
    "conversations": [
        IndexModel([("status", ASCENDING), ("updated_at", DESCENDING)], name="status_updated"),
        IndexModel([("customer_id", ASCENDING)], name="customer"),
        IndexModel([("release_at", ASCENDING)], name="release_at", sparse=True),
        # The console's live feed: "anything changed since" (bot/http/console.py).
        IndexModel([("updated_at", DESCENDING)], name="updated"),
    ],
    # Console: accounts are keyed by e-mail (_id); sessions by their token's hash.
    "sessions": [IndexModel([("expires_at", ASCENDING)], name="expires")],
    # GET /api/flows/{name}/runs filters on step, outcome or both: one index
    # per filter, since the embedded server uses one only when it names them all.
    "flow_runs": [IndexModel([("flow", ASCENDING), ("ended_at", ASCENDING)], name="flow_ended"),
                  IndexModel([("flow", ASCENDING), ("outcome", ASCENDING),
                              ("ended_at", ASCENDING)], name="flow_outcome_ended"),
                  IndexModel([("flow", ASCENDING), ("last_step", ASCENDING),
                              ("ended_at", ASCENDING)], name="flow_step_ended"),
                  IndexModel([("flow", ASCENDING), ("outcome", ASCENDING),
                              ("last_step", ASCENDING), ("ended_at", ASCENDING)],
                             name="flow_outcome_step_ended"),
                  # A customer's runs, for the console's customer panel.
                  IndexModel([("customer", ASCENDING)], name="by_customer")],
    # A period's counters: the flow's days in range (``day`` None: all time).
    "flow_stats": [IndexModel([("flow", ASCENDING), ("day", ASCENDING)], name="flow_day")],
    # Named anew: "customer" was the index of the earlier field name (customer_id).
    "codes": [IndexModel([("customer", ASCENDING)], name="by_customer")],
    # Scheduled campaigns due for expansion (bot/runtime/campaigns.py).
    "campaigns": [IndexModel([("status", ASCENDING), ("at", ASCENDING)], name="status_at")],
    # "catalog" (bot/runtime/catalog.py) is read by _id only: no index of its own.
}


def journaled(w: str = "majority") -> WriteConcern:
    """The write concern of every write whose loss would lose an input or repeat a send.

    ``j: true`` always; ``w`` is ``MONGODB_WRITE_CONCERN``: "majority" (the
    default, which a standalone server, the embedded one included, accepts)
    or a number of nodes.
    """
    return WriteConcern(w=int(w) if w.isdigit() else w, j=True)


UNJOURNALED = WriteConcern(w=1)  # acknowledged by the server, not synced to its journal
OLD_CUSTOMER_FIELD = "customer_id"  # the internal id's name before it was ``customer``


@dataclass
class Database:
    """The service's collections on one database, journaled (see the module docstring)."""

    client: AsyncMongoClient[Doc]
    db: AsyncDatabase[Doc]
    write_concern: WriteConcern = field(default_factory=journaled)
    writer: str = field(default_factory=lambda: uuid.uuid4().hex)  # this process's sync doc

    def _journaled(self, name: str) -> AsyncCollection[Doc]:
        return self.db.get_collection(name, write_concern=self.write_concern)

    @property
    def customers(self) -> AsyncCollection[Doc]:
        return self._journaled("customers")

    @property
    def inbox(self) -> AsyncCollection[Doc]:
        return self._journaled("inbox")

    @property
    def messages(self) -> AsyncCollection[Doc]:
        return self._journaled("messages")

    @property
    def conversations(self) -> AsyncCollection[Doc]:
        return self._journaled("conversations")

    @property
    def flow_runs(self) -> AsyncCollection[Doc]:
        return self._journaled("flow_runs")

    @property
    def flow_stats(self) -> AsyncCollection[Doc]:
        return self._journaled("flow_stats")

    @property
    def codes(self) -> AsyncCollection[Doc]:
        return self._journaled("codes")

    @property
    def campaigns(self) -> AsyncCollection[Doc]:
        return self._journaled("campaigns")

    @property
    def catalog(self) -> AsyncCollection[Doc]:
        """One document per store inventory item (``bot.runtime.catalog``), read by ``_id``."""
        return self._journaled("catalog")

    def unjournaled(self, name: str) -> AsyncCollection[Doc]:
        """Collection ``name`` written with ``w: 1`` and no ``j``.

        For writes that a journaled write right after them makes durable
        (the bulk of :meth:`bulk_write_durably`; a decision's records, which
        its commit follows in ``Processor.commit_many``), and for writes whose
        loss in a crash loses no input and repeats no send:

        - a customer's lease (``Processor.lease_many``, ``release``): it only
          matters while its holder lives; if it is lost, the commit that
          needs it changes nothing and the inputs are decided again;
        - an input marked done or failed (``Processor.flush``,
          ``bot.runtime.receipts``): the customer's committed ``done_inputs``
          skip an input read again, and a failed one fails again;
        - a delivery receipt on the timeline (``bot.runtime.receipts``): its
          input stays pending unless it was marked done after it, so it is
          applied again.

        Even these are durable once any later journaled write returns.
        """
        return self.db.get_collection(name, write_concern=UNJOURNALED)

    async def sync(self) -> None:
        """One journaled write: every write acknowledged before it is then durable too.

        It increments this process's own document in ``syncs`` (its own, so
        workers never contend for one document).
        """
        await self._journaled("syncs").update_one(
            {"_id": self.writer}, {"$inc": {"n": 1}}, upsert=True)

    async def bulk_write_durably(self, name: str,
                                 operations: list[Any]) -> BulkWriteResult:
        """An unordered ``bulk_write`` on collection ``name``, durable when it returns.

        A single operation is written with ``j: true`` itself (one sync, no
        extra round trip); more are written without it and followed by one
        :meth:`sync`. A partly failed bulk is synced as well before its
        ``BulkWriteError`` is raised, since the caller acts on what it wrote.
        """
        if len(operations) <= 1:
            return await self._journaled(name).bulk_write(operations, ordered=False)
        try:
            result = await self.unjournaled(name).bulk_write(operations, ordered=False)
        except BulkWriteError:
            await self.sync()
            raise
        await self.sync()
        return result

    async def ensure_indexes(self) -> None:
        """Create every declared index; a no-op when they exist."""
        await self.upgrade_customer_field()
        for name, indexes in INDEXES.items():
            await self.db[name].create_indexes(indexes)

    async def upgrade_customer_field(self) -> None:
        """Rename ``customer_id`` to ``customer`` in a database written by an earlier version.

        ``messages``, ``codes`` and ``flow_runs`` once called the internal id
        ``customer_id``, the name that elsewhere means the store's id
        (``bot.types``); the sender reads ``customer`` on queued messages. A
        database from then still has the ``codes`` index of the old name,
        which makes the check one cheap command: the renames run (scanning
        those collections) only once, and the old index is dropped after
        them, so an upgrade interrupted half-way is simply done again.
        """
        old = (await self.db["codes"].index_information()).get("customer")
        if old is None or old.get("key") != [(OLD_CUSTOMER_FIELD, ASCENDING)]:
            return
        log.info("upgrading: %s -> customer in messages, codes and flow_runs",
                 OLD_CUSTOMER_FIELD)
        for name in ("messages", "codes", "flow_runs"):
            await self._journaled(name).update_many(
                {OLD_CUSTOMER_FIELD: {"$exists": True}},
                {"$rename": {OLD_CUSTOMER_FIELD: "customer"}})
        await self.db["codes"].drop_index("customer")

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


def embedded_credentials(settings: Settings) -> str:
    """Where the embedded database's login is kept: ``$DATA_DIR/db-credentials.json`` (0600)."""
    return os.path.abspath(os.path.join(settings.data_dir, "db-credentials.json"))


def embedded_port_file(settings: Settings) -> str:
    """Where a running service says its embedded database's port: ``$DATA_DIR/db-port`` (0600)."""
    return os.path.abspath(os.path.join(settings.data_dir, "db-port"))


def running_embedded(settings: Settings) -> tuple[str, dict[str, Any]] | None:
    """The embedded server a running service has on ``DATA_DIR``: its URI and login.

    None when no server has the files open. A server that has them but left
    no port file (a service of an older version) cannot be joined: the
    error says to stop it or to use ``POST /api/agents``.
    """
    storage = embedded_storage(settings)
    if not files_in_use(storage):
        return None
    port = read_port_file(embedded_port_file(settings))
    credentials = db_credentials.load(Path(embedded_credentials(settings)))
    if port is None or credentials is None:
        raise RuntimeError(f"a database has the files in {storage} open, but "
                           f"{embedded_port_file(settings)} or its credentials are missing; "
                           "stop the service and try again")
    return f"mongodb://127.0.0.1:{port}/?directConnection=true", credentials.client_options()


@contextlib.asynccontextmanager
async def open_database(settings: Settings, *, join_running: bool = False,
                        **client_options: Any) -> AsyncIterator[Database]:
    """Connect to ``MONGODB_URI``, or start the embedded server when it is unset.

    While it runs, the embedded server's port is kept in ``$DATA_DIR/db-port``
    (0600). ``join_running`` (shell tools, never the service) uses the server
    a running service has on the same ``DATA_DIR`` instead of starting one:
    one data directory takes one server.
    """
    embedded: EmbeddedMongo | None = None
    uri = settings.mongodb_uri
    login: dict[str, Any] = {}
    joined = running_embedded(settings) if uri is None and join_running else None
    if joined is not None:
        uri, login = joined
        log.info("using the running service's embedded database")
    elif uri is None:
        storage = embedded_storage(settings)
        # Never the service's own port, and with a login only the service knows.
        embedded = EmbeddedMongo(storage, credentials_path=embedded_credentials(settings),
                                 avoid_ports={settings.port})
        await embedded.start()
        uri, login = embedded.uri, embedded.client_options
        write_port_file(embedded_port_file(settings), embedded.port)
        log.info("using the embedded database, files in %s", storage)
    client = make_client(uri, **login, **client_options)
    try:
        database = Database(client, client[settings.mongodb_db],
                            journaled(settings.mongodb_write_concern))
        await database.ensure_indexes()
        yield database
    finally:
        await client.close()
        if embedded is not None:
            remove_port_file(embedded_port_file(settings), embedded.port)
            await embedded.astop()
