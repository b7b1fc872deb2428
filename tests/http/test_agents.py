"""Agents: accounts, roles, assignment, closing, who did what (issue 14, items 2 and 3)."""

from __future__ import annotations

from typing import Any

from bot.http.appkeys import DATABASE
from server import create_app
from tests.http.console_client import PASSWORD, Browser, create_agent
from tests.support.app import Fakes, Service, make_settings, with_test_flows
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, public_url="http://127.0.0.1",
                             **with_test_flows(agent_idle_release=3600))
    return Service(await aiohttp_client(create_app(settings)))


async def browser(aiohttp_client: Any, service: Service, email: str) -> Browser:
    person = Browser(await aiohttp_client(service.client.server))
    await person.sign_in(email)
    return person


async def handed_off(service: Service) -> str:
    """A WhatsApp conversation the bot handed to people; its API path."""
    await service.whatsapp(whatsapp_text_webhook("humano", phone=PHONE))
    await service.advance(0)
    listed = await service.api("GET", "/api/conversations?status=needs_agent")
    return f"/api/conversations/{listed['conversations'][0]['id']}"


def texts(fakes: Fakes) -> list[str]:
    return [m["text"]["body"] for m in fakes.whatsapp.sent.get(DIGITS, []) if "text" in m]


async def test_admins_create_agents_stored_with_an_argon2_hash_only(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    created = await create_agent(service, "Lucia@Shop.Example", name="Lucía")
    assert created == {"email": "lucia@shop.example", "name": "Lucía", "role": "agent",
                       "lang": "es", "created_at": created["created_at"]}
    stored = await service.client.app[DATABASE].db["agents"].find_one(
        {"_id": "lucia@shop.example"})
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(stored)
    again = await service.api("POST", "/api/agents", expect=409, json={
        "email": "lucia@shop.example", "name": "Otra", "password": PASSWORD})
    assert "email" in again["error"]
    bad_email = await service.api("POST", "/api/agents", expect=400, json={
        "email": "not-an-email", "name": "X", "password": PASSWORD})
    assert bad_email["error"].startswith("email")
    no_password = await service.api("POST", "/api/agents", expect=400, json={
        "email": "x@shop.example", "name": "X"})
    assert no_password["error"].startswith("password")
    bad_role = await service.api("POST", "/api/agents", expect=400, json={
        "email": "x@shop.example", "name": "X", "password": PASSWORD, "role": "owner"})
    assert bad_role["error"].startswith("role")


async def test_an_agent_cannot_create_agents_and_an_admin_session_can(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await create_agent(service, "agent@shop.example")
    await create_agent(service, "boss@shop.example", role="admin")
    agent = await browser(aiohttp_client, service, "agent@shop.example")
    refused = await agent.api("POST", "/api/agents", expect=403, json={
        "email": "new@shop.example", "name": "New", "password": PASSWORD})
    assert "admin" in refused["error"]
    boss = await browser(aiohttp_client, service, "boss@shop.example")
    await boss.api("POST", "/api/agents", expect=201, json={
        "email": "new@shop.example", "name": "New", "password": PASSWORD})
    # A session's change without its CSRF header is refused, even an admin's.
    response = await boss.client.post("/api/agents", json={
        "email": "other@shop.example", "name": "Other", "password": PASSWORD})
    assert response.status == 403
    assert "CSRF" in (await response.json())["error"]
    # Without a session or the token, the API stays closed.
    anonymous = await service.client.get("/api/conversations")
    assert anonymous.status == 401


async def test_assign_and_close_answer_the_conversation_and_record_who(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await create_agent(service, "lucia@shop.example")
    path = await handed_off(service)
    unknown = await service.api("POST", path + "/assign", expect=400,
                                json={"agent": "nobody@shop.example"})
    assert unknown["error"].startswith("agent")
    missing = await service.api("POST", path + "/assign", expect=400, json={})
    assert missing["error"].startswith("agent")
    assigned = await service.api("POST", path + "/assign", json={"agent": "lucia@shop.example"})
    assert (assigned["status"], assigned["agent"]) == ("agent", "lucia@shop.example")
    await service.advance(0)
    shown = await service.api("GET", path)
    assert (shown["status"], shown["agent"]) == ("agent", "lucia@shop.example")
    closed = await service.api("POST", path + "/close")
    assert (closed["status"], closed["agent"]) == ("closed", None)
    await service.advance(0)
    shown = await service.api("GET", path)
    assert shown["status"] == "closed"
    assert [(a["action"], a["by"], a["agent"]) for a in shown["actions"]] == [
        ("assign", "admin-token", "lucia@shop.example"), ("close", "admin-token", None)]
    # A closed conversation takes a new message without error (reopening is item 1).
    await service.whatsapp(whatsapp_text_webhook("hola otra vez", phone=PHONE))
    await service.advance(0)
    shown = await service.api("GET", path)
    assert "hola otra vez" in [m["text"] for m in shown["messages"]]
    failed = await service.client.app[DATABASE].inbox.count_documents({"state": "failed"})
    assert failed == 0


async def test_a_conversation_held_by_one_agent_is_read_only_for_the_others(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    for email in ("ana@shop.example", "beto@shop.example"):
        await create_agent(service, email)
    await create_agent(service, "boss@shop.example", role="admin")
    path = await handed_off(service)
    ana = await browser(aiohttp_client, service, "ana@shop.example")
    beto = await browser(aiohttp_client, service, "beto@shop.example")
    taken = await ana.api("POST", path + "/takeover", json={})
    assert (taken["status"], taken["agent"]) == ("agent", "ana@shop.example")
    await service.advance(0)
    for action, body in (("messages", {"text": "yo sigo"}), ("close", {}), ("release", {}),
                         ("takeover", {}), ("assign", {"agent": "beto@shop.example"})):
        refused = await beto.api("POST", f"{path}/{action}", expect=403, json=body)
        assert "ana@shop.example" in refused["error"]
    # Nor may an agent act in someone else's name.
    await ana.api("POST", path + "/messages", expect=403,
                  json={"text": "hola", "agent": "beto@shop.example"})
    await ana.api("POST", path + "/assign", json={"agent": "beto@shop.example"})
    await service.advance(0)
    await beto.api("POST", path + "/messages", expect=202, json={"text": "Soy Beto"})
    await ana.api("POST", path + "/messages", expect=403, json={"text": "Soy Ana"})
    await service.advance(0)
    assert texts(fakes)[-1] == "Soy Beto"
    boss = await browser(aiohttp_client, service, "boss@shop.example")
    await boss.api("POST", path + "/close", json={})
    await service.advance(0)
    shown = await service.api("GET", path)
    assert shown["status"] == "closed"
    sent = [m for m in shown["messages"] if m["text"] == "Soy Beto"]
    assert sent[0]["agent"] == "beto@shop.example"
    assert [(a["action"], a["by"]) for a in shown["actions"]] == [
        ("takeover", "ana@shop.example"), ("assign", "ana@shop.example"),
        ("message", "beto@shop.example"), ("close", "boss@shop.example")]
