"""The backtest: recorded inputs replayed through the flows, compared with what ran.

The history is made by the pure harness deciding a script (every input it
decided is kept with the virtual time it was decided at, as the intake
would have stored it), so the replay can be checked against the decisions
the runtime's own decider took: the same messages, the same runs. The
command is run as a user runs it, in a process of its own, on a real
database holding that history and a stored earlier version of the flow.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from bot.backtest.replay import Period, Replay
from bot.backtest.scratch import Scratch
from bot.core.stats import flow_version
from bot.infra.database import Database, make_client
from bot.runtime.flow_versions import current_versions, record_versions, versions
from bot.testing import PureHarness
from bot.types import Doc
from rules import cart_recovery
from server import create_app
from tests.support.app import AUTH, make_settings

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
PHONES = {"ana": "+5491100000001", "beto": "+5491100000002", "caro": "+5491100000003"}
CART: dict[str, Any] = {"recovery_url": "https://shop.example/r", "total": "50.00",
                        "currency": "ARS", "items": []}
SOURCE = Path(cart_recovery.__file__).read_text()
OLD_TEXT = "¡Hola, {first_name}! ¿Seguís pensando en {cart}?"


class RecordingHarness(PureHarness):
    """The pure harness, keeping every input it decided as the inbox would hold it."""

    def __init__(self, **settings: Any) -> None:
        super().__init__([cart_recovery.FLOW], start=START, channels=("sms",), **settings)
        self.history: list[Doc] = []

    def _decide(self, item: Doc) -> None:
        at = self.clock.now()
        self.history.append({**item, "state": "done", "received_at": at,
                             "seq": int(at.timestamp() * 1e9) + len(self.history)})
        super()._decide(item)


def script(h: RecordingHarness) -> None:
    """Three shoppers: one buys after the reminder, one says yes, one has no consent."""
    for name in ("ana", "beto", "caro"):
        h.customer(name, phone=PHONES[name], consents={"sms": name != "caro"},
                   first_name=name.title())
        h.event("checkout.started", name, checkout_id=f"k-{name}", **CART)
    h.advance(hours=2)  # the carts are abandoned after an hour: the questions go
    h.reply("beto", choice="yes")
    h.advance(days=1, hours=1)  # ana's reminder
    h.event("order.placed", "ana", order_id="o-1", checkout_id="k-ana", total="50.00",
            currency="ARS")
    h.advance(days=6)


def recorded() -> RecordingHarness:
    h = RecordingHarness()
    script(h)
    return h


def replay(h: RecordingHarness, period: Period) -> dict[str, Doc]:
    scratch = Scratch()
    try:
        replayed = Replay(h.decider, period, timedelta(days=5), scratch)
        for item in h.history:
            replayed.feed(dict(item), item["received_at"])
        replayed.fire_until(period.end)
        assert replayed.failed == [] and replayed.stuck_waits == 0
        return replayed.figures()
    finally:
        scratch.close()


def sent_by_step(figures: Doc) -> dict[str, int]:
    return {row["step"]: row["sent"] for row in figures["steps"] if row["sent"]}


def test_the_replay_sends_what_the_decisions_sent() -> None:
    h = recorded()
    figures = replay(h, Period(START, START + timedelta(days=30)))["cart_recovery"]
    queued = Counter(m["step"] for m in h.outbox.values()
                     if m["direction"] == "out" and m["status"] == "queued")
    assert sent_by_step(figures) == dict(queued) == {
        "interested": 2, "link": 1, "reminder": 1, "thanks": 1}
    # Caro gave no consent: her cart starts no run of a marketing flow.
    assert figures["runs"]["started"] == 2
    assert figures["runs"]["ended"] == Counter(run["outcome"] for run in h.finished_runs) == {
        "purchased": 1, "link_sent": 1}
    assert figures["customers"] == 2 and figures["marketing"] == 4  # all but the thanks
    assert figures["channels"] == {"sms": 5}
    assert next(row for row in figures["steps"] if row["step"] == "interested")["replied"] == 1
    # Ana bought within ATTRIBUTION_DAYS of her reminder: the order counts for the run.
    assert figures["conversions"] == {"orders": 1, "revenue": {"ARS": "50.00"}}
    assert sorted(figures["samples"]["interested"]) == [
        cart_recovery.TEXTS["es"]["interested"].format(first_name=name, cart="algunos productos")
        for name in ("Ana", "Beto")]


def test_inputs_before_the_period_are_decided_but_not_counted() -> None:
    h = recorded()
    later = START + timedelta(days=1)  # the questions went the first day
    figures = replay(h, Period(later, START + timedelta(days=30)))["cart_recovery"]
    assert figures["runs"]["started"] == 0
    assert sent_by_step(figures) == {"reminder": 1, "thanks": 1}
    # Ana's consent and her run came from before the period: her reminder still went.
    assert figures["customers"] == 1


def test_a_customer_without_consent_is_never_messaged_in_a_replay() -> None:
    h = recorded()
    figures = replay(h, Period(START, START + timedelta(days=30)))["cart_recovery"]
    skipped = {row["step"]: row["skipped"] for row in figures["steps"] if row["skipped"]}
    assert skipped == {"started": {"consent": 1}}  # caro's cart, refused at the trigger
    assert figures["customers"] == 2  # ana and beto


# ------------------------------------------------------------ versions as data


async def test_each_version_of_a_flow_is_kept_with_its_source(mongo_uri: str,
                                                               db_name: str) -> None:
    client = make_client(mongo_uri)
    database = Database(client, client[db_name])
    try:
        await record_versions(database, [cart_recovery.FLOW], START)
        await record_versions(database, [cart_recovery.FLOW], START + timedelta(days=1))
        [kept] = await versions(database, "cart_recovery")
        assert kept["version"] == flow_version(cart_recovery.FLOW)
        assert kept["module"] == "rules.cart_recovery"
        assert kept["source"] == SOURCE
        assert (kept["first_seen"], kept["last_seen"]) == (START, START + timedelta(days=1))
        await database.db["flow_versions"].insert_one(
            {"_id": "cart_recovery|old", "flow": "cart_recovery", "version": "old",
             "source": "", "module": "rules.cart_recovery", "first_seen": START,
             "last_seen": START - timedelta(days=1)})
        assert (await current_versions(database))["cart_recovery"]["version"] == kept["version"]
    finally:
        await client.close()


# ------------------------------------------------------------------ the command


def old_source() -> str:
    new = cart_recovery.TEXTS["es"]["interested"]
    assert SOURCE.count(new) == 1
    return SOURCE.replace(new, OLD_TEXT)


async def store_history(mongo_uri: str, db_name: str) -> tuple[str, dict[str, int]]:
    """The script's history in the inbox, an older version of the flow as the live one."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[db_name]
        await db.inbox.insert_many(recorded().history)
        source = old_source()
        version = hashlib.sha256(source.encode()).hexdigest()[:12]
        await db.flow_versions.insert_one(
            {"_id": f"cart_recovery|{version}", "flow": "cart_recovery", "version": version,
             "module": "rules.cart_recovery", "source": source, "first_seen": START,
             "last_seen": START})
        counts = {name: await db[name].count_documents({})
                  for name in await db.list_collection_names()}
        return version, counts
    finally:
        await client.close()


