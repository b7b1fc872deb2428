"""A flow's declared steps and transitions as a graph: checks, layers, Mermaid.

A flow declares its steps and edges once, in its ``Flow`` (``steps=`` and
``edges=``, see :mod:`bot.core.flows`). Everything drawn from them lives
here, pure and without I/O:

- :func:`problems`: edges naming undeclared steps, steps no run can reach;
- :func:`steps_used`: the step names and outcomes a flow module's rules
  record, read from its source with :mod:`ast` (the tests check them against
  the declaration, so a rule cannot send a step the diagram does not show);
- :func:`layers`: a longest-path layering for the SVG (``bot.http.diagram``);
- :func:`mermaid`: the Mermaid block each ``rules/`` module's docstring
  carries, so the docstring's picture is the declaration too.

Why ``ast`` and not running the rules: a step sent only on a rare branch
(the third FAQ answer, an unreadable score twice) is seen without a
scenario that reaches it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from bot.core.flows import EXIT, START, STEP_KINDS, Flow

SENDS = {"send", "ask", "step", "handoff", "exit_flow"}


@dataclass(frozen=True)
class Transition:
    """One declared edge, its label ``""`` when none was given."""

    source: str
    target: str
    label: str = ""


def transitions(flow: Flow) -> list[Transition]:
    return [Transition(*edge) for edge in flow.edges]


def exits(flow: Flow) -> list[str]:
    """The ``exit:<outcome>`` nodes, in the order the edges name them."""
    found: list[str] = []
    for edge in transitions(flow):
        if edge.target.startswith(EXIT) and edge.target not in found:
            found.append(edge.target)
    return found


def nodes(flow: Flow) -> list[str]:
    """Every node of the diagram: the entry, the declared steps, the exits."""
    return [START, *flow.steps, *exits(flow)]


def outcome(node: str) -> str | None:
    """``"purchased"`` for ``"exit:purchased"``; None for a step."""
    return node[len(EXIT):] if node.startswith(EXIT) else None


def problems(flow: Flow) -> list[str]:
    """What is wrong with a flow's declaration; empty when it can be drawn."""
    found: list[str] = []
    if not flow.steps:
        return [f"{flow.name}: no steps declared (Flow(steps=...))"]
    known = set(nodes(flow))
    for name, kind in flow.steps.items():
        if kind not in STEP_KINDS:
            found.append(f"{flow.name}: step {name!r} has kind {kind!r}, not one of "
                         f"{', '.join(STEP_KINDS)}")
        if name == START or name.startswith(EXIT):
            found.append(f"{flow.name}: {name!r} is reserved and cannot be a step name")
    for edge in transitions(flow):
        for end in (edge.source, edge.target):
            if end not in known:
                found.append(f"{flow.name}: edge {edge.source} -> {edge.target} names "
                             f"undeclared step {end!r}")
        if edge.source.startswith(EXIT):
            found.append(f"{flow.name}: edge {edge.source} -> {edge.target} leaves an exit")
    reached = reachable(flow)
    found.extend(f"{flow.name}: step {name!r} is declared but no edge from "
                 f"{START!r} reaches it" for name in nodes(flow) if name not in reached)
    return found


def reachable(flow: Flow) -> set[str]:
    seen = {START}
    todo = [START]
    while todo:
        here = todo.pop()
        for edge in transitions(flow):
            if edge.source == here and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


# ----------------------------------------------------------- what rules use


@dataclass
class Used:
    """What a flow module's rules record: step names, exit outcomes, and doubts."""

    steps: set[str]
    outcomes: set[str]
    problems: list[str]


