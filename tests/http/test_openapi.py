"""The OpenAPI document (``GET /api/openapi.json``): valid, complete, and true of the service.

- valid: ``openapi-spec-validator`` accepts it as OpenAPI 3.1;
- complete: every route the router serves is in it, console pages and HEAD
  mirrors aside, and everything in it is served;
- true: the running service (real database, loopback fakes, signed
  webhooks) is called on every operation, each JSON answer is validated
  against the schema the document gives for its path, method and status,
  and a status the document does not list fails. Each JSON answer is also
  validated against a *closed* copy of the schemas (no properties beyond
  the described ones), so a field a handler writes but the document leaves
  out is caught too; the served document itself stays open, since the
  contract lets fields be added.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.http.appkeys import CHANNELS
from bot.http.openapi import build_document
from channels.email import InboundEmail
from channels.email_links import make_token
from server import create_app
from tests.fakes.smtp import FakeSmtp
from tests.support.app import (
    AUTH,
    EMAIL_INBOUND_SECRET,
    EVENTS_SECRET,
    PUBLIC_URL,
    SHOPIFY_SECRET,
    TG_SECRET,
    WA_SECRET,
    WA_VERIFY,
    WOO_SECRET,
    Fakes,
    customer_event,
    email_link,
    email_settings,
    make_settings,
    with_test_flows,
)
from tests.support.signing import (
    form_body,
    signed_twilio,
    signed_whatsapp,
    telegram_headers,
    telegram_message_update,
    twilio_inbound_form,
    twilio_status_form,
    whatsapp_text_webhook,
)
from tests.support.store_signing import (
    events_headers,
    load_fixture,
    shopify_headers,
    woocommerce_headers,
)

EDGE_BODIES = {"/webhooks/email": InboundEmail}
PHONE = "+5491122334455"
ADDRESS = "ana@example.com"
EMAIL_OPS = {("GET", "/t/{token}"), ("GET", "/u/{token}"), ("POST", "/u/{token}"),
             ("GET", "/r/{token}"), ("POST", "/r/{token}"), ("POST", "/webhooks/email")}
SCHEMA_URI = "urn:chasqui:openapi"


def served_routes() -> set[tuple[str, str]]:
    """``(method, path)`` of every route of a real app's router (built, not started)."""
    app = create_app(make_settings("mongodb://127.0.0.1:1", "unused", Fakes()))
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None}


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item}


def closed(document: dict[str, Any]) -> dict[str, Any]:
    """A copy whose object schemas admit no property beyond those they describe."""
    strict = copy.deepcopy(document)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties", True) is True:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(strict["components"]["schemas"])
    return strict


def pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def validator(document: dict[str, Any], *parts: str) -> Any:
    """A validator for the schema at ``parts`` of the document, its ``$ref`` resolved in it."""
    registry: Registry[Any] = Registry().with_resource(
        SCHEMA_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    return OAS31Validator({"$ref": f"{SCHEMA_URI}#{pointer(*parts)}"}, registry=registry,
                          format_checker=OAS31Validator.FORMAT_CHECKER)


@dataclass
class Conformance:
    """Calls the service and checks every answer against the document it served."""

    client: TestClient[Any, Any]
    document: dict[str, Any] = field(default_factory=dict)
    strict: dict[str, Any] = field(default_factory=dict)
    called: set[tuple[str, str]] = field(default_factory=set)

    async def load(self) -> None:
        refused = await self.client.get("/api/openapi.json")
        assert refused.status == 401
        answer = await self.client.get("/api/openapi.json", headers=AUTH)
        assert answer.status == 200 and answer.content_type == "application/json"
        self.document = await answer.json()
        self.strict = closed(self.document)
        self.check_answer("GET", "/api/openapi.json", 401, "application/json",
                          await refused.read())

    async def call(self, method: str, path: str, template: str, *, expect: int,
                   auth: bool = True, **kwargs: Any) -> Any:
        """One request; its answer checked against the document; the body (JSON or text)."""
        headers = {**(AUTH if auth else {}), **kwargs.pop("headers", {})}
        if "json" in kwargs and expect < 400:  # a valid request is one the document takes
            self.check_request(method, template, kwargs["json"])
        response = await self.client.request(method, path, headers=headers,
                                             allow_redirects=False, **kwargs)
        body = await response.read()
        assert response.status == expect, (method, path, response.status, body[:500])
        self.check_answer(method, template, response.status, response.content_type, body)
        return json.loads(body) if response.content_type == "application/json" else body

    def operation(self, method: str, template: str) -> dict[str, Any]:
        item = self.document["paths"].get(template, {})
        assert method.lower() in item, f"{method} {template} is not in the document"
        self.called.add((method, template))
        found: dict[str, Any] = item[method.lower()]
        return found

    def check_request(self, method: str, template: str, body: Any) -> None:
        """What the test sends is what the document says the route takes."""
        content = self.operation(method, template)["requestBody"]["content"]
        assert "application/json" in content
        validator(self.document, "paths", template, method.lower(), "requestBody", "content",
                  "application/json", "schema").validate(body)

    def check_answer(self, method: str, template: str, status: int, content_type: str,
                     body: bytes) -> None:
        responses = self.operation(method, template)["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which the document does not list "
            f"({sorted(responses)}): {body[:300]!r}")
        content = responses[str(status)].get("content")
        if content is None:  # a redirect: no body described
            return
        assert content_type in content, (
            f"{method} {template} {status} answered {content_type}, not {sorted(content)}")
        if content_type != "application/json":
            return
        answer = json.loads(body)
        where = ("paths", template, method.lower(), "responses", str(status), "content",
                 "application/json", "schema")
        validator(self.document, *where).validate(answer)
        undocumented = list(validator(self.strict, *where).iter_errors(answer))
        assert not undocumented, (f"{method} {template} {status} answers what the document "
                                  f"does not describe: {undocumented[0].message}")


def start_settings(mongo_uri: str, db_name: str, fakes: Fakes, **overrides: Any) -> Any:
    return make_settings(mongo_uri, db_name, fakes, **with_test_flows(**overrides))


# ----------------------------------------------------------------------------- tests


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document(PUBLIC_URL, EDGE_BODIES)
    validate_spec(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": PUBLIC_URL}]
    schemas = document["components"]["schemas"]
    assert {"StoreEvent", "InboundEmail", "NewAgent", "TakeoverBody", "Conversation",
            "Message", "Customer", "FlowStats", "Campaign", "ErrorBody"} <= set(schemas)
    assert "from" in schemas["InboundEmail"]["properties"]  # the edge's model, by its alias


def test_every_route_but_the_console_is_documented_and_everything_documented_is_served(
) -> None:
    routes = served_routes()
    api = {(method, path) for method, path in routes if not path.startswith("/console")}
    document = documented(build_document(PUBLIC_URL, EDGE_BODIES))
    assert api - document == set(), "routes the document leaves out"
    assert document - routes == set(), "documented routes the router does not serve"
    assert not any(path.startswith("/console") for _, path in document)


async def test_the_api_answers_as_the_document_says(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    settings = start_settings(mongo_uri, db_name, fakes)
    api = Conformance(await aiohttp_client(create_app(settings)))
    await api.load()
    assert api.document["servers"] == [{"url": PUBLIC_URL}]
    validate_spec(api.document)

    # operations
    now = (await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=200,
                          json={"seconds": 0}))["now"]
    await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=400,
                   data=b'{"seconds": "soon"}')
    await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=401,
                   auth=False, json={"seconds": 0})
    assert (await api.call("GET", "/healthz", "/healthz", expect=200, auth=False)) == {
        "status": "ok"}
    await api.call("GET", "/metrics", "/metrics", expect=200, auth=False)

    # store events
    created = customer_event("evt_1", "customer.created", now, phone=PHONE,
                             consents={"whatsapp": True, "sms": True})
    for expect, answer in ((202, {"id": "evt_1"}), (200, {"duplicate": True})):
        raw = json.dumps(created).encode()
        api.check_request("POST", "/events", created)
        assert await api.call("POST", "/events", "/events", expect=expect, auth=False,
                              data=raw, headers=events_headers(EVENTS_SECRET, raw)) == answer
    bad = json.dumps({"type": "customer.created"}).encode()
    await api.call("POST", "/events", "/events", expect=400, auth=False, data=bad,
                   headers=events_headers(EVENTS_SECRET, bad))
    await api.call("POST", "/events", "/events", expect=401, auth=False, data=bad,
                   headers=events_headers("wrong", bad))
    shopify = load_fixture("shopify/customers_create.json")
    woo = load_fixture("woocommerce/customer_created.json")
    for path, raw, signed in (
            ("/webhooks/shopify", shopify,
             shopify_headers(SHOPIFY_SECRET, shopify, "customers/create", "wh-1")),
            ("/webhooks/woocommerce", woo,
             woocommerce_headers(WOO_SECRET, woo, "customer.created", "d-1"))):
        await api.call("POST", path, path, expect=200, auth=False, data=raw, headers=signed)
        await api.call("POST", path, path, expect=200, auth=False, data=raw, headers=signed)
        await api.call("POST", path, path, expect=401, auth=False, data=raw,
                       headers={**signed, "X-Shopify-Hmac-Sha256": "x",
                                "X-WC-Webhook-Signature": "x"})

    # channel webhooks: a customer writes on WhatsApp, SMS and Telegram
    await api.call("GET", f"/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={WA_VERIFY}"
                   "&hub.challenge=42", "/webhooks/whatsapp", expect=200, auth=False)
    await api.call("GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=no"
                   "&hub.challenge=42", "/webhooks/whatsapp", expect=403, auth=False)
    raw, headers = signed_whatsapp(WA_SECRET, whatsapp_text_webhook("hola", phone=PHONE))
    await api.call("POST", "/webhooks/whatsapp", "/webhooks/whatsapp", expect=200, auth=False,
                   data=raw, headers=headers)
    await api.call("POST", "/webhooks/whatsapp", "/webhooks/whatsapp", expect=401, auth=False,
                   data=raw, headers={**headers, "X-Hub-Signature-256": "sha256=00"})
    raw, headers = signed_whatsapp(WA_SECRET, {"object": "whatsapp_business_account",
                                               "entry": []})
    await api.call("POST", "/webhooks/whatsapp", "/webhooks/whatsapp", expect=200, auth=False,
                   data=raw, headers=headers)
    for path, form in (("/webhooks/sms", twilio_inbound_form("hola", from_=PHONE)),
                       ("/webhooks/sms/status", twilio_status_form("SM" + "1" * 32))):
        raw, headers = signed_twilio(fakes.twilio.auth_token, PUBLIC_URL + path, form)
        await api.call("POST", path, path, expect=200, auth=False, data=raw, headers=headers)
        await api.call("POST", path, path, expect=401, auth=False, data=form_body(form),
                       headers={**headers, "X-Twilio-Signature": "forged"})
    update = json.dumps(telegram_message_update("hola")).encode()
    await api.call("POST", "/webhooks/telegram", "/webhooks/telegram", expect=200, auth=False,
                   data=update, headers={**telegram_headers(TG_SECRET),
                                         "Content-Type": "application/json"})
    await api.call("POST", "/webhooks/telegram", "/webhooks/telegram", expect=401, auth=False,
                   data=update, headers=telegram_headers("wrong"))
    await api.call("POST", "/webhooks/email", "/webhooks/email", expect=503, auth=False,
                   data=b"{}", headers=events_headers(EMAIL_INBOUND_SECRET, b"{}"))
    await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=200,
                   json={"seconds": 0})

    # conversations
    listed = await api.call("GET", "/api/conversations", "/api/conversations", expect=200)
    assert listed["conversations"], "the customer's messages made conversations"
    await api.call("GET", "/api/conversations?status=bot&customer_id=cus_1",
                   "/api/conversations", expect=200)
    await api.call("GET", "/api/conversations?status=asleep", "/api/conversations", expect=400)
    await api.call("GET", "/api/conversations", "/api/conversations", expect=401, auth=False)
    [whatsapp] = [c for c in listed["conversations"] if c["channel"] == "whatsapp"]
    one = f"/api/conversations/{whatsapp['id']}"
    detail = await api.call("GET", one, "/api/conversations/{id}", expect=200)
    assert detail["messages"], "the timeline has the customer's message and the echo"
    await api.call("GET", "/api/conversations/nope", "/api/conversations/{id}", expect=404)
    template = "/api/conversations/{id}/takeover"
    await api.call("POST", f"{one}/takeover", template, expect=400, json={})
    await api.call("POST", "/api/conversations/nope/takeover", template, expect=404,
                   json={"agent": "ana"})
    await api.call("POST", f"{one}/takeover", template, expect=200, json={"agent": "ana"})
    await api.call("POST", f"{one}/messages", "/api/conversations/{id}/messages", expect=202,
                   json={"text": "Hola, soy Ana"})
    await api.call("POST", f"{one}/messages", "/api/conversations/{id}/messages", expect=400,
                   json={"agent": "ana"})
    await api.call("POST", f"{one}/release", "/api/conversations/{id}/release", expect=200)
    agent = {"email": "luz@tienda.example", "name": "Luz", "password": "una clave larga"}
    await api.call("POST", "/api/agents", "/api/agents", expect=201, json=agent)
    await api.call("POST", "/api/agents", "/api/agents", expect=409, json=agent)
    await api.call("POST", "/api/agents", "/api/agents", expect=400, json={"email": "x"})
    await api.call("POST", f"{one}/assign", "/api/conversations/{id}/assign", expect=200,
                   json={"agent": agent["email"]})
    await api.call("POST", f"{one}/assign", "/api/conversations/{id}/assign", expect=400,
                   json={"agent": "nadie@tienda.example"})
    await api.call("POST", f"{one}/close", "/api/conversations/{id}/close", expect=200)
    await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=200,
                   json={"seconds": 0})
    await api.call("GET", one, "/api/conversations/{id}", expect=200)

    # customers and consent
    customer = await api.call("GET", "/api/customers/cus_1", "/api/customers/{id}", expect=200)
    assert customer["consents"]["whatsapp"]["state"] == "granted"
    await api.call("GET", "/api/customers/nobody", "/api/customers/{id}", expect=404)
    await api.call("GET", "/api/customers/cus_1/consent", "/api/customers/{id}/consent",
                   expect=200)
    await api.call("GET", "/api/customers/nobody/consent", "/api/customers/{id}/consent",
                   expect=404)
    await api.call("GET", "/api/consent.csv?from=2000-01-01", "/api/consent.csv", expect=200)
    await api.call("GET", "/api/consent.csv", "/api/consent.csv", expect=400)

    # flows
    flows = await api.call("GET", "/api/flows", "/api/flows", expect=200)
    name = flows["flows"][0]["name"]
    for suffix in ("stats", "runs", "runs.csv", "diagram.svg"):
        template = f"/api/flows/{{name}}/{suffix}"
        await api.call("GET", f"/api/flows/{name}/{suffix}", template,
                       expect=404 if suffix == "diagram.svg" and name == "echo" else 200)
        await api.call("GET", f"/api/flows/nope/{suffix}", template, expect=404)
        await api.call("GET", f"/api/flows/{name}/{suffix}?from=someday", template,
                       expect=404 if suffix == "diagram.svg" and name == "echo" else 400)
    await api.call("GET", f"/api/flows/{name}/runs?outcome=done&step=started&limit=5",
                   "/api/flows/{name}/runs", expect=200)
    listed = await api.call("GET", f"/api/flows/{name}/versions", "/api/flows/{name}/versions",
                            expect=200)
    await api.call("GET", "/api/flows/nope/versions", "/api/flows/{name}/versions", expect=404)
    version = listed["versions"][0]["version"]
    template = "/api/flows/{name}/versions/{version}"
    await api.call("GET", f"/api/flows/{name}/versions/{version}", template, expect=200)
    await api.call("GET", f"/api/flows/{name}/versions/0000", template, expect=404)

    # campaigns
    segment = {"all": [{"tagged": "vip"}, {"spent_over": ["100", "ARS"]}]}
    count = await api.call("POST", "/api/campaigns", "/api/campaigns", expect=200,
                           json={"segment": {"everyone": True}, "dry_run": True})
    assert count["matching"] >= 1
    made = await api.call("POST", "/api/campaigns", "/api/campaigns", expect=201, json={
        "name": "Otoño", "segment": segment, "texts": {"es": "Hola {first_name}"},
        "template": {"name": "promo_offer", "params": ["{first_name}"]},
        "channels": ["whatsapp"], "at": "2030-01-01T10:00:00-03:00"})
    await api.call("GET", f"/api/campaigns/{made['id']}", "/api/campaigns/{id}", expect=200)
    await api.call("GET", "/api/campaigns/nope", "/api/campaigns/{id}", expect=404)
    await api.call("POST", "/api/campaigns", "/api/campaigns", expect=400,
                   json={"segment": {"tagged": ""}, "dry_run": True})

    expected = documented(api.document) - EMAIL_OPS
    assert expected - api.called == set(), "operations this test never called"


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    with FakeSmtp() as started:
        yield started



