"""The flow settings file (``FLOWS_CONFIG``): what a marketer changes without code.

One TOML file per store switches flows on and off and changes their texts,
waits and send windows (README "Flow settings file")::

    [send_window]                       # store-wide; quiet hours by default
    not_between = [["2026-12-24", "2026-12-26"]]

    [flows.cart_recovery]
    enabled = true
    [flows.cart_recovery.texts.es]
    interested = "¡Hola, {first_name}! ¿Te ayudamos con {cart}?"
    [flows.cart_recovery.timings]
    ask_timeout = "12h"
    [flows.cart_recovery.send_window]
    at = "10:00"
    days = "Mon-Fri"
    [flows.cart_recovery.steps.reminder.send_window]
    days = "Sat,Sun"

It is read at start-up and checked against the flows of ``FLOWS_PACKAGE``
(every module, whether it runs or not): a flow, step, locale, text or
timing the package does not have, a text using a ``{placeholder}`` its
flow does not fill in, a bad time, day, date or duration. Every problem is
reported at once, naming the file, the table and the key, and the service
does not start (``server.main``); a typo must not silently leave the
shipped text in place.

A flow module declares what can be changed: ``TEXTS`` (locale -> key ->
text, read through ``say``) and ``TIMINGS`` (name -> default seconds, read
through ``timing``).

What the file says becomes pure data for the decision
(:class:`FlowConfig`): the flows' texts and timings
(:class:`~bot.core.flow_overrides.FlowOverrides`) and the send windows
(:class:`~bot.core.send_windows.SendWindows`).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import ModuleType
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
)
from pydantic_core import ErrorDetails

from bot.core.flow_overrides import NO_OVERRIDES, FlowOverrides, parse_duration, placeholders
from bot.core.flows import Flow, load_flows
from bot.core.send_windows import (
    ALL_DAYS,
    SendWindows,
    WindowError,
    WindowRule,
    parse_days,
    parse_quiet,
    parse_ranges,
    parse_time,
)
from bot.infra.settings import Settings

log = logging.getLogger(__name__)
ALWAYS_FILLED = frozenset({"first_name"})  # ``say`` fills it into every text


class FlowConfigError(ValueError):
    """The file cannot be used; the message names the file and every problem in it."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join([f"invalid flow settings file {path} (FLOWS_CONFIG):",
                                    *(f"  {problem}" for problem in problems)]))


class FlowSelectionError(FlowConfigError):
    """The flows chosen cannot work with the other settings (the message says why)."""

    def __init__(self, problem: str) -> None:
        ValueError.__init__(self, problem)
        self.path = ""
        self.problems = [problem]


# ---------------------------------------------------------------------- model


def _at(value: object) -> time | None:
    if value is False or value == "":
        return None  # "at = false": no fixed hour, even if the flow has one
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, str):
        return parse_time(value)
    raise WindowError(f"{value!r} is not a time of day like \"10:00\" (or false for none)")


def _days(value: object) -> frozenset[int]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = ",".join(value)
    if isinstance(value, str):
        return parse_days(value)
    raise WindowError(f"{value!r} is not a list of days like \"Mon-Fri\" or \"Sat,Sun\"")


def _quiet(value: object) -> tuple[time, time] | None:
    if value is False:
        return None
    if isinstance(value, str):
        return parse_quiet(value)
    raise WindowError(f"{value!r} is not a time range like \"21:00-09:00\" (or false for none)")


def _duration(value: object) -> float:
    return parse_duration(value)


class WindowModel(BaseModel):
    """``send_window``: any of its keys; the ones left out come from the layer below."""

    model_config = ConfigDict(extra="forbid")

    at: Annotated[time | None, BeforeValidator(_at)] = None
    days: Annotated[frozenset[int], BeforeValidator(_days)] = ALL_DAYS
    not_between: Annotated[tuple[tuple[date, date], ...], BeforeValidator(parse_ranges)] = ()
    quiet_hours: Annotated[tuple[time, time] | None, BeforeValidator(_quiet)] = None

    def rule(self) -> WindowRule:
        """The parts this table sets, as a layer of :class:`SendWindow`."""
        names = {"quiet_hours": "quiet"}
        return {names.get(key, key): getattr(self, key) for key in self.model_fields_set}


class StepModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_window: WindowModel | None = None


class FlowModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    texts: dict[str, dict[str, StrictStr]] = Field(default_factory=dict)
    timings: dict[str, Annotated[float, BeforeValidator(_duration)]] = Field(
        default_factory=dict)
    send_window: WindowModel | None = None
    steps: dict[str, StepModel] = Field(default_factory=dict)


class FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: dict[str, FlowModel] = Field(default_factory=dict)
    send_window: WindowModel | None = None


