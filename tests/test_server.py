"""The foundation: health, metrics, limits, JSON errors, admin auth, settings, restarts."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pymongo import AsyncMongoClient

from bot.infra.embedded_db import EmbeddedMongo
from bot.infra.settings import Settings, format_settings_error
from server import create_app
from tests.support.app import ADMIN_TOKEN, AUTH, EVENTS_SECRET, Service, make_settings
from tests.support.process import (
    ServerProcess,
    command_line,
    kill_leftovers,
    processes_using,
    wait_until,
)
from tests.support.store_signing import events_headers

ROOT = Path(__file__).resolve().parent.parent


async def test_healthz_and_metrics(aiohttp_client: Any, mongo_uri: str, db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    metrics = await client.get("/metrics")
    text = await metrics.text()
    assert metrics.status == 200
    assert 'chasqui_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text


async def test_healthz_answers_503_when_the_database_is_gone(aiohttp_client: Any,
                                                             db_name: str) -> None:
    server = EmbeddedMongo(":memory:")
    await server.start()
    try:
        client = await aiohttp_client(create_app(make_settings(server.uri, db_name)))
        assert (await client.get("/healthz")).status == 200
        server.kill()
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["status"] == "unavailable"
    finally:
        server.stop()


async def test_healthz_waits_for_a_slow_database_as_long_as_the_intake_does(
        aiohttp_client: Any, db_name: str) -> None:
    # Found by the fuzz (stress/fuzz.py): one /healthz among 10,000 answered
    # 503, a ping not answered within the old 1 s, though an input still got
    # INTAKE_SECONDS to be stored and nothing else failed.
    server = EmbeddedMongo(":memory:")
    await server.start()
    try:
        client = await aiohttp_client(create_app(make_settings(server.uri, db_name)))
        assert (await client.get("/healthz")).status == 200
        assert server.process is not None
        group = server.process.pid  # the database and its launcher, one process group
        os.killpg(group, signal.SIGSTOP)  # a database stalled for 1.5 s
        asyncio.get_running_loop().call_later(1.5, os.killpg, group, signal.SIGCONT)
        started = time.monotonic()
        response = await client.get("/healthz")
        assert response.status == 200
        assert time.monotonic() - started >= 1.4  # it did wait for the stalled database
    finally:
        if server.process is not None:
            os.killpg(server.process.pid, signal.SIGCONT)
        server.stop()


async def test_body_over_one_mebibyte_is_413_json(aiohttp_client: Any, mongo_uri: str,
                                                  db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    body = b"{" + b" " * (1024 * 1024) + b"}"
    response = await client.post("/events", data=io.BytesIO(body),
                                 headers=events_headers(EVENTS_SECRET, body))
    assert response.status == 413
    assert "1 MiB" in (await response.json())["error"]


async def test_errors_are_json(aiohttp_client: Any, mongo_uri: str, db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert "error" in await missing.json()
    bad = await client.post("/admin/clock/advance", data=b"not json", headers=AUTH)
    assert bad.status == 400
    assert "JSON" in (await bad.json())["error"]
    negative = await client.post("/admin/clock/advance", json={"seconds": -1}, headers=AUTH)
    assert negative.status == 400
    assert "seconds" in (await negative.json())["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": ADMIN_TOKEN}])
async def test_admin_routes_need_the_bearer_token(aiohttp_client: Any, mongo_uri: str,
                                                  db_name: str, headers: dict[str, str]) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    for path in ("/api/conversations", "/api/customers/x"):
        response = await client.get(path, headers=headers)
        assert response.status == 401
        assert "error" in await response.json()
    assert (await client.get("/api/conversations", headers=AUTH)).status == 200


async def test_admin_routes_are_closed_when_no_token_is_set(aiohttp_client: Any, mongo_uri: str,
                                                            db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name, admin_token=None)))
    response = await client.get("/api/conversations", headers={"Authorization": "Bearer "})
    assert response.status == 401


async def test_clock_advance_moves_virtual_time_only(aiohttp_client: Any, mongo_uri: str,
                                                     db_name: str) -> None:
    client = await aiohttp_client(create_app(make_settings(mongo_uri, db_name)))
    service = Service(client)
    start = await service.advance(0)
    later = await service.advance(3600)
    assert start < later
    assert await service.advance(0) == later
    system = await aiohttp_client(create_app(make_settings(mongo_uri, db_name + "s",
                                                           clock="system")))
    response = await system.post("/admin/clock/advance", json={"seconds": 1}, headers=AUTH)
    assert response.status == 404


@pytest.mark.parametrize(("variable", "value"), [
    ("PORT", "abc"), ("MONGODB_URI", "http://db:27017"), ("CLOCK", "sundial"),
    ("CART_ABANDON_AFTER", "-5"), ("TWILIO_API_URL", "ftp://x"),
])
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                        value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = format_settings_error(caught.value)
    assert f"{variable}={value!r}" in message


def test_secrets_are_masked_in_settings_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "x")
    monkeypatch.setenv("WHATSAPP_TOKEN", "super-secret-value")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "super-secret-value" not in format_settings_error(caught.value)
    summary = Settings(whatsapp_token="super-secret-value", port=1).enabled_summary()
    assert "super-secret-value" not in summary


@pytest.mark.parametrize("url", ["http://mailer:pa55word@relay.example:587",
                                 "smtp://mailer:pa55word@relay.example:port"])
def test_a_bad_smtp_url_is_named_without_its_password(
        monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SMTP_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = format_settings_error(caught.value)
    assert "SMTP_URL=***" in message and "pa55word" not in message
    good = Settings(smtp_url="smtp://mailer:pa55word@relay.example:587",
                    email_from="Shop <shop@example.com>")
    assert "email" in good.enabled_summary() and "pa55word" not in good.enabled_summary()
    assert "pa55word" not in repr(good)


def test_server_refuses_to_start_with_a_bad_setting() -> None:
    env = {**os.environ, "PORT": "abc"}
    done = subprocess.run([sys.executable, "server.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "PORT='abc'" in done.stderr


async def test_the_embedded_database_keeps_no_oplog() -> None:
    """Standalone mode: nothing reads an oplog (no change streams, no
    transactions), and writing one costs the server ~10% per write."""
    server = EmbeddedMongo(":memory:")
    await server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.uri)
    try:
        hello = await client.admin.command("hello")
        assert "setName" not in hello
        await client.chasqui.probe.insert_one({"_id": 1})
        assert await client.local.oplog.rs.count_documents({}) == 0
    finally:
        await client.close()
        server.stop()


async def test_data_survives_a_restart_of_the_embedded_database(
        aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings("", "chasqui", data_dir=str(tmp_path), mongodb_uri=None)
    event = {"id": "evt_keep", "type": "customer.created", "occurred_at": "2026-11-24T10:00:00Z",
             "customer": {"id": "cus_keep", "phone": "+5491122334455", "first_name": "Ana"}}
    app = create_app(settings)
    client = await aiohttp_client(app)
    await Service(client).event(event)
    await Service(client).advance(0)
    await client.close()  # stops the app and its embedded database
    client = await aiohttp_client(create_app(settings))
    service = Service(client)
    customer = await service.api("GET", "/api/customers/cus_keep")
    assert customer["first_name"] == "Ana"
    assert (await service.event(event, expect=200)) == {"duplicate": True}
    assert (tmp_path / "db").is_dir()


@pytest.mark.slow
async def test_the_http_port_is_held_before_the_embedded_database_starts(tmp_path: Path) -> None:
    """The database picks a "free" port while the app starts; once, that was
    ``PORT`` itself. While the service holds its port, no pick can return it."""
    server = ServerProcess({"DATA_DIR": str(tmp_path), "ADMIN_TOKEN": ADMIN_TOKEN,
                            "LOG_LEVEL": "WARNING"}, tmp_path / "server.log")
    server.env.pop("MONGODB_URI", None)  # the on-disk embedded database
    storage = tmp_path / "db"
    starting = asyncio.create_task(server.start())
    try:
        await wait_until(lambda: bool(processes_using(storage)) or starting.done(), 60,
                         "the embedded database to be started")
        assert not starting.done()
        database = command_line(processes_using(storage)[0])
        with socket.socket() as probe, pytest.raises(OSError) as taken:
            probe.bind(("127.0.0.1", server.port))  # what a free-port pick would try
        assert taken.value.errno == errno.EADDRINUSE
        assert database[database.index("--port") + 1] != str(server.port)
        await starting  # and the service then serves on its port
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        server.stop()
        kill_leftovers(storage)
