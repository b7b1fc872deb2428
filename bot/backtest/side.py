"""One side of a backtest: one set of flow sources replayed over the history.

durable_rules keeps every ruleset in one global host, by name, and a flow's
ruleset is named after the flow; two versions of ``cart_recovery`` cannot
be loaded in one process. So each side runs in a process of its own
(``python -m bot.backtest --side``): the working tree's flows as they are,
or with some modules replaced by the source of a stored version
(:func:`install_sources`), written to a file first so the module hashes to
the version it was stored under (``bot.core.stats.flow_version`` reads the
module's source).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from bot.backtest.history import decided_inputs
from bot.backtest.replay import Period, Replay
from bot.backtest.scratch import Scratch
from bot.core.decide import Decider
from bot.core.stats import flow_version
from bot.infra.database import Database
from bot.infra.flow_config import select_flows
from bot.infra.settings import Settings
from bot.runtime.loops import decision_context
from bot.types import Doc

CHANNEL_REGISTRY = "channels.registry"  # found by name: bot/ imports no edge


@dataclass
class SideSpec:
    """What a side process is asked to do (passed as JSON)."""

    since: datetime
    start: datetime
    end: datetime
    sources: dict[str, str]  # module name -> source replacing the working tree's

    def to_json(self) -> Doc:
        return {"since": self.since.isoformat(), "start": self.start.isoformat(),
                "end": self.end.isoformat(), "sources": self.sources}

    @classmethod
    def from_json(cls, data: Doc) -> SideSpec:
        return cls(since=datetime.fromisoformat(data["since"]),
                   start=datetime.fromisoformat(data["start"]),
                   end=datetime.fromisoformat(data["end"]), sources=dict(data["sources"]))


def install_sources(sources: dict[str, str], directory: Path) -> list[ModuleType]:
    """Load each source as the module of that name, before anything imports it."""
    modules = []
    for name, source in sources.items():
        package, _, _ = name.rpartition(".")
        if package:
            importlib.import_module(package)
        path = directory / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


async def run_side(settings: Settings, database: Database, spec: SideSpec) -> Doc:
    """Replay the history with this side's flows; its figures and what was replayed."""
    with tempfile.TemporaryDirectory(prefix="chasqui-flows-") as directory:
        install_sources(spec.sources, Path(directory))
        flows = select_flows(settings)
        # Read while the stored sources' files exist: the version hashes the module's source.
        versions = {name: flow_version(flow) for name, flow in flows.items()}
        registry: Any = importlib.import_module(CHANNEL_REGISTRY)
        channels = registry.build_channels(settings)
        try:
            decider = Decider(decision_context(settings, channels, flows))
        finally:
            for channel in channels.values():
                await channel.close()
        scratch = Scratch()
        try:
            replay = Replay(decider, Period(spec.start, spec.end),
                            timedelta(days=settings.attribution_days), scratch)
            async for item in decided_inputs(database, spec.since, spec.end):
                replay.feed(item, item["received_at"])
            replay.fire_until(spec.end)
            figures = replay.figures()
            customers = scratch.count()
        finally:
            scratch.close()
    for name, version in versions.items():
        figures[name]["version"] = version
    return {"flows": figures, "inputs": replay.inputs, "waits_fired": replay.waits_fired,
            "customers": customers, "failed": len(replay.failed),
            "failures": replay.failed[:5], "stuck_waits": replay.stuck_waits}
