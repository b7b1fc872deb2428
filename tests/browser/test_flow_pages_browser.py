"""The flow pages in a real Chromium: after a scripted cart-recovery run, the funnel shows it.

Same setup as ``test_console_browser.py`` (the system Chromium, the real
app on a loopback port, the provider fakes, the virtual clock). The page
must render its server-side SVG charts under the console's strict CSP:
a violation (an inline style, say) is reported by the browser and fails
the test.
"""

from __future__ import annotations

from typing import Any

from server import create_app
from tests.browser.conftest import TIMEOUT_MS
from tests.http.console_client import PASSWORD, create_agent, declined_cart
from tests.support.app import Fakes, Service, make_settings


async def test_the_flow_page_shows_the_funnel_of_a_cart_run(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        browser_path: str) -> None:
    from playwright.async_api import async_playwright, expect

    settings = make_settings(mongo_uri, db_name, fakes, public_url="http://127.0.0.1",
                             cart_abandon_after=3600, flows="cart_recovery")
    service = Service(await aiohttp_client(create_app(settings)))
    await create_agent(service, "lucia@shop.example", name="Lucía")
    await declined_cart(service)
    base = str(service.client.make_url("")).rstrip("/")
    expect.set_options(timeout=TIMEOUT_MS)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=browser_path)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 800})
            blocked: list[str] = []
            page.on("console", lambda message: blocked.append(message.text)
                    if "Content Security Policy" in message.text else None)
            await page.goto(base + "/console/login")
            await page.get_by_label("Correo electrónico").fill("lucia@shop.example")
            await page.get_by_label("Contraseña").fill(PASSWORD)
            await page.get_by_role("button", name="Entrar").click()
            await expect(page).to_have_url(base + "/console")

            await page.locator("#nav-flows").click()
            await expect(page).to_have_url(base + "/console/flows")
            row = page.locator("#flows tr[data-flow=cart_recovery]")
            await expect(row.locator(".started")).to_have_text("1")
            await row.get_by_role("link", name="cart_recovery").click()

            await expect(page.locator("#flow-title")).to_have_text("cart_recovery")
            bar = page.locator("svg.funnel g.bar[data-step=interested]")
            await expect(bar).to_have_attribute("data-reached", "1")
            await expect(bar).to_contain_text("1 · 100%")
            box = await bar.locator("rect").first.bounding_box()
            assert box is not None and box["width"] > 100  # all of the runs started
            node = page.locator("#diagram g.node[data-step=why]")
            await expect(node).to_have_attribute("data-count", "1")
            await expect(node).to_be_visible()
            await expect(page.locator("#outcomes li[data-outcome=declined]")).to_have_text(
                "declined: 1")

            await page.get_by_label("Resultado").select_option("declined")
            await page.get_by_role("button", name="Filtrar").click()
            link = page.locator("#runs a").first
            await link.click()
            await expect(page.locator("#customer-runs .stopped")).to_have_text("thanks_reason")
            assert blocked == []
        finally:
            await browser.close()
