"""A webhook's JSON body, with everything the service cannot store refused as BadPayload.

``json.loads`` accepts two things the rest of the service cannot take, and
raises on a third with an error that is not a ``ValueError``:

- a lone UTF-16 surrogate written as an escape (``"\\ud800"``): Python keeps
  it in the string, and MongoDB refuses the document (it is not UTF-8),
  failing the whole inbox batch it was written with;
- nesting deeper than Python's recursion limit (a 1 MiB body can nest
  500,000 levels): ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from channels.errors import BadPayload

SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
UNREADABLE = "body is not JSON the service reads"


def load_json(body: bytes) -> Any:
    """The parsed body; :class:`BadPayload` naming why it cannot be used."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadPayload(f"body is not JSON: {error}") from error
    except RecursionError as error:
        raise BadPayload(f"{UNREADABLE}: nested too deeply") from error
    # Surrogates can only come from escapes (UTF-8 cannot carry them), so the
    # costly check runs only when the body has one, or is not UTF-8 at all.
    if SURROGATE_ESCAPE.search(body) or json.detect_encoding(body) != "utf-8":
        try:
            json.dumps(payload, ensure_ascii=False).encode()
        except UnicodeEncodeError as error:
            raise BadPayload(f"{UNREADABLE}: a string holds a lone UTF-16 surrogate "
                             f"({error.object[error.start:error.end]!r})") from error
        except RecursionError as error:
            raise BadPayload(f"{UNREADABLE}: nested too deeply") from error
    return payload
