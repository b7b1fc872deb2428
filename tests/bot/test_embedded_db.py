"""The embedded database on disk: restarts right after a kill, and its login."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from bot.infra.database import open_database
from bot.infra.embedded_db import EmbeddedMongo
from tests.support.app import make_settings
from tests.support.process import kill_leftovers, wait_until


async def test_a_restart_waits_for_the_previous_server_to_release_the_files(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After a kill -9 of the service its guard stops the old server, which
    takes seconds to close WiredTiger; a new one started meanwhile used to
    exit with "Device or resource busy"."""
    storage = str(tmp_path / "db")
    first, second = EmbeddedMongo(storage), EmbeddedMongo(storage)
    await first.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(first.uri)
    await client.chasqui.probe.insert_one({"_id": 1})
    await client.close()
    caplog.set_level(logging.INFO, logger="bot.infra.embedded_db")
    starting = asyncio.create_task(second.start())
    try:
        await wait_until(lambda: "still open in another process" in caplog.text
                         or starting.done(), 30, "the second server to wait")
        assert not starting.done(), "the second server did not wait for the files"
        await asyncio.gather(first.astop(), asyncio.wait_for(starting, 40))
        assert "are free after" in caplog.text
        client = AsyncMongoClient(second.uri)
        assert await client.chasqui.probe.find_one({}) == {"_id": 1}
        await client.close()
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        first.stop()
        second.stop()
        kill_leftovers(tmp_path / "db")


async def test_the_on_disk_database_refuses_clients_without_credentials(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings("", "chasqui", data_dir=str(tmp_path), mongodb_uri=None)
    try:
        with caplog.at_level(logging.DEBUG):
            async with open_database(settings) as database:
                await database.customers.insert_one({"_id": "cus_1", "phone": "+5491122334455"})
                address = await database.client.address
                assert address is not None
                url = f"mongodb://127.0.0.1:{address[1]}/?directConnection=true"
                anonymous: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
                guessing: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                    url, username="chasqui", password="guess", authSource="admin",
                    serverSelectionTimeoutMS=500)
                try:
                    with pytest.raises(OperationFailure) as refused:
                        await anonymous.chasqui.list_collection_names()
                    assert refused.value.code == 13  # Unauthorized
                    with pytest.raises(OperationFailure):
                        await anonymous.chasqui.customers.find_one({})
                    with pytest.raises(PyMongoError, match="authentication failed"):
                        await guessing.chasqui.customers.find_one({})
                finally:
                    await anonymous.close()
                    await guessing.close()
        credentials = tmp_path / "db-credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        password = json.loads(credentials.read_text())["password"]
        assert len(password) >= 32
        assert password not in caplog.text
    finally:
        kill_leftovers(tmp_path / "db")


@pytest.mark.slow
async def test_the_login_survives_restarts_a_lost_file_and_a_reset(tmp_path: Path) -> None:
    """Restarts reuse the stored login; a deleted credentials file gets a new
    password for the same user; deleted data files get the user again."""
    settings = make_settings("", "chasqui", data_dir=str(tmp_path), mongodb_uri=None)
    credentials = tmp_path / "db-credentials.json"

    async def probes() -> list[dict[str, Any]]:
        """What earlier runs wrote, and one more document."""
        async with open_database(settings) as database:
            found = await database.db.probe.find({}).to_list()
            await database.db.probe.insert_one({"_id": len(found)})
            return found

    try:
        assert await probes() == []
        first = credentials.read_text()
        assert await probes() == [{"_id": 0}]
        assert credentials.read_text() == first
        credentials.unlink()
        assert len(await probes()) == 2
        assert credentials.read_text() != first
        shutil.rmtree(tmp_path / "db")
        assert await probes() == []
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    finally:
        kill_leftovers(tmp_path / "db")
