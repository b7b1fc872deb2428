"""The shipped inbox flow, unchanged (see ``rules/inbox.py``): nobody is met with silence."""

from rules.inbox import FLOW

__all__ = ["FLOW"]
