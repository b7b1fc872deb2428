"""Flow statistics over HTTP, counted by the real service from a scripted week.

Customers go through the shipped cart-recovery and post-purchase-survey
flows: store events and WhatsApp replies and delivery statuses are signed
webhooks, the provider is the loopback WhatsApp fake, time is the virtual
clock. Every figure is checked against a number worked out by hand from
the script.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from bot.http.appkeys import DATABASE
from server import create_app
from tests.support.app import AUTH, Fakes, Service, customer_event, make_settings
from tests.support.signing import (
    whatsapp_button_webhook,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
)

DAY = 86400
CART = ("cus_a", "cus_b", "cus_c", "cus_d")  # consent; cus_e has none
SURVEY = ("cus_f", "cus_g")


def phone(customer: str) -> str:
    return f"+54911220000{ord(customer[-1]) - ord('a'):02d}"


def user(customer: str) -> str:
    return f"AR.99{ord(customer[-1]):010d}"


def checkout(customer: str) -> dict[str, Any]:
    return {"checkout_id": f"chk_{customer}", "recovery_url": f"https://shop.example/r/{customer}",
            "total": "99.90", "currency": "ARS", "items": []}


class Script:
    """The service, and the calls the script repeats."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.count = 0

    async def now(self) -> datetime:
        return datetime.fromisoformat((await self.service.advance(0)).replace("Z", "+00:00"))

    async def event(self, customer: str, event_type: str, consent: bool = True,
                    **data: Any) -> None:
        self.count += 1
        now = (await self.now()).isoformat()
        await self.service.event(customer_event(
            f"evt_{self.count}", event_type, now, customer_id=customer, phone=phone(customer),
            consents={"whatsapp": consent}, **data))
        await self.service.advance(0)

    async def tap(self, customer: str, choice: str) -> None:
        await self.service.whatsapp(whatsapp_button_webhook(
            choice, choice, phone=phone(customer), user_id=user(customer)))
        await self.service.advance(0)

    async def write(self, customer: str, text: str) -> None:
        await self.service.whatsapp(whatsapp_text_webhook(
            text, phone=phone(customer), user_id=user(customer)))
        await self.service.advance(0)

    async def status(self, customer: str, step: str, status: str) -> None:
        """A signed WhatsApp status for the customer's message of ``step``."""
        database = self.service.client.app[DATABASE]
        doc = await database.customers.find_one({"keys": f"store:{customer}"})
        assert doc is not None
        message = await database.messages.find_one({"customer": doc["_id"], "step": step})
        assert message is not None and message.get("provider_id"), (customer, step)
        at = int((await self.now()).timestamp())
        # A failure that says nothing about the address (131000, "something went
        # wrong"): a dead-address code would, rightly, stop the reminder too.
        await self.service.whatsapp(whatsapp_status_webhook(
            message["provider_id"], status, phone=phone(customer), user_id=user(customer),
            timestamp=at, error_code=131000 if status == "failed" else None))
        await self.service.advance(0)


async def scripted_week(aiohttp_client: Any, mongo_uri: str, db_name: str,
                        fakes: Fakes) -> Service:
    """The script; the comments give what each part adds to the figures."""
    settings = make_settings(mongo_uri, db_name, fakes, cart_abandon_after=3600,
                             flows="cart_recovery,post_purchase_survey")
    service = Service(await aiohttp_client(create_app(settings)))
    s = Script(service)
    for customer in CART:
        await s.event(customer, "checkout.started", **checkout(customer))
    await s.event("cus_e", "checkout.started", consent=False, **checkout("cus_e"))
    for customer in SURVEY:
        await s.event(customer, "order.fulfilled", order_id=f"o_{customer}")
    await service.advance(3601)
    # 4 runs start and ask "interested" (sent 4); cus_e's cannot start (consent).
    await s.status("cus_a", "interested", "delivered")
    await s.status("cus_a", "interested", "read")
    await s.status("cus_b", "interested", "delivered")
    await s.status("cus_c", "interested", "failed")
    await s.tap("cus_a", "yes")  # replied; link (sent)
    await s.status("cus_a", "link", "delivered")
    await s.tap("cus_d", "no")  # replied; why (sent)
    await s.tap("cus_d", "price")  # why replied; reason; thanks_reason (sent); declined
    await service.advance(3600)
    # Converts: placed 2 h after the delivered question and link. Thanks (sent), purchased.
    await s.event("cus_a", "order.placed", order_id="o_a", checkout_id="chk_cus_a",
                  total="120.50", currency="ARS")
    # 24 h without an answer: cus_b and cus_c get the reminder (sent 2); 48 h later
    # both end no_reply. 3 days after order.fulfilled the survey asks (sent 2).
    await service.advance(2 * DAY)
    # cus_d's question went out 2 days ago (no delivery reported): two orders convert.
    await s.event("cus_d", "order.placed", order_id="o_d1", total="10", currency="USD")
    await service.advance(DAY)
    await s.event("cus_d", "order.placed", order_id="o_d2", total="0.20", currency="USD")
    await s.write("cus_f", "9")  # the survey's question replied; promoter
    await service.advance(4 * DAY)  # cus_g: no_answer
    # cus_b's last message went out more than ATTRIBUTION_DAYS (5) ago: no conversion.
    await s.event("cus_b", "order.placed", order_id="o_b", total="500", currency="ARS")
    return service