def _literal_strings(annotation: ast.expr | None) -> list[str]:
    """The strings of every ``Literal[...]`` in an annotation."""
    found: list[str] = []
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
            found.extend(n.value for n in ast.walk(node.slice)
                         if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return found


@dataclass
class _Module:
    """What a name in a flow module can hold: from functions typed ``-> Literal[...]``."""

    tree: ast.Module

    def names(self, variable: str) -> list[str] | None:
        """Values of ``variable`` when every assignment to it calls a Literal-typed function."""
        typed = {f.name: _literal_strings(f.returns) for f in ast.walk(self.tree)
                 if isinstance(f, ast.FunctionDef) and _literal_strings(f.returns)}
        values: list[str] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == variable for t in node.targets):
                calls = [getattr(n.func, "id", None) for n in ast.walk(node.value)
                         if isinstance(n, ast.Call)]
                known = [typed[name] for name in calls if name in typed]
                if not known:
                    return None
                values.extend(v for literals in known for v in literals)
        return values or None

    def literals(self, node: ast.expr | None) -> list[str] | None:
        """The strings an argument can be: a literal, either side of ``a if x else b``,
        or a variable set from a function typed ``-> Literal["a", "b"]``."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            body, orelse = self.literals(node.body), self.literals(node.orelse)
            if body is not None and orelse is not None:
                return body + orelse
        if isinstance(node, ast.Name):
            return self.names(node.id)
        return None


def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if name in SENDS:
                yield name, node


def steps_used(source: str, filename: str = "<flow>") -> Used:
    """The steps ``send``/``ask``/``step``/``handoff`` calls record, and ``exit_flow`` outcomes.

    A step name that is no literal (nor a choice of two literals, nor a
    variable set from a function typed ``-> Literal[...]``) cannot be
    checked, so it is reported, as is a ``send`` without ``step=`` (it would
    record ``send<n>``).
    """
    used = Used(set(), set(), [])
    tree = ast.parse(source, filename)
    module = _Module(tree)
    for name, call in _calls(tree):
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        where = f"{filename}, line {call.lineno}"
        if name == "handoff":
            used.steps.add("handoff")
            continue
        if name == "step":
            argument = call.args[1] if len(call.args) > 1 else keywords.get("name")
        elif name == "exit_flow":
            argument = call.args[1] if len(call.args) > 1 else keywords.get("outcome")
            values = module.literals(argument) if argument is not None else ["exited"]
            if values is None:
                used.problems.append(f"{where}: exit_flow outcome is not a literal")
            else:
                used.outcomes.update(values)
            continue
        else:  # send, ask: step=, else an ask's question name
            argument = keywords.get("step")
            if argument is None and name == "ask":
                argument = keywords.get("name")
            if argument is None:
                used.problems.append(f"{where}: {name} without step= (it would record "
                                     f"send<n>, which no diagram can show)")
                continue
        values = module.literals(argument)
        if values is None:
            used.problems.append(f"{where}: {name} step name is not a literal")
        else:
            used.steps.update(values)
    return used


def undeclared(flow: Flow, source: str, filename: str = "<flow>") -> list[str]:
    """Steps and outcomes the rules record that the flow does not declare."""
    used = steps_used(source, filename)
    found = list(used.problems)
    found.extend(f"{filename}: step {name!r} is recorded by a rule but not declared in "
                 f"{flow.name}'s steps" for name in sorted(used.steps - set(flow.steps)))
    declared_exits = {outcome(node) for node in exits(flow)}
    found.extend(f"{filename}: exit_flow({name!r}) has no edge to 'exit:{name}' in "
                 f"{flow.name}'s edges" for name in sorted(used.outcomes - declared_exits))
    return found


# ------------------------------------------------------------------ layout


def layers(flow: Flow) -> list[list[str]]:
    """Nodes by layer: longest path from the entry over the edges, loops set aside.

    Edges that close a cycle (found by a depth-first walk from the entry, in
    declaration order) are left out of the layering and drawn as back edges.
    Within a layer, nodes sit near the average position of their parents.
    """
    forward = forward_edges(flow)
    layer = dict.fromkeys(nodes(flow), 0)
    for node in _topological(flow, forward):
        for source, target in forward:
            if source == node:
                layer[target] = max(layer[target], layer[node] + 1)
    rows: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for node in nodes(flow):
        rows[layer[node]].append(node)
    for depth in range(1, len(rows)):
        above = {name: i for i, name in enumerate(rows[depth - 1])}
        previous = {name: i for i, name in enumerate(rows[depth])}

        def centre(node: str, above: dict[str, int] = above,
                   previous: dict[str, int] = previous) -> tuple[float, int]:
            parents = [above[s] for s, t in forward if t == node and s in above]
            return (sum(parents) / len(parents) if parents else len(above), previous[node])
        rows[depth].sort(key=centre)
    return rows


def forward_edges(flow: Flow) -> list[tuple[str, str]]:
    """The edges a layering follows: no self-loops, none closing a cycle."""
    pairs = [(e.source, e.target) for e in transitions(flow) if e.source != e.target]
    back: set[tuple[str, str]] = set()
    state: dict[str, str] = {}

    def walk(node: str) -> None:
        state[node] = "open"
        for source, target in pairs:
            if source != node:
                continue
            if state.get(target) == "open":
                back.add((source, target))
            elif target not in state:
                walk(target)
        state[node] = "done"
    for node in nodes(flow):
        if node not in state:
            walk(node)
    return [pair for pair in dict.fromkeys(pairs) if pair not in back]


def _topological(flow: Flow, forward: list[tuple[str, str]]) -> list[str]:
    incoming = {node: 0 for node in nodes(flow)}
    for _, target in forward:
        incoming[target] += 1
    ready = [node for node in nodes(flow) if incoming[node] == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for source, target in forward:
            if source == node:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    return order


# ----------------------------------------------------------------- Mermaid


def mermaid(flow: Flow) -> str:
    """The flow as a Mermaid ``stateDiagram-v2`` block (fenced), as docstrings carry it.

    The entry and the exits are Mermaid's ``[*]``; an exit's edge is labelled
    with its outcome in parentheses.
    """
    lines = ["```mermaid", "stateDiagram-v2"]
    for edge in transitions(flow):
        source = "[*]" if edge.source == START else edge.source
        end = outcome(edge.target)
        target = "[*]" if end is not None else edge.target
        label = edge.label
        if end is not None:
            label = f"{label} ({end})" if label else end
        lines.append(f"    {source} --> {target}" + (f": {label}" if label else ""))
    lines.append("```")
    return "\n".join(lines)
