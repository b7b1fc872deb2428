"""A flow drawn as SVG with a period's counts: boxes, arrows, funnel bars.

Hand-written SVG, rendered on the server: no chart library, no CDN, nothing
fetched by the browser. The picture comes from the flow's own declaration
(``Flow.steps``/``Flow.edges``, laid out by :func:`bot.core.flow_graph.layers`)
and the counts from a statistics answer in the contract's shape
(``GET /api/flows/{name}/stats``)::

    {"runs": {"started", "active", "ended": {outcome: n}},
     "steps": [{"step", "reached", "sent", "delivered", "read", "replied",
                "failed", "skipped": {reason: n}}],
     "transitions": [{"from", "to", "count"}]}   # optional

Where a drop-off is visible at a glance: an edge's width grows with its
count (an edge nobody took is a thin dashed line); each step shows its
share of the runs that started, and, when the counts of every way out of it
are known, the share of those who reached it and went no further, in red
from half up. Edge counts are exact when the answer carries
``transitions`` (counted with every step since they were recorded, see
``bot.core.stats``); for a period holding days counted before that, an edge
is exact only when it is its target's only way in, and otherwise shows an
upper bound ("≤ n").

Only presentation attributes, never ``style``: the console's CSP
(``style-src 'self'``) would drop inline styles from an inline SVG. Every
text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from bot.core.flow_graph import forward_edges, layers, nodes, outcome, transitions
from bot.core.flows import START, Flow

Doc = dict[str, Any]
NODE_W, NODE_H = 176, 64
GAP_X, GAP_Y, MARGIN = 60, 78, 24
LOOP = 46  # how far a back edge or a self-loop bows out to the right
FONT = "system-ui, sans-serif"
INK, MUTED, ACCENT, BAD, LINE = "#1b1f24", "#4a5560", "#0b5cad", "#a40e26", "#b0b8c0"
FUNNEL_FIELDS = ("reached", "sent", "delivered", "read", "replied")


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass
class Count:
    """An edge's count and whether it is exact (else an upper bound)."""

    value: int
    exact: bool

    def text(self) -> str:
        return str(self.value) if self.exact else f"≤ {self.value}"


def node_counts(flow: Flow, stats: Doc) -> dict[str, int]:
    """Runs at each node: started at the entry, reached at a step, ended at an exit."""
    runs = stats.get("runs") or {}
    by_step = {row.get("step"): row for row in stats.get("steps") or []}
    ended = runs.get("ended") or {}
    counts: dict[str, int] = {}
    for node in nodes(flow):
        end = outcome(node)
        if node == START:
            counts[node] = int(runs.get("started") or 0)
        elif end is not None:
            counts[node] = int(ended.get(end) or 0)
        else:
            counts[node] = int((by_step.get(node) or {}).get("reached") or 0)
    return counts


def edge_counts(flow: Flow, stats: Doc, counts: dict[str, int]) -> dict[tuple[str, str], Count]:
    """Each declared edge's count: from ``transitions`` when the answer has them (every
    move of the period counted, so an edge not listed was not taken), else estimated
    from the node counts (periods with days counted before transitions were)."""
    listed = stats.get("transitions")
    if listed is not None:
        known: dict[tuple[str, str], int] = {}
        for t in listed:
            pair = (str(t.get("from")), str(t.get("to")))
            known[pair] = known.get(pair, 0) + int(t.get("count") or 0)
        return {(e.source, e.target): Count(known.get((e.source, e.target), 0), True)
                for e in transitions(flow)}
    ways_in: dict[str, int] = {}
    for edge in transitions(flow):
        if edge.source != edge.target:
            ways_in[edge.target] = ways_in.get(edge.target, 0) + 1
    found: dict[tuple[str, str], Count] = {}
    for edge in transitions(flow):
        pair = (edge.source, edge.target)
        if edge.source != edge.target and ways_in.get(edge.target) == 1:
            found[pair] = Count(counts[edge.target], True)
        else:
            found[pair] = Count(min(counts[edge.source], counts[edge.target]), False)
    return found


def drop_off(flow: Flow, node: str, counts: dict[str, int],
             edges: dict[tuple[str, str], Count]) -> float | None:
    """Share of the runs that reached ``node`` and took none of its ways out, if known."""
    reached = counts[node]
    going = [edges[(e.source, e.target)] for e in transitions(flow)
             if e.source == node and e.target != node]
    if reached == 0 or not going or not all(c.exact for c in going):
        return None
    return max(reached - sum(c.value for c in going), 0) / reached