async def test_the_email_routes_answer_as_the_document_says(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes,
        relay: FakeSmtp) -> None:
    settings = start_settings(mongo_uri, db_name, fakes, **email_settings(relay))
    api = Conformance(await aiohttp_client(create_app(settings)))
    await api.load()
    restock = {"id": "evt_1", "type": "product.back_in_stock",
               "occurred_at": "2026-11-24T10:00:00Z",
               "customer": {"id": "cus_mail", "email": ADDRESS, "consents": {"email": True}},
               "data": {"sku": "SKU-1"}}
    raw = json.dumps(restock).encode()
    await api.call("POST", "/events", "/events", expect=202, auth=False, data=raw,
                   headers=events_headers(EVENTS_SECRET, raw))
    reply = {"id": "<r1@mail.example>", "from": f"Ana <{ADDRESS}>", "to": "shop@tienda.example",
             "subject": "Re: hola", "text": "mirá https://tienda.example/p/1",
             "in_reply_to": None}
    api.check_request("POST", "/webhooks/email", reply)
    raw = json.dumps(reply).encode()
    await api.call("POST", "/webhooks/email", "/webhooks/email", expect=200, auth=False,
                   data=raw, headers=events_headers(EMAIL_INBOUND_SECRET, raw))
    await api.call("POST", "/webhooks/email", "/webhooks/email", expect=401, auth=False,
                   data=raw, headers=events_headers("wrong", raw))
    bad = json.dumps({"id": "<r2@mail.example>"}).encode()
    await api.call("POST", "/webhooks/email", "/webhooks/email", expect=400, auth=False,
                   data=bad, headers=events_headers(EMAIL_INBOUND_SECRET, bad))
    await api.call("POST", "/admin/clock/advance", "/admin/clock/advance", expect=200,
                   json={"seconds": 0})
    marketing = next(mail for mail in relay.messages if mail["List-Unsubscribe"])
    answer = next(mail for mail in relay.messages if not mail["List-Unsubscribe"])

    click = email_link(answer, "t")
    await api.call("GET", click, "/t/{token}", expect=302, auth=False)
    rich = answer.get_body(("html",))
    assert rich is not None
    pixel = str(rich.get_content()).split('<img src="')[1].split('"')[0][len(PUBLIC_URL):]
    await api.call("GET", pixel, "/t/{token}", expect=200, auth=False)
    await api.call("GET", "/t/abc.def", "/t/{token}", expect=404, auth=False)

    leave = email_link(marketing, "u")
    await api.call("GET", leave, "/u/{token}", expect=200, auth=False)
    await api.call("GET", "/u/abc.def", "/u/{token}", expect=404, auth=False)
    one_click = await api.call("POST", leave, "/u/{token}", expect=200, auth=False,
                               data=form_body({"List-Unsubscribe": "One-Click"}),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click == {"unsubscribed": True}
    await api.call("POST", leave, "/u/{token}", expect=200, auth=False)  # the page's button
    await api.call("POST", "/u/abc.def", "/u/{token}", expect=404, auth=False)

    # An answer link, as a question's choice carries it (signed with the service's key).
    key = api.client.app[CHANNELS]["email"].link_key
    choice = "/r/" + make_token(key, "answer", m="m1", c="cus_mail", a=ADDRESS, p="", i="yes",
                                t="Sí")
    await api.call("GET", choice, "/r/{token}", expect=200, auth=False)
    await api.call("GET", "/r/abc.def", "/r/{token}", expect=404, auth=False)
    await api.call("POST", choice, "/r/{token}", expect=200, auth=False)
    await api.call("POST", "/r/abc.def", "/r/{token}", expect=404, auth=False)
    assert EMAIL_OPS - api.called == set()
