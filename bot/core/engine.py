"""durable_rules, wrapped: one customer's state is loaded, decided, saved.

durable_rules keeps per-``sid`` state in process memory and its host is
global. The runtime owns that host here and nowhere else: for each decision
it restores the customer's saved state into the engine, posts the event,
reads back what changed and deletes it from memory again. Memory therefore
holds only the customers being decided right now, and any worker can
continue any customer. Every rule matches one event
(``bot.core.rulesets.when_all``), so no partly matched event is ever left
to keep between decisions.

Rules act only through ``bot.core.commands``; exceptions raised in a rule (which
durable_rules stores in the state instead of raising) become ``RuleError``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from durable import engine as durable_engine
from durable import lang as durable_lang
from durable.engine import MessageNotHandledException

from bot.core.commands import Recorder, recording, stop_recording

ENGINE_KEYS = ("sid", "id", "$s", "exception")


class QuietHost(durable_engine.Host):  # type: ignore[misc]  # durable_rules is untyped
    """durable_rules' host without its background dispatch threads.

    ``durable.engine.Host`` starts two timer threads that keep calling
    ``start_action`` on every ruleset, to run actions queued by someone
    else. Here every action is run by the ``post`` that queued it, so those
    threads only race with it: in one bench run, one decision in 10,000 had
    its action taken by a dispatch thread (engine error 307), and the step
    was lost (no recorder there, nothing sent). Nothing here uses durable's
    own timers or asynchronous actions, which are what the threads are for.
    """

    def _run(self) -> None:
        return None


def get_host() -> durable_engine.Host:
    """durable_rules' global host (every ``ruleset`` registered), made quiet.

    ``durable.lang.get_host`` creates the host on first use; setting it
    first makes that one, and any later call from anywhere, this quiet host.
    """
    if durable_lang._main_host is None:
        durable_lang._main_host = QuietHost()
    return durable_lang.get_host()


class RuleError(RuntimeError):
    """A rule raised; the decision is abandoned and the input kept as failed."""


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class Engine:
    """Posts events to flows' rulesets for one customer at a time."""

    def __init__(self) -> None:
        self.host = get_host()

    def _post(self, ruleset: str, event: dict[str, Any]) -> None:
        with contextlib.suppress(MessageNotHandledException):
            self.host.post(ruleset, event)

    def decide(self, ruleset: str, sid: str, saved: dict[str, Any] | None,
               event: dict[str, Any], recorder: Recorder) -> dict[str, Any]:
        """Post ``event`` for customer ``sid`` and return the state to save.

        Args:
            ruleset: the flow's ruleset name.
            sid: the customer's id.
            saved: what a previous call returned (None for a fresh run).
            event: the event, JSON-safe.
            recorder: receives the commands the rules record.

        Raises:
            RuleError: a rule raised while deciding.
        """
        self._forget(ruleset, sid)
        try:
            if saved:
                self.host.update_state(ruleset, {**saved.get("state", {}), "sid": sid})
            token = recording(recorder)
            try:
                self._post(ruleset, _json_safe({**event, "sid": sid}))
            finally:
                stop_recording(token)
            state = self.host.get_state(ruleset, sid)
            if state.get("exception"):
                raise RuleError(f"rule of flow {ruleset!r} failed: {state['exception']}")
            return {"state": {k: v for k, v in state.items() if k not in ENGINE_KEYS}}
        finally:
            self._forget(ruleset, sid)

    def _forget(self, ruleset: str, sid: str) -> None:
        with contextlib.suppress(Exception):  # no state for that sid: nothing to forget
            self.host.delete_state(ruleset, sid)
