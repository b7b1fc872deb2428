"""A flow's steps are declared once: rules use only those; the docstring and SVG come from them."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import rules
from bot.core import flow_graph
from bot.core.flows import Flow, load_flows
from bot.http.diagram import render_funnel, render_svg
from tests.support import undeclared_flow

# Every module, the library flows that are off by default (FLOWS names them) included.
SHIPPED = load_flows("rules", [info.name for info in pkgutil.iter_modules(rules.__path__)])


def module_of(name: str) -> ModuleType:
    return importlib.import_module(f"rules.{name}")


def source_of(module: ModuleType) -> str:
    assert module.__file__
    return Path(module.__file__).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_step_a_shipped_flow_records_is_declared_and_reachable(name: str) -> None:
    flow = SHIPPED[name]
    module = module_of(name)
    assert flow_graph.problems(flow) == []
    assert flow_graph.undeclared(flow, source_of(module), str(module.__file__)) == []


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_flow_docstring_carries_exactly_the_generated_diagram(name: str) -> None:
    doc = module_of(name).__doc__ or ""
    blocks = re.findall(r"```mermaid\n.*?```", doc, flags=re.S)
    assert blocks == [SHIPPED[name].mermaid()], (
        f"rules/{name}.py: replace the docstring's Mermaid block with "
        f"FLOW.mermaid():\n{SHIPPED[name].mermaid()}")


def test_a_rule_using_an_undeclared_step_is_caught() -> None:
    flow = undeclared_flow.FLOW
    found = flow_graph.undeclared(flow, source_of(undeclared_flow), "undeclared_flow.py")
    text = "\n".join(found)
    assert "step 'followup' is recorded by a rule but not declared" in text
    assert "step 'noted' is recorded by a rule but not declared" in text
    assert "send without step=" in text
    assert "exit_flow('left') has no edge to 'exit:left'" in text
    assert "'hello'" not in text  # the declared one passes
    assert flow_graph.problems(flow) == [
        "t_undeclared: step 'orphan' is declared but no edge from 'started' reaches it"]


def test_edges_naming_unknown_steps_are_problems() -> None:
    flow = Flow("t_bad_edges", triggers=("t.go",), steps={"a": "send", "b": "shout"},  # type: ignore[dict-item]
                edges=(("started", "a"), ("a", "c"), ("exit:x", "b")))
    found = "\n".join(flow_graph.problems(flow))
    assert "names undeclared step 'c'" in found
    assert "kind 'shout'" in found
    assert "leaves an exit" in found
    assert flow_graph.problems(Flow("t_none", triggers=("t.go",))) == [
        "t_none: no steps declared (Flow(steps=...))"]


def test_layers_follow_the_longest_path_and_set_loops_aside() -> None:
    flow = Flow("t_layers", triggers=("t.go",),
                steps={"ask": "ask", "link": "send", "chat": "ask", "faq": "record"},
                edges=(("started", "ask"), ("ask", "link"), ("ask", "chat"), ("link", "chat"),
                       ("chat", "faq"), ("faq", "chat"), ("chat", "chat"),
                       ("chat", "exit:done")))
    rows = flow_graph.layers(flow)
    depth = {node: i for i, row in enumerate(rows) for node in row}
    assert depth == {"started": 0, "ask": 1, "link": 2, "chat": 3, "faq": 4, "exit:done": 4}
    assert ("faq", "chat") not in flow_graph.forward_edges(flow)  # the way back


def test_mermaid_draws_the_entry_and_exits_as_terminal_states() -> None:
    flow = Flow("t_m", triggers=("t.go",), steps={"hello": "send"},
                edges=(("started", "hello", "t.go"), ("hello", "exit:done", "24 h")))
    assert flow.mermaid() == ("```mermaid\nstateDiagram-v2\n    [*] --> hello: t.go\n"
                              "    hello --> [*]: 24 h (done)\n```")


def cart_stats() -> dict[str, object]:
    return {
        "runs": {"started": 40, "active": 2, "ended": {"declined": 7, "purchased": 5,
                                                       "no_reply": 21}},
        "steps": [{"step": "interested", "reached": 38, "sent": 38, "delivered": 36, "read": 20,
                   "replied": 15, "failed": 0, "skipped": {"consent": 2}},
                  {"step": "why", "reached": 8, "replied": 7},
                  {"step": "reason", "reached": 7}, {"step": "reminder", "reached": 23}],
        "conversions": {"orders": 5, "revenue": {"ARS": "600.00"}},
    }


def test_the_svg_shows_every_declared_step_with_its_count() -> None:
    flow = SHIPPED["cart_recovery"]
    svg = render_svg(flow, cart_stats())
    counts = dict(re.findall(r'<g class="node" data-step="([^"]+)" data-count="(\d+)"', svg))
    assert set(counts) == {"started", *flow.steps, *flow_graph.exits(flow)}
    assert counts["started"] == "40" and counts["interested"] == "38"
    assert counts["reminder"] == "23" and counts["exit:no_reply"] == "21"
    assert counts["link"] == "0" and counts["exit:declined"] == "7"
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "style=" not in svg and "<script" not in svg  # the console's CSP


def test_edge_counts_and_drop_off_are_visible() -> None:
    flow = SHIPPED["cart_recovery"]
    svg = render_svg(flow, cart_stats())
    edge = re.search(r'data-from="why" data-to="reason" data-count="7" data-exact="true">'
                     r'<path [^>]*stroke-width="([\d.]+)"', svg)
    unused = re.search(r'data-from="interested" data-to="link" data-count="0"[^>]*>'
                       r'<path [^>]*stroke-dasharray', svg)
    assert edge and unused
    assert float(edge.group(1)) > 1.5  # wider than an edge nobody took
    # "why": 8 reached, 7 went on to "reason" and no known count leaves otherwise.
    assert 'data-step="reason" data-count="7"' in svg
    transitions = {**cart_stats(), "transitions": [
        {"from": "interested", "to": "reminder", "count": 23},
        {"from": "interested", "to": "why", "count": 8}]}
    exact = render_svg(flow, transitions)
    assert re.search(r'data-step="interested" data-count="38" data-drop="0.18"', exact)


EDGE = re.compile(r'<g class="edge" data-from="([^"]+)" data-to="([^"]+)" data-count="(\d+)" '
                  r'data-exact="(true|false)">.*?<text [^>]*>([^<]*)</text></g>')


def test_with_transitions_every_edge_shows_its_exact_count() -> None:
    flow = SHIPPED["cart_recovery"]
    stats = {**cart_stats(), "transitions": [
        {"from": "interested", "to": "question", "count": 4},
        {"from": "interested", "to": "exit:expired", "count": 2}]}
    edges = {(f, t): (int(n), exact, text) for f, t, n, exact, text
             in EDGE.findall(render_svg(flow, stats))}
    assert len(edges) == len(flow.edges)
    assert {exact for _, exact, _ in edges.values()} == {"true"}
    assert edges[("interested", "question")] == (4, "true", "a question · 4")
    assert edges[("interested", "exit:expired")] == (2, "true", "5 days, any step · 2")
    # Not listed: not taken, a self-loop too (every move is counted).
    assert edges[("why", "reason")] == (0, "true", "a reason · 0")
    assert edges[("question", "question")] == (0, "true", "yes, more · 0")
    assert "≤" not in render_svg(flow, stats)
    # Days counted before transitions were: the same self-loop is only bounded.
    old = {(f, t): (exact, text) for f, t, _, exact, text
           in EDGE.findall(render_svg(flow, cart_stats()))}
    assert old[("question", "question")] == ("false", "yes, more · ≤ 0")


def test_svg_text_is_escaped() -> None:
    flow = Flow("t_<b>", triggers=("a&b",), steps={"x<y": "send"},
                edges=(("started", "x<y", '"quoted" & <tag>'), ("x<y", "exit:done")))
    svg = render_svg(flow, {"runs": {"started": 1}, "steps": [{"step": "x<y", "reached": 1}]})
    assert "<tag>" not in svg and "<b>" not in svg
    assert "&lt;tag&gt;" in svg and 'data-step="x&lt;y" data-count="1"' in svg


def test_the_funnel_has_a_bar_per_step_scaled_to_the_runs_started() -> None:
    flow = SHIPPED["cart_recovery"]
    svg = render_funnel(flow, cart_stats(), "cart", {"reached": "alcanzados"})
    bars = re.findall(r'<g class="bar" data-step="([^"]+)" data-reached="(\d+)"', svg)
    assert bars[:4] == [("interested", "38"), ("reminder", "23"), ("why", "8"),
                        ("reason", "7")]
    assert "38 · 95%" in svg and "alcanzados" in svg
