"""A paused database: inputs answer 503 "database unavailable", then all resumes.

Found by the stress suite (``stress/faults.py``): with the embedded database
stopped (SIGSTOP, as a stalled disk or a paused container looks), the driver
waits on its open connection without end, so webhooks hung for as long as
the database was away and were then answered 200, or the provider gave up
first. Now an input not stored within ``INTAKE_SECONDS`` is answered 503,
which providers retry, and the retry after the database is back is stored
once (it is a duplicate when the first insert landed late).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from bot.http.common import INTAKE_SECONDS
from stress.harness import EVENTS_SECRET, Providers, database_pid, server
from tests.support.process import kill_leftovers
from tests.support.store_signing import events_headers

pytestmark = pytest.mark.slow


def event(n: int) -> bytes:
    return json.dumps({
        "id": f"evt_away_{n}", "type": "customer.created", "occurred_at": "2026-11-24T10:00:00Z",
        "customer": {"id": f"cus_away_{n}", "phone": f"+54911{n:08d}"},
        "data": {"delay": 0, "n": n},
    }).encode()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, dict[str, str]]:
    async with session.post(url + "/events", data=body,
                            headers=events_headers(EVENTS_SECRET, body),
                            timeout=aiohttp.ClientTimeout(total=INTAKE_SECONDS + 5)) as response:
        return response.status, await response.json()


async def test_inputs_answer_503_while_the_database_is_paused_and_resume_after(
        tmp_path: Path) -> None:
    async with Providers() as providers:
        process = server(providers, tmp_path)
        paused: int | None = None
        try:
            await process.start()
            async with aiohttp.ClientSession() as session:
                assert (await post(session, process.url, event(1)))[0] == 202
                paused = database_pid(tmp_path)
                os.kill(paused, signal.SIGSTOP)
                started = time.monotonic()
                status, answer = await post(session, process.url, event(2))
                waited = time.monotonic() - started
                async with session.get(process.url + "/healthz") as response:
                    health = response.status
                os.kill(paused, signal.SIGCONT)
                paused = None
                retried = (await post(session, process.url, event(2)))[0]
                fresh = (await post(session, process.url, event(3)))[0]
        finally:
            if paused is not None:
                os.kill(paused, signal.SIGCONT)
            process.stop()
            kill_leftovers(tmp_path / "db")
        assert (status, answer) == (503, {"error": "database unavailable"})
        assert waited < INTAKE_SECONDS + 2
        assert health == 503
        assert retried in (200, 202)  # stored once: a duplicate if the first insert landed
        assert fresh == 202
