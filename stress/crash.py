"""Crash trials: kill -9 at a random moment under steady traffic, restart, go on.

A driver posts a steady mix of signed inputs (store events, customers'
messages on WhatsApp, SMS and Telegram, delivery statuses) to a real server
process on an on-disk ``DATA_DIR``, with ``CLOCK=system`` so the decide and
send loops run as in production, while the provider fakes in the driver
record every send. At a random moment it SIGKILLs, depending on the mode:

- ``all``: the service, its database guard and the embedded database at
  once (a container stop, the OOM killer);
- ``service``: the service alone (the guard then stops the database);
- ``workers``: one of two workers sharing a separately started database.

It restarts on the same files (and port, so ``PUBLIC_URL`` holds) and goes
on; inputs that got no answer or a 5xx are posted again, as a provider
retries them. After the last trial the system settles and the figures are:

- accepted inputs lost: inputs answered 2xx whose inbox document is missing
  (read from the database with the login in ``DATA_DIR``); must be 0;
- messages sent twice: texts the fakes accepted more than once (every
  reply's text is unique); must be 0;
- messages never sent that should have been: "should" = every accepted
  store event brings its ``ping`` SMS and every accepted customer message
  its ``eco:`` reply (both flows are transactional, so no consent, quiet
  hours or window decides it), except messages recorded as "outcome
  unknown" because a worker died while handing them to the provider: the
  price of sending at most once (README, "Decisions and known limits"),
  counted in their own row. Must be 0 once settled (a dead worker's leases
  need 30 s of wall time).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.infra.embedded_db import EmbeddedMongo, free_port
from stress.harness import (
    Input,
    Providers,
    Traffic,
    accepted,
    kill_all,
    open_store,
    post,
    server,
    settle,
    stored_ids,
    unknown_outcomes,
    why_missing,
)
from stress.report import Row
from tests.support.process import kill_leftovers

RATE = 40.0  # inputs per second while a trial runs
SETTLE_SECONDS = 75.0  # > the 30 s lease of a dead worker, plus its backlog


@dataclass
class Tally:
    """What one mode's trials gave."""

    mode: str
    trials: int = 0
    inputs: list[Input] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)
    lost: int = 0
    twice: int = 0
    never: int = 0
    why: str = ""
    unknown: int = 0
    seconds: float = 0.0


async def drive(session: aiohttp.ClientSession, url: Callable[[], str], traffic: Traffic,
                tally: Tally, retries: list[Input], seconds: float) -> list[asyncio.Task[Input]]:
    """Post the retries, then new inputs at ``RATE`` for ``seconds``; the posts in flight."""
    tasks = [asyncio.create_task(post(session, url(), item, timeout=20)) for item in retries]
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        item = traffic.next()
        tally.inputs.append(item)
        tasks.append(asyncio.create_task(post(session, url(), item, timeout=20)))
        await asyncio.sleep(1 / RATE)
    return tasks


def unanswered(tally: Tally) -> list[Input]:
    """Inputs not acknowledged yet: a provider would post them again."""
    for item in tally.inputs:
        if accepted(item):
            tally.acked.add(item.inbox_id)
    return [i for i in tally.inputs if i.inbox_id not in tally.acked]


async def single(mode: str, count: int, rng: random.Random, workdir: Path) -> Tally:
    """``count`` trials killing everything (``all``) or the service alone (``service``)."""
    tally = Tally(mode)
    data_dir = workdir / mode
    data_dir.mkdir()
    port = free_port()
    started = time.monotonic()
    async with Providers() as providers, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100)) as session:
        traffic = Traffic(f"http://127.0.0.1:{port}", providers, rng=rng, run=f"{mode}")
        try:
            for _ in range(count):
                process = server(providers, data_dir, port=port)
                await process.start(timeout=90)
                def current_url(url: str = process.url) -> str:
                    return url

                tasks = await drive(session, current_url, traffic, tally,
                                    unanswered(tally), rng.uniform(0.3, 2.0))
                await kill_all(process, data_dir, only_service=(mode == "service"))
                await asyncio.gather(*tasks)
                tally.trials += 1
            process = server(providers, data_dir, port=port)
            await process.start(timeout=90)
            try:
                await finish(session, process.url, providers, tally,
                             open_store(data_dir=data_dir))
            finally:
                process.stop()
        finally:
            kill_leftovers(data_dir / "db")
    tally.seconds = time.monotonic() - started
    return tally


