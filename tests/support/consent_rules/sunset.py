"""The shipped sunset flow, unchanged (see ``rules/sunset.py``)."""

from rules.sunset import FLOW

__all__ = ["FLOW"]