def _percent(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "—"


def render_svg(flow: Flow, stats: Doc) -> str:
    """The flow's steps and transitions with the counts of ``stats`` on them."""
    rows = layers(flow)
    counts = node_counts(flow, stats)
    edges = edge_counts(flow, stats, counts)
    started = counts[START]
    widest = max(len(row) for row in rows)
    width = 2 * MARGIN + widest * NODE_W + (widest - 1) * GAP_X + LOOP
    height = 2 * MARGIN + len(rows) * NODE_H + (len(rows) - 1) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        span = len(row) * NODE_W + (len(row) - 1) * GAP_X
        left = MARGIN + (widest * NODE_W + (widest - 1) * GAP_X - span) / 2
        for i, node in enumerate(row):
            where[node] = (left + i * (NODE_W + GAP_X), MARGIN + depth * (NODE_H + GAP_Y))
    most = max([c.value for c in edges.values()] + [1])
    ident = "d-" + "".join(ch if ch.isalnum() else "-" for ch in flow.name)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'aria-labelledby="{ident}-title" font-family="{FONT}" font-size="12">',
        f'<title id="{ident}-title">{escape(flow.name)}: {started} runs started</title>',
        f'<defs><marker id="{ident}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{MUTED}"/></marker></defs>',
    ]
    forward = set(forward_edges(flow))
    ports = _ports(forward, where)
    for edge in transitions(flow):
        pair = (edge.source, edge.target)
        out.append(_edge(edge.source, edge.target, edge.label, edges[pair], most, where,
                         ports.get(pair), ident))
    for node in nodes(flow):
        out.append(_node(flow, node, counts, stats, edges, started, where[node]))
    out.append("</svg>")
    return "\n".join(out)