def run_backtest(mongo_uri: str, db_name: str, tmp_path: Path, *args: str,
                 fails: bool = False) -> str:
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DB": db_name,
           "DATA_DIR": str(tmp_path), "FLOWS": "cart_recovery", "QUIET_HOURS": "false",
           "TWILIO_ACCOUNT_SID": "AC0", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM": "+15550000000",
           "WHATSAPP_TOKEN": "", "TELEGRAM_BOT_TOKEN": "", "SMTP_URL": ""}
    done = subprocess.run(
        [sys.executable, "-m", "bot.backtest", "--from", "2026-01-15", "--to", "2026-02-10",
         "--since", "2026-01-01", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode != 0) == fails, done.stderr
    return done.stderr if fails else done.stdout


async def test_the_command_compares_the_working_tree_with_the_live_version(
        mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    live_version, before = await store_history(mongo_uri, db_name)
    answer = json.loads(run_backtest(mongo_uri, db_name, tmp_path, "--json"))
    assert answer["changed"] == {"cart_recovery": {
        "live": live_version, "tree": flow_version(cart_recovery.FLOW)}}
    sides = answer["flows"]["cart_recovery"]
    assert sides["live"]["version"] == live_version
    assert sides["tree"]["version"] == flow_version(cart_recovery.FLOW)
    # Same customers, same behaviour: only the question's words changed.
    for side in ("live", "tree"):
        assert sent_by_step(sides[side]) == {
            "interested": 2, "link": 1, "reminder": 1, "thanks": 1}
        assert sides[side]["conversions"]["orders"] == 1
    assert sorted(sides["live"]["samples"]["interested"]) == [
        "¡Hola, Ana! ¿Seguís pensando en algunos productos?",
        "¡Hola, Beto! ¿Seguís pensando en algunos productos?"]
    assert sorted(sides["tree"]["samples"]["interested"]) == [
        cart_recovery.TEXTS["es"]["interested"].format(first_name=name, cart="algunos productos")
        for name in ("Ana", "Beto")]
    # Nothing ran live in this database: the recorded column is empty.
    assert sides["recorded"]["runs"]["started"] == 0
    assert answer["inputs"] == len(recorded().history)
    # A backtest writes no document (connecting creates the service's indexes, which a
    # store's database has already).
    _, after = await store_history_counts(mongo_uri, db_name)
    assert {name: n for name, n in after.items() if n} == before


async def store_history_counts(mongo_uri: str, db_name: str) -> tuple[None, dict[str, int]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[db_name]
        return None, {name: await db[name].count_documents({})
                      for name in await db.list_collection_names()}
    finally:
        await client.close()


@pytest.mark.parametrize("flag", [[], ["--flow", "cart_recovery"]])
async def test_the_command_prints_a_table(mongo_uri: str, db_name: str, tmp_path: Path,
                                          flag: list[str]) -> None:
    await store_history(mongo_uri, db_name)
    text = run_backtest(mongo_uri, db_name, tmp_path, *flag)
    assert "Backtest 2026-01-15 .. 2026-02-10" in text
    header = next(line for line in text.splitlines() if line.startswith("cart_recovery"))
    assert "recorded" in header and "live version" in header and "working tree" in header
    assert any(line.split()[:3] == ["interested:", "sent", "0"] for line in text.splitlines())
    assert "Assumptions:" in text


async def test_an_unknown_flow_is_named(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    error = run_backtest(mongo_uri, db_name, tmp_path, "--flow", "cart_recuperation", fails=True)
    assert "unknown flow(s): cart_recuperation; running: cart_recovery" in error


async def test_the_service_records_its_flows_versions_at_start(
        aiohttp_client: Any, mongo_uri: str, db_name: str, db: Any) -> None:
    client = await aiohttp_client(
        create_app(make_settings(mongo_uri, db_name, flows="cart_recovery")))
    [kept] = await db.flow_versions.find({}).to_list(None)
    current = flow_version(cart_recovery.FLOW)
    assert (kept["flow"], kept["version"], kept["source"]) == ("cart_recovery", current, SOURCE)
    # An earlier deploy's version, and the API that lists them and serves their source.
    await db.flow_versions.insert_one(
        {"_id": "cart_recovery|0ld", "flow": "cart_recovery", "version": "0ld",
         "module": "rules.cart_recovery", "source": old_source(),
         "first_seen": START - timedelta(days=60), "last_seen": START - timedelta(days=1)})
    listed = await client.get("/api/flows/cart_recovery/versions", headers=AUTH)
    assert [(v["version"], v["running"], v["source"])
            for v in (await listed.json())["versions"]] == [(current, True, True),
                                                             ("0ld", False, True)]
    source = await client.get("/api/flows/cart_recovery/versions/0ld", headers=AUTH)
    assert source.content_type == "text/x-python" and await source.text() == old_source()
    missing = await client.get("/api/flows/cart_recovery/versions/nope", headers=AUTH)
    assert missing.status == 404
    assert await missing.json() == {"error": "no source kept for version 'nope' of cart_recovery"}
    assert (await client.get("/api/flows/cart_recovery/versions")).status == 401
