"""Storing inputs goes first: decisions give way while the intake's inserts are slow.

On a saturated database every command slows down, and the decision passes'
big writes made the webhooks' inserts take seconds (503s at
``INTAKE_SECONDS``, in the sustained-load run). The decide loop now holds
each chunk of customers, for a bounded time, while the inbox says storing
is strained. The strain is made here by marking an insert as in flight for
a second (what a slow database looks like to the inbox); the database and
the runtime are real.
"""

from __future__ import annotations

import time

from bot.runtime.inbox import MAKE_WAY_SECONDS
from bot.testing import FlowHarness
from tests.support.batching import ECHO, accept_replies, introduce


def held(h: FlowHarness) -> float:
    value = h.runtime.processor.metrics.registry.get_sample_value("chasqui_intake_yields_total")
    return value or 0.0


async def test_storing_is_not_strained_when_inserts_are_quick(mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 3)
        await accept_replies(h, range(3), "hola")
        assert not h.runtime.inbox.strained()
        await h.runtime.drain()
        assert held(h) == 0
        assert [len(h.to(f"c{n}")) for n in range(3)] == [1, 1, 1]


async def test_decisions_give_way_while_an_insert_is_slow_and_then_go_on(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        await introduce(h, 3)
        await accept_replies(h, range(3), "hola")
        inbox = h.runtime.inbox
        inbox.writing_since = time.monotonic() - 1.0  # an insert in flight for a second
        assert inbox.strained()

        started = time.monotonic()
        assert await h.runtime.processor.inbox_pass() == 3  # held, but not for ever
        assert time.monotonic() - started >= MAKE_WAY_SECONDS
        assert held(h) == 1
        inbox.writing_since = None
        await h.runtime.drain()
        assert [len(h.to(f"c{n}")) for n in range(3)] == [1, 1, 1]


async def test_a_slow_insert_that_just_ended_still_counts_for_a_moment(
        mongo_uri: str) -> None:
    async with FlowHarness(mongo_uri, [ECHO], channels=("sms",)) as h:
        inbox = h.runtime.inbox
        inbox.last_write = (2.0, time.monotonic())
        assert inbox.strained()
        inbox.last_write = (2.0, time.monotonic() - 5.0)  # long ago
        assert not inbox.strained()
        inbox.last_write = (0.01, time.monotonic())
        assert not inbox.strained()
