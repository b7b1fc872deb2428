"""Reports of messages that did not go, back to their customer's decision.

A send that fails for good, or is skipped at send time with a fallback
channel left, may matter to more than its timeline: the run that sent it
records the step, a provider's code may say the customer opted out or the
address is dead (``bot.core.inputs.FailureMeaning``), and a fallback chain
goes on to its next channel. None of that may be written by the sender or
the receipt pass (only a decision writes a customer), so they report it as
an inbox item of kind ``send_failure``, deduplicated per message, and the
decision (``Router.send_failed``) does the rest.
"""

from __future__ import annotations

from bot.runtime.inbox import make_item
from bot.types import Doc

# What a failure report carries of its message: enough for the decision to
# record the meaning and, for a fallback or a retry, to write the message again.
REPORTED_FIELDS = ("_id", "channel", "to", "to_user_id", "text", "choices", "template",
                   "fallback_template",
                   "marketing", "flow", "run", "step", "agent", "flow_version", "variant",
                   "fallback_left", "fallback_from", "retry_of")


def needs_report(message: Doc, meaning: str | None, skipped: bool = False) -> bool:
    """Whether the customer's decision must hear of this failure (or skip).

    A flow's message (its run records the step), a provider code that says
    something about the customer (consent, a dead address), and a message
    with a fallback channel left do; a keyword's or agent's plain failure
    does not.
    """
    if message.get("fallback_left"):
        return True
    return not skipped and (bool(message.get("flow")) or meaning is not None)


def failure_report(message: Doc, error: str, code: str | None, meaning: str | None,
                   skipped: bool = False) -> Doc:
    """The inbox item that tells the customer's decision a message did not go."""
    return make_item(
        dedupe_id=f"delivery:{message['_id']}", kind="send_failure", source="outbox",
        keys=[f"id:{message['customer']}"],
        payload={"message_id": message["_id"], "flow": message.get("flow"),
                 "run": message.get("run"), "step": message.get("step"), "error": error,
                 "code": code, "meaning": meaning, "skipped": skipped,
                 "message": {name: message.get(name) for name in REPORTED_FIELDS}})


