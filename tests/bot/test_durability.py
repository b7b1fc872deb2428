"""Acknowledged means durable: the whole service killed at once loses nothing.

A container stop, the OOM killer or systemd's final SIGKILL kill the service,
the database guard and the embedded database at the same instant, so the
guard cannot stop the database in good order. These tests do exactly that to
a real server on an on-disk ``DATA_DIR`` and restart it on the same files:
every webhook answered 202 must still be there (the store's retry is a
duplicate, and its message goes out once), and a message recorded as sent
is recorded so after the restart and not sent again.

Without journaled writes the embedded server keeps its last commits in a
log buffer that reaches the file only when ~100 KB fill it or a few hundred
milliseconds pass, and a kill loses them. The burst is small enough to stay
in that buffer and the kill comes right after the last answer, so without
journaling both tests fail on every run (checked 4 of 4 runs; 200 inputs
wrote enough to push most of them out, and the tests then failed only
sometimes).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.runtime.processor import LEASE_SECONDS
from tests.fakes.twilio import FakeTwilio
from tests.support.app import ADMIN_TOKEN, EVENTS_SECRET
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

BURST = 30  # inputs accepted just before the kill (see the docstring for why so few)


def created(run: str, n: int, delay: float) -> bytes:
    """A ``customer.created`` event: the ``ping`` test flow sends "ping <n>" after ``delay``."""
    return json.dumps({
        "id": f"evt_{run}_{n}", "type": "customer.created",
        "occurred_at": "2026-11-24T10:00:00Z",
        "customer": {"id": f"cus_{n}", "phone": f"+54911{n:08d}"},
        "data": {"delay": delay, "n": n},
    }).encode()


async def post_burst(server: ServerProcess, run: str, delay: float) -> Counter[int]:
    """``BURST`` signed events at once; the statuses they were answered with."""
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=BURST)) as session:
        async def post(n: int) -> int:
            body = created(run, n, delay)
            async with session.post(server.url + "/events", data=body,
                                    headers=events_headers(EVENTS_SECRET, body)) as response:
                return response.status

        return Counter(await asyncio.gather(*(post(n) for n in range(BURST))))


def every_process(server: ServerProcess, data_dir: Path) -> list[int]:
    """The pids of the service, its database guard and the database.

    The guard runs in a session of its own (so Ctrl-C reaches the service
    first), so the database is not in the service's process group: the two
    are found by their command line, which names the data directory. Taken
    before the moment of the kill, so that nothing stands between the last
    acknowledgement and the kill.
    """
    assert server.process is not None
    pids = [server.process.pid, *processes_using(data_dir / "db")]
    assert len(pids) >= 3, f"expected service, guard and database, found {pids}"
    return pids


async def kill_everything(server: ServerProcess, pids: list[int], data_dir: Path) -> None:
    """SIGKILL them all back to back, so none can react to another's death."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert server.process is not None
    server.process.wait()
    await wait_until(lambda: not processes_using(data_dir / "db"), 30,
                     "the killed database processes to go away")


async def conversations(server: ServerProcess) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
            server.url + "/api/conversations", params={"limit": "500"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
        assert response.status == 200, await response.text()
        return list((await response.json())["conversations"])


def sent_bodies(twilio: FakeTwilio) -> Counter[str]:
    return Counter(r.form["Body"] for r in twilio.requests if r.form)


async def settle(server: ServerProcess, twilio: FakeTwilio) -> None:
    """Advance past every ping's wait until all were sent (bounded by a lease's life).

    A decision in progress at the kill leaves its customer leased by the dead
    worker for ``LEASE_SECONDS`` of wall time (by design: nobody may decide
    for a customer someone else may still commit); that customer's input is
    decided once the lease has expired, and its wait set from then on.
    """
    async def every_ping_sent() -> bool:
        await advance(server, 3700)
        return len(sent_bodies(twilio)) >= BURST

    await wait_until(every_ping_sent, timeout=LEASE_SECONDS + 15, what="every ping sent")


def servers(twilio: FakeTwilio, data_dir: Path) -> tuple[ServerProcess, ServerProcess]:
    """A server on the on-disk embedded database in ``data_dir``, and its restart."""
    env = server_env(twilio, CLOCK="virtual", DATA_DIR=str(data_dir))
    pair = (ServerProcess(env, data_dir / "server.log"),
            ServerProcess(env, data_dir / "server.log"))
    for process in pair:
        process.env.pop("MONGODB_URI", None)
    return pair


async def test_inputs_accepted_before_a_kill_of_every_process_survive(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio:
        server, restarted = servers(twilio, tmp_path)
        try:
            await server.start()
            pids = every_process(server, tmp_path)
            accepted = await post_burst(server, "a", delay=3600)
            await kill_everything(server, pids, tmp_path)
            assert accepted == {202: BURST}

            await restarted.start()
            # The stores retry: every input accepted before the kill is a duplicate now.
            retried = await post_burst(restarted, "a", delay=3600)
            await settle(restarted, twilio)
        finally:
            server.stop()
            restarted.stop()
            kill_leftovers(tmp_path / "db")
        assert retried == {200: BURST}, f"{retried[202]} accepted inputs were lost"
        assert sent_bodies(twilio) == Counter(f"ping {n}" for n in range(BURST))


async def test_messages_sent_before_a_kill_of_every_process_are_not_sent_again(
        tmp_path: Path) -> None:
    async with FakeTwilio() as twilio:
        server, restarted = servers(twilio, tmp_path)
        try:
            await server.start()
            pids = every_process(server, tmp_path)
            assert await post_burst(server, "b", delay=60) == {202: BURST}
            await advance(server, 61)  # returns once every due message was sent and recorded
            await kill_everything(server, pids, tmp_path)
            expected = Counter(f"ping {n}" for n in range(BURST))
            assert sent_bodies(twilio) == expected

            await restarted.start()
            await advance(restarted, 3600)
            views = await conversations(restarted)
        finally:
            server.stop()
            restarted.stop()
            kill_leftovers(tmp_path / "db")
        assert sent_bodies(twilio) == expected  # nothing sent twice
        statuses = Counter((view["last_message"] or {}).get("status") for view in views)
        assert len(views) == BURST
        assert statuses == {"sent": BURST}  # recorded as sent, not lost nor "outcome unknown"
