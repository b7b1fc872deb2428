"""Fixtures shared by the whole suite.

One embedded MongoDB-compatible server (in memory) serves the session, or a
real MongoDB when ``MONGODB_URI`` is set; every test gets its own database
name. A guard makes any connection off loopback fail the test.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.support.app import Fakes
from tests.support.mongo import mongo


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """A MongoDB URI for the session: ``MONGODB_URI`` or an in-memory embedded server."""
    with mongo() as uri:
        yield uri


@pytest.fixture
def db_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def db(mongo_uri: str, db_name: str) -> AsyncIterator[Any]:
    """The test's database, read directly to check what the service stored."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield client[db_name]
    finally:
        await client.close()


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            allowed = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = False
        if not allowed:
            raise OSError(f"test tried to reach {host}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    """The three provider fakes, started on loopback."""
    started = Fakes()
    await started.start()
    try:
        yield started
    finally:
        await started.close()
