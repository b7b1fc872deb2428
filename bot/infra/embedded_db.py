"""The embedded MongoDB-compatible server used when ``MONGODB_URI`` is unset.

``secantusdb`` runs as a child process on a free loopback port (behind the
small ``bot.infra.db_guard``), so ``make run`` needs nothing installed. It is
stopped with SIGTERM (it takes a few seconds to close WiredTiger cleanly)
and SIGKILL only as a last resort, so no orphan outlives the service.

On disk it runs with ``--auth``: the login is generated at first start and
kept in ``DATA_DIR`` (``bot.infra.db_credentials``), so other local accounts cannot
read customers' data. ``:memory:`` (the test suite) runs without it.

A restart right after a kill can find the previous server still closing its
files (WiredTiger holds a lock on them and a second server fails with "Device
or resource busy"), so starting first waits, bounded, for that lock.

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
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from bot.infra import db_credentials
from bot.infra.db_credentials import Credentials

log = logging.getLogger(__name__)

FILES_WAIT = 30.0  # seconds to wait for a previous server to release the files
USER_EXISTS = 51003  # secantus' code for createUser of an existing user
ROLES = ["readWriteAnyDatabase", "dbAdminAnyDatabase"]  # data and indexes, no user admin


def free_port(avoid: Collection[int] = ()) -> int:
    """A TCP port that is free on loopback right now, and not one of ``avoid``."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def files_in_use(storage_path: str) -> bool:
    """True while another process holds WiredTiger's lock on these files.

    WiredTiger takes a POSIX record lock on ``WiredTiger.lock`` for as long
    as a server has the files open. Trying that lock (and dropping it at
    once by closing the descriptor) tells whether a server still has them.
    """
    try:
        fd = os.open(os.path.join(storage_path, "WiredTiger.lock"), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: someone holds it
        return True
    finally:
        os.close(fd)
    return False


def write_port_file(path: str, port: int) -> None:
    """Say where the running server listens (``$DATA_DIR/db-port``, mode 0600).

    Its port is a free one picked at each start, so a tool run next to the
    service (``python -m bot.http.create_admin``) reads it here instead of
    starting a second server on the same files, which cannot be done.
    Written to a new file and renamed over the old, so a reader never sees
    half of it.
    """
    fresh = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(fresh)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps({"port": port, "pid": os.getpid()}).encode())
    finally:
        os.close(fd)
    os.replace(fresh, path)


def read_port_file(path: str) -> int | None:
    """The port in ``path``; None when there is none (or it cannot be read)."""
    try:
        port = json.loads(Path(path).read_text())["port"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return port if isinstance(port, int) and 0 < port < 65536 else None


def remove_port_file(path: str, port: int) -> None:
    """Remove ``path`` if it still names ``port`` (a newer service may have rewritten it)."""
    if read_port_file(path) == port:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


async def wait_for_files(storage_path: str, timeout: float = FILES_WAIT) -> None:
    """Return once no other process has the files open; fail after ``timeout`` seconds."""
    if storage_path == ":memory:" or not files_in_use(storage_path):
        return
    log.warning("the database files in %s are still open in another process (a previous "
                "database still stopping?); waiting up to %.0f s for it to exit",
                storage_path, timeout)
    started = time.monotonic()
    while files_in_use(storage_path):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the database files in {storage_path} are still open in "
                               f"another process after {timeout:.0f} s; is another "
                               "service running on the same DATA_DIR?")
        await asyncio.sleep(0.1)
    log.info("the database files in %s are free after %.1f s", storage_path,
             time.monotonic() - started)


class EmbeddedMongo:
    """A ``python -m secantus`` child process on 127.0.0.1.

    Args:
        storage_path: directory for its files, or ``":memory:"`` (tests).
        port: the port to listen on (a free one when None).
        credentials_path: where its login is kept; when given, the server
            runs with ``--auth`` and clients need ``client_options``.
        avoid_ports: ports never to pick (the service's own).
    """

    def __init__(self, storage_path: str, port: int | None = None, *,
                 credentials_path: str | None = None, avoid_ports: Collection[int] = ()) -> None:
        self.storage_path = storage_path
        self.avoid_ports = frozenset(avoid_ports)
        self.port = port or free_port(self.avoid_ports)
        self.credentials_path = Path(credentials_path) if credentials_path else None
        self.credentials: Credentials | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The server's address, without credentials (safe to print)."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def client_options(self) -> dict[str, Any]:
        """What a client needs besides ``uri`` to log in (nothing without auth)."""
        return self.credentials.client_options() if self.credentials else {}

    async def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it answers a ``ping``.

        With ``credentials_path``, the service's user is created first when
        there are no credentials yet or the files are new (``$DATA_DIR/db``
        deleted to start afresh): on a server without auth, on another port,
        stopped before the real one starts with ``--auth``.
        """
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        if self.credentials_path is not None:
            known = db_credentials.load(self.credentials_path)
            fresh = not Path(self.storage_path, "WiredTiger").exists()  # noqa: ASYNC240
            self.credentials = (await self._create_user(self.credentials_path, known, timeout)
                                if known is None or fresh else known)
        await self._run(self.port, auth=self.credentials is not None, timeout=timeout)

    async def _create_user(self, path: Path, known: Credentials | None,
                           timeout: float) -> Credentials:
        """Create the service's user (or reset its password) and keep its credentials."""
        credentials = known or db_credentials.pending(path)
        port = free_port(self.avoid_ports | {self.port})
        await self._run(port, auth=False, timeout=timeout)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true")
        try:
            try:
                await client.admin.command("createUser", credentials.user,
                                           pwd=credentials.password, roles=ROLES)
            except OperationFailure as exc:
                if exc.code != USER_EXISTS:
                    raise
                # The credentials file was lost: the user stays, with a new password.
                await client.admin.command("updateUser", credentials.user,
                                           pwd=credentials.password, roles=ROLES)
        finally:
            await client.close()
            await self.astop()
        if known is None:
            db_credentials.commit(path)
        log.info("created the embedded database's user; credentials in %s", path)
        return credentials

    async def _run(self, port: int, *, auth: bool, timeout: float) -> None:
        """Start the guard and its server on ``port`` and wait for a ``ping``."""
        await wait_for_files(self.storage_path)
        # The guard runs as a script by its path (it needs only the standard
        # library), so the service may be started from any directory.
        command = [
            sys.executable, str(Path(__file__).with_name("db_guard.py")), "--host", "127.0.0.1",
            "--port", str(port), "--storage-path", self.storage_path,
            "--log-level", "WARNING", "--standalone", *(["--auth"] if auth else []),
        ]
        # Through bot.infra.db_guard, which stops the database gracefully if the
        # service dies without doing so (kill -9). A new session, so a Ctrl-C
        # aimed at the service's terminal does not stop the database before
        # the service has finished with it.
        self.process = subprocess.Popen(  # noqa: ASYNC220 (start-up, once)
            command, start_new_session=True)
        deadline = time.monotonic() + timeout
        # ping needs no login, also under --auth.
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=500
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
        except BaseException:
            await self.astop()  # no half-started server left behind
            raise
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
