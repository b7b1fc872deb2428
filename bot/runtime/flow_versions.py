"""Flow versions are data: the source of every version that ran is kept.

A flow's version is its declared ``version`` or the hash of its module's
source (``bot.core.stats.flow_version``): the statistics are filed under it
and a run keeps the one it started on. What the version *was* would be lost
with the next deploy unless it is kept, so at start each worker records the
source of every flow it loaded, one document per (flow, version)::

    {"_id": "cart_recovery|3f2a9c01b7d4", "flow", "version", "module",
     "source", "first_seen", "last_seen"}

``first_seen`` is when a worker first ran it, ``last_seen`` when one last
started with it: the version with the latest ``last_seen`` is the one the
store runs now. The backtest (``bot.backtest``) replays that source against
the store's history next to a changed flow, so a developer sees what the
change would do before it runs. The collection is small (a document per
version ever deployed) and read whole.

One ``bulk_write`` of upserts at start, unjournaled: losing it in a crash
loses a record that the next start writes again, never an input or a send.

**A run finishes on the version it started on.** At start a worker also
loads the earlier versions of its flows that some worker started with in
the last ``FLOW_VERSION_DAYS`` (:func:`earlier_versions`): each source is run
as a module of its own, its rulesets registered as ``name@version``
(``bot.core.rulesets.loading_version``), and the decisions give a run whose
``version`` is one of them that version's rules, steps and texts
(``Router.flow_of_run``); new runs start on the current one. A version
that cannot be loaded (its source imports what no longer exists, or does
not hash to its version) is logged and skipped: its runs go on with the
current code, as every run did before versions were kept. The helpers a
flow imports (``rules/_texts.py``...) are today's, not the version's.
Running stored source means whoever can write this collection can run code
in the workers: the same trust as the database holding every customer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from pymongo import UpdateOne

from bot.core.engine import get_host
from bot.core.flows import Flow, flows_of
from bot.core.rulesets import loading_version, versioned_name
from bot.core.stats import flow_source, flow_version
from bot.infra.database import Database
from bot.types import Doc

log = logging.getLogger(__name__)

COLLECTION = "flow_versions"

# Versions loaded in this process, by (flow, version): durable_rules registers a
# ruleset name once per process, so a version is loaded once however often asked.
_loaded: dict[tuple[str, str], Flow] = {}
_modules: dict[tuple[str, str], types.ModuleType] = {}
DECLARES_VERSION = re.compile(r"\bversion\s*=")  # a Flow(version=...) is not a hash


def version_id(flow: str, version: str) -> str:
    return f"{flow}|{version}"


async def record_versions(database: Database, flows: Iterable[Flow], now: datetime) -> None:
    """Keep the source of each flow's current version (a flow without a readable module
    is recorded without one)."""
    operations = []
    for flow in flows:
        version = flow_version(flow)
        found = flow_source(flow)
        module, source = found if found else (None, None)
        operations.append(UpdateOne(
            {"_id": version_id(flow.name, version)},
            {"$set": {"last_seen": now},
             "$setOnInsert": {"flow": flow.name, "version": version, "module": module,
                              "source": source, "first_seen": now}},
            upsert=True))
    if operations:
        await database.unjournaled(COLLECTION).bulk_write(operations, ordered=False)


async def versions(database: Database, flow: str | None = None) -> list[Doc]:
    """The recorded versions (of one flow, or all), the one run most recently first."""
    query = {} if flow is None else {"flow": flow}
    found = await database.db[COLLECTION].find(query).to_list(None)
    return sorted(found, key=lambda doc: doc["last_seen"], reverse=True)


async def find_version(database: Database, flow: str, version: str) -> Doc | None:
    """One recorded version, its source included."""
    found: Doc | None = await database.db[COLLECTION].find_one({"_id": version_id(flow, version)})
    return found


async def current_versions(database: Database) -> dict[str, Doc]:
    """Flow name -> the version the store ran last (its latest ``last_seen``)."""
    latest: dict[str, Doc] = {}
    for doc in await versions(database):
        latest.setdefault(doc["flow"], doc)
    return latest


class VersionLoadError(RuntimeError):
    """A stored version cannot run: named, with why."""


def load_version(doc: Mapping[str, object]) -> Flow:
    """The flow of a stored version, its rules registered under ``name@version``.

    Raises:
        VersionLoadError: no source, a source that does not hash to its
            (undeclared) version, or one that fails to run or declares no
            such flow.
    """
    name, version = str(doc["flow"]), str(doc["version"])
    key = (name, version)
    if key in _loaded:
        return _loaded[key]
    source, module_name = doc.get("source"), str(doc.get("module") or name)
    if not isinstance(source, str) or not source:
        raise VersionLoadError(f"{name} {version}: no source kept")
    hashed = hashlib.sha256(source.encode()).hexdigest()[:12] == version
    if not hashed and not DECLARES_VERSION.search(source):  # refused before it runs
        raise VersionLoadError(f"{name} {version}: the source does not hash to its version")
    module = _modules.get((module_name, version))
    if module is None:  # a module declaring several flows runs once for all of them
        module = _run_module(name, version, module_name, source)
        _modules[(module_name, version)] = module
    found = [flow for flow in flows_of(module) if flow.name == name]
    if not found:
        raise VersionLoadError(f"{name} {version}: the source declares no flow {name!r}")
    flow = found[0]
    declared = flow.version
    if declared is None and not hashed:
        raise VersionLoadError(f"{name} {version}: the source does not hash to its version")
    if declared is not None and declared != version:
        raise VersionLoadError(f"{name} {version}: the source declares version {declared}")
    ruleset = versioned_name(name, version)
    try:
        get_host().get_ruleset(ruleset)
    except Exception as exc:
        raise VersionLoadError(f"{name} {version}: the source defines no ruleset {name!r}") \
            from exc
    _loaded[key] = replace(flow, version=version, ruleset=ruleset)
    return _loaded[key]


def _run_module(name: str, version: str, module_name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(f"{module_name}@{version}")
    module.__file__ = f"<{module_name} version {version}>"
    module.__package__ = module_name.rpartition(".")[0]
    try:
        with loading_version(version):
            exec(compile(source, module.__file__, "exec"), module.__dict__)
            get_host()  # registers the rulesets the source defined, under versioned names
    except Exception as exc:
        raise VersionLoadError(f"{name} {version}: {type(exc).__name__}: {exc}") from exc
    return module


async def earlier_versions(database: Database, flows: Mapping[str, Flow], now: datetime,
                           days: float) -> dict[tuple[str, str], Flow]:
    """The earlier versions of ``flows`` a worker started with in the last ``days``,
    loaded, by (flow, version); those that cannot be loaded are logged and left out."""
    since = now - timedelta(days=days)
    loaded: dict[tuple[str, str], Flow] = {}
    for doc in await versions(database):
        name = doc["flow"]
        if name not in flows or doc["version"] == flow_version(flows[name]) \
                or doc["last_seen"] < since:
            continue
        try:
            loaded[(name, doc["version"])] = load_version(doc)
        except Exception as exc:  # one bad version must not stop the service
            log.warning("runs on %s version %s go on with the current one: %s",
                        name, doc["version"], exc)
    if loaded:
        log.info("earlier flow versions loaded for their runs: %s",
                 ", ".join(f"{n} {v}" for n, v in sorted(loaded)))
    return loaded
