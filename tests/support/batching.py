"""An echo flow and builders for tests that count round trips over many customers."""

from __future__ import annotations

from bot.core.commands import send
from bot.core.flows import Flow
from bot.core.inputs import InboundMessage
from bot.flows import m, ruleset, when_all
from bot.testing import FlowHarness

ECHO = Flow("b_echo", triggers=("message",), marketing=False, receives_messages=True)

with ruleset("b_echo"):

    @when_all(m.type == "message")
    def echo(c):
        send(c, f"recibido: {c.m.text}")


CUSTOMERS = 30


def phone(n: int) -> str:
    return f"+54911{n:08d}"


async def introduce(h: FlowHarness, count: int) -> None:
    for n in range(count):
        await h.customer(f"c{n}", phone=phone(n))


async def accept_replies(h: FlowHarness, numbers: range, text: str) -> None:
    """Replies accepted (persisted) but not yet decided."""
    for n in numbers:
        await h.runtime.accept_channel_input("sms", InboundMessage(
            channel="sms", provider_id=f"{text}-{n}", sender=phone(n), text=text,
            at=h.clock.now()))
