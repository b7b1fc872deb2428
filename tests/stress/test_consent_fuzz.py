"""The consent fuzz of ``make stress`` inside ``make test`` (``stress/consent.py``).

A fixed seed and 30 interleavings of 12 random steps each, so every run
plays the same sequences: store consents stamped in the past, present and
future, Shopify SMS consent, STOP/START on every channel, confirmations,
sunset answers and no-answers, takeovers, and marketing attempts, each
checked against the reference model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stress import consent
from stress.inprocess import running
from tests.support.app import customer_event
from tests.support.signing import PHONE, whatsapp_text_webhook


async def test_random_interleavings_never_market_after_an_opt_out_and_ledger_every_change(
        mongo_uri: str) -> None:
    count, steps = consent.SHORT
    tally = await consent.interleavings(mongo_uri, count, steps, seed=consent.SEED)
    assert tally.failures() == []
    assert tally.interleavings == count
    assert tally.marketing_checked > 50  # the promo flow really tried to send
    for kind in ("store", "shopify", "stop", "start", "confirm", "sunset_no", "takeover",
                 "promo", "advance"):
        assert tally.steps[kind] > 0, f"no {kind} step in {dict(tally.steps)}"


def test_the_model_counts_a_store_consent_no_later_than_what_that_store_stamped_before() -> None:
    """The store-clock rule as the model has it: a future stamp counts as of its arrival, and
    a later repeat of it as of that first arrival, so it cannot beat a STOP in between."""
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    model = consent.Model(now=t0)
    ahead = t0 + timedelta(hours=1)
    model.store_consent("generic", "generic:x", {"sms": True}, ahead)
    model.now = t0 + timedelta(minutes=10)
    model.stop("sms")
    model.now = t0 + timedelta(minutes=20)
    model.store_consent("generic", "generic:x", {"sms": True}, ahead)  # the store repeats it
    assert not model.granted("sms")
    assert model.ledger[-1] == ("sms", "granted", "generic:x", t0, True)  # kept, superseded


def test_the_model_stops_explicit_words_at_once_and_asks_about_ambiguous_ones() -> None:
    """The opt-out rule as the model has it: an explicit stop applies at once on every
    channel, an ambiguous one at once only on SMS, and either kind while its channel's
    confirmation is asked is the "yes"."""
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    model = consent.Model(now=t0)
    model.store_consent("generic", "generic:x", dict.fromkeys(consent.CHANNELS, True), t0)
    model.now = t0 + timedelta(minutes=1)
    model.stop("whatsapp", explicit=True)
    model.stop("sms", explicit=False)
    assert (model.granted("whatsapp"), model.granted("sms"), model.pending) == (
        False, False, None)
    assert model.ledger[-2:] == [("whatsapp", "revoked", "keyword:whatsapp", model.now, False),
                                 ("sms", "revoked", "keyword:sms", model.now, False)]
    model.stop("telegram", explicit=False)
    assert model.granted("telegram") and model.pending == "telegram"
    model.stop("telegram", explicit=True)
    assert not model.granted("telegram") and model.pending is None
    assert model.ledger[-1][2] == "optout_confirmation:telegram"
    assert {word for word, explicit in consent.STOP_WORDS if not explicit}, "no ambiguous word"


async def test_a_reply_after_a_stop_interrupted_the_sunset_question_is_not_left_unanswered(
        mongo_uri: str) -> None:
    """Found by the consent fuzz: a STOP's confirmation question replaces an open
    sunset question, and once it ends the customer's 'no' reaches no waiting flow.
    The inbox flow answers it (never silence)."""
    async with running(mongo_uri, **consent.SETTINGS) as run:
        service = run.service
        now = consent.parse(await service.advance(0))
        await service.event(customer_event(
            "evt_s1", "subscription.changed", consent.iso(now - timedelta(days=1)),
            phone=PHONE, consents={"whatsapp": True, "sms": True}))
        await service.advance((consent.SUNSET_AFTER_DAYS + 1) * 86400)
        assert (await service.api("GET", "/api/customers/cus_1"))["active_flows"][0][
            "flow"] == "sunset"
        for text in ("CANCELAR", "CANCELAR"):  # the confirmation asked, then confirmed: run over
            await service.whatsapp(whatsapp_text_webhook(text, phone=PHONE))
            await service.advance(0)
        before = len(run.fakes.whatsapp.sent[PHONE[1:]])
        await service.whatsapp(whatsapp_text_webhook("no", phone=PHONE))
        await service.advance(0)
        assert len(run.fakes.whatsapp.sent[PHONE[1:]]) > before, "the 'no' got no answer"
