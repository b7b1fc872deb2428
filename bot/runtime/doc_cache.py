"""The customer documents a worker committed last, kept so it need not read them again.

An entry is ``customer id -> (version, pickled document)``: the version is
what the next lease is conditioned on (it proves the copy current), and a
pickle takes about a seventh of the memory of the same document as dicts.

The cache is bounded in entries *and* in bytes. A customer's document grows
with its history, up to bounds of its own (the last 100 inputs it processed,
50 steps a run, a few runs' messages for attribution): from ~1 KB when new
to ~10 KB. Bounded in entries alone, a worker's cache of the same 2,000 hot
customers grew from ~3 to ~6 MB over half an hour of the load run, and
would have gone on towards ~20 MB as their documents filled up (README
"Stress"): the worker's memory crept up for as long as the load lasted.
"""

from __future__ import annotations

from collections import OrderedDict

ENTRY_BYTES = 200  # what an entry costs besides its pickle (key, tuple, version, node)


def cost(blob: bytes) -> int:
    """The bytes an entry holding ``blob`` counts against the bound."""
    return len(blob) + ENTRY_BYTES


class DocCache:
    """A least-recently-kept cache of pickled customer documents, bounded two ways."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.nbytes = 0  # the entries' costs
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, customer: object) -> bool:
        return customer in self._entries

    def take(self, customer: str) -> tuple[int, bytes] | None:
        """Remove and return the customer's entry (the lease that follows may change it)."""
        entry = self._entries.pop(customer, None)
        if entry is not None:
            self.nbytes -= cost(entry[1])
        return entry

    def keep(self, customer: str, version: int, blob: bytes) -> None:
        """Keep the customer's committed copy, dropping the oldest entries beyond a bound."""
        self.take(customer)
        self._entries[customer] = (version, blob)
        self.nbytes += cost(blob)
        while self._entries and (len(self._entries) > self.max_entries
                                 or self.nbytes > self.max_bytes):
            _, (_, dropped) = self._entries.popitem(last=False)
            self.nbytes -= cost(dropped)
