"""The embedded MongoDB-compatible server used when ``MONGODB_URI`` is unset.

``secantusdb`` runs as a child process on a free loopback port (behind the
small ``bot.db_guard``), so ``make run`` needs nothing installed. It is
stopped with SIGTERM (it takes a few seconds to close WiredTiger cleanly)
and SIGKILL only as a last resort, so no orphan outlives the service.

Durability: secantus does not fsync each commit by default; data survives
a killed process, but recent commits can be lost on power failure (see the
README). Production uses a real MongoDB.

It runs ``--standalone``: it does not present itself as a one-node replica
set, so it writes no oplog. Nothing here reads one (the service uses no
change streams and no transactions), and the oplog cost the server about a
tenth of every write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedMongo:
    """A ``python -m secantus`` child process on 127.0.0.1.

    Args:
        storage_path: directory for its files, or ``":memory:"`` (tests).
        port: the port to listen on (a free one when None).
    """

    def __init__(self, storage_path: str, port: int | None = None) -> None:
        self.storage_path = storage_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it answers a ``ping``."""
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        # The guard runs as a script by its path (it needs only the standard
        # library), so the service may be started from any directory.
        command = [
            sys.executable, str(Path(__file__).with_name("db_guard.py")), "--host", "127.0.0.1",
            "--port", str(self.port), "--storage-path", self.storage_path,
            "--log-level", "WARNING", "--standalone",
        ]
        # Through bot.db_guard, which stops the database gracefully if the
        # service dies without doing so (kill -9). A new session, so a Ctrl-C
        # aimed at the service's terminal does not stop the database before
        # the service has finished with it.
        self.process = subprocess.Popen(  # noqa: ASYNC220 (start-up, once)
            command, start_new_session=True)
        deadline = time.monotonic() + timeout
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.uri, serverSelectionTimeoutMS=500
        )
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"embedded database exited with code {self.process.returncode}"
                    )
                try:
                    await client.admin.command("ping")
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise RuntimeError("embedded database did not answer in time") from None
                    await asyncio.sleep(0.1)
        finally:
            await client.close()

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("embedded database did not stop in %.0fs; killing it", grace)
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL the guard and the database at once (tests of a lost database)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    async def astop(self) -> None:
        """``stop`` without blocking the event loop."""
        await asyncio.to_thread(self.stop)
