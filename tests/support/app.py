"""Builders for tests that drive the whole service over HTTP."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.infra.settings import Settings
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp import FakeWhatsApp
from tests.support.signing import signed_twilio, signed_whatsapp, telegram_headers
from tests.support.store_signing import events_headers

ADMIN_TOKEN = "test-admin-token"
WA_SECRET = "wa-app-secret"
WA_VERIFY = "wa-verify-token"
TG_SECRET = "tg-secret-token"
EVENTS_SECRET = "events-secret"
SHOPIFY_SECRET = "shopify-secret"
WOO_SECRET = "woo-secret"
PUBLIC_URL = "https://chasqui.example.com"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Fakes:
    """The three provider fakes on loopback."""

    def __init__(self) -> None:
        self.whatsapp = FakeWhatsApp()
        self.twilio = FakeTwilio()
        self.telegram = FakeTelegram()

    async def start(self) -> None:
        for fake in (self.whatsapp, self.twilio, self.telegram):
            await fake.start()

    async def close(self) -> None:
        for fake in (self.whatsapp, self.twilio, self.telegram):
            await fake.close()

    def settings(self) -> dict[str, Any]:
        return {
            "whatsapp_phone_id": self.whatsapp.phone_id, "whatsapp_token": self.whatsapp.token,
            "whatsapp_app_secret": WA_SECRET, "whatsapp_verify_token": WA_VERIFY,
            "whatsapp_api_url": self.whatsapp.url,
            "twilio_account_sid": self.twilio.account_sid,
            "twilio_auth_token": self.twilio.auth_token, "twilio_from": "+15005550006",
            "twilio_api_url": self.twilio.url,
            "telegram_bot_token": self.telegram.token, "telegram_secret_token": TG_SECRET,
            "telegram_api_url": self.telegram.url,
        }


def make_settings(mongo_uri: str, db_name: str, fakes: Fakes | None = None,
                  **overrides: Any) -> Settings:
    """Settings for a test app: virtual clock, all secrets, unpaced sends."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri, "mongodb_db": db_name, "admin_token": ADMIN_TOKEN,
        "clock": "virtual", "public_url": PUBLIC_URL,
        "store_events_secret": EVENTS_SECRET, "shopify_webhook_secret": SHOPIFY_SECRET,
        "woocommerce_webhook_secret": WOO_SECRET,
        "whatsapp_rate": 0, "sms_rate": 0, "telegram_rate": 0, "quiet_hours": False,
        **(fakes.settings() if fakes else {}),
    }
    values.update(overrides)
    return Settings(**values)


class Service:
    """A test client for the running app, with the calls tests make most."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client

    async def advance(self, seconds: float = 0) -> str:
        response = await self.client.post("/admin/clock/advance", json={"seconds": seconds},
                                          headers=AUTH)
        assert response.status == 200, await response.text()
        return str((await response.json())["now"])

    async def event(self, payload: dict[str, Any], expect: int = 202) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        response = await self.client.post("/events", data=body,
                                          headers=events_headers(EVENTS_SECRET, body))
        assert response.status == expect, await response.text()
        return dict(await response.json())

    async def whatsapp(self, payload: dict[str, Any], expect: int = 200) -> None:
        body, headers = signed_whatsapp(WA_SECRET, payload)
        response = await self.client.post("/webhooks/whatsapp", data=body, headers=headers)
        assert response.status == expect, await response.text()

    async def sms(self, params: dict[str, str], path: str = "/webhooks/sms",
                  expect: int = 200) -> None:
        body, headers = signed_twilio("twilio-token", PUBLIC_URL + path, params)
        response = await self.client.post(path, data=body, headers=headers)
        assert response.status == expect, await response.text()

    async def telegram(self, update: dict[str, Any], expect: int = 200) -> Any:
        """Post an update as Telegram does; returns the JSON the webhook answered."""
        response = await self.client.post(
            "/webhooks/telegram", data=json.dumps(update).encode(),
            headers={**telegram_headers(TG_SECRET), "Content-Type": "application/json"})
        assert response.status == expect, await response.text()
        return await response.json()

    async def api(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, headers=AUTH, **kwargs)
        assert response.status == expect, await response.text()
        return await response.json()


def sent_templates(fakes: Fakes, digits: str) -> list[tuple[str, list[str]]]:
    """(template name, body parameters) of every WhatsApp message the fake accepted for
    ``digits``, in order; each must be a template (the customer never wrote: no window)."""
    found = []
    for body in fakes.whatsapp.sent.get(digits, []):
        assert body["type"] == "template", body
        template = body["template"]
        params = [p["text"] for c in template.get("components", []) for p in c["parameters"]]
        found.append((template["name"], params))
    return found


def customer_event(event_id: str, event_type: str, occurred_at: str, *, customer_id: str = "cus_1",
                   phone: str = "+5491122334455", consents: dict[str, bool] | None = None,
                   locale: str = "es", **data: Any) -> dict[str, Any]:
    """A generic store event (``POST /events``) for one customer."""
    return {
        "id": event_id, "type": event_type, "occurred_at": occurred_at,
        "customer": {"id": customer_id, "phone": phone, "first_name": "Ana", "locale": locale,
                     "timezone": "America/Argentina/Buenos_Aires",
                     "consents": consents if consents is not None else {"whatsapp": True}},
        "data": data,
    }


EMAIL_INBOUND_SECRET = "inbound-mail-secret"


EMAIL_ADDRESS = "ana@example.com"


def email_customer_event(event_id: str, event_type: str,
                         consents: dict[str, bool]) -> dict[str, Any]:
    """A store event (``POST /events``) for a customer known only by e-mail."""
    return {"id": event_id, "type": event_type, "occurred_at": "2026-11-24T10:00:00Z",
            "customer": {"id": "cus_mail", "email": EMAIL_ADDRESS, "first_name": "Ana",
                         "consents": consents},
            "data": {"sku": "SKU-1"}}


def email_part(mail: EmailMessage, subtype: str) -> str:
    """An e-mail's ``plain`` or ``html`` part, as text."""
    part = mail.get_body((subtype,))
    assert part is not None
    return str(part.get_content())


def email_link(mail: EmailMessage, path: str) -> str:
    """The first ``{PUBLIC_URL}/{path}/...`` link of an e-mail's plain part, as a path."""
    text = email_part(mail, "plain")
    start = text.index(f"{PUBLIC_URL}/{path}/")
    return text[start:].split()[0].rstrip(".")[len(PUBLIC_URL):]


def email_answers(mail: EmailMessage) -> dict[str, str]:
    """Choice title -> the path of its answer link (``1) Sí: <link>`` lines of the plain part)."""
    links = {}
    for line in email_part(mail, "plain").splitlines():
        title, _, token = line.partition(f": {PUBLIC_URL}/r/")
        if token:
            links[title.split(") ", 1)[1]] = "/r/" + token.strip()
    return links


def email_settings(relay: FakeSmtp) -> dict[str, Any]:
    """Settings that switch e-mail on, through ``relay`` (a loopback SMTP server)."""
    return {"smtp_url": relay.url, "email_from": "Tienda <shop@tienda.example>",
            "email_inbound_secret": EMAIL_INBOUND_SECRET, "email_rate": 0}


def with_test_flows(**overrides: Any) -> dict[str, Any]:
    """Settings overrides that load the small test flows instead of the shipped ones."""
    return {"flows_package": "tests.support.process_rules", "flows": "echo,notify", **overrides}
