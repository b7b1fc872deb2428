"""The processor's cache of committed customer documents: bounded in entries and in bytes."""

from __future__ import annotations

from bot.runtime.doc_cache import ENTRY_BYTES, DocCache


def blob(size: int) -> bytes:
    return b"x" * size


def test_the_oldest_kept_entries_go_first_beyond_the_entry_bound() -> None:
    cache = DocCache(max_entries=2, max_bytes=10**6)
    cache.keep("a", 1, blob(10))
    cache.keep("b", 1, blob(10))
    cache.keep("a", 2, blob(10))  # kept again: now the newest
    cache.keep("c", 1, blob(10))
    assert "b" not in cache
    assert (cache.take("a"), cache.take("c")) == ((2, blob(10)), (1, blob(10)))


def test_documents_that_grow_push_others_out_instead_of_growing_the_cache() -> None:
    budget = 3 * (1_000 + ENTRY_BYTES)
    cache = DocCache(max_entries=100, max_bytes=budget)
    for n in range(3):
        cache.keep(f"c{n}", 1, blob(1_000))
    assert len(cache) == 3
    # The same customers come back with longer histories: the bound is in
    # bytes, so fewer of them stay, and the cache's size does not grow.
    for n in range(3):
        cache.keep(f"c{n}", 2, blob(2_500))
        assert cache.nbytes <= budget
    assert len(cache) == 1
    assert cache.take("c2") == (2, blob(2_500))


def test_taking_an_entry_gives_its_bytes_back() -> None:
    cache = DocCache(max_entries=10, max_bytes=10**6)
    cache.keep("a", 1, blob(300))
    cache.keep("b", 1, blob(500))
    assert cache.nbytes == 800 + 2 * ENTRY_BYTES
    assert cache.take("a") == (1, blob(300))
    assert cache.take("a") is None
    assert cache.nbytes == 500 + ENTRY_BYTES
    cache.keep("b", 2, blob(100))  # replacing an entry counts its new size only
    assert cache.nbytes == 100 + ENTRY_BYTES


def test_a_document_larger_than_the_whole_budget_is_not_kept() -> None:
    cache = DocCache(max_entries=10, max_bytes=1_000)
    cache.keep("a", 1, blob(100))
    cache.keep("huge", 1, blob(5_000))
    assert len(cache) == 0
    assert cache.nbytes == 0
