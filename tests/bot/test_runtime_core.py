"""The runtime core through the testing aid: emit, waits, questions, exits."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.commands import after, ask, days, emit, exit_flow, send, step, tag
from bot.core.flows import Flow
from bot.core.inputs import InboundMessage
from bot.flows import m, ruleset, when_all
from bot.testing import FlowHarness

CHAIN = Flow("t_chain", triggers=("order.placed",), marketing=False)

with ruleset("t_chain"):

    @when_all(m.type == "order.placed")
    def placed(c):
        emit(c, {"type": "t.thanked", "order": c.m.order_id})

    @when_all(m.type == "t.thanked")
    def thanked(c):
        send(c, f"Gracias por el pedido {c.m.order}")
        exit_flow(c, "done")


WAIT = Flow("t_wait", triggers=("customer.created",), marketing=False)

with ruleset("t_wait"):

    @when_all(m.type == "customer.created")
    def start(c):
        after(c, days(2), {"type": "t.first"})

    @when_all(m.type == "t.first")
    def first(c):
        send(c, "dos días")
        after(c, days(1), {"type": "t.second"})

    @when_all(m.type == "t.second")
    def second(c):
        send(c, "tres días")
        exit_flow(c)


ASK = Flow("t_ask", triggers=("t.go",), marketing=False)

with ruleset("t_ask"):

    @when_all(m.type == "t.go")
    def go(c):
        ask(c, "¿Te gustó?", name="liked", choices=[("yes", "Sí"), ("no", "No")],
            timeout=days(1))

    @when_all((m.type == "message") & (m.question == "liked") & (m.choice == "yes"))
    def yes(c):
        step(c, "answered", "yes")
        send(c, "¡Genial!")
        exit_flow(c, "liked")

    @when_all((m.type == "message") & (m.question == "liked"))
    def other(c):
        send(c, f"Anotado: {c.m.text}")
        exit_flow(c, "other")

    @when_all((m.type == "timeout") & (m.question == "liked"))
    def timeout(c):
        send(c, "¿Sigues ahí?")
        exit_flow(c, "timeout")


PHONE = "+5491122334455"


async def test_emit_chains_to_another_rule_in_the_same_decision(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [CHAIN], channels=("sms",)) as h:
        await h.customer("cus_1", phone=PHONE)
        await h.event("order.placed", "cus_1", order_id="o-9")
        assert [s.text for s in h.to("cus_1")] == ["Gracias por el pedido o-9"]
        assert await h.active_flows("cus_1") == {}


async def test_wait_of_two_days_fires_once_and_so_does_the_wait_it_schedules(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [WAIT], channels=("sms",)) as h:
        await h.customer("cus_1", phone=PHONE)
        started = h.clock.now()
        await h.advance(days=2, seconds=-1)
        assert h.to("cus_1") == []
        await h.advance(days=5)
        texts = [(s.text, s.at - started) for s in h.to("cus_1")]
        assert [t for t, _ in texts] == ["dos días", "tres días"]
        assert texts[0][1].days == 2 and texts[1][1].days == 3
        await h.advance(days=30)
        assert len(h.to("cus_1")) == 2


async def test_question_reply_and_timeout(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ASK], channels=("sms",)) as h:
        await h.customer("a", phone="+5491100000001")
        await h.customer("b", phone="+5491100000002")
        await h.event("t.go", "a")
        await h.event("t.go", "b")
        assert h.last("a").choices == ["yes", "no"]
        await h.reply("a", choice="yes")
        assert h.last("a").text == "¡Genial!"
        await h.advance(days=1, seconds=1)
        assert h.last("b").text == "¿Sigues ahí?"
        assert [s.text for s in h.to("a")] == ["¿Te gustó?", "¡Genial!"]
        doc = await h.customer_doc("a")
        assert doc["flow_history"]["t_ask"]["last_outcome"] == "liked"


async def test_a_typed_number_or_title_counts_as_the_choice(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ASK], channels=("sms",)) as h:
        await h.customer("a", phone="+5491100000001")
        await h.customer("b", phone="+5491100000002")
        await h.event("t.go", "a")
        await h.event("t.go", "b")
        await h.reply("a", "1")
        await h.reply("b", "  SI! ")
        assert h.last("a").text == "¡Genial!"
        assert h.last("b").text == "¡Genial!"


ECHO = Flow("t_echo", triggers=("message",), marketing=False, receives_messages=True)

with ruleset("t_echo"):

    @when_all(m.type == "message")
    def echo(c):
        c.s.count = (c.s.count or 0) + 1
        send(c, f"{c.s.count}: {c.m.text}")


async def test_replies_arriving_at_once_are_decided_in_arrival_order(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await h.customer("a", phone=PHONE)
        texts = [f"mensaje {i}" for i in range(5)]
        inputs = [InboundMessage(channel="sms", provider_id=f"m{i}", sender=PHONE, text=text,
                                 at=h.clock.now()) for i, text in enumerate(texts)]
        # All accepted before any is decided: one batch, same customer.
        for message in inputs:
            await h.runtime.accept_channel_input("sms", message)
        await asyncio.gather(h.runtime.drain(), h.runtime.drain())
        assert [s.text for s in h.to("a")] == [f"{i + 1}: {t}" for i, t in enumerate(texts)]


async def test_sms_pacing_counts_segments_on_the_service_clock(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",), sms_rate=1) as h:
        await h.customer("a", phone=PHONE)
        start = h.clock.now()
        long_text = "x" * 200  # "n: " + 200 GSM-7 characters: two segments
        for i, text in enumerate(["hola", long_text, "chau"]):
            await h.runtime.accept_channel_input("sms", InboundMessage(
                channel="sms", provider_id=f"p{i}", sender=PHONE, text=text, at=start))
        await h.runtime.drain()
        await h.advance(10)
        offsets = [(s.at - start).total_seconds() for s in h.to("a")]
        # 1 segment at 0 s; 2 segments from 1 s (through 3 s); then 1 segment at 3 s.
        assert offsets == [0.0, pytest.approx(1.0, abs=0.01), pytest.approx(3.0, abs=0.01)]


FRAGILE = Flow("t_fragile", triggers=("t.go",), marketing=False)

with ruleset("t_fragile"):

    @when_all(m.type == "t.go")
    def ask_size(c):
        ask(c, "¿Qué talla?", name="size", timeout=days(1))

    @when_all((m.type == "message") & (m.question == "size"))
    def answered(c):
        tag(c, f"size_{c.m.text}")
        send(c, f"Talla {c.m.text} anotada")
        if c.m.text == "boom":
            raise ValueError("no such size")
        exit_flow(c, "answered")


async def test_a_rule_that_raises_leaves_no_trace_and_the_flow_goes_on(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [FRAGILE], channels=("sms",)) as h:
        await h.customer("a", phone=PHONE)
        await h.event("t.go", "a")
        before = await h.customer_doc("a")
        await h.reply("a", "boom")
        # Nothing the failed decision did is kept: no tag, no message, same step.
        after_failure = await h.customer_doc("a")
        assert "size_boom" not in after_failure.get("tags", [])
        assert [s.text for s in h.to("a")] == ["¿Qué talla?"]
        assert after_failure["flows"] == before["flows"]
        [failed] = await h.database.inbox.find({"state": "failed"}).to_list(None)
        assert "no such size" in failed["error"]
        # The flow still waits for the answer, and a good one goes through.
        await h.reply("a", "M")
        assert [s.text for s in h.to("a")] == ["¿Qué talla?", "Talla M anotada"]
        assert "size_M" in (await h.customer_doc("a"))["tags"]
        assert await h.active_flows("a") == {}
