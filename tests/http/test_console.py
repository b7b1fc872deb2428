"""The console over HTTP: sign-in, CSRF, slow-down, headers, inbox, forms, live feed."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from bot.http.appkeys import DATABASE
from server import create_app
from tests.http.console_client import PASSWORD, Browser, create_agent, csrf_of
from tests.support.app import Fakes, Service, customer_event, make_settings, with_test_flows
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                public_url: str = "http://127.0.0.1") -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, public_url=public_url,
                             **with_test_flows(agent_idle_release=3600))
    return Service(await aiohttp_client(create_app(settings)))


async def signed_in(aiohttp_client: Any, service: Service,
                    email: str = "lucia@shop.example") -> Browser:
    await create_agent(service, email)
    person = Browser(await aiohttp_client(service.client.server))
    await person.sign_in(email)
    return person


async def handed_off(service: Service, phone: str = PHONE) -> str:
    await service.whatsapp(whatsapp_text_webhook("humano", phone=phone))
    await service.advance(0)
    listed = await service.api("GET", "/api/conversations?status=needs_agent")
    return str(listed["conversations"][0]["id"])


async def test_sign_in_sets_a_strict_session_cookie(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes,
                          public_url="https://chasqui.example.com")
    await create_agent(service, "lucia@shop.example")
    page = await service.client.get("/console/login")
    html = await page.text()
    assert 'name="email"' in html and 'name="password"' in html
    # Secure cookies are not sent back over the test's plain http: pass it by hand.
    anonymous = page.cookies["chasqui_session"]
    response = await service.client.post(
        "/console/login", allow_redirects=False,
        headers={"Cookie": f"chasqui_session={anonymous.value}"},
        data={"email": "lucia@shop.example", "password": PASSWORD, "csrf": csrf_of(html)})
    assert response.status == 303 and response.headers["Location"] == "/console"
    for cookie in (page.headers["Set-Cookie"], response.headers.getall("Set-Cookie")[-1]):
        for part in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
            assert part in cookie, cookie
    assert response.cookies["chasqui_session"].value != anonymous.value  # a new session


async def test_sign_in_and_out(aiohttp_client: Any, mongo_uri: str, db_name: str,
                               fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    anonymous = await service.client.get("/console", allow_redirects=False)
    assert (anonymous.status, anonymous.headers["Location"]) == (303, "/console/login")
    person = await signed_in(aiohttp_client, service)
    inbox = await person.client.get("/console", allow_redirects=False)
    assert inbox.status == 200
    await person.form("/console/logout")
    after = await person.client.get("/console", allow_redirects=False)
    assert after.status == 303


async def test_a_wrong_password_or_csrf_value_sets_no_session(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await create_agent(service, "lucia@shop.example")
    person = Browser(service.client)
    await person.sign_in("lucia@shop.example", password="wrong password", expect=401)
    assert (await service.client.get("/console", allow_redirects=False)).status == 303
    await service.client.get("/console/login")
    forged = await service.client.post("/console/login", allow_redirects=False, data={
        "email": "lucia@shop.example", "password": PASSWORD, "csrf": "forged"})
    assert forged.status == 403
    assert (await service.client.get("/console", allow_redirects=False)).status == 303
    sessions = service.client.app[DATABASE].db["sessions"]
    assert await sessions.count_documents({"agent": {"$ne": None}}) == 0


async def test_console_forms_without_the_csrf_token_change_nothing(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    conversation = await handed_off(service)
    refused = await person.client.post(f"/console/c/{conversation}/takeover",
                                       allow_redirects=False, data={})
    assert refused.status == 403
    wrong = await person.client.post(f"/console/c/{conversation}/takeover",
                                     allow_redirects=False, data={"csrf": "x" * 43})
    assert wrong.status == 403
    assert await service.client.app[DATABASE].inbox.count_documents({"kind": "agent"}) == 0
    await person.form(f"/console/c/{conversation}/takeover")
    await service.advance(0)
    shown = await service.api("GET", f"/api/conversations/{conversation}")
    assert (shown["status"], shown["agent"]) == ("agent", "lucia@shop.example")


async def test_failed_sign_ins_are_slowed_down_on_the_service_clock(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await create_agent(service, "lucia@shop.example")
    person = Browser(service.client)
    for _ in range(4):  # three free failures, then a 1 s lock
        await person.sign_in("lucia@shop.example", password="guess guess", expect=401)
    locked = await person.sign_in("lucia@shop.example", expect=429)
    assert "1 s" in await locked.text()
    await service.advance(1.5)
    await person.sign_in("lucia@shop.example", password="guess again", expect=401)
    # The lock doubles with each failure: 2 s now, so 1.5 s later it still holds.
    await service.advance(1.5)
    await person.sign_in("lucia@shop.example", expect=429)
    await service.advance(1)
    await person.sign_in("lucia@shop.example")
    failures = service.client.app[DATABASE].db["login_failures"]
    assert await failures.count_documents({"_id": "email:lucia@shop.example"}) == 0


async def test_every_console_response_carries_the_security_headers(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    conversation = await handed_off(service)
    for path in ("/console/login", "/console", f"/console/c/{conversation}",
                 f"/console/c/{conversation}/part/timeline", "/console/rows",
                 "/console/static/console.js", "/console/static/console.css"):
        client = service.client if path == "/console/login" else person.client
        response = await client.get(path, allow_redirects=False)
        assert response.status == 200, path
        headers = response.headers
        assert headers["Content-Security-Policy"].startswith("default-src 'self'"), path
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        if "static" not in path:
            html = await response.text()
            assert not re.search(r"<script(?![^>]*\bsrc=)", html), path  # no inline script
            assert " style=" not in html and "<style" not in html, path
            assert PHONE not in re.findall(r'(?:href|action|src)="([^"]*)"', html)


async def test_the_inbox_puts_waiting_first_then_mine_and_searches_by_post(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    now = await service.advance(0)
    people = [("cus_1", "+5491100000001", "Ana"), ("cus_2", "+5491100000002", "Beto"),
              ("cus_3", "+5491100000003", "Carla")]
    for n, (customer, phone, _) in enumerate(people):
        event = customer_event(f"evt_{n}", "customer.created", now, customer_id=customer,
                               phone=phone)
        event["customer"]["first_name"] = people[n][2]
        await service.event(event)
    await service.advance(0)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=people[1][1]))
    await service.advance(0)
    beto = (await service.api("GET", "/api/conversations"))["conversations"][0]["id"]
    await person.form(f"/console/c/{beto}/takeover")
    await service.advance(10)
    await service.whatsapp(whatsapp_text_webhook("hola", phone=people[2][1]))
    await service.advance(10)
    await handed_off(service, phone=people[0][1])
    html = await (await person.client.get("/console")).text()
    names = re.findall(r'<a href="/console/c/[^"]+">([^<]+)</a>', html)
    assert names == ["Ana", "Beto", "Carla"]  # waiting, mine, the rest (newest first)
    assert "necesita agente" in html  # Spanish by default
    found = await person.form("/console/search", expect=200, q="+54 9 11 0000-0003")
    assert re.findall(r'<a href="/console/c/[^"]+">([^<]+)</a>', await found.text()) == [
        "Carla"]
    by_name = await person.form("/console/search", expect=200, q="bet")
    assert re.findall(r'<a href="/console/c/[^"]+">([^<]+)</a>', await by_name.text()) == [
        "Beto"]
    filtered = await (await person.client.get("/console?status=agent")).text()
    assert re.findall(r'<a href="/console/c/[^"]+">([^<]+)</a>', filtered) == ["Beto"]


async def test_work_a_handoff_through_the_console_forms(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    conversation = await handed_off(service)
    page = await (await person.client.get(f"/console/c/{conversation}")).text()
    assert "pidió hablar con una persona" in page  # the hand-off reason
    await person.form(f"/console/c/{conversation}/takeover")
    await service.advance(0)
    await person.form(f"/console/c/{conversation}/reply", text="Hola, soy Lucía")
    await service.advance(0)
    sent = fakes.whatsapp.sent[DIGITS]
    assert sent[-1]["text"]["body"] == "Hola, soy Lucía"
    await person.form(f"/console/c/{conversation}/release")
    await service.advance(0)
    timeline = await (await person.client.get(
        f"/console/c/{conversation}/part/timeline")).text()
    assert "lucia@shop.example" in timeline and "✓" in timeline
    shown = await service.api("GET", f"/api/conversations/{conversation}")
    assert shown["status"] == "bot"


async def test_outside_the_window_only_an_approved_template_can_be_sent(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    conversation = await handed_off(service)
    await person.form(f"/console/c/{conversation}/takeover")
    await service.advance(25 * 3600)
    assert (await person.client.get("/console", allow_redirects=False)).status == 303
    await person.sign_in("lucia@shop.example")  # sessions last 12 h of service time
    page = await (await person.client.get(f"/console/c/{conversation}")).text()
    assert 'name="template"' in page and 'id="reply-text"' not in page
    assert '<option value="order_shipped">' in page  # declared by the test flow "notify"
    refused = await person.form(f"/console/c/{conversation}/template", expect=400,
                                template="made_up")
    assert "template" in await refused.text()
    await person.form(f"/console/c/{conversation}/template", template="order_shipped",
                      params="Ana")
    await service.advance(0)
    last = fakes.whatsapp.sent[DIGITS][-1]
    assert last["type"] == "template" and last["template"]["name"] == "order_shipped"


async def read_event(stream: Any) -> dict[str, Any]:
    while True:
        chunk = (await stream.readuntil(b"\n\n")).decode()
        if chunk.startswith("event: change"):
            return dict(json.loads(chunk.split("data: ", 1)[1]))


async def test_the_live_feed_announces_a_handoff(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    person = await signed_in(aiohttp_client, service)
    response = await person.client.get("/console/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    async with asyncio.timeout(10):
        first = await read_event(response.content)
        assert first["waiting"] == 0
        await handed_off(service)
        second = await read_event(response.content)
    assert second["waiting"] == 1 and second["inbox"] != first["inbox"]
    response.close()
