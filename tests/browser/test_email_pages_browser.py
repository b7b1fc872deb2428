"""The pages an e-mail's links open, in a real Chromium: answering a question, unsubscribing.

Customers reach these pages from their mail program, signed out of
everything, often on a phone. The links come from e-mails the service really
sent through the loopback SMTP relay; the page must work under its strict
CSP (a violation is reported by the browser and fails the test), and only
the page's button, never the GET a link scanner makes, changes anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server import create_app
from tests.browser.conftest import TIMEOUT_MS
from tests.fakes.smtp import FakeSmtp
from tests.support.app import (
    PUBLIC_URL,
    Fakes,
    Service,
    email_answers,
    email_customer_event,
    email_settings,
    make_settings,
)


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    with FakeSmtp() as started:
        yield started


async def consent_state(service: Service) -> str:
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_mail")
    return str(customer["consents"]["email"]["state"])


async def open_and_press(browser_path: str, url: str, button: str, done: str) -> list[str]:
    """Open ``url``, press ``button``, wait for ``done``; the CSP violations reported."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=browser_path)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            blocked: list[str] = []
            page.on("console", lambda message: blocked.append(message.text)
                    if "Content Security Policy" in message.text else None)
            await page.goto(url)
            await expect(page.get_by_text("a***@example.com")).to_be_visible()
            await page.get_by_role("button", name=button).click()
            await expect(page.get_by_role("heading")).to_have_text("Listo / Done")
            await expect(page.get_by_text(done)).to_be_visible()
            return blocked
        finally:
            await browser.close()


async def signed_up(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
                    relay: FakeSmtp, event: dict[str, Any], **settings: Any) -> Service:
    """The service with e-mail on, after ``event`` (a customer known only by e-mail)."""
    service = Service(await aiohttp_client(create_app(make_settings(
        mongo_uri, db_name, fakes, **settings, **email_settings(relay)))))
    await service.event(event)
    return service


def page(service: Service, link: str) -> str:
    """The test server's address of a link the e-mail carries (it names ``PUBLIC_URL``)."""
    return str(service.client.make_url(link[len(PUBLIC_URL):]))


async def test_a_double_opt_in_is_confirmed_from_the_email_in_a_browser(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, relay: FakeSmtp,
        browser_path: str) -> None:
    service = await signed_up(
        aiohttp_client, mongo_uri, db_name, fakes, relay,
        email_customer_event("evt_signup", "customer.created", {"email": True}),
        flows="double_opt_in", double_opt_in="email")
    assert await consent_state(service) == "pending"
    [question] = relay.messages
    title, link = next(iter(email_answers(question).items()))

    assert await open_and_press(browser_path, page(service, PUBLIC_URL + link), title,
                                "Recibimos tu respuesta") == []  # no CSP violation
    assert await consent_state(service) == "granted"


async def test_an_unsubscribe_link_works_in_a_browser(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes, relay: FakeSmtp,
        browser_path: str) -> None:
    service = await signed_up(
        aiohttp_client, mongo_uri, db_name, fakes, relay,
        email_customer_event("evt_1", "product.back_in_stock", {"email": True}),
        flows_package="tests.support.process_rules", flows="notify")
    assert await consent_state(service) == "granted"
    [offer] = relay.messages
    link = offer["List-Unsubscribe"].strip("<>")

    assert await open_and_press(browser_path, page(service, link), "Darme de baja / Unsubscribe",
                                "No vas a recibir más") == []
    assert await consent_state(service) == "revoked"
