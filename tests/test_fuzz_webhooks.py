"""Generated bodies, correctly signed, on every webhook route and the agent API: never a 5xx.

Each route gets the real fixtures of ``tests/data`` and ``tests/fixtures``
with one to three values replaced (huge integers, floats, nulls, nested
objects, long strings, impossible dates) or removed, or a body that is not
JSON at all, signed as the provider signs it. What the service cannot use is
answered 400 (or 200 ignored, for providers that would retry forever); a 500
would mean a parser let an exception through.

Hypothesis runs derandomized with no example database, so CI sees the same
bodies on every run; the two bodies a fuzz run first found are explicit
regression cases below. ``FUZZ`` keeps each route to 150 examples.

The strategies live in ``tests/support/fuzzing.py``, shared with
``stress/fuzz.py`` (every route of the app, headers and query strings too;
``tests/stress/test_fuzz_short.py`` runs it in ``make test``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import BadPayload
from bot.runtime.inbox import make_item
from bot.testing import FlowHarness
from server import create_app
from tests.support.app import (
    AUTH,
    EVENTS_SECRET,
    PUBLIC_URL,
    SHOPIFY_SECRET,
    TG_SECRET,
    WA_SECRET,
    WOO_SECRET,
    Fakes,
    Service,
    make_settings,
    with_test_flows,
)
from tests.support.fuzzing import (
    ODD,
    ODD_TEXT,
    TESTS,
    Json,
    assert_no_5xx,
    bodies,
    load,
    mutated,
    store_bodies,
)
from tests.support.fuzzing import replace_at as _replace
from tests.support.signing import (
    form_body,
    json_body,
    telegram_headers,
    twilio_signature,
    whatsapp_signature,
    whatsapp_text_webhook,
)
from tests.support.store_signing import events_headers, shopify_headers, woocommerce_headers

FUZZ = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)


# -- the app ----------------------------------------------------------------------------


@pytest.fixture
async def service(aiohttp_client: Any, mongo_uri: str, db_name: str,
                  fakes: Fakes) -> AsyncIterator[Service]:
    settings_ = make_settings(mongo_uri, db_name, fakes, **with_test_flows())
    yield Service(await aiohttp_client(create_app(settings_)))


_fresh = itertools.count()


async def post_whatsapp(service: Service, body: bytes) -> None:
    headers = {"X-Hub-Signature-256": whatsapp_signature(WA_SECRET, body),
               "Content-Type": "application/json"}
    response = await service.client.post("/webhooks/whatsapp", data=body, headers=headers)
    assert_no_5xx(response, body, await response.text())


async def post_telegram(service: Service, body: bytes) -> None:
    response = await service.client.post("/webhooks/telegram", data=body,
                                          headers=telegram_headers(TG_SECRET))
    assert_no_5xx(response, body, await response.text())


async def post_twilio(service: Service, path: str, form: dict[str, str]) -> None:
    body = form_body(form)
    headers = {"X-Twilio-Signature": twilio_signature("twilio-token", PUBLIC_URL + path, form),
               "Content-Type": "application/x-www-form-urlencoded"}
    response = await service.client.post(path, data=body, headers=headers)
    assert_no_5xx(response, body, await response.text())


async def post_store(service: Service, route: str, name: str, body: bytes) -> None:
    response = await store_response(service, route, name, body)
    text = await response.text()
    assert_no_5xx(response, body, text)
    assert ":unreadable:" not in text, f"a parser failed on {body[:2000]!r}"  # /events' guard


async def store_response(service: Service, route: str, name: str,
                         body: bytes) -> ClientResponse:
    """``body`` posted to a store route as fixture ``name``'s topic, signed, new delivery id."""
    delivery = f"fuzz-{next(_fresh)}"
    if route == "/webhooks/shopify":
        head, _, tail = name.rpartition("_")
        headers = shopify_headers(SHOPIFY_SECRET, body, f"{head}/{tail}", delivery)
    elif route == "/webhooks/woocommerce":
        resource, event = name.split("_")[:2]
        headers = woocommerce_headers(WOO_SECRET, body, f"{resource}.{event}", delivery)
    else:
        headers = events_headers(EVENTS_SECRET, body)
    return await service.client.post(route, data=body, headers=headers)


# -- regression cases: the bodies that answered 500 -------------------------------------


