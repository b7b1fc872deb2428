"""The shared fuzz strategies (``tests/support/fuzzing.py``) keep their odd values intact."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings

from tests.support import fuzzing


def test_drawing_bodies_never_changes_the_shared_odd_values() -> None:
    """The regression: ``{}`` and ``[]`` of ``EXTREMES`` went into bodies as themselves, a
    later draw wrote a key into that very ``{}``, and every later run drew a different
    ``EXTREMES``: Hypothesis stopped with "Inconsistent data generation" mid-stress."""
    pristine = copy.deepcopy(fuzzing.EXTREMES)

    @settings(max_examples=3000, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=fuzzing.with_extra_field([("x", {"a": 1})]))
    def draw(case: tuple[str, bytes]) -> None:
        assert isinstance(case[1], bytes)

    draw()
    assert pristine == fuzzing.EXTREMES
