"""Hypothesis strategies for generated input, shared by the fuzz tests and ``make stress``.

``tests/test_fuzz_webhooks.py`` (per-route tests and regression cases) and
``stress/fuzz.py`` (every route, 500 cases per route in ``make test``,
10,000 in ``make stress``) draw from the same strategies, so a shape found
useful in one is used by both.

Bodies start from the real fixtures of ``tests/data`` and ``tests/fixtures``
with one to three values replaced by odd ones (huge integers, floats, nulls,
nested objects, long strings, impossible dates) or removed, or are bytes
that are not JSON at all.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from hypothesis import strategies as st

from tests.support.signing import json_body

TESTS = Path(__file__).resolve().parent.parent
Json = Any


def load(folder: str) -> list[tuple[str, Json]]:
    """``(file stem, parsed JSON)`` of every fixture in ``tests/<folder>``."""
    return [(path.stem, json.loads(path.read_text()))
            for path in sorted((TESTS / folder).glob("*.json"))]


# -- odd values -----------------------------------------------------------------------

EXTREMES: list[Json] = [
    2**63, -(2**63), 2**63 - 1, 2**64, 10**69, -(10**69), int("9" * 70), 0, -1, True, False,
    None, "", 1e308, -1e308, 5e-324, 0.5, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z", "2026-02-30T25:61:00Z", "not a date", str(2**63), "9" * 70,
    "-1", "1e400", "NaN", "١٢٣", "x" * 5000, "\u0000", "+", "@", [], {},
]
_scalar = (st.none() | st.booleans() | st.integers(-(2**80), 2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
ODD: st.SearchStrategy[Json] = st.one_of(
    st.sampled_from(EXTREMES),
    _scalar,
    st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6),
)
# Form fields (Twilio), query values and header values are strings whatever they mean.
ODD_TEXT: st.SearchStrategy[str] = st.one_of(
    st.sampled_from([str(v) for v in EXTREMES if isinstance(v, str | int | float)]),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
)
# What an HTTP header value can carry at all (no CR/LF, Latin-1, as aiohttp sends it).
HEADER_TEXT: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(["", " ", "sha256=", "sha256=zz", "Bearer", "Bearer ", "x" * 300,
                     "sha256=" + "0" * 64, "=" * 10, "null", "0"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                          exclude_characters="\x7f"), max_size=60),
)
DELETE = object()


def paths(value: Json, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (not the root itself)."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replace_at(doc: Json, path: tuple[Any, ...], new: Any) -> None:
    """Set (or, with :data:`DELETE`, remove) the value at ``path`` in place."""
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new


@st.composite
def mutated(draw: st.DrawFn, fixtures: list[tuple[str, Json]],
            values: st.SearchStrategy[Any] = ODD) -> tuple[str, Json]:
    """A fixture with one to three values replaced or removed."""
    name, original = draw(st.sampled_from(fixtures))
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        where = sorted(paths(doc), key=repr)
        if not where:
            break
        path = draw(st.sampled_from(where))
        new = draw(st.one_of(values, values, values, st.just(DELETE)))
        # A copy: ``{}`` and ``[]`` of EXTREMES are shared, and a later draw may write into
        # what it finds in the body (with_extra_field), which changed EXTREMES itself.
        replace_at(doc, path, new if new is DELETE else copy.deepcopy(new))
    return name, doc


def bodies(fixtures: list[tuple[str, Json]]) -> st.SearchStrategy[tuple[str, bytes]]:
    """A mutated fixture as JSON bytes, or now and then bytes that are not JSON."""
    as_json = mutated(fixtures).map(lambda pair: (pair[0], json_body(pair[1])))
    raw = st.tuples(st.sampled_from([name for name, _ in fixtures]), st.binary(max_size=200))
    return st.one_of(as_json, as_json, as_json, as_json, raw)


# What MongoDB cannot hold, which the store routes must refuse wherever it is,
# extra fields included (they are kept): the four ways a fuzz run got a 500.
UNSTORABLE: list[Json] = [2**63, -(2**63) - 1, int("9" * 70), "\ud800", "a\udfffb", "x" * 5000,
                          {"a\x00b": 1}, {"\ud800": 1}, "America"]


@st.composite
def with_extra_field(draw: st.DrawFn, fixtures: list[tuple[str, Json]]) -> tuple[str, bytes]:
    """A mutated fixture plus a new key, in any of its objects, holding an odd value.

    Sent as ASCII JSON, so a lone surrogate travels as an escape, the only
    way a sender's body can carry one.
    """
    name, doc = draw(mutated(fixtures))
    objects = [where for where in [(), *sorted(paths(doc), key=repr)]
               if isinstance(value_at(doc, where), dict)]
    target = value_at(doc, draw(st.sampled_from(objects)))
    target[draw(st.text(max_size=8))] = copy.deepcopy(draw(st.sampled_from(UNSTORABLE) | ODD))
    return name, json.dumps(doc).encode()


def value_at(doc: Json, where: tuple[Any, ...]) -> Json:
    for key in where:
        doc = doc[key]
    return doc


def store_bodies(fixtures: list[tuple[str, Json]]) -> st.SearchStrategy[tuple[str, bytes]]:
    """:func:`bodies`, or a body with an extra field holding an odd or unstorable value."""
    return st.one_of(bodies(fixtures), with_extra_field(fixtures))


def query_params(known: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[
        list[tuple[str, str]]]:
    """Query parameters: some of the ``known`` names with their values, plus odd ones.

    A list of pairs, so a name may repeat (``?status=bot&status=x``), as a
    client may send it.
    """
    odd = st.tuples(st.text(max_size=10), ODD_TEXT)
    pair = st.one_of(st.sampled_from(sorted(known)).flatmap(
        lambda n: st.tuples(st.just(n), known[n] | ODD_TEXT)), odd) if known else odd
    return st.lists(pair, max_size=4)


def assert_no_5xx(response: ClientResponse, body: bytes | str, text: str) -> None:
    """No 5xx, and no body only the channels' last-resort guard could answer."""
    assert response.status < 500, f"{response.status} {text} for {body[:2000]!r}"
    assert '"reason": "unreadable"' not in text, f"a parser failed on {body[:2000]!r}"
