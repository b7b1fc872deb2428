"""The first admin from the shell (bot/http/create_admin.py), with the service running or not.

The embedded database on disk runs with a login and on a port picked at each
start, and one data directory takes one server: the command used to work
only with the service stopped. Now the running service says where its
database listens (``$DATA_DIR/db-port``, 0600) and the command uses it.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from bot.http.agents import NewAgent, agents, find_agent, verify_password
from bot.http.create_admin import create
from bot.infra.database import open_database
from tests.support.app import make_settings
from tests.support.process import kill_leftovers

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"


async def create_admin_command(data_dir: Path, email: str) -> tuple[int, str]:
    """``python -m bot.http.create_admin`` as a support person runs it, password on stdin."""
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    env.update(DATA_DIR=str(data_dir), MONGODB_DB="chasqui")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.http.create_admin", "--email", email, "--name", "Ana",
        "--password-stdin", cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(PASSWORD.encode()), 60)
    return int(process.returncode or 0), output.decode()


@pytest.mark.slow
async def test_the_first_admin_is_created_while_the_service_runs_and_while_it_is_stopped(
        tmp_path: Path) -> None:
    settings = make_settings("", "chasqui", data_dir=str(tmp_path), mongodb_uri=None)
    port_file = tmp_path / "db-port"
    try:
        # The service's own database, held open as the running service holds it.
        async with open_database(settings) as database:
            assert stat.S_IMODE(port_file.stat().st_mode) == 0o600
            code, output = await create_admin_command(tmp_path, "ana@shop.example")
            assert code == 0, output
            assert "created admin ana@shop.example" in output
            account = await find_agent(database, "ana@shop.example")
            assert account is not None and account["role"] == "admin"
            assert await verify_password(account["password_hash"], PASSWORD)
        assert not port_file.exists()  # the service stopped: nobody to join
        # Stopped: the command starts the embedded database itself, for a moment.
        await create(settings, NewAgent(email="bea@shop.example", name="Bea", role="admin",
                                        password=PASSWORD))
        assert not port_file.exists()
        async with open_database(settings) as database:
            assert {a["_id"] async for a in agents(database).find({})} == {
                "ana@shop.example", "bea@shop.example"}
    finally:
        kill_leftovers(tmp_path / "db")
