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
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from tests.support.signing import (
    form_body,
    json_body,
    telegram_headers,
    twilio_signature,
    whatsapp_signature,
    whatsapp_text_webhook,
)
from tests.support.store_signing import events_headers, shopify_headers, woocommerce_headers

TESTS = Path(__file__).resolve().parent
Json = Any

FUZZ = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)


def load(folder: str) -> list[tuple[str, Json]]:
    """``(file stem, parsed JSON)`` of every fixture in ``tests/<folder>``."""
    return [(path.stem, json.loads(path.read_text()))
            for path in sorted((TESTS / folder).glob("*.json"))]


# -- odd values -----------------------------------------------------------------------

EXTREMES: list[Json] = [
    2**63, -(2**63), 2**63 - 1, 2**64, 10**69, -(10**69), int("9" * 70), 0, -1, True, False,
    None, "", 1e308, -1e308, 5e-324, 0.5, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z", "2026-02-30T25:61:00Z", "not a date", str(2**63), "9" * 70,
    "-1", "1e400", "NaN", "١٢٣", "x" * 5000, "\u0000", "+", "@", [], {},
]
_scalar = (st.none() | st.booleans() | st.integers(-(2**80), 2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
ODD: st.SearchStrategy[Json] = st.one_of(
    st.sampled_from(EXTREMES),
    _scalar,
    st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6),
)
# Form fields (Twilio) are strings whatever the value means.
ODD_TEXT: st.SearchStrategy[str] = st.one_of(
    st.sampled_from([str(v) for v in EXTREMES if isinstance(v, str | int | float)]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
_DELETE = object()


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (not the root itself)."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _replace(doc: Json, path: tuple[Any, ...], new: Any) -> None:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new


@st.composite
def mutated(draw: st.DrawFn, fixtures: list[tuple[str, Json]],
            values: st.SearchStrategy[Any] = ODD) -> tuple[str, Json]:
    """A fixture with one to three values replaced or removed."""
    name, original = draw(st.sampled_from(fixtures))
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = sorted(_paths(doc), key=repr)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _replace(doc, path, draw(st.one_of(values, values, values, st.just(_DELETE))))
    return name, doc


def bodies(fixtures: list[tuple[str, Json]]) -> st.SearchStrategy[tuple[str, bytes]]:
    """A mutated fixture as JSON bytes, or now and then bytes that are not JSON."""
    as_json = mutated(fixtures).map(lambda pair: (pair[0], json_body(pair[1])))
    raw = st.tuples(st.sampled_from([name for name, _ in fixtures]), st.binary(max_size=200))
    return st.one_of(as_json, as_json, as_json, as_json, raw)


def assert_no_5xx(response: ClientResponse, body: bytes | str, text: str) -> None:
    """No 5xx, and no body only the channels' last-resort guard could answer."""
    assert response.status < 500, f"{response.status} {text} for {body[:2000]!r}"
    assert '"reason": "unreadable"' not in text, f"a parser failed on {body[:2000]!r}"


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
    delivery = f"fuzz-{next(_fresh)}"
    if route == "/webhooks/shopify":
        head, _, tail = name.rpartition("_")
        headers = shopify_headers(SHOPIFY_SECRET, body, f"{head}/{tail}", delivery)
    elif route == "/webhooks/woocommerce":
        resource, event = name.split("_")[:2]
        headers = woocommerce_headers(WOO_SECRET, body, f"{resource}.{event}", delivery)
    else:
        headers = events_headers(EVENTS_SECRET, body)
    response = await service.client.post(route, data=body, headers=headers)
    assert_no_5xx(response, body, await response.text())


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
@given(case=bodies(load("fixtures/shopify")))
async def test_shopify_webhook_never_answers_5xx(service: Service,
                                                 case: tuple[str, bytes]) -> None:
    await post_store(service, "/webhooks/shopify", *case)


@FUZZ
@given(case=bodies(load("fixtures/woocommerce")))
async def test_woocommerce_webhook_never_answers_5xx(service: Service,
                                                     case: tuple[str, bytes]) -> None:
    await post_store(service, "/webhooks/woocommerce", *case)


@FUZZ
@given(case=bodies(load("fixtures/events")))
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
