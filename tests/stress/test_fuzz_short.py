"""The short fuzz run of ``make stress`` inside ``make test``: every route of the app.

Each route gets ``stress.fuzz.TEST_CASES`` generated requests (150; the
environment's ``FUZZ_CASES`` overrides it, e.g. 500) on a fresh
service (the strategies of ``tests/support/fuzzing.py``): no 5xx, no error
logged by the service, and nothing answered 2xx without being stored. The
explicit cases below are what the fuzz runs found.
"""

from __future__ import annotations

import pytest

from stress import fuzz
from stress.inprocess import running
from tests.support.app import AUTH, with_test_flows


@pytest.mark.parametrize("route", fuzz.routes(), ids=lambda route: route.name)
def test_generated_requests_get_no_5xx_no_crash_and_lose_nothing(
        mongo_uri: str, route: fuzz.Route) -> None:
    tally = fuzz.run_route(mongo_uri, route, fuzz.TEST_CASES)
    assert tally.cases >= fuzz.TEST_CASES
    assert not fuzz.failures([tally]), fuzz.failures([tally])


@pytest.mark.parametrize("seconds", [2**63 - 1, 1e300, 10**12])
async def test_advancing_the_clock_beyond_any_date_is_a_400(mongo_uri: str,
                                                            seconds: float) -> None:
    """The fuzz run's crasher: a huge ``seconds`` overflowed the clock (500)."""
    async with running(mongo_uri, **with_test_flows()) as service:
        response = await service.service.client.post(
            "/admin/clock/advance", json={"seconds": seconds}, headers=AUTH)
        assert response.status == 400, await response.text()
        assert "seconds" in (await response.json())["error"]
        assert await service.service.advance(60)  # the clock still works
