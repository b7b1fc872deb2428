"""The short stress run inside ``make test``: crash trials, a paused database, load.

The full run is ``make stress`` (README, "Stress"); these are its short
versions, asserting only the figures that must be zero (inputs lost,
messages sent twice or never, errors, 2xx without the input stored), not
the measured ones, which depend on the machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from stress import crash, faults, load, security
from stress.report import Row, print_table

pytestmark = pytest.mark.slow


def must_be_zero(rows: list[Row]) -> list[Row]:
    print_table(rows)
    checked = [row for row in rows if row.target.startswith("0") or row.target == "all"]
    assert checked, "no must-be-zero figure was reported"
    return [row for row in checked if not row.ok]


async def test_crash_trials_lose_nothing_and_send_nothing_twice() -> None:
    rows = await crash.run_async(short=True, seed=17, counts={"all": 3})
    assert must_be_zero(rows) == []
    # The servers logged at INFO all along: no secret and no whole phone number.
    leaks, files, lines = security.check_run_logs()
    assert files and lines, "the trials' servers left no logs"
    assert leaks.failures == []


async def test_a_paused_database_answers_503_and_everything_resumes() -> None:
    with tempfile.TemporaryDirectory(prefix="chasqui-faults-") as tmp:
        rows = await faults.paused_database(faults.SHORT_PAUSE, Path(tmp))
    assert must_be_zero(rows) == []


async def test_load_of_five_seconds_has_no_errors_and_the_backlog_drains() -> None:
    rows = await load.run_async(100, 5, 1)
    assert must_be_zero(rows) == []
    assert any(row.name.endswith("time to drain") and row.ok for row in rows)