async def workers(count: int, rng: random.Random, workdir: Path) -> Tally:
    """Two workers on one database; at a random moment one of them is killed and restarted."""
    tally = Tally("workers")
    data_dir = workdir / "workers"
    data_dir.mkdir()
    database = EmbeddedMongo(str(data_dir / "shared-db"))
    started = time.monotonic()
    await database.start()
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # one address for both, as behind a balancer
    uri = {"MONGODB_URI": database.uri, "MONGODB_DB": "chasqui", "PUBLIC_URL": public}
    async with Providers() as providers, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100)) as session:
        traffic = Traffic(public, providers, rng=rng, run="workers")
        pair = [server(providers, data_dir, f"worker{i}.log", port=ports[i], **uri)
                for i in range(2)]
        try:
            await asyncio.gather(*(w.start(timeout=90) for w in pair))
            for _ in range(count):
                victim = rng.randrange(2)
                tasks = await drive(session, lambda: rng.choice(pair).url, traffic, tally,
                                    unanswered(tally), rng.uniform(0.3, 2.0))
                await kill_all(pair[victim], data_dir, only_service=True)
                await asyncio.gather(*tasks)
                pair[victim] = server(providers, data_dir, f"worker{victim}.log",
                                      port=ports[victim], **uri)
                await pair[victim].start(timeout=90)
                tally.trials += 1
            await finish(session, pair[0].url, providers, tally, open_store(uri=database.uri))
        finally:
            for worker in pair:
                worker.stop()
            await database.astop()
    tally.seconds = time.monotonic() - started
    return tally


async def finish(session: aiohttp.ClientSession, url: str, providers: Providers, tally: Tally,
                 store: object) -> None:
    """Retry what was never answered, let the system settle, and count."""
    for _ in range(3):
        retries = unanswered(tally)
        if not retries:
            break
        await asyncio.gather(*(post(session, url, item) for item in retries))
    unanswered(tally)
    async with store as database:  # type: ignore[attr-defined]
        expected = {i.reply for i in tally.inputs if i.inbox_id in tally.acked and i.reply}
        missing = await settle(providers, expected, database, SETTLE_SECONDS)
        await asyncio.sleep(1.0)  # a late duplicate would show here
        found = await stored_ids(database, sorted(tally.acked))
        tally.lost = len(tally.acked - found)
        tally.never = len(missing)
        tally.why = await why_missing(database, missing)
        tally.unknown = len(await unknown_outcomes(database) & expected)
    tally.twice = sum(n - 1 for n in providers.sent_texts().values() if n > 1)


def rows(tally: Tally) -> list[Row]:
    label = {"all": "kill -9 of service+guard+database",
             "service": "kill -9 of the service alone",
             "workers": "kill -9 of one of two workers"}[tally.mode]
    return [
        Row(f"crash ({label}): trials, inputs accepted",
            f"{tally.trials} trials, {len(tally.acked)} accepted in {tally.seconds:.0f} s"),
        Row(f"crash ({label}): accepted inputs lost", str(tally.lost), "0", tally.lost == 0),
        Row(f"crash ({label}): messages sent twice", str(tally.twice), "0", tally.twice == 0),
        Row(f"crash ({label}): messages never sent that should have been",
            f"{tally.never} ({tally.why})" if tally.never else "0", "0", tally.never == 0),
        Row(f"crash ({label}): outcome unknown (in flight at the kill; not resent by design)",
            str(tally.unknown)),
    ]


def plan(short: bool) -> dict[str, int]:
    """Trials per mode."""
    return {"all": 3, "service": 1, "workers": 1} if short else \
        {"all": 100, "service": 20, "workers": 20}


async def run_async(short: bool, seed: int | None = None,
                    counts: dict[str, int] | None = None) -> list[Row]:
    """The trials of ``counts`` (mode -> trials; default: :func:`plan`)."""
    rng = random.Random(seed)
    counts = counts if counts is not None else plan(short)
    with tempfile.TemporaryDirectory(prefix="chasqui-crash-") as tmp:
        workdir = Path(tmp)
        jobs: list[Awaitable[Tally]] = []
        for mode, count in counts.items():
            job_rng = random.Random(rng.random())
            jobs.append(workers(count, job_rng, workdir) if mode == "workers"
                        else single(mode, count, job_rng, workdir))
        if short:  # concurrently: the three settle waits (leases) overlap
            tallies = await asyncio.gather(*jobs)
        else:
            tallies = [await job for job in jobs]
    return [row for tally in tallies for row in rows(tally)]


def run(short: bool) -> list[Row]:
    """The crash trials (full: 100 + 20 + 20; short: 3 + 1 + 1)."""
    return asyncio.run(run_async(short))