def whatsapp_fixture(name: str) -> Json:
    return json.loads((TESTS / "data/whatsapp" / f"{name}.json").read_text())


@pytest.mark.parametrize(("fixture", "where", "value"), [
    # the crasher of the fuzz run: a string holding a Unix time, given as a 70-digit number
    ("status_sent", ("statuses", 0, "conversation", "expiration_timestamp"), int("9" * 70)),
    ("status_sent", ("statuses", 0, "conversation", "expiration_timestamp"), -(2**63)),
    ("status_sent", ("statuses", 0, "status"), {"sent": True}),
    ("text", ("messages", 0, "type"), ["text"]),
    ("text", ("contacts",), int("9" * 70)),
])
async def test_a_signed_whatsapp_webhook_with_a_value_of_the_wrong_kind_is_a_400(
        service: Service, fixture: str, where: tuple[Any, ...], value: Json) -> None:
    payload = whatsapp_fixture(fixture)
    _replace(payload, ("entry", 0, "changes", 0, "value", *where), value)
    body = json_body(payload)
    response = await service.client.post(
        "/webhooks/whatsapp", data=body,
        headers={"X-Hub-Signature-256": whatsapp_signature(WA_SECRET, body)})
    assert response.status == 400, await response.text()
    assert str(where[-1]) in (await response.json())["error"]


@pytest.mark.parametrize("date", [2**63, -(2**63), 2**63 - 1, 10**12, 1e308])
async def test_a_telegram_update_dated_outside_any_real_time_is_a_400(
        service: Service, date: int | float) -> None:
    for name, where in (("message_text", ("message",)),
                        ("callback_query", ("callback_query", "message")),
                        ("edited_message", ("edited_message",))):
        update = json.loads((TESTS / "data/telegram" / f"{name}.json").read_text())
        _replace(update, (*where, "date"), date)
        response = await service.client.post("/webhooks/telegram", data=json_body(update),
                                              headers=telegram_headers(TG_SECRET))
        assert response.status == 400, await response.text()
        assert "date" in (await response.json())["error"]


DEEP = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 995 + b"1" + b"}" * 995]


async def test_bodies_nested_deeper_than_json_reads_are_a_400(service: Service) -> None:
    for body in DEEP:
        for path, headers in (
                ("/webhooks/whatsapp",
                 {"X-Hub-Signature-256": whatsapp_signature(WA_SECRET, body)}),
                ("/webhooks/telegram", telegram_headers(TG_SECRET)),
                ("/admin/clock/advance", AUTH)):
            response = await service.client.post(path, data=body, headers=headers)
            assert response.status == 400, await response.text()
            assert "nested too deeply" in (await response.json())["error"]


async def test_a_lone_surrogate_escape_is_a_400_and_an_escaped_emoji_is_read(
        service: Service) -> None:
    """MongoDB stores only UTF-8: a lone ``\\ud800`` used to fail the inbox write (500)."""
    for text, expect in (("\\ud800", 400), ("a\\udfffb", 400), ("\\ud83d\\ude00", 200)):
        wa = json.dumps(whatsapp_text_webhook("TEXT")).replace("TEXT", text).encode()
        response = await service.client.post(
            "/webhooks/whatsapp", data=wa,
            headers={"X-Hub-Signature-256": whatsapp_signature(WA_SECRET, wa)})
        assert response.status == expect, await response.text()
        update = json.loads((TESTS / "data/telegram/message_text.json").read_text())
        update["message"]["text"] = "TEXT"
        update["update_id"] = next(_fresh)
        tg = json.dumps(update).replace("TEXT", text).encode()
        response = await service.client.post("/webhooks/telegram", data=tg,
                                              headers=telegram_headers(TG_SECRET))
        assert response.status == expect, await response.text()
        if expect == 400:
            assert "surrogate" in (await response.json())["error"]
    await service.advance(0)
    conversation = await service.api("GET", "/api/conversations?status=bot")
    assert {c["last_message"]["text"] for c in conversation["conversations"]} == {"eco: 😀"}


# -- regression cases: signed store bodies the database could not hold ------------------

STORE_FIXTURES = {"/events": "events", "/webhooks/shopify": "shopify",
                  "/webhooks/woocommerce": "woocommerce"}


def store_fixture(route: str, name: str) -> Json:
    return json.loads((TESTS / "fixtures" / STORE_FIXTURES[route] / f"{name}.json").read_text())


