"""The console's flow pages and the diagram route over HTTP: auth, headers, counts, links."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bot.http.appkeys import DATABASE
from bot.http.console_flows import BadPeriod, period
from server import create_app
from tests.http.console_client import Browser, create_agent, declined_cart
from tests.support.app import AUTH, Fakes, Service, make_settings

CONSOLE_HEADERS = {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy",
                   "Cache-Control"}


async def start(aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> Service:
    settings = make_settings(mongo_uri, db_name, fakes, public_url="http://127.0.0.1",
                             cart_abandon_after=3600, flows="cart_recovery,birthday")
    return Service(await aiohttp_client(create_app(settings)))


async def signed_in(aiohttp_client: Any, service: Service) -> Browser:
    await create_agent(service, "lucia@shop.example")
    person = Browser(await aiohttp_client(service.client.server))
    await person.sign_in("lucia@shop.example")
    return person


async def test_the_flow_pages_need_a_session_and_carry_the_console_headers(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    for path in ("/console/flows", "/console/flows/cart_recovery"):
        anonymous = await service.client.get(path, allow_redirects=False)
        assert (anonymous.status, anonymous.headers["Location"]) == (303, "/console/login")
    person = await signed_in(aiohttp_client, service)
    for path in ("/console/flows", "/console/flows/cart_recovery?days=7"):
        page = await person.client.get(path, allow_redirects=False)
        assert page.status == 200, await page.text()
        assert set(page.headers) >= CONSOLE_HEADERS
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert page.headers["X-Frame-Options"] == "DENY"
        html = await page.text()
        assert " style=" not in html and "<script>" not in html
    missing = await person.client.get("/console/flows/nope", allow_redirects=False)
    assert missing.status == 404
    bad = await person.client.get("/console/flows/cart_recovery?from=ayer",
                                  allow_redirects=False)
    assert bad.status == 400 and "from: &#39;ayer&#39; is not a date" in await bad.text()


async def test_a_run_shows_on_the_flows_list_the_flow_page_and_the_customer_panel(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await declined_cart(service)
    person = await signed_in(aiohttp_client, service)

    listing = await (await person.client.get("/console/flows")).text()
    row = re.search(r'<tr data-flow="cart_recovery">(.*?)</tr>', listing, flags=re.S)
    assert row and '<td class="started">1</td>' in row.group(1)
    assert 'href="/console/flows/cart_recovery?days=30"' in row.group(1)

    page = await (await person.client.get("/console/flows/cart_recovery")).text()
    assert '<dd id="runs-started">1</dd>' in page
    for step, count in (("interested", 1), ("why", 1), ("reason", 1), ("link", 0)):
        assert f'<g class="node" data-step="{step}" data-count="{count}"' in page, step
        assert f'<g class="bar" data-step="{step}" data-reached="{count}"' in page, step
    assert '<li data-outcome="declined">declined: 1</li>' in page
    run = re.search(r'<tr data-run="[^"]+"><td><a href="(/console/c/[^"]+)">', page)
    assert run, page[-3000:]
    assert "<td>thanks_reason</td><td>declined</td>" in page  # where it stopped, and how

    filtered = await (await person.client.get(
        "/console/flows/cart_recovery?outcome=purchased")).text()
    assert 'data-run="' not in filtered

    conversation = await (await person.client.get(run.group(1))).text()
    panel = re.search(r'<ul class="runs" id="customer-runs">(.*?)</ul>', conversation,
                      flags=re.S)
    assert panel and 'data-flow="cart_recovery" data-active="no"' in panel.group(1)
    assert '<strong class="stopped">thanks_reason</strong>' in panel.group(1)
    assert "started → interested → why → reason → thanks_reason" in panel.group(1)
    # The panel's read of finished runs goes through the by_customer index.
    customer = run.group(1).removeprefix("/console/c/").rsplit(":", 1)[0]
    plan = str(await service.client.app[DATABASE].flow_runs.find(
        {"customer": customer}).explain())
    assert "IXSCAN" in plan and "by_customer" in plan and "COLLSCAN" not in plan, plan


async def test_the_diagram_route_answers_svg_with_the_counts(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await start(aiohttp_client, mongo_uri, db_name, fakes)
    await declined_cart(service)
    path = "/api/flows/cart_recovery/diagram.svg"
    assert (await service.client.get(path)).status == 401
    response = await service.client.get(path, headers=AUTH)
    assert response.status == 200
    assert response.content_type == "image/svg+xml"
    svg = await response.text()
    assert 'data-step="started" data-count="1"' in svg
    assert 'data-step="exit:declined" data-count="1"' in svg
    long_ago = await service.client.get(path + "?from=2020-01-01&to=2020-01-31", headers=AUTH)
    assert 'data-step="started" data-count="0"' in await long_ago.text()
    bad = await service.client.get(path + "?to=31/01/2020", headers=AUTH)
    assert bad.status == 400 and (await bad.json())["error"].startswith("to: ")
    unknown = await service.client.get("/api/flows/nope/diagram.svg", headers=AUTH)
    assert unknown.status == 404


def test_a_period_is_whole_utc_days() -> None:
    now = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    week = period({"days": "7"}, now)
    assert (week.first, week.last, week.days) == ("2026-03-03", "2026-03-09", 7)
    assert week.end == datetime(2026, 3, 10, tzinfo=UTC)
    span = period({"from": "2026-01-01", "to": "2026-01-31"}, now)
    assert (span.first, span.last, span.query()) == ("2026-01-01", "2026-01-31",
                                                     "from=2026-01-01&to=2026-01-31")
    for query, field in (({"days": "12"}, "days"), ({"from": "2026-02-30"}, "from"),
                         ({"from": "2026-03-05", "to": "2026-03-01"}, "from")):
        try:
            period(query, now)
        except BadPeriod as exc:
            assert exc.field == field
        else:
            raise AssertionError(f"{query} accepted")
