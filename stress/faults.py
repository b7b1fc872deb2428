"""Fault injection: a paused database, misbehaving providers, a full disk.

- **Database paused.** Under steady traffic the embedded database gets
  SIGSTOP for 10 s (short: 3 s) and SIGCONT. While it is away, inputs must
  be answered 503 ``{"error": "database unavailable"}`` within
  ``INTAKE_SECONDS`` (never 2xx without the input stored, never another
  5xx, never hang), ``/healthz`` says 503, and afterwards everything goes
  on without a restart: the inputs answered 503 are posted again (as the
  providers retry) and every accepted one gets its reply.
- **Providers failing.** On a virtual clock (so backoff and Retry-After
  cost no wall time), each fake answers its sends with scripted 500s, a
  storm of 429s with ``Retry-After``, slow answers (2 s) and, in the full
  run, timeouts (an answer slower than the 15 s client timeout). Every
  reply must go out exactly once.
- **Disk full.** ``DATA_DIR`` on a small tmpfs that a filler file then
  fills: inputs must get a clear 5xx JSON error, no 2xx for an input that
  was not stored, and after the filler is removed intake resumes. Needs
  root for ``mount``; without it the row says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bot.http.common import INTAKE_SECONDS
from stress.harness import (
    ADMIN_TOKEN,
    Input,
    Providers,
    Traffic,
    accepted,
    database_pid,
    open_store,
    post,
    server,
    settle,
    stored_ids,
    why_missing,
)
from stress.report import Row
from tests.support.process import ServerProcess, kill_leftovers

RATE = 30.0


async def pump(session: aiohttp.ClientSession, process: ServerProcess, traffic: Traffic,
               seconds: float, sent: list[Input]) -> list[tuple[float, asyncio.Task[Input]]]:
    """New inputs at ``RATE`` for ``seconds``: (start time, post) pairs."""
    posts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        item = traffic.next()
        sent.append(item)
        posts.append((time.monotonic(), asyncio.create_task(
            post(session, process.url, item, timeout=INTAKE_SECONDS + 15))))
        await asyncio.sleep(1 / RATE)
    return posts


# /healthz is asked at most HEALTH_AT s into the pause and waits up to
# INTAKE_SECONDS for a ping: a shorter pause would end before it answered.
HEALTH_AT = 2.0
SHORT_PAUSE = HEALTH_AT + INTAKE_SECONDS + 1.0


async def paused_database(pause: float, workdir: Path) -> list[Row]:
    data_dir = workdir / "paused"
    data_dir.mkdir()
    inputs: list[Input] = []
    async with Providers() as providers, aiohttp.ClientSession() as session:
        process = server(providers, data_dir)
        await process.start(timeout=90)
        pid = database_pid(data_dir)
        traffic = Traffic(process.url, providers, run="pause")
        resumed = False
        try:
            before = await pump(session, process, traffic, 1.0, inputs)
            os.kill(pid, signal.SIGSTOP)
            during_task = asyncio.create_task(pump(session, process, traffic, pause, inputs))
            await asyncio.sleep(min(pause / 2, HEALTH_AT))
            async with session.get(process.url + "/healthz",
                                   timeout=aiohttp.ClientTimeout(total=INTAKE_SECONDS + 5)
                                   ) as response:
                health = response.status
            during = await during_task
            os.kill(pid, signal.SIGCONT)
            resumed = True
            after = await pump(session, process, traffic, 2.0, inputs)
            answered = [await task for _, task in before + during + after]
            away = [await task for _, task in during]  # posted while the database was away
            slowest = max((i.elapsed for i in away), default=0.0)
            statuses = Counter(i.status for i in away)
            for _ in range(3):  # the providers retry what got no 2xx
                retry = [i for i in answered if not accepted(i)]
                await asyncio.gather(*(post(session, process.url, i) for i in retry))
            acked = {i.inbox_id for i in answered if accepted(i)}
            distinct = len({i.inbox_id for i in answered})  # a status may be posted twice
            async with open_store(data_dir=data_dir) as database:
                missing = await settle(providers, {i.reply for i in answered
                                                   if accepted(i) and i.reply},
                                       database, 60)
                lost = len(acked - await stored_ids(database, sorted(acked)))
                why = await why_missing(database, missing)
        finally:
            if not resumed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            process.stop()
            kill_leftovers(data_dir / "db")
    bad = sum(n for s, n in statuses.items() if s is None or (s >= 500 and s != 503))
    twice = sum(n - 1 for n in providers.sent_texts().values() if n > 1)
    name = f"database paused {pause:g} s"
    return [
        Row(f"{name}: answers while away", ", ".join(
            f"{s or 'none'}: {n}" for s, n in sorted(statuses.items(), key=lambda x: x[0] or 0))),
        Row(f"{name}: hung or other 5xx while away", str(bad), "0", bad == 0),
        Row(f"{name}: /healthz while away", str(health), "503", health == 503),
        Row(f"{name}: 2xx without the input stored", str(lost), "0", lost == 0),
        Row(f"{name}: every input accepted after resuming (no restart)",
            f"{len(acked)}/{distinct}", "all", len(acked) == distinct),
        Row(f"{name}: replies never sent / sent twice",
            f"{len(missing)} / {twice}" + (f" ({why})" if missing else ""), "0 / 0",
            not missing and twice == 0),
        Row(f"{name}: slowest answer while away", f"{slowest:.1f} s",
            f"<= {INTAKE_SECONDS + 1:g} s", slowest <= INTAKE_SECONDS + 1),
    ]


async def advance(session: aiohttp.ClientSession, process: ServerProcess, seconds: float) -> None:
    async with session.post(process.url + "/admin/clock/advance", json={"seconds": seconds},
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                            timeout=aiohttp.ClientTimeout(total=300)) as response:
        response.raise_for_status()


# The SMTP relay's answers for the HTTP providers' faults: 451 (try again
# later) for their 500s, 421 (slow down) for their 429s. Slow answers and
# timeouts are not scripted for it: a relay that accepted a message after
# the client gave up delivers it (RFC 1047), and the receiving server drops
# the copy by its Message-ID, which is the same on every attempt.
RELAY_FAULTS = {"500s": (451, "4.3.0 try again later", 3),
                "429 storm": (421, "4.7.0 too many messages, slow down", 8)}


def script(providers: Providers, fault: str) -> None:
    """Make every fake misbehave on its next sends."""
    if fault in RELAY_FAULTS:
        code, text, times = RELAY_FAULTS[fault]
        providers.email.fail_data(code, text, times=times)
    fakes: list[Any] = [providers.whatsapp, providers.twilio, providers.telegram]
    for fake in fakes:
        if fault == "500s":
            fake.fail_next(status=500, times=3)
        elif fault == "429 storm":
            fake.fail_next(status=429, retry_after=30, times=8)
        elif fault == "slow answers (2 s)":
            fake.slow_next(2.0, times=5)
        elif fault == "timeouts (17 s > 15 s client timeout)":
            fake.slow_next(17.0, times=2)


async def provider_faults(short: bool, workdir: Path) -> list[Row]:
    data_dir = workdir / "providers"
    data_dir.mkdir()
    faults = ["500s", "429 storm", "slow answers (2 s)"]
    if not short:
        faults.append("timeouts (17 s > 15 s client timeout)")
    rows: list[Row] = []
    async with Providers() as providers, aiohttp.ClientSession() as session:
        process = server(providers, data_dir, CLOCK="virtual")
        await process.start(timeout=90)
        traffic = Traffic(process.url, providers, run="prov", rng=random.Random(7),
                          mix=(("event", 1), ("whatsapp", 1), ("sms", 1), ("telegram", 1),
                               ("email", 1)))
        try:
            for fault in faults:
                calls_before = providers.send_calls()
                script(providers, fault)
                items = [await post(session, process.url, traffic.next()) for _ in range(12)]
                expected = {i.reply for i in items if accepted(i) and i.reply}
                started = time.monotonic()
                for _ in range(12):  # up to 12 virtual minutes: 5 s doubling, 6 attempts
                    await advance(session, process, 60)
                    if expected <= set(providers.sent_texts()):
                        break
                took = time.monotonic() - started
                sent = providers.sent_texts()
                missing = expected - set(sent)
                never = len(missing)
                why = ""
                if missing:
                    async with open_store(data_dir=data_dir) as database:
                        why = f"; {await why_missing(database, missing)}"
                twice = sum(sent[t] - 1 for t in expected if sent[t] > 1)
                calls = providers.send_calls() - calls_before
                for fake in (providers.whatsapp, providers.twilio, providers.telegram):
                    fake.clear_failures()  # what this fault's sends did not use up
                providers.email.data_errors.clear()
                rows.append(Row(
                    f"providers, {fault}: replies never sent / sent twice",
                    f"{never} / {twice} of {len(expected)} ({calls} send calls, {took:.0f} s{why})",
                    "0 / 0", never == 0 and twice == 0 and len(expected) == len(items)))
        finally:
            process.stop()
            kill_leftovers(data_dir / "db")
    return rows


async def disk_full(workdir: Path) -> list[Row]:
    mount = workdir / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)],  # noqa: ASYNC221
                          capture_output=True, text=True)
    if done.returncode != 0:
        return [Row("disk full", f"not run: mount failed ({done.stderr.strip()[:60]})")]
    inputs: list[Input] = []
    try:
        async with Providers() as providers, aiohttp.ClientSession() as session:
            process = server(providers, mount)
            try:
                await process.start(timeout=90)
                traffic = Traffic(process.url, providers, run="full")
                for _ in range(10):
                    inputs.append(await post(session, process.url, traffic.next()))
                filler = mount / "filler"
                with filler.open("wb") as out, contextlib.suppress(OSError):
                    while True:
                        out.write(b"\0" * (1 << 20))
                        out.flush()
                full: list[Input] = []
                for _ in range(10):  # 200 inputs, 20 at a time
                    full += await asyncio.gather(*(post(session, process.url, traffic.next(),
                                                        timeout=20) for _ in range(20)))
                inputs.extend(full)
                errors = Counter(i.status for i in full)
                sample = ""
                for item in full:
                    if item.status is not None and item.status >= 400:
                        async with session.post(process.url + item.path, data=item.body,
                                                headers=item.headers) as response:
                            sample = (await response.text())[:80]
                        break
                filler.unlink()
                later = [await post(session, process.url, traffic.next()) for _ in range(10)]
                inputs.extend(later)
                acked = {i.inbox_id for i in inputs if accepted(i)}
                async with open_store(data_dir=mount) as database:
                    lost = len(acked - await stored_ids(database, sorted(acked)))
            finally:
                process.stop()
                kill_leftovers(mount / "db")
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)  # noqa: ASYNC221
    recovered = sum(1 for i in later if accepted(i))
    return [
        Row("disk full: answers while full", ", ".join(
            f"{s or 'none'}: {n}" for s, n in sorted(errors.items(), key=lambda x: x[0] or 0))
            + (f"; e.g. {sample}" if sample else "")),
        Row("disk full: 2xx without the input stored", str(lost), "0", lost == 0),
        Row("disk full: accepted after space came back", f"{recovered}/{len(later)}", "all",
            recovered == len(later)),
    ]


async def run_async(short: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="chasqui-faults-") as tmp:
        workdir = Path(tmp)
        rows = await paused_database(SHORT_PAUSE if short else 10.0, workdir)
        rows += await provider_faults(short, workdir)
        if not short:
            rows += await disk_full(workdir)
    return rows


def run(short: bool) -> list[Row]:
    """Fault injection (short: database paused 6 s, provider faults without timeouts)."""
    return asyncio.run(run_async(short))
