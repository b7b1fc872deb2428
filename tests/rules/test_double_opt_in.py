"""The double opt-in flow (rules/double_opt_in.py): a store's opt-in waits for the customer.

The answers, reminders and exits run on the pure harness (the real
decisions, in memory, virtual clock); the last test runs the whole service
over HTTP: a signed store event, the WhatsApp fake, a signed reply and the
consent proof.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.core import keywords
from bot.testing import PureHarness
from rules import inbox, welcome
from rules.double_opt_in import FLOW, TEXTS
from server import create_app
from tests.support.app import Fakes, Service, customer_event, make_settings
from tests.support.consent_rules import promo
from tests.support.signing import whatsapp_text_webhook

PHONE = "+5491122334455"
DAY = timedelta(days=1)


def pure(channels: tuple[str, ...] = ("sms",), consents: dict[str, Any] | None = None,
         flows: tuple[Any, ...] = (), locale: str = "es", **settings: Any) -> PureHarness:
    """A customer whose store opt-in on the channels waits for confirmation."""
    settings.setdefault("double_opt_in", ",".join(channels))
    h = PureHarness([FLOW, *flows], channels=channels, **settings)
    h.customer("cus_1", phone=PHONE, first_name="Ana", locale=locale,
               consents=consents if consents is not None else dict.fromkeys(channels, True))
    return h


def consent(h: PureHarness, channel: str = "sms") -> dict[str, Any]:
    return dict(h.customer_doc("cus_1")["consents"][channel])


def outcome(h: PureHarness) -> str:
    return str(h.runs(FLOW.name)[-1]["outcome"])


def request(locale: str = "es", channel: str = "SMS") -> str:
    return TEXTS[locale]["request"].format(first_name="Ana", channel=channel)


# ----------------------------------------------------------------- confirmation


@pytest.mark.parametrize(("said", "choice"), [("SI", None), ("sí, claro", None), ("1", None),
                                              ("", "yes"), ("Sí, quiero", None)])
def test_yes_grants_with_the_confirmation_as_evidence(said: str, choice: str | None) -> None:
    h = pure()
    asked = h.last("cus_1")
    assert (asked.channel, asked.text, asked.choices) == ("sms", request(), ["yes", "no"])
    assert consent(h)["state"] == "pending"
    [question] = h.messages("cus_1")
    assert question["marketing"] is False  # transactional: no consent is needed to ask

    h.advance(hours=3)
    h.reply("cus_1", said, choice=choice, channel="sms")
    granted = consent(h)
    assert (granted["state"], granted["source"], granted["at"]) == (
        "granted", "double_opt_in:sms", h.clock.now())
    entry = h.customer_doc("cus_1")["consent_ledger"][-1]
    assert entry["id"] == granted["entry"] == "cl2"
    answer = h.messages("cus_1")[-2]  # the customer's words, then our thanks
    assert entry["evidence"] == {"flow": FLOW.name, "run": "double_opt_in:1",
                                 "words": said or choice,
                                 "message_id": answer["_id"].split(":")[-1],
                                 "input": answer["_id"][len("in:"):]}
    assert h.last("cus_1").text == TEXTS["es"]["confirmed"].format(first_name="Ana",
                                                                   channel="SMS")
    assert outcome(h) == "confirmed"
    h.advance(days=14)
    assert len(h.to("cus_1")) == 2  # the question and the thanks: no reminder


def test_no_revokes_and_says_how_to_come_back() -> None:
    h = pure(locale="pt")
    assert h.last("cus_1").text == request("pt")
    h.reply("cus_1", "não", channel="sms")
    revoked = consent(h)
    assert (revoked["state"], revoked["source"]) == ("revoked", "double_opt_in:sms")
    assert h.last("cus_1").text == TEXTS["pt"]["declined"].format(channel="SMS")
    assert outcome(h) == "declined"
    h.advance(days=14)
    assert len(h.to("cus_1")) == 2


def test_a_message_that_is_no_answer_goes_to_the_inbox_and_changes_nothing() -> None:
    h = pure(flows=(inbox.FLOW,))
    h.reply("cus_1", "¿cuándo llega mi pedido?", channel="sms")
    assert consent(h)["state"] == "pending"
    assert h.active_flows("cus_1").get(FLOW.name) == "request"
    assert h.messages("cus_1")[-1]["flow"] == inbox.FLOW.name  # the inbox answered


# -------------------------------------------------------------- reminders, expiry


def test_reminders_at_two_days_and_one_week_then_the_opt_in_expires() -> None:
    h = pure(locale="en")
    start = h.clock.now()
    h.advance(days=2, seconds=-1)
    assert len(h.to("cus_1")) == 1
    h.advance(seconds=1)
    reminder = h.last("cus_1")
    assert (reminder.at, reminder.text, reminder.choices) == (
        start + 2 * DAY, TEXTS["en"]["reminder"].format(channel="SMS"), ["yes", "no"])
    h.advance(days=5, seconds=-1)
    assert len(h.to("cus_1")) == 2
    h.advance(seconds=1)
    last = h.last("cus_1")
    assert (last.at, last.text) == (start + 7 * DAY,
                                    TEXTS["en"]["last_reminder"].format(channel="SMS"))
    h.advance(days=2, seconds=-1)
    assert consent(h)["state"] == "pending"
    h.advance(seconds=1)
    expired = consent(h)
    assert (expired["state"], expired["source"], expired["at"]) == (
        "revoked", "double_opt_in:expired", start + 9 * DAY)
    assert h.customer_doc("cus_1")["consent_ledger"][-1]["evidence"] == {
        "flow": FLOW.name, "run": "double_opt_in:1"}
    assert len(h.to("cus_1")) == 3  # closed silently
    assert outcome(h) == "expired"
    assert [s["step"] for s in h.runs(FLOW.name)[-1]["history"]] == [
        "started", "request", "reminder", "last_reminder", "expired"]


def test_an_answer_after_a_reminder_still_counts() -> None:
    h = pure()
    h.advance(days=3)
    h.reply("cus_1", "si", channel="sms")
    assert consent(h)["state"] == "granted"
    h.advance(days=10)
    assert str([m.text for m in h.to("cus_1")][-1]).startswith("¡Gracias, Ana!")


def test_the_timings_are_settings() -> None:
    h = pure(double_opt_in_reminder_days=1, double_opt_in_last_reminder_days=3,
             double_opt_in_expire_days=0.5)
    start = h.clock.now()
    h.advance(days=4)
    assert [m.at - start for m in h.to("cus_1")] == [timedelta(0), DAY, 3 * DAY]
    assert consent(h)["at"] == start + 3.5 * DAY


# -------------------------------------------------------- keywords while pending


def test_stop_while_pending_revokes_at_once_and_ends_the_reminders() -> None:
    h = pure()
    h.reply("cus_1", "STOP", channel="sms")
    stopped = consent(h)
    assert (stopped["state"], stopped["source"]) == ("revoked", "keyword:sms")
    h.advance(days=14)
    assert [m.text for m in h.to("cus_1")] == [request(), keywords.STOPPED_TEXT["es"]]
    assert outcome(h) == "settled"


def test_start_while_pending_grants_at_once() -> None:
    h = pure(channels=("whatsapp",))
    h.reply("cus_1", "ALTA", channel="whatsapp")
    granted = consent(h, "whatsapp")
    assert (granted["state"], granted["source"]) == ("granted", "keyword:whatsapp")
    assert h.last("cus_1").text == keywords.STARTED_TEXT["es"]
    h.advance(days=14)
    assert len(h.to("cus_1")) == 2  # the question and the welcome back: no reminder
    assert outcome(h) == "settled"


# ---------------------------------------------------------------- never marketing


def test_never_marketing_while_pending() -> None:
    h = pure(channels=("whatsapp", "sms"), consents={"whatsapp": True, "sms": True},
             flows=(promo.FLOW,), double_opt_in="whatsapp")
    assert (consent(h, "whatsapp")["state"], consent(h)["state"]) == ("pending", "granted")
    assert h.last("cus_1").template == "double_opt_in_request"  # outside the 24 h window

    h.event("product.viewed", "cus_1", product_id="p1")
    offers = {m["channel"]: m for m in h.messages("cus_1") if m.get("flow") == promo.FLOW.name}
    assert offers["whatsapp"]["status"] == "skipped"
    assert offers["whatsapp"]["error"] == "no marketing consent on whatsapp"
    assert offers["sms"]["status"] == "queued"

    h.reply("cus_1", "SI", channel="whatsapp")
    assert consent(h, "whatsapp")["state"] == "granted"
    h.event("product.viewed", "cus_1", product_id="p2")
    latest = {m["channel"]: m["status"] for m in h.messages("cus_1")
              if m.get("flow") == promo.FLOW.name}  # the last offer per channel
    assert (latest["whatsapp"], latest["sms"]) == ("queued", "queued")


# ------------------------------------------------------------ what starts the flow


def test_a_store_pending_value_is_confirmed_without_the_setting() -> None:
    h = pure(consents={"sms": "pending"}, double_opt_in="")
    assert consent(h)["state"] == "pending"
    assert h.last("cus_1").text == request()
    # Without the setting, a store's plain grant is a grant, and nothing is asked.
    h = pure(double_opt_in="")
    assert consent(h)["state"] == "granted"
    assert h.to("cus_1") == []


def test_a_pending_opt_in_never_overrides_a_later_stop() -> None:
    h = pure(double_opt_in="")
    signed_up = h.clock.now()
    h.advance(hours=1)
    h.reply("cus_1", "STOP", channel="sms")
    h.advance(minutes=5)  # the store reports an opt-in given before the STOP
    h.event("customer.updated", "cus_1", _customer={
        "consents": {"sms": "pending"}, "consent_at": signed_up.isoformat()})
    assert (consent(h)["state"], consent(h)["source"]) == ("revoked", "keyword:sms")
    late = h.customer_doc("cus_1")["consent_ledger"][-1]
    assert (late["state"], late["superseded"]) == ("pending", True)  # kept: it happened
    assert [m.text for m in h.to("cus_1")] == [keywords.STOPPED_TEXT["es"]]  # nothing asked


def test_two_pending_channels_are_confirmed_one_by_one() -> None:
    h = pure(channels=("whatsapp", "sms"))
    assert sorted(m.channel for m in h.to("cus_1")) == ["sms", "whatsapp"]
    h.reply("cus_1", "si", channel="sms")
    assert (consent(h)["state"], consent(h, "whatsapp")["state"]) == ("granted", "pending")
    assert FLOW.name in h.active_flows("cus_1")
    h.advance(days=2)
    assert [m.channel for m in h.to("cus_1")][-1] == "whatsapp"  # the reminder: only there
    h.reply("cus_1", "no", channel="whatsapp")
    assert consent(h, "whatsapp")["state"] == "revoked"
    assert outcome(h) == "declined"


def test_a_store_repeating_its_grant_after_a_no_does_not_ask_again() -> None:
    h = pure()
    h.reply("cus_1", "no", channel="sms")
    h.advance(days=1)
    h.event("order.placed", "cus_1", _customer={"consents": {"sms": True}}, order_id="o1")
    assert consent(h)["state"] == "revoked"
    assert len(h.to("cus_1")) == 2
    # A new opt-in with its own time (ticked again at the store) is asked again.
    now = h.clock.now()
    h.event("customer.updated", "cus_1",
            _customer={"consents": {"sms": True}, "consent_at": now.isoformat()})
    assert consent(h)["state"] == "pending"
    assert h.last("cus_1").text == request()


# ---------------------------------------------------------------- over HTTP


async def test_double_opt_in_over_http(aiohttp_client: Any, mongo_uri: str, db_name: str,
                                       fakes: Fakes) -> None:
    """Store grant -> pending -> the question at the WhatsApp fake -> "SI" -> granted."""
    settings = make_settings(mongo_uri, db_name, fakes, double_opt_in="whatsapp")
    service = Service(await aiohttp_client(create_app(settings)))
    now = await service.advance(0)
    await service.event(customer_event("evt_signup", "customer.created", now))
    await service.advance(0)
    customer = await service.api("GET", "/api/customers/cus_1")
    assert customer["consents"]["whatsapp"]["state"] == "pending"
    [asked] = fakes.whatsapp.sent[PHONE.lstrip("+")]
    assert asked["type"] == "template"  # the customer has not written: outside the window
    assert asked["template"]["name"] == "double_opt_in_request"

    await service.whatsapp(whatsapp_text_webhook("SI", message_id="wamid.dopt-yes"))
    await service.advance(0)
    thanks = fakes.whatsapp.sent[PHONE.lstrip("+")][-1]
    assert thanks["type"] == "text" and thanks["text"]["body"].startswith("¡Gracias, Ana!")

    proof = await service.api("GET", "/api/customers/cus_1/consent")
    whatsapp = proof["channels"]["whatsapp"]
    pending, confirmed = whatsapp["ledger"]
    assert (pending["state"], pending["source"]) == ("pending", "generic:customer.created")
    assert pending["evidence"]["event_id"] == "evt_signup"
    assert (confirmed["state"], confirmed["source"]) == ("granted", "double_opt_in:whatsapp")
    assert confirmed["evidence"]["words"] == "SI"
    assert confirmed["evidence"]["message_id"] == "wamid.dopt-yes"
    assert confirmed["evidence"]["flow"] == "double_opt_in"
    assert (whatsapp["state"], whatsapp["entry"]) == ("granted", confirmed["id"])
    answered = datetime.fromisoformat(confirmed["at"].replace("Z", "+00:00"))
    assert answered >= datetime.fromisoformat(now.replace("Z", "+00:00"))

    # A bad consent value is refused, naming the field.
    bad = customer_event("evt_bad", "customer.updated", now)
    bad["customer"]["consents"] = {"whatsapp": "maybe"}
    answer = await service.event(bad, expect=400)
    assert 'customer.consents.whatsapp: Input should be a valid boolean or "pending"' in str(
        answer)


def test_a_confirmed_opt_in_starts_the_welcome_series_the_pending_sign_up_could_not() -> None:
    h = pure(flows=(welcome.FLOW,))
    assert [m.text for m in h.to("cus_1")] == [request()]  # pending: no welcome yet
    h.reply("cus_1", "si", channel="sms")
    texts = [str(m.text) for m in h.to("cus_1")]
    assert len(texts) == 3 and "bienvenida" in texts[-1]  # confirmed, then the welcome
    assert "welcome" in h.customer_doc("cus_1")["flows"]