def _where(loc: tuple[str | int, ...]) -> str:
    """``[flows.cart_recovery.timings] ask_timeout`` from a pydantic location."""
    parts = [str(part) for part in loc]
    if not parts:
        return "(the file)"
    table = ".".join(parts[:-1])
    return f"[{table}] {parts[-1]}" if table else f"(top level) {parts[-1]}"


KEYS = {WindowModel: "at, days, not_between, quiet_hours", StepModel: "send_window",
        FlowModel: "enabled, texts, timings, send_window, steps", FileModel: "flows, send_window"}
TYPE_MESSAGES = {"dict_type": "must be a table", "model_type": "must be a table",
                 "string_type": "must be text in quotes", "bool_type": "must be true or false",
                 "float_type": "must be a number"}


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in TYPE_MESSAGES:
        return f"{TYPE_MESSAGES[kind]}, not {error.get('input')!r}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _model_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        line = f"{_where(item['loc'])}: {_message(item)}"
        if item["type"] == "extra_forbidden":
            parent = _parent_model(item["loc"][:-1])
            line += f" (the keys here are: {KEYS[parent]})"
        problems.append(line)
    return problems


def _parent_model(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """Which model the table at ``loc`` is, to list its keys."""
    if loc and loc[-1] == "send_window":
        return WindowModel
    if len(loc) == 2 and loc[0] == "flows":
        return FlowModel
    if len(loc) == 4 and loc[0] == "flows" and loc[2] == "steps":
        return StepModel
    return FileModel


def read_file(path: str) -> FileModel:
    """The file's tables, each checked on its own (types, times, days, dates, durations).

    Raises:
        FlowConfigError: the file cannot be read, is not TOML, or has bad values.
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlowConfigError(path, [f"cannot read it: {exc.strerror or exc}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FlowConfigError(path, [f"not valid TOML: {exc}"]) from None
    try:
        return FileModel.model_validate(raw)
    except ValidationError as exc:
        raise FlowConfigError(path, _model_problems(exc)) from None


# -------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class FlowInfo:
    """What a flow lets a store change: its steps, texts and timings."""

    flow: Flow
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)


def _declared(module: ModuleType) -> list[Flow]:
    names = vars(module)  # no module __getattr__: any module may be looked at
    found = [names["FLOW"]] if isinstance(names.get("FLOW"), Flow) else []
    return found + [item for item in names.get("FLOWS", ()) if isinstance(item, Flow)]


def _info(flow: Flow, module: ModuleType | None) -> FlowInfo:
    names = vars(module) if module is not None else {}
    texts = names.get("TEXTS")
    timings = names.get("TIMINGS")
    if not (isinstance(texts, dict) and all(isinstance(v, dict) for v in texts.values())):
        texts = {}  # e.g. one text per locale: nothing a key could name
    return FlowInfo(flow, texts, timings if isinstance(timings, dict) else {})


def _module_of(flow: Flow) -> ModuleType | None:
    """The module declaring ``flow`` (a flow given to a test harness, outside the package)."""
    for module in list(sys.modules.values()):
        if module is not None and any(item is flow for item in _declared(module)):
            return module
    return None


def catalog(package: str, extra: Iterable[Flow] = ()) -> dict[str, FlowInfo]:
    """Every flow of ``package`` (on by default or not), plus ``extra``, by name.

    Raises:
        FlowLoadError: a module of the package cannot be loaded.
    """
    root = importlib.import_module(package)
    names = [info.name for info in pkgutil.iter_modules(root.__path__)
             if not info.name.startswith("_")]
    load_flows(package, names)  # imports them all, with the loader's clear errors
    found: dict[str, FlowInfo] = {}
    for name in names:
        module = sys.modules[f"{package}.{name}"]
        for flow in _declared(module):
            found[flow.name] = _info(flow, module)
    for flow in extra:
        if flow.name not in found:
            found[flow.name] = _info(flow, _module_of(flow))
    return found


# --------------------------------------------------------------------- checks


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _text_problems(name: str, info: FlowInfo, texts: dict[str, dict[str, str]]) -> list[str]:
    problems = []
    for locale, table in texts.items():
        where = f"[flows.{name}.texts.{locale}]"
        if not info.texts:
            problems.append(f"{where}: flow {name!r} has no texts to change (no TEXTS)")
            continue
        if locale not in info.texts:
            problems.append(f"{where}: flow {name!r} has no {locale!r} texts "
                            f"(its locales: {_listed(info.texts)})")
            continue
        for key, text in table.items():
            if key not in info.texts[locale]:
                problems.append(f"{where} {key}: not a text of flow {name!r} "
                                f"(its texts: {_listed(info.texts[locale])})")
                continue
            filled = set(ALWAYS_FILLED)
            for shipped in info.texts.values():
                if isinstance(shipped.get(key), str):
                    filled |= placeholders(shipped[key])
            try:
                unknown = placeholders(text) - filled
            except ValueError as exc:
                problems.append(f"{where} {key}: {exc}")
                continue
            if unknown:
                problems.append(
                    f"{where} {key}: uses {_listed('{' + n + '}' for n in unknown)}, which this "
                    f"text does not fill in (it fills in "
                    f"{_listed('{' + n + '}' for n in filled)})")
    return problems


def check(model: FileModel, known: Mapping[str, FlowInfo], package: str) -> list[str]:
    """What the file names that the flows do not have (empty when all is well)."""
    problems = []
    for name, entry in model.flows.items():
        info = known.get(name)
        if info is None:
            problems.append(f"[flows.{name}]: no flow {name!r} in {package} "
                            f"(its flows: {_listed(known)})")
            continue
        problems += _text_problems(name, info, entry.texts)
        for timing in entry.timings:
            if timing not in info.timings:
                problems.append(f"[flows.{name}.timings] {timing}: not a timing of flow "
                                f"{name!r} (its timings: {_listed(info.timings)})")
        for step in entry.steps:
            if step not in info.flow.steps:
                problems.append(f"[flows.{name}.steps.{step}]: not a step of flow {name!r} "
                                f"(its steps: {_listed(info.flow.steps)})")
    return problems


# ----------------------------------------------------------------- the result


@dataclass(frozen=True)
class FlowConfig:
    """What the file says, ready for the decision: switches, texts, timings, windows."""

    enabled: Mapping[str, bool] = field(default_factory=dict)
    overrides: FlowOverrides = NO_OVERRIDES
    windows: SendWindows = field(default_factory=SendWindows)


NO_CONFIG = FlowConfig()


def _built(model: FileModel) -> FlowConfig:
    flows = model.flows
    return FlowConfig(
        enabled={name: entry.enabled for name, entry in flows.items()
                 if entry.enabled is not None},
        overrides=FlowOverrides(
            texts={name: entry.texts for name, entry in flows.items() if entry.texts},
            timings={name: entry.timings for name, entry in flows.items() if entry.timings}),
        windows=SendWindows(
            store=model.send_window.rule() if model.send_window else {},
            flows={name: entry.send_window.rule() for name, entry in flows.items()
                   if entry.send_window is not None},
            steps={(name, step): spec.send_window.rule() for name, entry in flows.items()
                   for step, spec in entry.steps.items() if spec.send_window is not None}),
    )


def load_flow_config(settings: Settings, extra: Iterable[Flow] = ()) -> FlowConfig:
    """The file ``FLOWS_CONFIG`` names, checked against the package's flows and ``extra``.

    No file: nothing changes (:data:`NO_CONFIG`).

    Raises:
        FlowConfigError: every problem found, naming the file, table and key.
    """
    path = settings.flows_config
    if not path:
        return NO_CONFIG
    model = read_file(path)
    problems = check(model, catalog(settings.flows_package, extra), settings.flows_package)
    if problems:
        raise FlowConfigError(path, problems)
    return _built(model)


def without_replaced(flows: dict[str, Flow]) -> dict[str, Flow]:
    """``flows`` less every flow that another of them replaces (``Flow.replaces``).

    The birthday series stands in for the one-message birthday greeting,
    which is on by default: a store that switches the series on would
    otherwise greet its customers twice on the day.
    """
    kept = dict(flows)
    for flow in flows.values():
        for name in flow.replaces:
            if name in kept and name != flow.name:
                del kept[name]
                log.info("flow %r is left out: flow %r replaces it", name, flow.name)
    return kept


def select_flows(settings: Settings) -> dict[str, Flow]:
    """The flows that run: ``FLOWS`` when set; else the file's switches over the defaults.

    Precedence: ``FLOWS`` (the modules to load) wins over the file's
    ``enabled``; without it, the flows on by default, plus those the file
    switches on, minus those it switches off. Last, a chosen flow that
    replaces another (``Flow.replaces``) leaves that one out.

    Raises:
        FlowConfigError: the file is bad (see :func:`load_flow_config`).
        FlowLoadError: a flow module cannot be loaded.
    """
    config = load_flow_config(settings)
    package = settings.flows_package
    if settings.flows:
        if config.enabled:
            log.info("FLOWS is set, so the flow settings file's 'enabled' switches are ignored")
        flows = load_flows(package, [name.strip() for name in settings.flows.split(",")])
    else:
        flows = load_flows(package)
        if config.enabled:
            every = catalog(package)
            for name, on in config.enabled.items():
                if on:
                    flows[name] = every[name].flow
                else:
                    flows.pop(name, None)
    flows = without_replaced(flows)
    if settings.double_opt_in and package == "rules" and "double_opt_in" not in flows:
        # A store opt-in would wait for a confirmation nobody asks for, forever.
        raise FlowSelectionError(
            f"DOUBLE_OPT_IN={settings.double_opt_in} needs the double_opt_in flow, "
            "which FLOWS or the flow settings file leaves out")
    return flows

