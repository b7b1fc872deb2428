"""The README's "Flows" section describes every shipped flow, as it is declared.

The issue's bar for the flow library: the README lists every flow with a
paragraph and its steps; its summary table must say truthfully which are on
by default, what starts them and whether they need marketing consent.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.infra.flow_config import catalog

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `(?P<name>\w+)` \| (?P<on>[^|]+) \| (?P<triggers>[^|]+) "
                 r"\| (?P<mkt>[^|]+) \|$")


def flows_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Flows\n")
    return text[start:text.index("\n## ", start + 1)]


def test_every_flow_has_a_paragraph_and_a_step_list() -> None:
    section = flows_section()
    for name in catalog("rules"):
        paragraph = re.search(rf"^\*\*[^*]+\*\* \(`rules/{name}\.py`", section, re.M)
        assert paragraph, f"no paragraph for rules/{name}.py in the README's Flows section"
        after = section[paragraph.end():]
        following = after.split("\n**", 1)[0]
        assert "\n- " in following, f"no step list for {name}"


def test_the_summary_table_matches_the_declarations() -> None:
    rows = {m["name"]: m for line in flows_section().splitlines() if (m := ROW.match(line))}
    flows = catalog("rules")
    assert set(rows) == set(flows)
    for name, info in flows.items():
        row, flow = rows[name], info.flow
        assert row["on"].strip().startswith("yes" if flow.on_by_default else "no"), name
        assert set(re.findall(r"`([\w.]+)`", row["triggers"])) == set(flow.triggers), name
        assert row["mkt"].strip().startswith("yes" if flow.marketing else "no"), name
