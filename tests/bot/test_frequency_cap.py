"""The marketing frequency cap: across flows and channels, per customer."""

from __future__ import annotations

from bot.core.commands import exit_flow, send
from bot.core.flows import Flow
from bot.flows import m, ruleset, when_all
from bot.testing import FlowHarness

PROMO = Flow("f_promo", triggers=("t.promo",))  # marketing; may start again at once
NEWS = Flow("f_news", triggers=("t.news",))
RECEIPT = Flow("f_receipt", triggers=("t.paid",), marketing=False)
PHONE = "+5491100000001"
SMS_CONSENT = {"sms": True}

with ruleset("f_promo"):

    @when_all(m.type == "t.promo")
    def promo(c):
        send(c, f"oferta {c.m.n}")
        exit_flow(c)

with ruleset("f_news"):

    @when_all(m.type == "t.news")
    def news(c):
        send(c, "novedades")
        exit_flow(c)

with ruleset("f_receipt"):

    @when_all(m.type == "t.paid")
    def receipt(c):
        send(c, "recibimos tu pago")
        exit_flow(c)


async def test_marketing_over_the_cap_is_skipped_with_its_reason_until_the_window_passes(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [PROMO, NEWS, RECEIPT], channels=("sms",),
                           quiet_hours=False, marketing_cap=2, marketing_cap_days=7) as h:
        await h.customer("a", phone=PHONE, consents=SMS_CONSENT)
        await h.event("t.promo", "a", n=1)
        await h.advance(days=1)
        await h.event("t.news", "a")  # another flow: the cap is per customer
        await h.advance(days=1)
        await h.event("t.promo", "a", n=2)  # third marketing message in 7 days
        await h.event("t.paid", "a")  # not marketing: never capped
        assert [s.text for s in h.to("a")] == ["oferta 1", "novedades", "recibimos tu pago"]
        skipped = await h.database.messages.find_one({"text": "oferta 2"})
        assert skipped is not None and skipped["status"] == "skipped"
        assert skipped["error"].startswith("frequency cap: 2 marketing message(s) in 7 day(s)")

        await h.advance(days=5, seconds=1)  # the first promo is now 7 days old
        await h.event("t.promo", "a", n=3)
        assert h.last("a").text == "oferta 3"
        await h.event("t.promo", "a", n=4)  # "novedades" is still within the window
        assert h.last("a").text == "oferta 3"


async def test_without_a_cap_marketing_is_limited_by_consent_alone(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [PROMO], channels=("sms",), quiet_hours=False) as h:
        await h.customer("a", phone=PHONE, consents=SMS_CONSENT)
        for n in range(5):
            await h.event("t.promo", "a", n=n)
        assert len(h.to("a")) == 5
