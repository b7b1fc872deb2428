"""The database tests and the stress suite use: MONGODB_URI, or an in-memory embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

from bot.infra.embedded_db import EmbeddedMongo


@contextlib.contextmanager
def mongo() -> Iterator[str]:
    """A MongoDB URI: ``MONGODB_URI``, or an embedded in-memory server for the run."""
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    server = EmbeddedMongo(":memory:")
    asyncio.run(server.start())
    try:
        yield server.uri
    finally:
        server.stop()
