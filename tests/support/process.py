"""Run ``server.py`` as a real subprocess (crash and multi-worker tests)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.infra.embedded_db import free_port
from tests.fakes.twilio import FakeTwilio
from tests.support.app import ADMIN_TOKEN, EVENTS_SECRET

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """``python server.py`` with the given environment, on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen([sys.executable, "server.py"], cwd=ROOT,  # noqa: ASYNC220
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy")
                await asyncio.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Any:
        async with aiohttp.ClientSession() as session, session.post(
                self.url + path, data=body, headers=headers) as response:
            return response.status, await response.json()


async def wait_until(condition: Any, timeout: float = 60, what: str = "condition") -> None:
    """Poll ``condition()`` until true (a bounded wait on a condition, not a timer).

    ``condition`` may be a coroutine function: its result is awaited.
    """
    deadline = time.monotonic() + timeout
    while not (await result if inspect.isawaitable(result := condition()) else result):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def processes_using(path: Path) -> list[int]:
    """Pids whose command line names ``path`` (the embedded database of a server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(path) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def command_line(pid: int) -> list[str]:
    """The arguments of a running process (empty once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def kill_leftovers(path: Path) -> None:
    """Whatever happened in the test, leave no database process behind."""
    for pid in processes_using(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def server_env(twilio: FakeTwilio, **extra: str) -> dict[str, str]:
    return {
        "ADMIN_TOKEN": ADMIN_TOKEN, "STORE_EVENTS_SECRET": EVENTS_SECRET,
        "FLOWS_PACKAGE": "tests.support.process_rules",
        "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM": "+15005550006", "TWILIO_API_URL": twilio.url, "SMS_RATE": "0",
        "LOG_LEVEL": "WARNING", **extra,
    }


async def advance(server: ServerProcess, seconds: float) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            server.url + "/admin/clock/advance", json={"seconds": seconds},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
        assert response.status == 200, await response.text()
