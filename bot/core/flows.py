"""Flow declarations and their discovery in ``rules/``.

A flow is one durable_rules ruleset plus a :class:`Flow` declaration that
tells the runtime what durable_rules cannot: which event types start a run,
which end it, whether a customer may enter again, and the approved template
to use for a step outside WhatsApp's 24-hour window. A module in ``rules/``
declares ``FLOW = Flow(...)`` (or ``FLOWS = [...]``) and the ruleset named
``FLOW.name``.

A flow also declares its steps and the transitions between them, once
(``steps=`` and ``edges=``): the docstring's diagram, the console's picture
with the period's counts and the test that rules only record declared
steps are all drawn from that declaration (``bot.core.flow_graph``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal

from bot.core.engine import get_host

log = logging.getLogger(__name__)

StepKind = Literal["ask", "send", "record", "handoff"]
STEP_KINDS: tuple[str, ...] = ("ask", "send", "record", "handoff")
START = "started"  # the step every run records first; the diagram's entry
EXIT = "exit:"  # an edge to ``exit:<outcome>`` ends the run with that outcome
Edge = tuple[str, str] | tuple[str, str, str]  # (from, to) or (from, to, label)


@dataclass(frozen=True)
class Flow:
    """What the runtime needs to know about a flow besides its rules.

    Attributes:
        name: the ruleset's name; also the flow's id in state and statistics.
        triggers: event types that start a run (when none is active).
        exit_on: event types that end an active run after the rules saw them.
        reentry_after: seconds before a customer may start the flow again
            after a run ended; None means never again, 0 means at once.
        marketing: whether its messages need marketing consent.
        templates: step name -> approved template name, used (without
            parameters) when a step's free-form WhatsApp message falls outside
            the 24-hour window; a step that needs parameters passes
            ``template=(name, [params])`` to ``send``/``ask`` instead.
        receives_messages: whether an active run gets the customer's messages
            that answer no pending question (e.g. a chat).
        steps: step name -> kind, in reading order: ``"ask"`` (``ask``; its
            step is ``step=`` or the question's name), ``"send"`` (``send``
            with ``step=``), ``"record"`` (``step(c, name, ...)``) or
            ``"handoff"`` (``handoff`` records the step ``handoff``). Every
            step a rule sends, asks or records must be declared here.
        edges: transitions, ``(from, to)`` or ``(from, to, label)``. Runs
            enter at ``"started"`` (the trigger) and leave through
            ``"exit:<outcome>"`` (``exit_flow(c, outcome)``).
        on_by_default: whether the flow runs when the store has not chosen
            its flows (``FLOWS`` unset). The library's optional flows (welcome
            series, reactivation...) are off until a store names them, so a
            new version never starts messaging customers unasked.
        replaces: flows this one stands in for (the birthday series for the
            one-message birthday greeting); when both are chosen the replaced
            one is left out (``bot.infra.flow_config.select_flows``), so a
            store that switches on the fuller flow never gets both.
        version: a declared version; None (usual) is the hash of the module's
            source (``bot.core.stats.flow_version``).
        ruleset: set only on an earlier version loaded from the database
            (``bot.runtime.flow_versions``), whose rules live under
            ``name@version``; None is the flow's name.
    """

    name: str
    triggers: tuple[str, ...]
    exit_on: tuple[str, ...] = ()
    reentry_after: float | None = 0
    marketing: bool = True
    templates: dict[str, str] = field(default_factory=dict)
    receives_messages: bool = False
    description: str = ""
    steps: dict[str, StepKind] = field(default_factory=dict)
    edges: tuple[Edge, ...] = ()
    on_by_default: bool = True
    replaces: tuple[str, ...] = ()
    version: str | None = None
    ruleset: str | None = None

    @property
    def ruleset_name(self) -> str:
        """The durable_rules ruleset holding its rules: its name, or an earlier
        version's own (``bot.core.rulesets.versioned_name``)."""
        return self.ruleset or self.name

    def mermaid(self) -> str:
        """The flow's diagram as a Mermaid block, for its module's docstring."""
        from bot.core.flow_graph import mermaid

        return mermaid(self)


class FlowLoadError(RuntimeError):
    """A module in ``rules/`` could not be loaded; names the module and line."""


def flows_of(module: ModuleType) -> list[Flow]:
    """The flows a module declares (``FLOW``, and each of ``FLOWS``)."""
    found: list[Flow] = []
    single = getattr(module, "FLOW", None)
    if isinstance(single, Flow):
        found.append(single)
    found.extend(item for item in getattr(module, "FLOWS", []) if isinstance(item, Flow))
    return found


def _blamed_frame(exc: BaseException, module: str) -> traceback.FrameSummary:
    """The line of the flow's own file that raised (or called what raised).

    A refusal raised inside ``bot.core`` (``when_all``'s ``RuleShapeError``)
    is the author's doing at the line that called it, not ours.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    spec = importlib.util.find_spec(module)
    own = [f for f in frames if spec is not None and f.filename == spec.origin]
    return own[-1] if own else frames[-1]


def load_flows(package: str = "rules", only: list[str] | None = None) -> dict[str, Flow]:
    """Import every module of ``package`` and return its flows by name.

    Args:
        package: the package to scan.
        only: module names to load; when None, every module's flows that are
            ``on_by_default``.

    Raises:
        FlowLoadError: a module failed to import, or declares a flow whose
            ruleset does not exist; the message names the module and line.
    """
    root = importlib.import_module(package)
    flows: dict[str, Flow] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith("_") or (only is not None and info.name not in only):
            continue
        name = f"{package}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            frame = _blamed_frame(exc, name)
            raise FlowLoadError(
                f"cannot load flow module {name} ({frame.filename}, line {frame.lineno}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for flow in flows_of(module):
            try:
                get_host().get_ruleset(flow.name)
            except Exception as exc:
                raise FlowLoadError(
                    f"{name} declares flow {flow.name!r} but defines no ruleset of that name"
                ) from exc
            if flow.name in flows:
                raise FlowLoadError(f"{name}: flow {flow.name!r} is declared twice")
            if only is None and not flow.on_by_default:
                continue
            flows[flow.name] = flow
    return flows
