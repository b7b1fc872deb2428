"""Derived triggers through the real runtime: abandoned carts, birthdays, inactivity.

Driven with ``bot.testing.FlowHarness`` and three tiny flows of this module
that send one SMS when their trigger fires, so each test sees exactly when
(and how often) the service derived the trigger.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core import waits
from bot.core.commands import exit_flow, send
from bot.core.customers import add_keys, new_customer
from bot.core.flows import Flow
from bot.core.lifecycle import TriggerPolicy, schedule_lifecycle
from bot.core.policy import SendPolicy, not_before
from bot.flows import m, ruleset, when_all
from bot.testing import FlowHarness
from tests.support.monitoring import CommandLog

CART = Flow("se_cart", triggers=("cart.abandoned",))

with ruleset("se_cart"):

    @when_all(m.type == "cart.abandoned")
    def abandoned(c):
        send(c, f"cart {c.m.checkout_id}")
        exit_flow(c, "sent")


BIRTHDAY = Flow("se_birthday", triggers=("customer.birthday",))

with ruleset("se_birthday"):

    @when_all(m.type == "customer.birthday")
    def birthday(c):
        send(c, "feliz cumple")
        exit_flow(c, "sent")


INACTIVE = Flow("se_inactive", triggers=("customer.inactive",))

with ruleset("se_inactive"):

    @when_all(m.type == "customer.inactive")
    def inactive(c):
        send(c, "te extrañamos")
        exit_flow(c, "sent")


PHONE = "+5491122334455"
SMS_OK = {"sms": True}
ABANDON = 1800  # CART_ABANDON_AFTER for these tests (the default is 3600)


def checkout(checkout_id: str = "k1") -> dict[str, Any]:
    return {"checkout_id": checkout_id, "recovery_url": f"https://tienda.example.com/r/{checkout_id}",
            "total": 59000.0, "currency": "ARS",
            "items": [{"sku": "MATE", "title": "Mate", "quantity": 1, "price": 59000.0}]}


def harness(mongo_uri: str, flows: list[Flow], **settings: Any) -> FlowHarness:
    return FlowHarness(mongo_uri, flows, channels=("sms",), cart_abandon_after=ABANDON,
                       **settings)


async def cart_waits(h: FlowHarness, customer_id: str) -> list[str]:
    doc = await h.customer_doc(customer_id)
    return [w["id"] for w in doc["waits"] if w["id"].startswith("cart:")]


# --- cart.abandoned -------------------------------------------------------------------


async def test_abandoned_checkout_fires_the_cart_flow_once_after_the_setting(
        mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        started = h.clock.now()
        await h.event("checkout.started", "c1", **checkout("k1"))
        assert await cart_waits(h, "c1") == ["cart:k1"]
        await h.advance(ABANDON - 1)
        assert h.to("c1") == []
        await h.advance(1)
        [sent] = h.to("c1")
        assert (sent.text, sent.channel, sent.at) == ("cart k1", "sms",
                                                      started + timedelta(seconds=ABANDON))
        await h.advance(days=3)
        assert len(h.to("c1")) == 1
        doc = await h.customer_doc("c1")
        assert doc["checkouts"]["k1"]["abandoned"] is True
        assert await cart_waits(h, "c1") == []


async def test_completed_checkout_never_starts_the_cart_flow(mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        await h.event("checkout.started", "c1", **checkout("k1"))
        await h.advance(ABANDON - 60)
        await h.event("order.placed", "c1", order_id="o-1", checkout_id="k1")
        assert await cart_waits(h, "c1") == []
        await h.advance(days=3)
        assert h.to("c1") == []
        doc = await h.customer_doc("c1")
        assert doc["checkouts"]["k1"]["ordered"] is True
        assert "se_cart" not in doc["flow_history"]
        assert await h.active_flows("c1") == {}


async def test_an_order_for_another_checkout_does_not_save_this_cart(mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        await h.event("checkout.started", "c1", **checkout("k1"))
        await h.event("order.placed", "c1", order_id="o-9", checkout_id="k9")
        await h.event("order.placed", "c1", order_id="o-10")  # no checkout at all
        await h.advance(ABANDON)
        assert [s.text for s in h.to("c1")] == ["cart k1"]


async def test_a_checkout_already_older_than_the_setting_is_abandoned_at_once(
        mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        arrived = h.clock.now()
        await h.event("checkout.started", "c1", occurred_at=arrived - timedelta(seconds=ABANDON),
                      **checkout("k1"))
        [sent] = h.to("c1")  # no time has passed
        assert (sent.text, sent.at) == ("cart k1", arrived)
        assert await cart_waits(h, "c1") == []
        # The store retries the same stale checkout (checkouts/update): still once.
        await h.event("checkout.started", "c1", occurred_at=arrived - timedelta(hours=2),
                      **checkout("k1"))
        await h.advance(days=1)
        assert len(h.to("c1")) == 1


async def test_a_late_checkout_whose_order_is_known_stays_silent(mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        now = h.clock.now()
        await h.event("order.placed", "c1", order_id="o-1", checkout_id="k2",
                      occurred_at=now - timedelta(minutes=5))
        await h.event("checkout.started", "c1", occurred_at=now - timedelta(hours=3),
                      **checkout("k2"))
        await h.event("checkout.started", "c1", **checkout("k2"))  # a fresh one: known too
        await h.advance(days=1)
        assert h.to("c1") == []
        assert await cart_waits(h, "c1") == []


async def test_checkout_activity_restarts_the_countdown(mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents=SMS_OK)
        await h.event("checkout.started", "c1", **checkout("k1"))
        await h.advance(ABANDON - 60)
        touched = h.clock.now()
        await h.event("checkout.started", "c1", **checkout("k1"))  # checkouts/update
        await h.advance(60)
        assert h.to("c1") == []
        await h.advance(ABANDON)
        [sent] = h.to("c1")
        assert sent.at == touched + timedelta(seconds=ABANDON)


async def test_without_consent_the_cart_flow_sends_nothing(mongo_uri: str) -> None:
    async with harness(mongo_uri, [CART]) as h:
        await h.customer("c1", phone=PHONE, consents={"sms": False})
        await h.event("checkout.started", "c1", **checkout("k1"))
        await h.advance(ABANDON)
        assert h.to("c1") == []


# --- customer.birthday ----------------------------------------------------------------


@pytest.mark.parametrize(("zone", "birthday", "fires_utc"), [
    # NZ daylight time (UTC+13): 10:00 on 10 March is 21:00 UTC on 9 March.
    ("Pacific/Auckland", "--03-10", datetime(2026, 3, 9, 21, 0, tzinfo=UTC)),
    # After NZ daylight time ends (5 April), UTC+12: 22:00 UTC the day before.
    ("Pacific/Auckland", "1990-04-10", datetime(2026, 4, 9, 22, 0, tzinfo=UTC)),
    # Tokyo (UTC+9): 01:00 UTC the same day.
    ("Asia/Tokyo", "--03-10", datetime(2026, 3, 10, 1, 0, tzinfo=UTC)),
    # Los Angeles, the day after DST starts (UTC-7): 17:00 UTC.
    ("America/Los_Angeles", "--03-09", datetime(2026, 3, 9, 17, 0, tzinfo=UTC)),
])
async def test_birthday_fires_at_ten_local_across_the_utc_date_line(
        mongo_uri: str, zone: str, birthday: str, fires_utc: datetime) -> None:
    async with harness(mongo_uri, [BIRTHDAY]) as h:
        await h.customer("b1", phone=PHONE, consents=SMS_OK, timezone=zone, birthday=birthday)
        await h.advance((fires_utc - h.clock.now()).total_seconds() - 1)
        assert h.to("b1") == []  # not the day before, nor at 10:00 UTC of the day before
        await h.advance(1)
        [sent] = h.to("b1")
        assert sent.at == fires_utc
        local = sent.at.astimezone(ZoneInfo(zone))
        assert (local.month, local.day, local.hour, local.minute) == (
            int(birthday[-5:-3]), int(birthday[-2:]), 10, 0)
        await h.advance(days=2)  # not again at 10:00 UTC of the day
        assert len(h.to("b1")) == 1
        doc = await h.customer_doc("b1")
        [renewed] = [w for w in doc["waits"] if w["id"] == "birthday"]
        assert renewed["due"].astimezone(ZoneInfo(zone)).replace(tzinfo=None) == datetime(
            2027, local.month, local.day, 10, 0)


async def test_birthday_counts_the_local_date_not_the_utc_date(mongo_uri: str) -> None:
    """At 20:00 UTC on 9 March it is already 10 March, 09:00, in Auckland."""
    start = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    async with harness(mongo_uri, [BIRTHDAY], start=start) as h:
        await h.customer("today", phone=PHONE, consents=SMS_OK, timezone="Pacific/Auckland",
                         birthday="--03-10")
        await h.customer("passed", phone="+5491155667788", consents=SMS_OK,
                         timezone="Pacific/Auckland", birthday="--03-09")
        await h.advance(hours=1)
        [sent] = h.to("today")
        assert sent.at == datetime(2026, 3, 9, 21, 0, tzinfo=UTC)
        await h.advance(days=2)
        assert h.to("passed") == []  # 9 March is over in Auckland, though not in UTC
        doc = await h.customer_doc("passed")
        [wait] = [w for w in doc["waits"] if w["id"] == "birthday"]
        assert wait["due"] == datetime(2027, 3, 8, 21, 0, tzinfo=UTC)  # 10:00 NZDT, 9 Mar 2027


async def test_a_timezone_learnt_later_moves_the_birthday(mongo_uri: str) -> None:
    async with harness(mongo_uri, [BIRTHDAY]) as h:
        await h.customer("b1", phone=PHONE, consents=SMS_OK, birthday="--03-10")
        await h.event("customer.updated", "b1", _customer={"timezone": "Pacific/Auckland"})
        await h.advance(days=60)
        [sent] = h.to("b1")
        assert sent.at == datetime(2026, 3, 9, 21, 0, tzinfo=UTC)


def test_a_stored_time_zone_no_file_can_name_counts_as_the_default() -> None:
    """``ZoneInfo`` raised OSError for a 5,000-character name or a directory ("America")."""
    now = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 20:00 in Buenos Aires, the default
    for zone in ("x" * 5000, "America"):
        doc: dict[str, Any] = {"profile": {"timezone": zone, "birthday": "--03-10"}}
        schedule_lifecycle(doc, now, TriggerPolicy())
        [wait] = [w for w in doc["waits"] if w["id"] == "birthday"]
        assert wait["due"] == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 10:00 in Buenos Aires
        late = now + timedelta(hours=2)  # 22:00 there: quiet until 09:00
        assert not_before(doc, late, SendPolicy()) == datetime(
            2026, 3, 2, 12, 0, tzinfo=UTC)


# --- customer.inactive ----------------------------------------------------------------


async def test_inactivity_counts_from_the_last_order_and_fires_once_per_lull(
        mongo_uri: str) -> None:
    async with harness(mongo_uri, [INACTIVE], inactive_after_days=INACTIVE_DAYS) as h:
        await h.customer("i1", phone=PHONE, consents=SMS_OK)
        await h.advance(days=30)
        ordered = h.clock.now()
        await h.event("order.placed", "i1", order_id="o-1")
        await h.advance(days=INACTIVE_DAYS - 30 + 1)  # 90 days after sign-up: not inactive
        assert h.to("i1") == []
        await h.advance((ordered + timedelta(days=INACTIVE_DAYS) - h.clock.now()).total_seconds())
        [sent] = h.to("i1")
        assert sent.at == ordered + timedelta(days=INACTIVE_DAYS)
        await h.advance(days=60)
        assert len(h.to("i1")) == 1  # not again until another order


# --- customer.inactive: the sweep over 10,000 customers --------------------------------


CUSTOMERS = 10_000
DUE = 10
INACTIVE_DAYS = 90


def lifecycle_customer(n: int, created: datetime) -> dict[str, Any]:
    """A customer document as the service keeps it, with its inactivity and sunset waits."""
    phone = f"+54911{n:08d}"
    doc = new_customer([f"store:s{n}", f"phone:{phone}"], created)
    add_keys(doc, [])
    doc["profile"] = {"first_name": f"Cliente {n}"}
    doc["consents"] = {"sms": {"state": "granted", "source": "test", "at": created}}
    doc["consent_ledger"] = [{"channel": "sms", "state": "granted", "source": "test",
                              "at": created, "recorded_at": created}]
    inactive_due = created + timedelta(days=INACTIVE_DAYS)
    waits.schedule(doc, "inactive", inactive_due,
                   {"type": "customer.inactive", "for": inactive_due.isoformat()})
    sunset_due = created + timedelta(days=180)
    waits.schedule(doc, "sunset", sunset_due,
                   {"type": "customer.sunset", "for": sunset_due.isoformat()})
    return doc


async def test_inactivity_sweep_over_ten_thousand_customers_touches_only_the_due(
        mongo_uri: str) -> None:
    listener = CommandLog()
    async with FlowHarness(mongo_uri, [INACTIVE], channels=("sms",),
                           listeners=[listener]) as h:
        now = h.clock.now()
        due_every = CUSTOMERS // DUE
        docs = []
        for n in range(CUSTOMERS):
            if n % due_every == 7:  # last order (sign-up) 90 days and a bit ago: due now
                created = now - timedelta(days=INACTIVE_DAYS, minutes=n % 50 + 1)
            else:  # active within the last 89 days: not due
                created = now - timedelta(days=n % 89, hours=1)
            docs.append(lifecycle_customer(n, created))
        due_ids = {d["_id"] for d in docs if d["next_due"] <= now}
        assert len(due_ids) == DUE
        for first in range(0, CUSTOMERS, 1000):  # bulk, in chunks the embedded server likes
            await h.database.customers.insert_many(docs[first:first + 1000], ordered=False)
        del docs

        # The sweep's query runs on the next_due index.
        plan = await h.database.customers.find({"next_due": {"$lte": now}},
                                               {"_id": 1}).explain()
        assert "IXSCAN" in str(plan) and "'next_due'" in str(plan), plan
        assert "COLLSCAN" not in str(plan)

        listener.commands.clear()
        assert await h.runtime.processor.due_pass() == DUE
        on_customers = listener.on("customers")
        commands = Counter(e.command_name for e in on_customers)
        # One sweep query, then for all the due customers together: one write
        # taking their leases, one read of their documents, one commit write.
        assert commands == {"find": 2, "update": 2}, commands
        finds = [e.command["filter"] for e in on_customers if e.command_name == "find"]
        assert [set(f) for f in finds].count({"next_due"}) == 1
        read = {i for f in finds if "_id" in f for i in f["_id"]["$in"]}
        written = [u["q"]["_id"] for e in on_customers if e.command_name == "update"
                   for u in e.command["updates"]]
        assert read == set(written) == due_ids
        assert len(written) == 2 * DUE  # each document written twice: lease, commit

        # Nobody else's document changed; each due one was written once.
        assert await h.database.customers.count_documents({"v": 0}) == CUSTOMERS - DUE
        assert await h.database.customers.count_documents(
            {"_id": {"$in": sorted(due_ids)}, "v": 1}) == DUE

        await h.runtime.drain()
        assert len(h.sent) == DUE
        assert {s.text for s in h.sent} == {"te extrañamos"}
        phones = {s.to for s in h.sent}
        assert len(phones) == DUE
        fired = await h.database.customers.find({"_id": {"$in": sorted(due_ids)}}).to_list(None)
        assert {d["phone"] for d in fired} == phones
        for doc in fired:  # fired once: the wait is gone and will not come back
            assert "inactive" not in [w["id"] for w in doc["waits"]]
            assert doc["next_due"] > now
        assert await h.runtime.processor.due_pass() == 0


async def test_the_sweeps_lease_and_commit_read_only_the_due_customers_document(
        mongo_uri: str) -> None:
    listener = CommandLog()
    async with FlowHarness(mongo_uri, [INACTIVE], channels=("sms",),
                           listeners=[listener]) as h:
        now = h.clock.now()
        docs = [lifecycle_customer(n, now - timedelta(days=INACTIVE_DAYS + 1 if n == 3 else 1))
                for n in range(2000)]
        await h.database.customers.insert_many(docs, ordered=False)
        listener.commands.clear()
        assert await h.runtime.processor.due_pass() == 1
        filters = [u["q"] for e in listener.on("customers") if e.command_name == "update"
                   for u in e.command["updates"]]
        filters += [e.command["filter"] for e in listener.on("customers")
                    if e.command_name == "find" and "_id" in e.command["filter"]]
        assert len(filters) == 3
        examined = []
        for query in filters:
            stats = await h.database.db.command(
                "explain", {"find": "customers", "filter": query}, verbosity="executionStats")
            examined.append(stats["executionStats"]["totalDocsExamined"])
        assert examined == [1, 1, 1], examined  # the lease, the commit, the read


RESTOCK = Flow("se_restock", triggers=("product.back_in_stock",), marketing=False)

with ruleset("se_restock"):

    @when_all(m.type == "product.back_in_stock")
    def restocked(c):
        send(c, f"Volvió {c.m.product_id}")
        exit_flow(c, "told")


async def test_back_in_stock_fans_out_to_everyone_who_viewed_the_product(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [RESTOCK], channels=("sms",)) as h:
        for n, product in enumerate(["p-1", "p-2", "p-1"]):
            await h.customer(f"viewer{n}", phone=f"+549110000000{n}")
            await h.event("product.viewed", f"viewer{n}", product_id=product)
        await h.customer("store", phone="+5491100000099")
        await h.event("product.back_in_stock", "store", product_id="p-1")
        await h.runtime.drain()
        told = sorted(s.to for s in h.sent)
        assert told == ["+5491100000000", "+5491100000002", "+5491100000099"]
        await h.event("product.back_in_stock", "store", product_id="p-1")
        assert len(h.sent) == 6  # a new restock event tells them again, once each
