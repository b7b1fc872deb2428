"""A run finishes on the flow version it started on; new runs take the current one.

The earlier version is a real source: today's ``rules/cart_recovery.py``
with its reminder reworded, loaded from a ``flow_versions`` document as the
service loads it (its rules registered as ``cart_recovery@<version>``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.stats import flow_version
from bot.runtime.flow_versions import VersionLoadError, load_version
from bot.testing import PureHarness
from rules import cart_recovery
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings

SOURCE = Path(cart_recovery.__file__).read_text()
NEW_REMINDER = "Tu carrito sigue guardado: {url}"
OLD_REMINDER = "Tu carrito todavía te espera: {url}"
URL = "https://shop.example/r/k1"
PHONES = {"ana": "+5491100000001", "beto": "+5491100000002"}
CART: dict[str, Any] = {"checkout_id": "k1", "recovery_url": URL, "total": "25.00",
                        "currency": "ARS", "items": []}


def stored_version(source: str, **fields: Any) -> dict[str, Any]:
    version = hashlib.sha256(source.encode()).hexdigest()[:12]
    return {"flow": "cart_recovery", "version": version, "module": "rules.cart_recovery",
            "source": source, **fields}


def old_version() -> dict[str, Any]:
    assert SOURCE.count(NEW_REMINDER) == 1
    return stored_version(SOURCE.replace(NEW_REMINDER, OLD_REMINDER))


def shopper(h: PureHarness, name: str, phone: str) -> None:
    h.customer(name, phone=phone, consents={"sms": True}, first_name=name.title())
    h.event("checkout.started", name, **CART)


# ------------------------------------------------------------------ decisions


def test_a_run_goes_on_with_the_version_it_started_on() -> None:
    old = load_version(old_version())
    assert old.version == old_version()["version"] != flow_version(cart_recovery.FLOW)
    h = PureHarness([old], channels=("sms",))
    shopper(h, "ana", "+5491100000001")
    h.advance(hours=2)  # her question went, on the old version
    run = h.customer_doc("ana")["flows"]["cart_recovery"]
    assert run["version"] == old.version

    h.deploy([cart_recovery.FLOW], versions=[old])  # the new version goes live
    shopper(h, "beto", "+5491100000002")
    h.advance(days=1, hours=2)  # both reminders are due
    assert OLD_REMINDER.split(":")[0] in str(h.last("ana").text)
    assert NEW_REMINDER.split(":")[0] in str(h.last("beto").text)
    assert h.customer_doc("beto")["flows"]["cart_recovery"]["version"] == flow_version(
        cart_recovery.FLOW)


def test_without_its_version_a_run_goes_on_with_the_current_one() -> None:
    old = load_version(old_version())
    h = PureHarness([old], channels=("sms",))
    shopper(h, "ana", "+5491100000001")
    h.advance(hours=2)
    h.deploy([cart_recovery.FLOW])  # FLOW_VERSION_DAYS=0, or its source was not kept
    h.advance(days=1)
    assert NEW_REMINDER.split(":")[0] in str(h.last("ana").text)


def test_a_version_loads_once_per_process() -> None:
    assert load_version(old_version()) is load_version(old_version())


@pytest.mark.parametrize(("doc", "why"), [
    ({**old_version(), "version": "0123456789ab"}, "does not hash to its version"),
    (stored_version(SOURCE.replace("with ruleset(FLOW.name):", "with ruleset('other'):")),
     "the source defines no ruleset 'cart_recovery'"),
    (stored_version(SOURCE + "\nraise ValueError('broken on purpose')\n"),
     "ValueError: broken on purpose"),
    (stored_version("from rules._gone import x\n"), "ModuleNotFoundError"),
    ({**old_version(), "version": "feedfacecafe", "source": None}, "no source kept"),
])
def test_a_version_that_cannot_run_is_refused_and_named(doc: dict[str, Any], why: str) -> None:
    with pytest.raises(VersionLoadError) as error:
        load_version(doc)
    assert str(error.value).startswith(f"cart_recovery {doc['version']}: ")
    assert why in str(error.value)


# ---------------------------------------------------------------- the service


@pytest.mark.parametrize(("days", "ana_gets"), [(30, OLD_REMINDER), (0, NEW_REMINDER)])
async def test_the_service_loads_the_earlier_versions_its_runs_started_on(
        aiohttp_client: Any, mongo_uri: str, db_name: str, db: Any, fakes: Fakes, days: float,
        ana_gets: str) -> None:
    """A worker of the earlier version started Ana's run; after the deploy her reminder
    is that version's (unless ``FLOW_VERSION_DAYS=0``), and a run started now gets today's."""
    old = old_version()
    yesterday = datetime.now(UTC) - timedelta(days=1)  # the virtual clock starts at now
    await db.flow_versions.insert_one(
        {**old, "_id": f"cart_recovery|{old['version']}", "first_seen": yesterday,
         "last_seen": yesterday})
    service = Service(await aiohttp_client(create_app(make_settings(
        mongo_uri, db_name, fakes, flows="cart_recovery", cart_abandon_after=3600,
        flow_version_days=days))))
    now = await service.advance(0)
    for name, phone in PHONES.items():
        await service.event(customer_event(f"{name}-1", "checkout.started", now,
                                           customer_id=name, phone=phone,
                                           consents={"sms": True}, **CART))
    await service.advance(2 * 3600)
    assert {to: len(sent) for to, sent in fakes.twilio.sent.items()} == {
        phone: 1 for phone in PHONES.values()}  # the questions
    # Ana's run was started by a worker of the earlier version: what its commit wrote
    # (a commit moves the document's version ``v`` on, as every worker's does).
    changed = await db.customers.update_one(
        {"keys": "store:ana"},
        {"$set": {"flows.cart_recovery.version": old["version"]}, "$inc": {"v": 1}})
    assert changed.modified_count == 1
    await service.advance(26 * 3600)
    last = {to: sent[-1]["body"] for to, sent in fakes.twilio.sent.items()}
    assert ana_gets.split(":")[0] in last[PHONES["ana"]]
    assert NEW_REMINDER.split(":")[0] in last[PHONES["beto"]]


def test_a_declared_version_is_loaded_by_its_name() -> None:
    source = SOURCE.replace('FLOW = Flow(\n    "cart_recovery",',
                            'FLOW = Flow(\n    "cart_recovery", version="spring",')
    assert source != SOURCE
    flow = load_version({**stored_version(source), "version": "spring"})
    assert (flow.version, flow.ruleset_name) == ("spring", "cart_recovery@spring")
    assert flow_version(flow) == "spring"
