"""Typed application keys shared by the HTTP handlers (no string keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.infra.clock import SystemClock, VirtualClock
from bot.infra.database import Database
from bot.infra.metrics import Metrics
from bot.infra.settings import Settings

if TYPE_CHECKING:
    from bot.runtime.loops import Runtime
    from channels.base import Channel
    from store_events.base import StoreAdapter

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", SystemClock | VirtualClock)
METRICS = web.AppKey("metrics", Metrics)
DATABASE = web.AppKey("database", Database)
RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
CHANNELS: web.AppKey[dict[str, Channel]] = web.AppKey("channels")
STORE_ADAPTERS: web.AppKey[dict[str, StoreAdapter]] = web.AppKey("store_adapters")
