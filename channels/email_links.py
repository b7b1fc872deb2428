"""The links inside an e-mail: open pixel, tracked clicks, answers, one-click unsubscribe.

Every link the service puts in an e-mail is ``{PUBLIC_URL}/t/{token}`` (an
open or a click), ``{PUBLIC_URL}/r/{token}`` (an answer: one of a question's
choices) or ``{PUBLIC_URL}/u/{token}`` (unsubscribe), where the token
*carries* what the route needs (the message, its customer, the address, the
provider's message id, the click's target, the choice) and is signed with
HMAC-SHA256.
So the routes read nothing before they act, and nobody can forge a link:
a changed target (an open redirect) or another address (unsubscribing
someone else) fails the signature.

Pure functions only; the key is the database's (``channels.email_routes``
keeps it, one for every worker, so links outlive restarts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.core.errors import BadSignature

LinkKind = Literal["open", "click", "answer", "unsubscribe"]
KINDS: dict[str, LinkKind] = {"o": "open", "c": "click", "a": "answer", "u": "unsubscribe"}
CODES = {kind: code for code, kind in KINDS.items()}
MAC_BYTES = 16  # 128 bits of HMAC-SHA256: unguessable, and keeps links short
MAX_TOKEN = 4096  # longer tokens are refused before any decoding
# A URL in a message's text: up to whitespace or an angle bracket, without
# the punctuation that usually ends the sentence around it.
URL = re.compile(r"https?://[^\s<>\"']+")
TRAILING = ".,;:!?)]}»'\""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, kind: LinkKind, **fields: str) -> str:
    """A signed token for one link: ``<payload>.<mac>``, both base64url."""
    payload = _b64(json.dumps({"k": CODES[kind], **fields}, separators=(",", ":"),
                              ensure_ascii=False).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def read_token(key: bytes, token: str) -> tuple[LinkKind, dict[str, str]]:
    """The kind and fields of a token :func:`make_token` signed with ``key``.

    Raises:
        BadSignature: malformed, or not signed with ``key`` (compared in constant time).
    """
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise BadSignature("not a link token")
    payload, mac = token.split(".")
    try:
        given = _unb64(mac)
    except ValueError:
        raise BadSignature("not a link token") from None
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise BadSignature("the link's signature does not match")
    try:
        fields: Any = json.loads(_unb64(payload))
    except ValueError:
        raise BadSignature("not a link token") from None
    kind = KINDS.get(fields.pop("k", None)) if isinstance(fields, dict) else None
    if kind is None or not all(isinstance(v, str) for v in fields.values()):
        raise BadSignature("not a link token")
    return kind, fields


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, payload.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def find_urls(text: str) -> list[tuple[int, int]]:
    """(start, end) of each http(s) URL in ``text``, closing punctuation left out."""
    spans = []
    for match in URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in TRAILING:
            end -= 1
        if _redirectable(text[match.start():end]):
            spans.append((match.start(), end))
    return spans


def _redirectable(url: str) -> bool:
    """A URL a redirect can name: it parses and has a host (``http://[`` does not)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return False
    return bool(parts.hostname)


def replace_urls(text: str, replace: Callable[[str], str]) -> str:
    """``text`` with each URL replaced by ``replace(url)``."""
    parts, last = [], 0
    for start, end in find_urls(text):
        parts += [text[last:start], replace(text[start:end])]
        last = end
    return "".join([*parts, text[last:]])


def click_id(url: str) -> str:
    """A short stable id of a link's target (one click per link counts for flows)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


__all__ = ["LinkKind", "click_id", "find_urls", "make_token", "read_token", "replace_urls"]
