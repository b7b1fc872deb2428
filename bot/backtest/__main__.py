"""``python -m bot.backtest``: what the working tree's flows would have done last month.

    python -m bot.backtest [--from 2026-10-01] [--to 2026-10-31] [--since 2025-10-01]
                           [--flow cart_recovery ...] [--json]

Reads the store's database (``MONGODB_URI``, or the running service's
embedded one on ``DATA_DIR``, or the embedded server started on it) and
writes nothing to it. Per flow it prints what the service recorded in the
period (``flow_stats``), what the working tree's flows decide when the
period's inputs are replayed, and, for every flow whose working-tree
version differs from the version the service last ran, that live version
replayed too: the difference between the last two columns is what the
change would have done. The replay runs in a process per side
(``bot.backtest.side`` says why).

``--from``/``--to`` are UTC days, both included, as in ``GET
/api/flows/{name}/stats`` (default: the last 30 days); ``--since`` is where
the replay starts (default a year before ``--from``), so the period starts
with the consents and runs of then. ``--flow`` narrows the report, not the
replay (flows share customers, caps and quiet hours).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.backtest.replay import ASSUMPTIONS
from bot.backtest.report import render
from bot.backtest.side import SideSpec, run_side
from bot.core.stats import flow_version
from bot.infra.database import open_database
from bot.infra.flow_config import select_flows
from bot.infra.settings import Settings
from bot.runtime.flow_stats import period_figures
from bot.runtime.flow_versions import current_versions
from bot.types import Doc

log = logging.getLogger("bot.backtest")


def parse_args(argv: list[str] | None, today: date) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.backtest", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="first", type=date.fromisoformat,
                        help="first UTC day counted (default: 29 days before --to)")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, default=today,
                        help="last UTC day counted, included (default: today)")
    parser.add_argument("--since", type=date.fromisoformat,
                        help="first day replayed (default: a year before --from)")
    parser.add_argument("--flow", action="append", default=[],
                        help="report only this flow (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.first = args.first or args.last - timedelta(days=29)
    args.since = args.since or args.first - timedelta(days=365)
    if args.first > args.last:
        parser.error("--from is after --to")
    if args.since > args.first:
        parser.error("--since is after --from")
    return args


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def run_child(spec: SideSpec) -> Doc:
    """One side, in a process of its own, answering JSON on its standard output."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.backtest", "--side", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate(json.dumps(spec.to_json()).encode())
    if child.returncode != 0:
        raise RuntimeError(f"a backtest side failed (exit {child.returncode}); see above")
    answer: Doc = json.loads(out)
    return answer


async def backtest(settings: Settings, args: argparse.Namespace) -> Doc:
    """Both sides' figures and the recorded ones, per flow."""
    start, end = midnight(args.first), midnight(args.last + timedelta(days=1))
    async with open_database(settings, join_running=True) as database:
        flows = select_flows(settings)
        wanted = args.flow or sorted(flows)
        unknown = sorted(set(wanted) - set(flows))
        if unknown:
            raise SystemExit(f"unknown flow(s): {', '.join(unknown)}; running: "
                             f"{', '.join(sorted(flows))}")
        live = await current_versions(database)
        changed = {name: doc for name, doc in live.items() if name in flows
                   and doc["version"] != flow_version(flows[name])
                   and doc.get("source") and doc.get("module")}
        recorded = {name: await period_figures(database, flow, args.first, args.last)
                    for name, flow in flows.items()}
        specs = {"tree": SideSpec(midnight(args.since), start, end, {})}
        if changed:
            specs["live"] = SideSpec(midnight(args.since), start, end,
                                     {doc["module"]: doc["source"] for doc in changed.values()})
        # The sides join this process's database (the embedded one, if it started it).
        results = dict(zip(specs, await asyncio.gather(*map(run_child, specs.values())),
                           strict=True))
    answer_flows: dict[str, Doc] = {}
    for name in wanted:
        sides: Doc = {"recorded": {key: value for key, value in recorded[name].items()
                                   if key not in ("flow", "from", "to")},
                      "tree": results["tree"]["flows"].get(name)}
        if name in changed:
            sides["live"] = results["live"]["flows"].get(name)
        answer_flows[name] = sides
    tree = results["tree"]
    return {"from": args.first.isoformat(), "to": args.last.isoformat(),
            "since": args.since.isoformat(), "inputs": tree["inputs"],
            "customers": tree["customers"], "flows": answer_flows,
            "changed": {name: {"live": doc["version"], "tree": flow_version(flows[name])}
                        for name, doc in changed.items()},
            "sides": {side: {k: v for k, v in result.items() if k != "flows"}
                      for side, result in results.items()},
            "assumptions": list(ASSUMPTIONS)}


async def side_main(settings: Settings) -> Doc:
    spec = SideSpec.from_json(json.loads(sys.stdin.read()))
    async with open_database(settings, join_running=True) as database:
        return await run_side(settings, database, spec)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    args = parse_args(argv, datetime.now(UTC).date())
    answer: Any
    if args.side:
        answer = asyncio.run(side_main(settings))
        print(json.dumps(answer, default=str))
        return 0
    answer = asyncio.run(backtest(settings, args))
    print(json.dumps(answer, indent=2, default=str) if args.json else render(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
