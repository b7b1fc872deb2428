"""A webhook's JSON body, with everything the service cannot store refused as BadPayload.

Every webhook route reads its body here (the channels through
``channels.json_body``, the store routes through
``store_events.base.load_json_object``), because ``json.loads`` accepts
things MongoDB refuses, and raises on one with an error that is not a
``ValueError``. Each of these used to reach the inbox insert and fail it,
and with it every other request written in the same batch (a 500 for all):

- an integer outside 64 bits (``2**63``, a 70-digit number): Python reads
  any size, BSON holds at most 8 bytes (``OverflowError`` in the driver);
- a lone UTF-16 surrogate written as an escape (``"\\ud800"``): Python keeps
  it in the string, but it is not UTF-8;
- a NUL (``"\\u0000"``) in an object key: BSON keys are NUL-terminated;
- nesting deeper than Python's recursion limit (a 1 MiB body can nest
  500,000 levels): ``RecursionError``;
- nesting deeper than ``MAX_DEPTH``: a real MongoDB refuses documents nested
  more than 100 levels, and the inbox stores the body two levels down.

The refusal names the place, e.g. ``line_items[0].quantity: integer out of
range``, as the contract asks of every 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bot.core.errors import BadPayload

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_DEPTH", "UNREADABLE", "load_json"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UNREADABLE = "body is not JSON the service reads"
MAX_DEPTH = 64  # levels of objects and arrays a body may nest
# What the raw bytes of a UTF-8 body show when the parsed value may hold
# something unstorable: a surrogate or NUL can only come from an escape (UTF-8
# cannot carry a surrogate, and JSON refuses a raw control character), and an
# integer outside 64 bits has at least 19 digits. The walk over the parsed
# value runs only then, so ordinary bodies cost one regex scan.
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|[0-9]{19}")


def load_json(body: bytes, *, parse_float: Callable[[str], Any] | None = None,
              parse_constant: Callable[[str], Any] | None = None) -> Any:
    """The parsed body; :class:`BadPayload` naming why it cannot be used.

    ``parse_float`` and ``parse_constant`` are passed to :func:`json.loads`
    (the store routes read fractions as ``Decimal`` and refuse ``NaN``); a
    ``ValueError`` they raise is reported as invalid JSON.
    """
    try:
        payload = json.loads(body, parse_float=parse_float, parse_constant=parse_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadPayload(f"body: not JSON ({error})") from error
    except RecursionError as error:
        raise BadPayload(f"{UNREADABLE}: nested too deeply") from error
    if (_SUSPECT.search(body) or json.detect_encoding(body) != "utf-8"
            or body.count(b"[") + body.count(b"{") > MAX_DEPTH):
        _refuse_unstorable(payload)
    return payload


def _refuse_unstorable(payload: Any) -> None:
    """Walk the parsed value (without recursion: it may nest ~1,000 deep), first problem wins."""
    stack: list[tuple[Any, str, int]] = [(payload, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            raise BadPayload(f"{_printable(path) or 'body'}: nested too deeply "
                             f"(at most {MAX_DEPTH} levels)")
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if "\x00" in key:
                    raise BadPayload(f"{_printable(where)}: a key holds a NUL character")
                _refuse_surrogate(key, where, "key")
                children.append((item, where, depth + 1))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((value[i], f"{path}[{i}]", depth + 1)
                         for i in reversed(range(len(value))))
        elif isinstance(value, str):
            _refuse_surrogate(value, path, "string")
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise BadPayload(f"{path or 'body'}: integer out of range (the service stores "
                             f"integers from {INT64_MIN} to {INT64_MAX})")


def _refuse_surrogate(text: str, where: str, what: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise BadPayload(f"{_printable(where) or 'body'}: a {what} holds a lone UTF-16 "
                         f"surrogate ({error.object[error.start:error.end]!r}), which the "
                         "service cannot store") from None


def _printable(path: str) -> str:
    """``path`` with any surrogate or NUL it holds escaped, so the message itself can be sent."""
    return path.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
