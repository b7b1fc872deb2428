"""Sustained load: mixed signed webhooks at a fixed rate on one worker.

The driver (this process, on the same machine) posts the crash trials' mix
(store events, customers' messages on three channels, delivery statuses)
open-loop at ``rate`` per second for ``seconds`` to one server process on
an on-disk embedded database, and the provider fakes in the driver take the
replies. Figures:

- errors: answers that were not 2xx, or no answer (must be 0);
- p50 / p99 acknowledgement latency, and the rate actually offered;
- RSS of the service process idle (started, before the load), after 2 s
  of it, after the ``WARM_UP`` minute at the full rate (the start) and at
  the end of the ``seconds`` that follow (flat within 10 %), half-way, and
  every 30 s. The identity-key cache reaches its bound only after ~13
  minutes of this mix and the customers' documents go on growing with their
  histories (README "Stress"), so some growth within the run is expected;
- the backlog: inputs still pending in the inbox when the load stops, and
  how long the decide loop takes to drain them (inputs are decided behind
  the intake, so a backlog is expected; it must drain). The drain is waited
  for to the end, up to ``DRAIN_LIMIT``: on the embedded database the
  decisions run at about a fifth of a 500/s intake, so the full run's drain
  takes longer than its load; the rates of deciding during the load and
  during the drain are reported beside it;
- CPU: the driver's share (it competes with the service for the cores) and
  the service's;
- ``/events`` throughput against a bare aiohttp route (one handler that
  answers 202, in its own process), both measured closed-loop with the same
  client in the same run: the cost of verifying, parsing and storing.

Every loop is bounded in count and time; everything is on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp

from bot.infra.embedded_db import free_port
from stress.harness import (
    EVENTS_SECRET,
    Input,
    Providers,
    Traffic,
    accepted,
    cpu_seconds,
    open_store,
    pending_inputs,
    post,
    rss_kb,
    server,
)
from stress.report import Row
from tests.support.process import kill_leftovers
from tests.support.store_signing import events_headers

DRAIN_LIMIT = 2700.0  # seconds the backlog may take to drain before the run gives up
RSS_EVERY = 30.0  # seconds between the RSS samples of the timeline row
# The load runs this long at its full rate before the measured ``seconds``
# (at most a fifth of them): the RSS "start" is taken once the load's working
# set is in place. By then the driver's connections are open and the
# customer cache holds its 2,000 documents (both reached in the first minute
# of this mix, README "Stress"); the figure after FIRST_SECONDS is reported
# beside it.
WARM_UP = 60.0
FIRST_SECONDS = 2.0
DRAIN_POLL = 0.5  # seconds between counts of the backlog, at least
COUNT_SHARE = 0.05  # the most of the database's time the counts may take

BARE_APP = textwrap.dedent("""
    import sys
    from aiohttp import web

    async def accept(request):
        await request.read()
        return web.json_response({"id": "x"}, status=202)

    app = web.Application()
    app.router.add_post("/events", accept)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
""")


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def offered(session: aiohttp.ClientSession, url: str, traffic: Traffic, rate: float,
                  seconds: float) -> list[Input]:
    """Post at ``rate`` per second for ``seconds`` (open loop, 10 ms ticks)."""
    tasks: list[asyncio.Task[Input]] = []
    started = time.monotonic()
    while (now := time.monotonic() - started) < seconds:
        for _ in range(max(0, int(now * rate) - len(tasks))):
            tasks.append(asyncio.create_task(post(session, url, traffic.next(), timeout=30)))
        await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks))


def event_body(n: int) -> bytes:
    return json.dumps({
        "id": f"evt_tp_{n}", "type": "customer.updated", "occurred_at": "2026-11-24T10:00:00Z",
        "customer": {"id": f"cus_tp_{n % 500}", "phone": f"+549116{n % 10**7:07d}"},
        "data": {},
    }).encode()


async def closed_loop(url: str, seconds: float, concurrency: int = 32,
                      start: int = 0) -> float:
    """Requests per second that ``concurrency`` clients get through ``/events`` at ``url``."""
    counter = iter(range(start, start + 10**9))
    done = 0
    end = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def client() -> None:
            nonlocal done
            while time.monotonic() < end:
                body = event_body(next(counter))
                async with s.post(url + "/events", data=body,
                                  headers=events_headers(EVENTS_SECRET, body)) as response:
                    await response.read()
                    if response.status < 300:
                        done += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


async def rss_every(pid: int, seconds: float, samples: list[int]) -> None:
    """Append the process's RSS (kB) to ``samples`` every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        samples.append(rss_kb(pid))


async def bare_route(seconds: float) -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])  # noqa: ASYNC220
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.post(url + "/events", data=b"{}") as response:
                        if response.status == 202:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        return await closed_loop(url, seconds)
    finally:
        process.terminate()
        process.wait()