def field_name(where: tuple[Any, ...]) -> str:
    """``("data", "items", 1, "quantity")`` -> ``"data.items[1].quantity"``."""
    text = ""
    for key in where:
        text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else key
    return text


async def post_changed(service: Service, route: str, name: str, where: tuple[Any, ...],
                       value: Json, fresh_id: bool = True) -> tuple[int, Json]:
    """Fixture ``name`` with the value at ``where`` set, posted signed: (status, JSON answer)."""
    payload = store_fixture(route, name)
    _replace(payload, where, value)
    if fresh_id and route == "/events":
        payload["id"] = f"evt-fuzz-{next(_fresh)}"
    response = await store_response(service, route, name, json.dumps(payload).encode())
    return response.status, await response.json()


@pytest.mark.parametrize(("route", "fixture", "where"), [
    ("/events", "checkout_started", ("data", "items", 1, "quantity")),
    ("/events", "customer_created", ("customer", "tags", 0)),
    ("/events", "order_placed", ("data", "gift_wrap")),  # an extra field, kept
    ("/events", "customer_created", ("campaign",)),
    ("/webhooks/shopify", "orders_create", ("line_items", 0, "quantity")),
    ("/webhooks/woocommerce", "order_created", ("line_items", 0, "quantity")),
])
async def test_an_integer_beyond_64_bits_is_a_400_naming_it_and_the_limit_is_stored(
        service: Service, route: str, fixture: str, where: tuple[Any, ...]) -> None:
    """MongoDB stores 8-byte integers: 2**63 used to fail the inbox write (500)."""
    for value in (2**63, -(2**63) - 1, 10**30):
        status, answer = await post_changed(service, route, fixture, where, value)
        assert status == 400, answer
        assert answer["error"].startswith(field_name(where)), answer
        assert "integer out of range" in answer["error"]
    status, answer = await post_changed(service, route, fixture, where, 2**63 - 1)
    assert status in (200, 202) and "error" not in answer, answer


async def test_one_unstorable_input_fails_alone_and_its_batch_is_stored(
        mongo_uri: str) -> None:
    """A document the driver cannot encode used to fail every request written with it."""
    async with FlowHarness(mongo_uri, [], channels=("sms",)) as h:
        def item(name: str, payload: dict[str, Any]) -> dict[str, Any]:
            return make_item(dedupe_id=f"test:{name}", kind="event", source="test",
                             keys=[f"store:{name}"], payload=payload)

        assert await h.runtime.inbox.accept(item("old", {}))
        batch = [item("a", {"n": 1}), item("big", {"n": 2**63}), item("b", {}),
                 item("surrogate", {"t": "\ud800"}), item("nul", {"a\x00b": 1}),
                 item("old", {}), item("c", {"n": 2**63 - 1})]
        outcomes = await asyncio.gather(*(h.runtime.inbox.accept(i) for i in batch),
                                        return_exceptions=True)
        assert outcomes[0] is True and outcomes[2] is True and outcomes[6] is True, outcomes
        assert outcomes[5] is False  # the duplicate is still told apart
        for bad in (outcomes[1], outcomes[3], outcomes[4]):
            assert isinstance(bad, BadPayload), outcomes  # the sender's fault: a 400
            assert "cannot be stored" in str(bad)
        stored = {doc["_id"] async for doc in h.database.inbox.find({"source": "test"})}
        assert stored == {"test:old", "test:a", "test:b", "test:c"}


@pytest.mark.parametrize("zone", ["x" * 5000, "America", "Mars/Olympus", "../../etc/passwd"])
async def test_an_unknown_time_zone_is_a_400_naming_it(service: Service, zone: str) -> None:
    """``ZoneInfo`` reads the name as a file: 5,000 characters raised OSError (500)."""
    status, answer = await post_changed(service, "/events", "customer_created",
                                        ("customer", "timezone"), zone)
    assert status == 400, answer
    assert answer["error"].startswith("customer.timezone: unknown time zone"), answer
    assert len(answer["error"]) < 200


async def test_store_bodies_nested_deeper_than_json_reads_are_a_400(service: Service) -> None:
    for body in DEEP:
        for route, name in (("/events", "customer_created"),
                            ("/webhooks/shopify", "orders_create"),
                            ("/webhooks/woocommerce", "order_created")):
            response = await store_response(service, route, name, body)
            assert response.status == 400, await response.text()
            assert "nested too deeply" in (await response.json())["error"]


