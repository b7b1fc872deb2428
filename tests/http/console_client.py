"""A browser-like client of the console for HTTP tests: its own cookies, forms with CSRF."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from tests.support.app import AUTH, Service, customer_event
from tests.support.signing import whatsapp_button_webhook

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


class Browser:
    """One person at a browser: a cookie jar of their own on the service's server."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.csrf = ""

    async def sign_in(self, email: str, password: str = PASSWORD,
                      expect: int = 303) -> ClientResponse:
        page = await self.client.get("/console/login")
        response = await self.client.post("/console/login", allow_redirects=False, data={
            "email": email, "password": password, "csrf": csrf_of(await page.text())})
        assert response.status == expect, await response.text()
        if expect == 303:
            self.csrf = csrf_of(await (await self.client.get("/console")).text())
        return response

    async def form(self, path: str, expect: int = 303, **fields: str) -> ClientResponse:
        response = await self.client.post(path, allow_redirects=False,
                                          data={"csrf": self.csrf, **fields})
        assert response.status == expect, await response.text()
        return response

    async def api(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """The agent API with this session (and its CSRF header), not the token."""
        response = await self.client.request(method, path,
                                             headers={"X-CSRF-Token": self.csrf}, **kwargs)
        assert response.status == expect, await response.text()
        return await response.json()


async def create_agent(service: Service, email: str, role: str = "agent",
                       name: str | None = None) -> dict[str, Any]:
    response = await service.client.post("/api/agents", headers=AUTH, json={
        "email": email, "name": name or email.split("@")[0], "role": role,
        "password": PASSWORD})
    assert response.status == 201, await response.text()
    return dict(await response.json())


PHONE = "+5491122334455"
CHECKOUT: dict[str, Any] = {
    "checkout_id": "chk_1", "recovery_url": "https://tienda.example/r/chk_1",
    "total": 120.0, "currency": "ARS",
    "items": [{"sku": "REM-1", "title": "Remera", "quantity": 1, "price": 120.0}]}


async def declined_cart(service: Service) -> None:
    """A cart-recovery run: asked, "no thanks", the reason "price", ended ``declined``."""
    now = await service.advance(0)
    await service.event(customer_event("evt_1", "checkout.started", now, **CHECKOUT))
    await service.advance(3601)
    await service.whatsapp(whatsapp_button_webhook("no", "No, gracias", phone=PHONE))
    await service.advance(0)
    await service.whatsapp(whatsapp_button_webhook("price", "El precio", phone=PHONE))
    await service.advance(0)
