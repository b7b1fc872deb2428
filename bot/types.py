"""Names shared by the core, the runtime and the edges, each with one meaning.

Part of the core's protocol surface: ``channels/`` and ``store_events/`` may
import it too. It holds only names (types and constants), no behaviour
beyond reading an inbox item's kind.

Two ids of a customer, two names:

- ``customer_id`` is always the **store's** id of a customer: the
  ``customer.id`` of store events, ``customer_id`` in the ``conversations``
  summaries and in the agent API (``C.customer_id`` of the contract). A
  customer the store never named (someone who only wrote on a channel) has
  none, and the API shows the internal id in its place.
- ``customer`` is the service's **internal** id, the ``_id`` of the customer
  document, wherever another document refers to it: ``messages``,
  ``codes``, ``flow_runs`` and ``conversations``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Doc = dict[str, Any]
"""A MongoDB document (or a part of one) as PyMongo reads and writes it."""

InboxKind = Literal["event", "fanout", "message", "receipt", "agent", "send_failure",
                    "consent", "message_fate", "campaign", "ignored"]
"""What an inbox item is (``bot.runtime.inbox``).

- ``event``: a store event for one customer; ``fanout``: a store event
  (``product.back_in_stock``) still to be expanded to every interested customer,
  or a store-wide one the catalog learns from (``bot.runtime.catalog``);
- ``message``: a customer's message on a channel;
- ``receipt``: a provider's delivery receipt for a message we sent (sent,
  delivered, read, failed); it updates the timeline and is never decided;
- ``agent``: an agent's action on a conversation;
- ``send_failure``: a message that failed for good (or was skipped with a
  fallback left), reported back to its customer's decision: its run, the
  meaning of the provider's code (consent, dead address), a fallback;
- ``consent``: a provider's own report of a user's marketing preference
  (WhatsApp's ``user_preferences``), recorded in the consent ledger;
- ``message_fate``: a watched message (``watch`` in ``bot.core.commands``) was
  delivered, read, clicked or failed, reported by the receipt pass to the
  run that watches it;
- ``campaign``: one customer's share of a scheduled campaign (``POST
  /api/campaigns``), expanded by ``bot.runtime.campaigns``: the decision
  sends it as a marketing message;
- ``ignored``: a signed webhook we keep for inspection but do not act on.
"""
INBOX_KINDS: tuple[InboxKind, ...] = get_args(InboxKind)

LEGACY_KINDS: dict[str, InboxKind] = {"status": "receipt", "delivery": "send_failure"}
"""Kinds written by earlier versions, read under their new names (README, "Upgrading")."""


_KIND_BY_NAME: dict[str, InboxKind] = {**{kind: kind for kind in INBOX_KINDS}, **LEGACY_KINDS}


def inbox_kind(item: Doc) -> InboxKind:
    """The kind of an inbox item, with the names of earlier versions mapped to today's."""
    try:
        return _KIND_BY_NAME[item["kind"]]
    except KeyError:
        raise ValueError(f"unknown input kind {item['kind']!r}") from None


InboxState = Literal["pending", "done", "failed", "ignored"]

ConsentState = Literal["granted", "pending", "revoked"]
"""Marketing consent on a channel. ``pending``: the store reported an opt-in that the
customer has not confirmed yet (double opt-in); it allows no marketing, like ``revoked``."""

ConversationStatus = Literal["bot", "needs_agent", "agent", "closed"]
"""Who answers a conversation: the bot, nobody yet (a person was asked for),
a person, or nobody (closed by an agent)."""
CONVERSATION_STATUSES: tuple[ConversationStatus, ...] = get_args(ConversationStatus)

MessageStatus = Literal["received", "queued", "skipped", "sent", "delivered", "read",
                        "failed", "undelivered"]
"""A timeline message's status: ``received`` (inbound), then for outbound ones
``queued`` in the outbox or ``skipped`` with a reason, and from the sender and
the provider's receipts ``sent``, ``delivered``, ``read``, ``failed`` or
``undelivered``."""
