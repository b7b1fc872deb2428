"""Typed application keys shared by the HTTP handlers (no string keys).

Only core types: the channels are held as the core's :class:`Channel`
protocol; an edge's own key (the store adapters) lives with the edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.infra.clock import SystemClock, VirtualClock
from bot.infra.database import Database
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings

if TYPE_CHECKING:
    from bot.core.channel import Channel
    from bot.runtime.loops import Runtime

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[SystemClock | VirtualClock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
DATABASE = web.AppKey("database", Database)
RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
CHANNELS: web.AppKey[dict[str, Channel]] = web.AppKey("channels")  # the registry's order
