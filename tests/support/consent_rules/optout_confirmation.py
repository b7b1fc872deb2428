"""The shipped opt-out confirmation flow, unchanged (see ``rules/optout_confirmation.py``)."""

from rules.optout_confirmation import FLOW

__all__ = ["FLOW"]