@pytest.mark.parametrize(("route", "fixture", "where", "value", "problem"), [
    ("/events", "customer_created", ("customer", "first_name"), "Ana \ud800", "surrogate"),
    ("/events", "checkout_started", ("data", "items", 0, "title"), "\udfff", "surrogate"),
    ("/events", "order_placed", ("data", "note"), {"\ud83d": 1}, "surrogate"),
    ("/events", "order_placed", ("data", "note"), {"a\u0000b": 1}, "NUL"),
    ("/webhooks/shopify", "orders_create", ("line_items", 0, "title"), "\ud800", "surrogate"),
    ("/webhooks/woocommerce", "order_created", ("line_items", 0, "name"), "\ud800",
     "surrogate"),
])
async def test_a_string_mongodb_cannot_store_is_a_400_naming_it(
        service: Service, route: str, fixture: str, where: tuple[Any, ...], value: Json,
        problem: str) -> None:
    """A lone surrogate escape (not UTF-8) or a NUL in a key used to fail the inbox write."""
    status, answer = await post_changed(service, route, fixture, where, value)
    assert status == 400, answer
    assert answer["error"].startswith(field_name(where)) and problem in answer["error"], answer
    status, answer = await post_changed(service, route, fixture, where, "\ud83d\ude00")
    assert status in (200, 202) and "error" not in answer, answer  # an escaped emoji is fine


# -- generated bodies, one test per route -----------------------------------------------

@FUZZ
@given(case=bodies(load("data/whatsapp")))
async def test_whatsapp_webhook_never_answers_5xx(service: Service,
                                                  case: tuple[str, bytes]) -> None:
    await post_whatsapp(service, case[1])


@FUZZ
@given(case=bodies(load("data/telegram")))
async def test_telegram_webhook_never_answers_5xx(service: Service,
                                                  case: tuple[str, bytes]) -> None:
    await post_telegram(service, case[1])


_inbound = [(n, d) for n, d in load("data/twilio") if n.startswith("inbound")]
_status = [(n, d) for n, d in load("data/twilio") if n.startswith("status")]


@FUZZ
@given(case=mutated(_inbound, ODD_TEXT))
async def test_sms_inbound_webhook_never_answers_5xx(service: Service,
                                                     case: tuple[str, dict[str, str]]) -> None:
    await post_twilio(service, "/webhooks/sms", case[1])


@FUZZ
@given(case=mutated(_status, ODD_TEXT))
async def test_sms_status_webhook_never_answers_5xx(service: Service,
                                                    case: tuple[str, dict[str, str]]) -> None:
    await post_twilio(service, "/webhooks/sms/status", case[1])


@FUZZ
@given(case=store_bodies(load("fixtures/shopify")))
async def test_shopify_webhook_never_answers_5xx(service: Service,
                                                 case: tuple[str, bytes]) -> None:
    await post_store(service, "/webhooks/shopify", *case)


@FUZZ
@given(case=store_bodies(load("fixtures/woocommerce")))
async def test_woocommerce_webhook_never_answers_5xx(service: Service,
                                                     case: tuple[str, bytes]) -> None:
    await post_store(service, "/webhooks/woocommerce", *case)


@FUZZ
@given(case=store_bodies(load("fixtures/events")))
async def test_events_never_answer_5xx(service: Service, case: tuple[str, bytes]) -> None:
    await post_store(service, "/events", *case)


_agent_bodies = [("messages", {"text": "Hola, soy Lucía", "agent": "Lucía"}),
                 ("takeover", {"agent": "Lucía"}), ("release", {})]


@FUZZ
@given(case=st.one_of(mutated(_agent_bodies), st.tuples(
    st.sampled_from([name for name, _ in _agent_bodies]), ODD)))
async def test_agent_api_never_answers_5xx(service: Service, case: tuple[str, Json]) -> None:
    listed = await service.api("GET", "/api/conversations")
    if not listed["conversations"]:
        await service.whatsapp(whatsapp_text_webhook("hola"))
        await service.advance(0)
        listed = await service.api("GET", "/api/conversations")
    action, payload = case
    path = f"/api/conversations/{listed['conversations'][0]['id']}/{action}"
    body = json.dumps(payload).encode()
    response = await service.client.post(path, data=body, headers=AUTH)
    assert_no_5xx(response, body, await response.text())