def _ports(forward: set[tuple[str, str]],
           where: dict[str, tuple[float, float]]) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each downward edge leaves its source and enters its target (x only).

    Edges spread along the box's bottom (out) and top (in), ordered by the
    other end's position, so arrows out of a busy step do not share a point.
    """
    ports: dict[tuple[str, str], tuple[float, float]] = {}
    outs: dict[str, list[tuple[str, str]]] = {}
    ins: dict[str, list[tuple[str, str]]] = {}
    for pair in forward:
        outs.setdefault(pair[0], []).append(pair)
        ins.setdefault(pair[1], []).append(pair)
    leave: dict[tuple[str, str], float] = {}
    enter: dict[tuple[str, str], float] = {}
    for node, pairs in outs.items():
        pairs.sort(key=lambda p: where[p[1]][0])
        for i, pair in enumerate(pairs):
            leave[pair] = where[node][0] + NODE_W * (i + 1) / (len(pairs) + 1)
    for node, pairs in ins.items():
        pairs.sort(key=lambda p: where[p[0]][0])
        for i, pair in enumerate(pairs):
            enter[pair] = where[node][0] + NODE_W * (i + 1) / (len(pairs) + 1)
    for pair in forward:
        ports[pair] = (leave[pair], enter[pair])
    return ports


def _edge(source: str, target: str, label: str, count: Count, most: int,
          where: dict[str, tuple[float, float]], port: tuple[float, float] | None,
          ident: str) -> str:
    (x1, y1), (x2, y2) = where[source], where[target]
    if source == target:  # a self-loop on the right side
        x, y = x1 + NODE_W, y1 + NODE_H / 2
        points = [(x, y - 12), (x + LOOP, y - 34), (x + LOOP, y + 34), (x, y + 12)]
    elif port is not None:  # downwards, bottom to top
        a, b = (port[0], y1 + NODE_H), (port[1], y2)
        bend = max((b[1] - a[1]) / 2, 20)
        points = [a, (a[0], a[1] + bend), (b[0], b[1] - bend), b]
    else:  # a way back up: out of the right side, bowing right
        a, b = (x1 + NODE_W, y1 + NODE_H / 2), (x2 + NODE_W, y2 + NODE_H / 2)
        points = [a, (max(a[0], b[0]) + LOOP, a[1]), (max(a[0], b[0]) + LOOP, b[1]), b]
    (p0, p1, p2, p3) = points
    path = (f"M{p0[0]:.1f},{p0[1]:.1f} C{p1[0]:.1f},{p1[1]:.1f} "
            f"{p2[0]:.1f},{p2[1]:.1f} {p3[0]:.1f},{p3[1]:.1f}")
    mid_x = (p0[0] + 3 * p1[0] + 3 * p2[0] + p3[0]) / 8
    mid_y = (p0[1] + 3 * p1[1] + 3 * p2[1] + p3[1]) / 8
    width = 1.5 + 6 * count.value / most
    colour, dash = (ACCENT, "") if count.value else (LINE, ' stroke-dasharray="4 3"')
    text = f"{label} · {count.text()}" if label else count.text()
    return (
        f'<g class="edge" data-from="{_attr(source)}" data-to="{_attr(target)}" '
        f'data-count="{count.value}" data-exact="{str(count.exact).lower()}">'
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width:.1f}"{dash} '
        f'stroke-opacity="0.75" marker-end="url(#{ident}-arrow)"/>'
        f'<text x="{mid_x:.1f}" y="{mid_y:.1f}" text-anchor="middle" fill="{MUTED}" '
        f'font-size="11" stroke="#ffffff" stroke-width="3" paint-order="stroke">'
        f'{escape(text)}</text></g>')


def _node(flow: Flow, node: str, counts: dict[str, int], stats: Doc,
          edges: dict[tuple[str, str], Count], started: int, at: tuple[float, float]) -> str:
    x, y = at
    end = outcome(node)
    count = counts[node]
    if node == START:
        title, kind, fill, radius = "start", ", ".join(flow.triggers), "#e8f1fb", NODE_H / 2
    elif end is not None:
        title, kind, fill, radius = end, "exit", "#f3f5f7", NODE_H / 2
    else:
        title, kind, fill, radius = node, flow.steps[node], "#ffffff", 6
    dropped = drop_off(flow, node, counts, edges) if end is None else None
    stroke = BAD if dropped is not None and dropped >= 0.5 else MUTED
    share = "" if node == START else f" · {_percent(count, started)}"
    detail = _detail(stats, node) if end is None and node != START else ""
    if dropped is not None:
        detail = (detail + " · " if detail else "") + f"−{round(100 * dropped)}% stop"
    cx = x + NODE_W / 2
    tip = f"{title} ({kind}): {count}{share}" + (f"; {detail}" if detail else "")
    return (
        f'<g class="node" data-step="{_attr(node)}" data-count="{count}"'
        + (f' data-drop="{dropped:.2f}"' if dropped is not None else "") + ">"
        f"<title>{escape(tip)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="{radius:.0f}" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if stroke == BAD else 1.2}"/>'
        f'<text x="{cx:.1f}" y="{y + 17:.1f}" text-anchor="middle" font-weight="700" '
        f'fill="{INK}">{escape(_short(title, 24))}'
        f'<tspan fill="{MUTED}" font-weight="400" font-size="10"> {escape(_short(kind, 14))}'
        f"</tspan></text>"
        f'<text x="{cx:.1f}" y="{y + 37:.1f}" text-anchor="middle" fill="{INK}" '
        f'font-size="15" class="count">{count}<tspan font-size="11" fill="{MUTED}">'
        f"{escape(share)}</tspan></text>"
        f'<text x="{cx:.1f}" y="{y + 55:.1f}" text-anchor="middle" font-size="10" '
        f'fill="{BAD if stroke == BAD else MUTED}">{escape(_short(detail, 34))}</text></g>')


def _detail(stats: Doc, node: str) -> str:
    row = next((r for r in stats.get("steps") or [] if r.get("step") == node), None) or {}
    parts = [f"{name} {int(row.get(name) or 0)}" for name in ("delivered", "read", "replied")
             if row.get(name)]
    return " · ".join(parts)


def _short(text: str, size: int) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


# ------------------------------------------------------------------ funnel


def render_funnel(flow: Flow, stats: Doc, title: str, labels: dict[str, str]) -> str:
    """Horizontal bars per declared step: reached, delivered, read, replied.

    Bars are scaled to the runs started, so each step's bar shows what share
    of the entries got that far; ``labels`` names the measures in the
    reader's language.
    """
    by_step = {row.get("step"): row for row in stats.get("steps") or []}
    started = int((stats.get("runs") or {}).get("started") or 0)
    steps = [name for name in flow.steps if name in by_step] or list(flow.steps)
    fields = ("reached", "delivered", "read", "replied")
    bar_h, row_h, label_w, bars_w = 9, 4 * 9 + 16, 150, 360
    width = label_w + bars_w + 150
    height = 30 + row_h * len(steps) + 10
    shades = {"reached": ACCENT, "delivered": "#3d7fc4", "read": "#78a9dc", "replied": "#116329"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="funnel" role="img" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'font-family="{FONT}" font-size="12"><title>{escape(title)}</title>']
    for i, name in enumerate(fields):  # the legend
        out.append(f'<rect x="{label_w + i * 90}" y="6" width="10" height="10" '
                   f'fill="{shades[name]}"/><text x="{label_w + i * 90 + 14}" y="15" '
                   f'fill="{MUTED}">{escape(labels.get(name, name))}</text>')
    for row, step in enumerate(steps):
        top = 30 + row * row_h
        data = by_step.get(step) or {}
        out.append(f'<g class="bar" data-step="{_attr(step)}" '
                   f'data-reached="{int(data.get("reached") or 0)}">')
        out.append(f'<text x="{label_w - 8}" y="{top + 14}" text-anchor="end" '
                   f'fill="{INK}">{escape(_short(step, 22))}</text>')
        for j, name in enumerate(fields):
            value = int(data.get(name) or 0)
            length = bars_w * value / started if started else 0
            out.append(f'<rect x="{label_w}" y="{top + j * bar_h}" width="{length:.1f}" '
                       f'height="{bar_h - 1}" fill="{shades[name]}"><title>'
                       f'{escape(labels.get(name, name))}: {value}</title></rect>')
        reached = int(data.get("reached") or 0)
        out.append(f'<text x="{label_w + bars_w + 8}" y="{top + 14}" fill="{INK}">'
                   f'{reached} · {_percent(reached, started)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)