async def run_async(rate: float, seconds: float, throughput_seconds: float) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="chasqui-load-") as tmp:
        data_dir = Path(tmp)
        async with Providers() as providers, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256)) as session:
            process = server(providers, data_dir)
            await process.start(timeout=90)
            assert process.process is not None
            pid = process.process.pid
            traffic = Traffic(process.url, providers, run="load", customers=2000)
            try:
                rss_idle = rss_kb(pid)
                warm_started = time.monotonic()
                warm_up = min(WARM_UP, seconds / 5)
                first = min(FIRST_SECONDS, warm_up)
                warm = await offered(session, process.url, traffic, rate, first)
                rss_first = rss_kb(pid)
                warm += await offered(session, process.url, traffic, rate, warm_up - first)
                rss_start = rss_kb(pid)
                driver_cpu, service_cpu = time.process_time(), cpu_seconds(pid)
                started = time.monotonic()
                every = min(RSS_EVERY, seconds / 2)
                timeline: list[int] = [rss_start]
                sampler = asyncio.create_task(rss_every(pid, every, timeline))
                answered = await offered(session, process.url, traffic, rate, seconds)
                sampler.cancel()
                wall = time.monotonic() - started
                driver_cpu = time.process_time() - driver_cpu
                service_cpu = cpu_seconds(pid) - service_cpu
                rss_end = rss_kb(pid)
                async with open_store(data_dir=data_dir) as database:
                    backlog = await pending_inputs(database)
                    load_wall = time.monotonic() - warm_started
                    drain_started = time.monotonic()
                    left = backlog
                    counted = 0.0  # seconds the last count took
                    while left and time.monotonic() - drain_started < DRAIN_LIMIT:
                        # A count reads every pending input on the embedded
                        # database, holding its global lock (seconds at
                        # 100,000): polled at a fixed rate it slowed the very
                        # drain it measured, so it waits in proportion.
                        await asyncio.sleep(max(DRAIN_POLL, counted / COUNT_SHARE))
                        count_started = time.monotonic()
                        left = await pending_inputs(database)
                        counted = time.monotonic() - count_started
                    drained = time.monotonic() - drain_started
                events_rps = await closed_loop(process.url, throughput_seconds)
            finally:
                process.stop()
                kill_leftovers(data_dir / "db")
        bare_rps = await bare_route(throughput_seconds)
    offered_all = warm + answered
    errors = sum(1 for i in offered_all if not accepted(i))
    decided_during = sum(1 for i in offered_all if accepted(i)) - backlog
    half = timeline[min(len(timeline) - 1, max(1, round(seconds / 2 / every)))]
    latencies = [i.elapsed * 1000 for i in answered if accepted(i)]
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else 0.0
    cores = os.cpu_count() or 1
    name = f"load {rate:g}/s for {seconds:g} s"
    return [
        Row(f"{name}: requests offered (rate achieved)",
            f"{len(answered)} ({len(answered) / wall:.0f}/s)", f"{rate:g}/s"),
        Row(f"{name}: errors (non-2xx or no answer)", str(errors), "0", errors == 0),
        Row(f"{name}: acknowledgement latency p50 / p99",
            f"{statistics.median(latencies) if latencies else 0:.1f} / "
            f"{percentile(latencies, 0.99):.1f} ms"),
        Row(f"{name}: service RSS idle (before the load) -> after {first:g} s "
            f"-> after the {warm_up:g} s warm-up",
            f"{rss_idle / 1024:.0f} -> {rss_first / 1024:.0f} -> {rss_start / 1024:.0f} MB"),
        Row(f"{name}: service RSS after warm-up -> end",
            f"{rss_start / 1024:.0f} -> {rss_end / 1024:.0f} MB ({growth:+.1f} %)",
            "within 10 %", abs(growth) <= 10),
        Row(f"{name}: service RSS half-way -> end",
            f"{half / 1024:.0f} -> {rss_end / 1024:.0f} MB "
            f"({(rss_end - half) / half * 100 if half else 0.0:+.1f} %)"),
        Row(f"{name}: service RSS every {every:g} s from warm-up",
            ", ".join(f"{kb / 1024:.0f}" for kb in [*timeline, rss_end]) + " MB"),
        Row(f"{name}: inputs pending when the load stopped; time to drain",
            f"{backlog}; {drained:.1f} s" + ("" if not left else f" ({left} left)"),
            "drains", left == 0),
        Row(f"{name}: inputs decided per second during the load / during the drain",
            f"{max(0, decided_during) / load_wall:.0f} / "
            f"{(backlog - left) / drained if drained else 0.0:.0f}"),
        Row(f"{name}: CPU share of the driver / the service (of {cores} cores)",
            f"{driver_cpu / wall / cores * 100:.0f} % / {service_cpu / wall / cores * 100:.0f} %"),
        Row("/events throughput vs a bare aiohttp route (closed loop, 32 clients)",
            f"{events_rps:.0f} vs {bare_rps:.0f} req/s = {events_rps / bare_rps:.2f}"
            if bare_rps else "bare route not measured"),
    ]


def run(short: bool, seconds: float | None = None) -> list[Row]:
    """Sustained load (full: 500/s for 5 min; short: 100/s for 10 s)."""
    if short:
        return asyncio.run(run_async(100, seconds or 10, 3))
    return asyncio.run(run_async(500, seconds or 300, 10))