def row(stats: dict[str, Any], step: str) -> dict[str, Any]:
    found = [r for r in stats["steps"] if r["step"] == step]
    assert found, f"no step {step} in {[r['step'] for r in stats['steps']]}"
    return dict(found[0])


def counts(**figures: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"reached": 0, "sent": 0, "delivered": 0, "read": 0, "replied": 0,
                            "failed": 0, "skipped": {}}
    return {**base, **figures}


async def test_a_scripted_week_gives_the_hand_computed_figures(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await scripted_week(aiohttp_client, mongo_uri, db_name, fakes)

    cart = await service.api("GET", "/api/flows/cart_recovery/stats")
    assert cart["flow"] == "cart_recovery"
    assert cart["runs"] == {"started": 4, "active": 0,
                            "ended": {"declined": 1, "no_reply": 2, "purchased": 1}}
    assert row(cart, "started") == counts(step="started", reached=4, skipped={"consent": 1})
    assert row(cart, "interested") == counts(step="interested", reached=4, sent=4, delivered=2,
                                             read=1, replied=2, failed=1)
    assert row(cart, "link") == counts(step="link", reached=1, sent=1, delivered=1)
    assert row(cart, "why") == counts(step="why", reached=1, sent=1, replied=1)
    assert row(cart, "reason") == counts(step="reason", reached=1)
    assert row(cart, "thanks_reason") == counts(step="thanks_reason", reached=1, sent=1)
    assert row(cart, "thanks") == counts(step="thanks", reached=1, sent=1)
    assert row(cart, "reminder") == counts(step="reminder", reached=2, sent=2)
    assert cart["conversions"] == {"orders": 3, "revenue": {"ARS": "120.50", "USD": "10.20"}}
    assert "variants" not in cart  # no flow records a split yet
    # Every move of every run, from its previous step (an exit from its last one).
    assert {(t["from"], t["to"]): t["count"] for t in cart["transitions"]} == {
        ("started", "interested"): 4,
        ("interested", "link"): 1, ("link", "thanks"): 1, ("thanks", "exit:purchased"): 1,
        ("interested", "why"): 1, ("why", "reason"): 1, ("reason", "thanks_reason"): 1,
        ("thanks_reason", "exit:declined"): 1,
        ("interested", "reminder"): 2, ("reminder", "exit:no_reply"): 2}

    survey = await service.api("GET", "/api/flows/post_purchase_survey/stats")
    assert survey["runs"] == {"started": 2, "active": 0,
                              "ended": {"no_answer": 1, "promoter": 1}}
    assert row(survey, "nps_question") == counts(step="nps_question", reached=2, sent=2,
                                                 replied=1)
    assert survey["conversions"] == {"orders": 0, "revenue": {}}
    # Declared steps are listed even when nothing reached them, in declared order.
    names = [r["step"] for r in survey["steps"]]
    assert names.index("nps_question") < names.index("nps") < names.index("review")
    assert row(survey, "nps_detail") == counts(step="nps_detail")


async def test_flows_list_and_period_and_errors(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await scripted_week(aiohttp_client, mongo_uri, db_name, fakes)
    listed = (await service.api("GET", "/api/flows"))["flows"]
    assert [f["name"] for f in listed] == ["cart_recovery", "post_purchase_survey"]
    cart = listed[0]
    assert cart["triggers"] == ["cart.abandoned"] and cart["marketing"] is True
    assert cart["description"] and len(cart["version"]) == 12

    today = (await Script(service).now()).date()
    # The last 30 days by default; a period before the script counts nothing.
    default = await service.api("GET", "/api/flows/cart_recovery/stats")
    assert (default["from"], default["to"]) == (
        (today - timedelta(days=29)).isoformat(), today.isoformat())
    before = (today - timedelta(days=60)).isoformat(), (today - timedelta(days=31)).isoformat()
    empty = await service.api("GET", f"/api/flows/cart_recovery/stats?from={before[0]}"
                                     f"&to={before[1]}")
    assert empty["runs"] == {"started": 0, "active": 0, "ended": {}}
    assert empty["conversions"] == {"orders": 0, "revenue": {}}
    # The last day alone: only cus_b's order (not converted) and the survey's end.
    last = await service.api("GET", f"/api/flows/cart_recovery/stats?from={today}&to={today}")
    assert last["runs"]["started"] == 0 and last["conversions"]["orders"] == 0

    for query, field in (("from=2026-13-01", "from"), ("to=yesterday", "to"),
                         ("from=2026-03-10&to=2026-03-01", "from"),
                         ("from=2020-01-01&to=2026-01-01", "from")):
        answer = await service.api("GET", f"/api/flows/cart_recovery/stats?{query}", expect=400)
        assert answer["error"].startswith(f"{field}:"), answer
    await service.api("GET", "/api/flows/nope/stats", expect=404)
    await service.api("GET", "/api/flows/nope/runs", expect=404)
    await service.api("GET", "/api/flows/cart_recovery/runs?limit=0", expect=400)
    await service.api("GET", "/api/flows/cart_recovery/runs?cursor=x", expect=400)
    response = await service.client.get("/api/flows")
    assert response.status == 401  # like every /api route


async def test_runs_say_where_each_customer_stopped_and_export_as_csv(
        aiohttp_client: Any, mongo_uri: str, db_name: str, fakes: Fakes) -> None:
    service = await scripted_week(aiohttp_client, mongo_uri, db_name, fakes)
    runs = (await service.api("GET", "/api/flows/cart_recovery/runs"))["runs"]
    stopped = {run["customer_id"]: (run["last_step"], run["outcome"]) for run in runs}
    assert stopped == {"cus_a": ("thanks", "purchased"), "cus_d": ("thanks_reason", "declined"),
                       "cus_b": ("reminder", "no_reply"), "cus_c": ("reminder", "no_reply")}
    assert all(run["id"].startswith("cart_recovery:") and run["started_at"] < run["ended_at"]
               for run in runs)
    assert [r["ended_at"] for r in runs] == sorted(r["ended_at"] for r in runs)

    by_outcome = await service.api("GET", "/api/flows/cart_recovery/runs?outcome=no_reply")
    assert sorted(r["customer_id"] for r in by_outcome["runs"]) == ["cus_b", "cus_c"]
    by_step = await service.api("GET", "/api/flows/cart_recovery/runs?step=thanks")
    assert [r["customer_id"] for r in by_step["runs"]] == ["cus_a"]
    both = await service.api("GET", "/api/flows/cart_recovery/runs?step=reminder"
                                    "&outcome=purchased")
    assert both["runs"] == []

    # Pages of one: every run once, in order, then no cursor.
    seen, cursor = [], ""
    for _ in range(10):
        page = await service.api("GET", f"/api/flows/cart_recovery/runs?limit=1{cursor}")
        seen += [r["customer_id"] for r in page["runs"]]
        if page["next"] is None:
            break
        cursor = f"&cursor={page['next']}"
    assert seen == [r["customer_id"] for r in runs]

    response = await service.client.get("/api/flows/cart_recovery/runs.csv", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(await response.text())))
    assert table[0] == ["id", "customer_id", "started_at", "ended_at", "last_step", "outcome"]
    assert sorted((r[1], r[4], r[5]) for r in table[1:]) == [
        ("cus_a", "thanks", "purchased"), ("cus_b", "reminder", "no_reply"),
        ("cus_c", "reminder", "no_reply"), ("cus_d", "thanks_reason", "declined")]
    survey = await service.client.get(
        "/api/flows/post_purchase_survey/runs.csv?outcome=promoter", headers=AUTH)
    rows = list(csv.reader(io.StringIO(await survey.text())))
    assert [r[1] for r in rows[1:]] == ["cus_f"]
