"""Real server processes: a kill -9 between scheduling and firing; two workers on one database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.fakes.twilio import FakeTwilio
from tests.support.app import EVENTS_SECRET
from tests.support.process import (
    ServerProcess,
    advance,
    kill_leftovers,
    processes_using,
    server_env,
    wait_until,
)
from tests.support.store_signing import events_headers

pytestmark = pytest.mark.slow


def created(n: int, delay: float) -> bytes:
    return json.dumps({
        "id": f"evt_{n}", "type": "customer.created", "occurred_at": "2026-11-24T10:00:00Z",
        "customer": {"id": f"cus_{n}", "phone": f"+54911{n:08d}"},
        "data": {"delay": delay, "n": n},
    }).encode()


async def test_kill_9_after_scheduling_a_wait_fires_it_once_after_restart(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio:
        env = server_env(twilio, CLOCK="virtual", DATA_DIR=str(tmp_path))
        server = ServerProcess(env, tmp_path / "server.log")
        restarted = ServerProcess(env, tmp_path / "server.log")
        for process in (server, restarted):
            process.env.pop("MONGODB_URI", None)  # the on-disk embedded database
        try:
            await server.start()
            body = created(1, delay=3600)
            status, _ = await server.post("/events", body, events_headers(EVENTS_SECRET, body))
            assert status == 202
            await advance(server, 0)  # decided and committed: the wait is in the database
            server.kill9()
            await wait_until(lambda: not processes_using(tmp_path / "db"), 30,
                             "the embedded database to exit after its parent was killed")
            assert twilio.requests == []

            await restarted.start()
            await advance(restarted, 3700)
            await advance(restarted, 86400)
        finally:
            server.stop()
            restarted.stop()
            kill_leftovers(tmp_path / "db")
        sent = [r.form for r in twilio.requests if r.form]
        assert [m["Body"] for m in sent] == ["ping 1"]


async def test_two_workers_fire_200_waits_once_each(mongo_uri: str, db_name: str,
                                                    tmp_path: Path) -> None:
    async with FakeTwilio() as twilio:
        env = server_env(twilio, CLOCK="system", MONGODB_URI=mongo_uri, MONGODB_DB=db_name)
        workers = [ServerProcess(env, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            await asyncio.gather(*(w.start() for w in workers))
            async def post(n: int) -> None:
                body = created(n, delay=3)
                status, _ = await workers[n % 2].post("/events", body,
                                                      events_headers(EVENTS_SECRET, body))
                assert status == 202

            for start in range(0, 200, 50):
                await asyncio.gather(*(post(n) for n in range(start, start + 50)))
            await wait_until(lambda: len(twilio.requests) >= 200, 90, "200 messages")
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
            database = client[db_name]

            async def settled() -> bool:
                pending = await database.customers.count_documents(
                    {"next_due": {"$lte": datetime.now(UTC)}})
                queued = await database.messages.count_documents({"outbox": True})
                return pending == 0 and queued == 0

            for _ in range(200):
                if await settled():
                    break
                await asyncio.sleep(0.05)
            sent = await database.messages.count_documents({"direction": "out",
                                                            "status": "sent"})
            await client.close()
        finally:
            for worker in workers:
                worker.stop()
        bodies = sorted(r.form["Body"] for r in twilio.requests if r.form)
        assert len(bodies) == 200
        assert bodies == sorted(f"ping {n}" for n in range(200))
        assert sent == 200
