"""The console in a real Chromium (Playwright): a hand-off worked from start to end.

The real app runs on a real loopback port (aiohttp's test server) with the
provider fakes and the virtual clock; Chromium is the system one
(``/usr/bin/chromium``, or ``CHROMIUM``), since Playwright cannot download
its own here. Without a browser the test is skipped, except in CI (``CI``
set), where it fails. ``SCREENSHOTS=1`` saves the inbox and a conversation
to ``docs/`` for the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from server import create_app
from tests.browser.conftest import TIMEOUT_MS
from tests.http.console_client import PASSWORD, create_agent
from tests.support.app import Fakes, Service, make_settings, with_test_flows
from tests.support.signing import whatsapp_status_webhook, whatsapp_text_webhook

PHONE = "+5491122334455"
DIGITS = PHONE.lstrip("+")
DOCS = Path(__file__).resolve().parents[2] / "docs"
async def test_an_agent_works_a_handoff_in_the_browser(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        browser_path: str) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(mongo_uri, db_name, fakes, public_url="http://127.0.0.1",
                             **with_test_flows(agent_idle_release=3600))
    service = Service(await aiohttp_client(create_app(settings)))
    await create_agent(service, "lucia@shop.example", name="Lucía")
    await service.advance(0)
    base = str(service.client.make_url("")).rstrip("/")
    shots = os.environ.get("SCREENSHOTS") == "1"
    expect.set_options(timeout=TIMEOUT_MS)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=browser_path)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 750})
            await page.goto(base + "/console")
            await expect(page).to_have_url(base + "/console/login")
            await page.get_by_label("Correo electrónico").fill("lucia@shop.example")
            await page.get_by_label("Contraseña").fill(PASSWORD)
            await page.get_by_role("button", name="Entrar").click()
            await expect(page).to_have_url(base + "/console")
            await expect(page.locator("body[data-live=on]")).to_have_count(1)

            # A hand-off arrives while the inbox is open: no reload.
            await service.whatsapp(whatsapp_text_webhook("humano", phone=PHONE))
            await service.advance(0)
            row = page.locator("#rows tr[data-status=needs_agent]")
            await expect(row).to_have_count(1)
            await expect(page).to_have_title("(1) Chasqui · consola")
            if shots:
                await page.screenshot(path=str(DOCS / "console-inbox.png"))

            await row.get_by_role("link").click()
            await expect(page.locator(".reason")).to_contain_text("pidió hablar con una persona")
            await page.locator("#takeover").click()
            await service.advance(0)
            status = page.locator("#conversation-status")
            await expect(status).to_have_attribute("data-status", "agent")
            await expect(page).to_have_title("Chasqui · consola")

            await page.get_by_label("Tu respuesta").fill("Hola, soy Lucía. ¿En qué te ayudo?")
            await page.locator("#send-reply").click()
            await service.advance(0)
            assert fakes.whatsapp.sent[DIGITS][-1]["text"]["body"] == (
                "Hola, soy Lucía. ¿En qué te ayudo?")
            reply = page.locator("li.msg.out", has_text="Hola, soy Lucía")
            await expect(reply).to_have_attribute("data-status", "sent")

            # The provider reports it read (a signed status webhook): the ticks move.
            await service.whatsapp(whatsapp_status_webhook(fakes.whatsapp.ids[-1], "read",
                                                           phone=PHONE))
            await service.advance(0)
            await expect(reply).to_have_attribute("data-status", "read")
            await expect(reply.locator(".tick-read")).to_have_text("✓✓")
            if shots:
                await page.screenshot(path=str(DOCS / "console-conversation.png"),
                                      full_page=True)

            await page.locator("#release").click()
            await service.advance(0)
            await expect(status).to_have_attribute("data-status", "bot")

            await page.locator("#sign-out").click()
            await expect(page).to_have_url(base + "/console/login")
            await page.goto(base + "/console")
            await expect(page).to_have_url(base + "/console/login")
        finally:
            await browser.close()
