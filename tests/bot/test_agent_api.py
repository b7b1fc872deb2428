"""The agent API: list, show, takeover, agent messages, release, idle release."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.http.appkeys import DATABASE, RUNTIME
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings, with_test_flows
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes,
                             **with_test_flows(agent_idle_release=3600))
    return Service(await aiohttp_client(create_app(settings)))


def texts(fakes: Fakes) -> list[str]:
    return [m["text"]["body"] for m in fakes.whatsapp.sent.get(DIGITS, [])]


async def say(service: Service, text: str) -> None:
    await service.whatsapp(whatsapp_text_webhook(text, phone=PHONE))
    await service.advance(0)


async def test_a_handoff_lists_the_conversation_as_needing_an_agent(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "customer.created", now))
    await say(service, "hola")
    listed = (await service.api("GET", "/api/conversations"))["conversations"]
    assert [(c["customer_id"], c["channel"], c["status"]) for c in listed] == [
        ("cus_1", "whatsapp", "bot")]
    assert listed[0]["last_message"]["text"] == "eco: hola"
    await say(service, "humano")
    needing = (await service.api("GET", "/api/conversations?status=needs_agent"))
    conversation = needing["conversations"][0]
    assert conversation["handoff_reason"] == "pidió hablar con una persona"
    assert (await service.api("GET", "/api/conversations?status=bot"))["conversations"] == []
    mine = await service.api("GET", "/api/conversations?customer_id=cus_1")
    assert len(mine["conversations"]) == 1
    shown = await service.api("GET", f"/api/conversations/{conversation['id']}")
    assert [(m["direction"], m["text"]) for m in shown["messages"]] == [
        ("in", "hola"), ("out", "eco: hola"), ("in", "humano"),
        ("out", "Te paso con una persona.")]
    assert texts(fakes)[-1] == "Te paso con una persona."


async def test_takeover_agent_message_and_release(aiohttp_client: Any, mongo_uri: str,
                                                  db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await say(service, "hola")
    conversation = (await service.api("GET", "/api/conversations"))["conversations"][0]
    path = f"/api/conversations/{conversation['id']}"
    taken = await service.api("POST", path + "/takeover", json={"agent": "Lucía"})
    assert (taken["status"], taken["agent"]) == ("agent", "Lucía")
    await say(service, "¿hay alguien?")
    assert texts(fakes) == ["eco: hola"]  # the bot is quiet; the message is recorded
    # The contract's body is only the text: the message is signed by the
    # agent who took the conversation over.
    message = await service.api("POST", path + "/messages", expect=202,
                                json={"text": "Hola, soy Lucía"})
    assert (message["agent"], message["status"], message["direction"]) == ("Lucía", "queued",
                                                                           "out")
    await service.advance(0)
    assert texts(fakes)[-1] == "Hola, soy Lucía"
    released = await service.api("POST", path + "/release")
    assert (released["status"], released["agent"]) == ("bot", None)
    await say(service, "gracias")
    assert texts(fakes)[-1] == "eco: gracias"
    timeline = await service.api("GET", path)
    assert [m["agent"] for m in timeline["messages"] if m["direction"] == "out"] == [
        None, "Lucía", None]


async def test_a_forgotten_conversation_is_released_after_the_idle_time(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await say(service, "hola")
    conversation = (await service.api("GET", "/api/conversations"))["conversations"][0]
    path = f"/api/conversations/{conversation['id']}"
    await service.api("POST", path + "/takeover", json={"agent": "Lucía"})
    await service.advance(3500)
    assert (await service.api("GET", path))["status"] == "agent"
    await service.advance(200)
    assert (await service.api("GET", path))["status"] == "bot"


async def test_agent_api_errors(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await say(service, "hola")
    conversation = (await service.api("GET", "/api/conversations"))["conversations"][0]
    path = f"/api/conversations/{conversation['id']}"
    missing = await service.api("POST", "/api/conversations/nope:whatsapp/takeover",
                                expect=404, json={"agent": "x"})
    assert "error" in missing
    no_agent = await service.api("POST", path + "/takeover", expect=400, json={})
    assert "agent" in no_agent["error"]
    no_text = await service.api("POST", path + "/messages", expect=400, json={"text": ""})
    assert "text" in no_text["error"]
    bad_status = await service.api("GET", "/api/conversations?status=lost", expect=400)
    assert "status" in bad_status["error"]
    assert "error" in await service.api("GET", "/api/customers/nobody", expect=404)


async def test_an_agent_message_outside_the_window_is_not_sent(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await say(service, "hola")
    conversation = (await service.api("GET", "/api/conversations"))["conversations"][0]
    path = f"/api/conversations/{conversation['id']}"
    await service.advance(25 * 3600)
    message = await service.api("POST", path + "/messages", expect=202,
                                json={"text": "¿Sigues ahí?", "agent": "Lucía"})
    assert message["status"] == "queued"  # accepted; the decision skips it
    await service.advance(0)
    shown = {m["id"]: m for m in (await service.api("GET", path))["messages"]}
    assert shown[message["id"]]["status"] == "skipped"
    assert "24-hour window" in shown[message["id"]]["error"]
    assert texts(fakes) == ["eco: hola"]


BACKLOG = 600  # more than one inbox pass takes (``bot.runtime.processor.BATCH``)


async def test_agent_actions_are_answered_at_once_under_a_backlog(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    """An agent's action is stored and answered; the decide loop decides it later.

    The decide loop is kept busy (its lock held) while a backlog of store
    events arrives, so nothing is decided during the agent's requests: a
    request that ran an inbox pass itself would wait for the loop (and,
    before, answered 500 when its input was not among the first pass).
    """
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await say(service, "hola")
    conversation = (await service.api("GET", "/api/conversations"))["conversations"][0]
    path = f"/api/conversations/{conversation['id']}"
    await service.api("POST", path + "/takeover", json={"agent": "Lucía"})
    now = await service.advance(0)
    runtime = service.client.app[RUNTIME]
    async with runtime.decide_lock:
        for start_at in range(0, BACKLOG, 100):
            await asyncio.gather(*(
                service.event(customer_event(f"evt_{n}", "customer.created", now,
                                             customer_id=f"cus_b{n}", phone=f"+54911{n:08d}"))
                for n in range(start_at, start_at + 100)))
        async with asyncio.timeout(10):
            message = await service.api("POST", path + "/messages", expect=202,
                                        json={"text": "Hola, soy Lucía"})
            released = await service.api("POST", path + "/release")
        pending = await service.client.app[DATABASE].inbox.count_documents(
            {"state": "pending"})
    assert pending == BACKLOG + 2  # nothing was decided in the requests
    assert message["id"].startswith("agent:")
    assert (message["direction"], message["status"], message["agent"], message["flow"],
            message["text"]) == ("out", "queued", "Lucía", None, "Hola, soy Lucía")
    assert (released["status"], released["agent"]) == ("bot", None)
    await service.advance(0)
    assert texts(fakes).count("Hola, soy Lucía") == 1
    shown = await service.api("GET", path)
    assert shown["status"] == "bot"
    sent = [m for m in shown["messages"] if m["id"] == message["id"]]
    assert [(m["text"], m["agent"], m["status"]) for m in sent] == [
        ("Hola, soy Lucía", "Lucía", "sent")]
    await service.advance(0)
    assert texts(fakes).count("Hola, soy Lucía") == 1
