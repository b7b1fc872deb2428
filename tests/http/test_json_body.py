"""The shared webhook JSON reader refuses what MongoDB cannot store, naming where."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import BadPayload
from bot.http.json_body import MAX_DEPTH, load_json


def nested(levels: int) -> bytes:
    return ("[" * (levels - 1) + "{}" + "]" * (levels - 1)).encode()


def test_a_body_nested_as_deep_as_allowed_is_read() -> None:
    assert load_json(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))


def test_a_body_nested_deeper_than_mongodb_takes_is_refused_naming_where() -> None:
    body = json.dumps({"entry": json.loads(nested(MAX_DEPTH + 1))}).encode()
    with pytest.raises(BadPayload, match=r"entry(\[0\])+: nested too deeply"):
        load_json(body)


def test_many_brackets_side_by_side_are_not_depth() -> None:
    body = json.dumps({"items": [{"a": [1]} for _ in range(200)]}).encode()
    assert len(load_json(body)["items"]) == 200
