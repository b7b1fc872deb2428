"""The replay's customers, on disk: a backtest never holds every customer in memory.

A year of a store's history names every customer it has, and each
simulated one is a whole customer document (consents, flow state, waits).
They live in a SQLite file in a temporary directory, as BSON (the same
round trip the database gives the runtime, ``bot.testing.stored``), with
three lookups the replay needs:

- by identity key (``store:``, ``phone:``, ...), to find an input's customer;
- by due time, to fire waits across all customers in time order;
- by message id, for the sends that orders are attributed to;
- who each flow messaged in the period, counted once each.

Nothing here is written to the store's database: a backtest only reads it.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import bson
from bson.codec_options import CodecOptions

from bot.types import Doc

CODEC: CodecOptions[Doc] = CodecOptions(document_class=dict, tz_aware=True)

SCHEMA = """
CREATE TABLE customers (id TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE keys (key TEXT PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE due (id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX due_at ON due (at);
CREATE TABLE sends (id TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE messaged (flow TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (flow, id));
"""


class Scratch:
    """Customer documents and sends of one replay, in a file removed on :meth:`close`."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="chasqui-backtest-")
        # One writer, this thread; no fsync: the file is thrown away after the run.
        self.db = sqlite3.connect(Path(self._dir.name) / "replay.sqlite", isolation_level=None)
        self.db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # ------------------------------------------------------------- customers

    def get(self, customer: str) -> Doc | None:
        row = self.db.execute("SELECT doc FROM customers WHERE id = ?", (customer,)).fetchone()
        return None if row is None else bson.decode(row[0], codec_options=CODEC)

    def put(self, doc: Doc) -> Doc:
        """Store ``doc`` (keys and due time too) and answer it as it would be read back."""
        data = bson.encode(doc)
        self.db.execute("INSERT OR REPLACE INTO customers VALUES (?, ?)", (doc["_id"], data))
        self.db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)",
                            [(key, doc["_id"]) for key in doc["keys"]])
        due = doc.get("next_due")
        if due is None:
            self.db.execute("DELETE FROM due WHERE id = ?", (doc["_id"],))
        else:
            self.db.execute("INSERT OR REPLACE INTO due VALUES (?, ?)",
                            (doc["_id"], due.timestamp()))
        return bson.decode(data, codec_options=CODEC)

    def named_by(self, keys: Iterable[str]) -> list[Doc]:
        """The customers holding any of ``keys``."""
        keys = list(keys)
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        ids = {row[0] for row in self.db.execute(
            f"SELECT id FROM keys WHERE key IN ({marks})", keys)}
        return [doc for customer in sorted(ids) if (doc := self.get(customer)) is not None]

    def owners(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that some customer holds already."""
        keys = list(keys)
        if not keys:
            return set()
        marks = ",".join("?" * len(keys))
        return {row[0] for row in self.db.execute(
            f"SELECT key FROM keys WHERE key IN ({marks})", keys)}

    def next_due(self, until: datetime) -> Iterator[tuple[str, datetime]]:
        """Customers with a wait due by ``until``, earliest first, read one at a time
        (firing a wait may schedule another before the next one)."""
        limit = until.timestamp()
        while True:
            row = self.db.execute("SELECT id, at FROM due WHERE at <= ? ORDER BY at, id LIMIT 1",
                                  (limit,)).fetchone()
            if row is None:
                return
            doc = self.get(row[0])
            if doc is None or doc.get("next_due") is None:
                self.db.execute("DELETE FROM due WHERE id = ?", (row[0],))
                continue
            yield row[0], doc["next_due"]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM customers").fetchone()[0])

    # ----------------------------------------------------------------- sends

    def sent(self, message: Doc) -> None:
        """Remember a simulated send (what attribution reads of it)."""
        kept = {"_id": message["_id"], "sent_at": message.get("due_at") or message.get("at"),
                "status": "sent"}
        self.db.execute("INSERT OR IGNORE INTO sends VALUES (?, ?)",
                        (message["_id"], bson.encode(kept)))

    def sends(self, ids: Iterable[str]) -> dict[str, Doc]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {row[0]: bson.decode(row[1], codec_options=CODEC) for row in self.db.execute(
            f"SELECT id, doc FROM sends WHERE id IN ({marks})", ids)}

    def messaged(self, flow: str, customer: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO messaged VALUES (?, ?)", (flow, customer))

    def messaged_count(self, flow: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM messaged WHERE flow = ?",
                                   (flow,)).fetchone()[0])
