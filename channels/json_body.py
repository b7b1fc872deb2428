"""A channel webhook's JSON body: one loader, shared with the store routes.

Kept as an import path for the channel parsers; the one implementation (and
why each refusal exists) is in :mod:`bot.http.json_body`.
"""

from __future__ import annotations

from bot.http.json_body import load_json

__all__ = ["load_json"]
