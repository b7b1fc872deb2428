"""The embedded database's login: generated at first start, kept in ``DATA_DIR``.

The embedded server listens on loopback, where every account on the machine
can reach it, so it runs with ``--auth`` and only the service knows the
password. The password is random, written once with mode 0600 next to the
database's files, and never logged (``repr`` hides it).

First start is two steps (create the user on a server without auth, then
restart with auth), so a crash in between must not lose the password: it is
written first as ``<file>.pending`` and renamed to ``<file>`` only once the
user exists. A pending file found at start is reused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

USER = "chasqui"


@dataclass(frozen=True)
class Credentials:
    """A SCRAM-SHA-256 user of the ``admin`` database."""

    user: str
    password: str = field(repr=False)

    def client_options(self) -> dict[str, str]:
        """Keyword arguments for ``AsyncMongoClient`` (kept out of the URI, which gets printed)."""
        return {"username": self.user, "password": self.password, "authSource": "admin",
                "authMechanism": "SCRAM-SHA-256"}


def pending_path(path: Path) -> Path:
    return path.with_name(path.name + ".pending")


def load(path: Path) -> Credentials | None:
    """The credentials in ``path``, or None when there is no such file.

    A file readable by others (copied around, restored from a backup) is set
    back to 0600, with a warning.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
        path.chmod(0o600)
    data = json.loads(path.read_text())
    return Credentials(user=str(data["user"]), password=str(data["password"]))


def pending(path: Path) -> Credentials:
    """The credentials about to be created: a pending file's, or new ones written to it."""
    found = load(pending_path(path))
    if found is not None:
        return found
    credentials = Credentials(user=USER, password=secrets.token_urlsafe(32))
    body = json.dumps({"user": credentials.user, "password": credentials.password}).encode()
    # O_EXCL with mode 0600: the file is never readable by others, not even briefly.
    fd = os.open(pending_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    return credentials


def commit(path: Path) -> None:
    """Make the pending credentials the ones in use (the user now exists)."""
    os.replace(pending_path(path), path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
