"""E-mail through the running service: a real SMTP relay on loopback, signed replies,
the tracked links and the one-click unsubscribe.

The test flows: ``notify`` (marketing: ``product.back_in_stock`` -> "restock")
and ``echo`` (transactional: every message comes back as "eco: <text>").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from server import create_app
from tests.fakes.smtp import FakeSmtp
from tests.support.app import (
    EMAIL_ADDRESS,
    EMAIL_INBOUND_SECRET,
    PUBLIC_URL,
    Fakes,
    Service,
    email_answers,
    email_customer_event,
    email_link,
    email_part,
    email_settings,
    make_settings,
    with_test_flows,
)
from tests.support.store_signing import events_headers

ADDRESS = EMAIL_ADDRESS


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    with FakeSmtp(user="mailer", password="secret") as started:
        yield started


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                relay: FakeSmtp, **overrides: Any) -> Service:
    values = {**email_settings(relay), **overrides}
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows(**values))
    return Service(await aiohttp_client(create_app(settings)))


def restock(event_id: str, consents: dict[str, bool]) -> dict[str, Any]:
    """A marketing trigger for a customer known only by e-mail."""
    return email_customer_event(event_id, "product.back_in_stock", consents)


async def reply(service: Service, text: str, message_id: str = "<r1@mail.example>",
                secret: str = EMAIL_INBOUND_SECRET, expect: int = 200,
                html: str | None = None) -> Any:
    fields = {"id": message_id, "from": f"Ana <{ADDRESS}>", "to": "shop@tienda.example",
              "subject": "Re: hola", "text": text, "in_reply_to": None}
    body = json.dumps(fields if html is None else {**fields, "html": html}).encode()
    response = await service.client.post("/webhooks/email", data=body,
                                          headers=events_headers(secret, body))
    assert response.status == expect, await response.text()
    return await response.json()



async def test_marketing_email_goes_out_with_consent_and_one_click_unsubscribe_stops_it(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay)
    await service.event(restock("evt_1", {"email": True}))
    await service.advance(0)
    [mail] = relay.messages
    assert mail["To"] == ADDRESS and mail["Subject"] == "¡Volvió el producto que mirabas!"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    stored = await db.messages.find_one({"channel": "email", "direction": "out"})
    assert stored["provider_id"] == mail["Message-ID"] and stored["status"] == "sent"

    unsubscribe = mail["List-Unsubscribe"].strip("<>")[len(PUBLIC_URL):]
    page = await service.client.get(unsubscribe)  # a GET shows a button, changes nothing
    assert page.status == 200 and "a***@example.com" in await page.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "granted"

    one_click = await service.client.post(unsubscribe, data="List-Unsubscribe=One-Click",
                                          headers={"Content-Type":
                                                   "application/x-www-form-urlencoded"})
    assert one_click.status == 200, await one_click.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "revoked"
    assert customer["consents"]["email"]["source"] == "email:unsubscribe_link"
    assert customer["consent_ledger"][-1]["evidence"]["detail"].startswith("one-click")

    await service.event(restock("evt_2", {}))
    await service.advance(0)
    assert len(relay.messages) == 1  # nothing after the unsubscribe
    assert await db.messages.count_documents({"channel": "email", "status": "sent"}) == 1


async def test_no_marketing_email_without_email_consent(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay)
    await service.event(restock("evt_1", {"sms": True}))  # no phone: SMS cannot take it
    await service.advance(0)
    assert relay.messages == []


async def test_a_reply_by_email_is_answered_by_email_and_its_links_are_tracked(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay,
                          flows="echo,notify,clicked")
    await reply(service, "mirá https://tienda.example/p/1\n\n> lo que mandaste")
    await reply(service, "mirá https://tienda.example/p/1")  # same id: stored once
    await service.advance(0)
    [mail] = relay.messages
    assert mail["To"] == ADDRESS and mail["List-Unsubscribe"] is None  # transactional
    assert mail["Subject"].startswith("eco: mirá")

    click = await service.client.get(email_link(mail, "t"), allow_redirects=False)
    assert click.status == 302 and click.headers["Location"] == "https://tienda.example/p/1"
    rich = mail.get_body(("html",))
    assert rich is not None
    pixel_path = str(rich.get_content()).split('<img src="')[1].split('"')[0][len(PUBLIC_URL):]
    pixel = await service.client.get(pixel_path)
    assert pixel.status == 200 and pixel.content_type == "image/gif"
    await service.client.get(pixel_path)  # a second open is not a second event
    await service.advance(0)

    sent = await db.messages.find_one({"provider_id": mail["Message-ID"]})
    assert sent["status"] == "read"
    events = {item["payload"]["type"]: item async for item in db.inbox.find(
        {"kind": "event", "source": "email"})}
    assert set(events) == {"email.clicked", "email.opened"}
    assert all(item["state"] == "done" for item in events.values())
    assert events["email.clicked"]["payload"]["data"]["url"] == "https://tienda.example/p/1"

    # The click reached the flows: ``clicked`` starts on ``email.clicked``.
    assert relay.messages[-1]["Subject"] == "Gracias por mirar https://tienda.example/p/1"

    forged = email_link(mail, "t")[:-3] + "AAA"
    assert (await service.client.get(forged, allow_redirects=False)).status == 404


@pytest.mark.parametrize(("text", "html"), [
    ("STOP\n\nEl lun, Tienda escribió:\n> ¡Volvió el producto!", None),
    # A mail program that sends HTML only: the inbound service posts no text.
    ("", '<div dir="ltr">STOP</div><br><div class="gmail_quote"><div class="gmail_attr">'
         'El lun, Tienda escribió:</div><blockquote>¡Volvió el producto!</blockquote></div>'),
], ids=["text", "html only"])
async def test_stop_by_email_revokes_at_once_without_a_confirmation(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp, text: str, html: str | None) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay)
    await service.event(restock("evt_1", {"email": True}))
    await service.advance(0)
    await reply(service, text, html=html)
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "revoked"
    assert len(relay.messages) == 1  # the restock only: no confirmation e-mail


async def test_the_reply_webhook_refuses_bad_signatures_and_is_off_without_its_secret(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay)
    refused = await reply(service, "hola", secret="wrong", expect=401)
    assert "X-Signature-256" in refused["error"]
    assert await db.inbox.count_documents({"source": "email"}) == 0

    without = await start(aiohttp_client, mongo_uri, db_name, fakes, relay,
                          email_inbound_secret=None)
    off = await reply(without, "hola", expect=503)
    assert "EMAIL_INBOUND_SECRET" in off["error"]


async def test_email_is_off_until_smtp_url_and_email_from_are_set(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    settings = make_settings(mongo_uri, db_name, fakes, **with_test_flows(
        email_inbound_secret=EMAIL_INBOUND_SECRET))
    service = Service(await aiohttp_client(create_app(settings)))
    await reply(service, "hola", expect=503)
    assert (await service.client.get("/t/abc.def")).status == 404


async def test_a_mailbox_that_does_not_exist_is_marked_undeliverable(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    relay.refuse[ADDRESS] = (550, "5.1.1 <ana@example.com>: user unknown")
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay)
    await service.event(restock("evt_1", {"email": True}))
    await service.advance(0)
    await service.advance(0)  # the failure report is an input of its own
    failed = await db.messages.find_one({"channel": "email", "direction": "out"})
    assert failed["status"] == "failed" and "550" in str(failed.get("error"))
    customer = await db.customers.find_one({"keys": f"email:{ADDRESS}"})
    assert customer["undeliverable"]["email"]["address"] == ADDRESS
    assert relay.messages == []


async def test_a_double_opt_in_by_email_is_confirmed_with_one_click(
        db: Any, aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes, relay,
                          flows_package="rules", flows="double_opt_in", double_opt_in="email")
    await service.event(email_customer_event("evt_signup", "customer.created",
                                             {"email": True}))
    await service.advance(0)
    [mail] = relay.messages
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "pending"
    links = email_answers(mail)
    assert len(links) == 2, email_part(mail, "plain")
    yes = next(path for title, path in links.items() if title.lower().startswith(("sí", "si")))
    html_part = email_part(mail, "html")
    assert f'href="{PUBLIC_URL}{yes}"' in html_part  # the choices are links in HTML too

    page = await service.client.get(yes)  # a link scanner's GET answers nothing
    assert page.status == 200 and "a***@example.com" in await page.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "pending"

    done = await service.client.post(yes)  # the page's button
    assert done.status == 200 and "Gracias" in await done.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "granted"
    assert customer["consents"]["email"]["source"] == "double_opt_in:email"
    confirmed = customer["consent_ledger"][-1]["evidence"]
    assert confirmed["message_id"] == "answer:" + str(
        (await db.messages.find_one({"channel": "email", "direction": "out"}))["_id"])
    assert len(relay.messages) == 2  # the thank-you
    question = await db.messages.find_one({"channel": "email", "direction": "out",
                                           "provider_id": mail["Message-ID"]})
    assert question["status"] == "read"  # answered means read, as a click does

    # One answer per e-mail: the other choice, clicked later, changes nothing.
    again = await service.client.post(links[next(t for t in links if links[t] != yes)])
    assert again.status == 200 and "already answered" in await again.text()
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    assert customer["consents"]["email"]["state"] == "granted"
    # An answer token is no open or click, and a forged one is nobody's.
    assert (await service.client.get("/t/" + yes[3:])).status == 404
    assert (await service.client.post(yes[:-3] + "AAA")).status == 404
    assert (await service.client.get(yes[:-3] + "AAA")).status == 404
