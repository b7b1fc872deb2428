"""Counting round trips: a PyMongo command listener for tests."""

from __future__ import annotations

from collections import Counter

from pymongo import monitoring


class CommandLog(monitoring.CommandListener):
    """Every command the client starts, for counting round trips."""

    def __init__(self) -> None:
        self.commands: list[monitoring.CommandStartedEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def on(self, collection: str) -> list[monitoring.CommandStartedEvent]:
        """The commands sent to one collection."""
        return [e for e in self.commands if e.command.get(e.command_name) == collection]

    def count(self, collection: str) -> Counter[str]:
        """Commands sent to one collection, by name."""
        return Counter(e.command_name for e in self.on(collection))
