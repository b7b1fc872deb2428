"""The customer document: identity keys, profile merge and the consent ledger.

Pure functions over a plain ``dict`` (the MongoDB document). Identity is a
list of ``keys`` ("store:<id>", "phone:<E.164>", "email:<addr>",
"wauser:<bsuid>", "tg:<chat id>") under one unique multikey index, so a
customer is found by any of them in one indexed query, and two inputs that
race to create the same customer collide on the index instead of creating
two documents.

Why the key kinds, provider ones included, are named here and not behind
the channel protocol: a kind and the field that mirrors it (``KEY_FIELDS``)
are the customer document's schema, not a provider's behaviour. They are
stored in every document and its unique index, matched across channels (a
WhatsApp user id and a phone found on an order name one customer), and read
back by channels' ``address``; one table keeps them meaning the same to
every room. A channel with a new kind of identity adds one row to it.

Consent is an append-only ledger; the current state per channel is derived
from it. An entry counts as of the time it was given (``at``), so a store
repeating an old ``true`` never overrides a later opt-out. A store's ``at``
is never later than the event's arrival on the service's clock
(:mod:`bot.core.store_clock`, which also keeps ``doc["store_clock"]``),
or a store clock running ahead would date its consent after the customer's
STOP.

A state is ``granted``, ``revoked`` or ``pending``: an opt-in the store
reported that the customer has not confirmed yet (double opt-in,
:func:`store_consent_state`). Pending allows no marketing; the double
opt-in flow turns it into a grant or a revocation.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from bot.core import purchases
from bot.core.inputs import CustomerInfo
from bot.types import ConsentState, Doc

# Ledger sources the double opt-in flow writes (rules/double_opt_in.py): "double_opt_in:<channel>"
# for the customer's answer, "double_opt_in:expired" when nobody answered.
DOUBLE_OPT_IN_SOURCE = "double_opt_in:"
PROFILE_FIELDS = ("first_name", "last_name", "locale", "timezone", "birthday")
# Identity key kind -> the customer field that mirrors its value, in lookup priority order.
KEY_FIELDS = {"store": "store_id", "phone": "phone", "email": "email",
              "wauser": "wa_user_id", "tg": "telegram_chat"}


def identity_keys(
    store_id: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    wa_user_id: str | None = None,
    telegram_chat: str | None = None,
) -> list[str]:
    """The identity keys for what is known, in lookup priority order."""
    pairs = (("store", store_id), ("phone", phone), ("email", email),
             ("wauser", wa_user_id), ("tg", telegram_chat))
    return [f"{kind}:{value}" for kind, value in pairs if value]


def pick_customer(candidates: list[Doc], keys: list[str]) -> Doc | None:
    """The best match among documents sharing a key: store id, then phone, then email."""
    for key in keys:
        for candidate in candidates:
            if key in candidate.get("keys", []):
                return candidate
    return None


def new_customer(keys: list[str], now: datetime) -> Doc:
    """A fresh customer document with only its identity."""
    return {
        "_id": f"c_{uuid.uuid4().hex[:20]}",
        "keys": list(dict.fromkeys(keys)),
        "profile": {},
        "tags": [],
        "attrs": {},
        "consent_ledger": [],
        "consents": {},
        "flows": {},
        "flow_history": {},
        "engine": {},
        "question": None,
        "waits": [],
        "conversations": {},
        "last_in": {},
        "checkouts": {},
        "done_inputs": [],
        "created_at": now,
        "last_activity_at": now,
        "v": 0,
    }


def add_keys(doc: Doc, keys: list[str]) -> None:
    """Teach the document new identity keys and mirror them in their fields."""
    for key in keys:
        if key not in doc["keys"]:
            doc["keys"].append(key)
    for key in doc["keys"]:
        kind, _, value = key.partition(":")
        field = KEY_FIELDS.get(kind)
        if field and not doc.get(field):
            doc[field] = value


def merge_profile(doc: Doc, info: CustomerInfo) -> list[str]:
    """Merge what an event teaches about the customer; returns the changed fields."""
    changed = []
    profile = doc.setdefault("profile", {})
    for name in PROFILE_FIELDS:
        value = getattr(info, name, None)
        if value and profile.get(name) != value:
            profile[name] = value
            changed.append(name)
    return changed


def record_consent(doc: Doc, channel: str, state: str, source: str, at: datetime,
                   recorded_at: datetime, evidence: Doc | None = None) -> bool:
    """Append a consent change to the ledger; returns whether the state changed.

    Every entry gets an ``id`` (``cl<n>``, its place in this customer's
    ledger, which only grows) and keeps its ``evidence``: what proves it
    (the store event's id, the words the customer typed and their message
    id, the provider's webhook, the flow run that asked). The current state
    per channel (``consents``) names the entry behind it, so a marketing
    message can record which entry allowed it.

    An entry older than the latest one on that channel is kept in the ledger
    (it happened) but does not change the current state.
    """
    ledger = doc.setdefault("consent_ledger", [])
    entry: Doc = {"id": f"cl{len(ledger) + 1}", "channel": channel, "state": state,
                  "source": source, "at": at, "recorded_at": recorded_at}
    if evidence:
        entry["evidence"] = dict(evidence)
    current = doc.setdefault("consents", {}).get(channel)
    if current is not None and current["state"] == state:
        return False
    if current is not None and current["at"] > at:
        ledger.append({**entry, "superseded": True})
        return False
    ledger.append(entry)
    doc["consents"][channel] = {"state": state, "source": source, "at": at, "entry": entry["id"]}
    return True


def consent_entry(doc: Doc, channel: str) -> str | None:
    """The id of the ledger entry behind the current consent on ``channel`` (None if none).

    Entries written before ledger ids existed are named by their place
    (``cl<n>``), which is the id they would have had.
    """
    current = doc.get("consents", {}).get(channel)
    if current is None:
        return None
    if current.get("entry"):
        return str(current["entry"])
    for n, entry in reversed(list(enumerate(doc.get("consent_ledger", []), start=1))):
        if entry.get("channel") == channel and entry.get("state") == current.get("state") \
                and not entry.get("superseded"):
            return str(entry.get("id") or f"cl{n}")
    return None


def store_consent_state(doc: Doc, channel: str, stated: bool | str,
                        double_opt_in: Collection[str], *, timed: bool) -> ConsentState | None:
    """The state a store's consent statement records on ``channel`` (None: nothing).

    ``stated`` is the store's value: ``True``, ``False`` or ``"pending"`` (an
    opt-in the customer must still confirm). On a channel named in
    ``double_opt_in`` (the ``DOUBLE_OPT_IN`` setting) a ``True`` counts as
    ``"pending"`` too, so the double opt-in flow asks the customer first.
    Why the exceptions:

    - a customer already granted on the channel is not asked again: a
      ``True`` keeps the grant and a ``"pending"`` records nothing (the
      consent a confirmation would give is already there);
    - a customer who declined the confirmation, or let it expire
      (``double_opt_in:*`` revocation), is not asked again by a store
      repeating its old ``True`` on every later event: only a statement
      with its own consent time (``timed``: ``consent_at`` or a per-channel
      time) asks again, and one dated before the refusal loses to it in the
      ledger anyway.

    A ``False`` is always a revocation. The ledger's rule by time
    (:func:`record_consent`) still decides whether the state changes, so a
    pending never overrides a later revocation.
    """
    if stated is False:
        return "revoked"
    current = doc.get("consents", {}).get(channel) or {}
    if current.get("state") == "granted":
        return "granted" if stated is True else None
    if stated is True and channel not in double_opt_in:
        return "granted"
    declined = current.get("state") == "revoked" and str(
        current.get("source") or "").startswith(DOUBLE_OPT_IN_SOURCE)
    if declined and not timed:
        return None
    return "pending"


def has_consent(doc: Doc, channel: str) -> bool:
    """Whether marketing may go to the customer on ``channel`` now.

    Only a grant allows it: ``pending`` (not confirmed yet) is as good as no consent.
    """
    entry = doc.get("consents", {}).get(channel)
    return entry is not None and entry["state"] == "granted"


def facts(doc: Doc) -> dict[str, Any]:
    """What rules may read about the customer (JSON-safe).

    Besides the profile, tags, attrs, consents and flows: the purchase
    history (:func:`bot.core.purchases.facts`), so rules can branch on what
    the customer bought (``bot.core.segments`` tests these facts).
    """
    profile = doc.get("profile", {})
    question = doc.get("question") or {}
    return {
        "id": doc.get("store_id") or doc["_id"],
        "first_name": profile.get("first_name") or "",
        "locale": (profile.get("locale") or "es")[:2].lower(),
        "timezone": profile.get("timezone") or "",
        "tags": list(doc.get("tags", [])),
        "attrs": dict(doc.get("attrs", {})),
        "consents": {ch: entry["state"] for ch, entry in doc.get("consents", {}).items()},
        "active_flows": sorted(doc.get("flows", {})),
        "question": question.get("name") or "",
        **purchases.facts(doc),
    }
