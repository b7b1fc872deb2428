"""WhatsApp Cloud API webhooks (2026 format) into ``bot.core.inputs`` models.

A webhook holds ``entry[].changes[].value`` objects with ``messages[]``,
``statuses[]`` and ``contacts[]`` (field "messages"), or with
``user_preferences[]`` and ``contacts[]`` (field "user_preferences": a user
who stopped or resumed the business's marketing messages inside WhatsApp).
Since 2026 each contact carries the user's business-scoped id (``user_id``),
a message names it in ``from_user_id``, and a user who turned on usernames
may come with neither ``from`` nor ``wa_id``: such a customer is known by
the user id alone. Failed statuses may come
without ``contacts``.

Fields are read here, with :class:`BadPayload` naming the first problem.
Where a contact with ``user_id`` is present, pywa's own parser is run over the
same item as a second check of its shape (pywa 4.5 refuses contacts without
``user_id``, so older payloads are read by this module alone).
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from typing import Any, Literal

from pywa_async.client import WhatsApp
from pywa_async.errors import PywaUnknownEnumMemberWarning
from pywa_async.types.base_update import RawUpdate
from pywa_async.types.callback import CallbackButton, CallbackSelection
from pywa_async.types.message import Message
from pywa_async.types.message_status import MessageStatus
from pywa_async.types.user_preferences import UserMarketingPreferences

from bot.core.inputs import (
    ConsentChange,
    DeliveryState,
    DeliveryStatus,
    FailureMeaning,
    InboundKind,
    InboundMessage,
)
from channels.base import Parsed
from channels.errors import BadPayload
from channels.json_body import load_json

MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker", "location"})
STATES: frozenset[DeliveryState] = frozenset({"sent", "delivered", "read", "failed"})
# Cloud API error codes that say more about the customer than "this message failed",
# whether they come as a send's answer or in a failed status. The sender acts on the
# meaning (``bot.core.inputs.FailureMeaning``); ``channels.whatsapp`` adds the codes
# only a send answers with.
ERROR_MEANINGS: dict[int, FailureMeaning] = {
    131026: "dead_address",  # undeliverable: mostly a number that is not on WhatsApp
    131049: "marketing_limit",  # per-user marketing limit ("healthy ecosystem engagement")
    131050: "opted_out",  # the user stopped marketing messages from the business
}
# user_preferences values -> our consent state; others ("signup"...) are not a change.
PREFERENCES: dict[str, Literal["granted", "revoked"]] = {"stop": "revoked", "resume": "granted"}
MARKETING_CATEGORY = "marketing_messages"

# Any: the parsers are only run to validate; their callback data is never read.
PywaParser = (type[Message] | type[CallbackButton[Any]] | type[CallbackSelection[Any]]
              | type[MessageStatus[Any]] | type[UserMarketingPreferences])


def parse_webhook(body: bytes, client: WhatsApp) -> Parsed:
    """Every inbound message, delivery status and preference change of a webhook, in order.

    Message types and statuses the service does not act on (system, unsupported,
    orders, "deleted"...) are left out, and so are preference changes other than
    a stop or resume of marketing messages. ``client`` is only handed to pywa's
    parsers, which make no call.
    """
    payload = load_json(body)
    entries = _field(payload, "entry", list, "webhook")
    parsed: Parsed = []
    for e, entry in enumerate(entries):
        where = f"entry[{e}]"
        entry = _obj(entry, where)
        for c, change in enumerate(_field(entry, "changes", list, where, default=[])):
            here = f"{where}.changes[{c}]"
            change = _obj(change, here)
            field = change.get("field", "messages")
            if field not in ("messages", "user_preferences"):
                continue
            value = _field(change, "value", dict, here)
            contacts = [x for x in _field(value, "contacts", list, here, default=[])
                        if isinstance(x, dict)]
            if field == "user_preferences":
                for p, pref in enumerate(_field(value, "user_preferences", list, here)):
                    consent = _preference(client, entry, value, pref, contacts,
                                          f"{here}.user_preferences[{p}]")
                    if consent is not None:
                        parsed.append(consent)
                continue
            for m, msg in enumerate(_field(value, "messages", list, here, default=[])):
                message = _inbound(client, entry, value, msg, contacts, f"{here}.messages[{m}]")
                if message is not None:
                    parsed.append(message)
            for s, status in enumerate(_field(value, "statuses", list, here, default=[])):
                report = _status(client, entry, value, status, contacts, f"{here}.statuses[{s}]")
                if report is not None:
                    parsed.append(report)
    return parsed


def _inbound(
    client: WhatsApp,
    entry: dict[str, Any],
    value: dict[str, Any],
    msg: Any,
    contacts: list[dict[str, Any]],
    where: str,
) -> InboundMessage | None:
    msg = _obj(msg, where)
    classified = _classify(msg, where)
    if classified is None:
        return None
    kind, text, choice_id, parser = classified
    phone = _opt_str(msg.get("from"))
    user_id = _opt_str(msg.get("from_user_id"))
    contact = _match_contact(contacts, phone, user_id)
    if contact is not None:
        phone = phone or _opt_str(contact.get("wa_id"))
        user_id = user_id or _opt_str(contact.get("user_id"))
    sender = _e164(phone) if phone else user_id
    if not sender:
        raise BadPayload(f"{where}: no 'from', 'from_user_id' or matching contact")
    provider_id = _message_id(msg, where)
    at = _timestamp(msg.get("timestamp"), where)
    _check_with_pywa(client, entry, value, "messages", msg, contact, parser, where)
    profile = contact.get("profile") if contact is not None else None
    return InboundMessage(
        channel="whatsapp",
        provider_id=provider_id,
        sender=sender,
        user_id=user_id,
        kind=kind,
        text=text,
        choice_id=choice_id,
        profile_name=_opt_str(profile.get("name")) if isinstance(profile, dict) else None,
        at=at,
    )


def _classify(
    msg: dict[str, Any], where: str
) -> tuple[InboundKind, str, str | None, PywaParser] | None:
    """(kind, text, choice id, pywa parser) of a message, or None for types we skip."""
    mtype = msg.get("type")
    if not isinstance(mtype, str):
        raise BadPayload(f"{where}: 'type' must be a str")
    if mtype == "text":
        body = _field(_field(msg, "text", dict, where), "body", str, f"{where}.text")
        return "text", body, None, Message
    if mtype in MEDIA_TYPES:
        media = _field(msg, str(mtype), dict, where)
        return "media", _opt_str(media.get("caption")) or "", None, Message
    if mtype == "reaction":
        reaction = _field(msg, "reaction", dict, where)
        return "reaction", _opt_str(reaction.get("emoji")) or "", None, Message
    if mtype == "button":  # a quick-reply button of a template
        button = _field(msg, "button", dict, where)
        payload = _field(button, "payload", str, f"{where}.button")
        return "choice", _opt_str(button.get("text")) or payload, payload, CallbackButton
    if mtype == "interactive":
        interactive = _field(msg, "interactive", dict, where)
        itype = interactive.get("type")
        if itype not in ("button_reply", "list_reply"):
            return None  # flows (nfm_reply), call permission replies...
        reply = _field(interactive, str(itype), dict, f"{where}.interactive")
        choice_id = _field(reply, "id", str, f"{where}.interactive.{itype}")
        parser = CallbackButton if itype == "button_reply" else CallbackSelection
        return "choice", _opt_str(reply.get("title")) or choice_id, choice_id, parser
    return None


def _status(
    client: WhatsApp,
    entry: dict[str, Any],
    value: dict[str, Any],
    status: Any,
    contacts: list[dict[str, Any]],
    where: str,
) -> DeliveryStatus | None:
    status = _obj(status, where)
    state = status.get("status")
    if not isinstance(state, str):
        raise BadPayload(f"{where}: 'status' must be a str")
    if state not in STATES:
        return None
    provider_id = _message_id(status, where)
    at = _timestamp(status.get("timestamp"), where)
    phone = _opt_str(status.get("recipient_id"))
    user_id = _opt_str(status.get("recipient_user_id"))
    contact = _match_contact(contacts, phone, user_id)
    if contact is not None:
        phone = phone or _opt_str(contact.get("wa_id"))
        user_id = user_id or _opt_str(contact.get("user_id"))
    _check_with_pywa(client, entry, value, "statuses", status, contact, MessageStatus, where)
    error_code = error_message = None
    meaning: FailureMeaning | None = None
    errors = status.get("errors") or value.get("errors")
    if state == "failed" and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        error_code = str(first["code"]) if first.get("code") is not None else None
        error_message = _opt_str(first.get("message")) or _opt_str(first.get("title"))
        meaning = _meaning(error_code)
    return DeliveryStatus(
        channel="whatsapp",
        provider_id=provider_id,
        status=state,
        recipient=_e164(phone) if phone else user_id,
        error_code=error_code,
        error_message=error_message,
        meaning=meaning,
        at=at,
    )


def _meaning(error_code: str | None) -> FailureMeaning | None:
    """What a failed status's error code means (:data:`ERROR_MEANINGS`), if anything."""
    if error_code is None or not error_code.isdigit():
        return None
    return ERROR_MEANINGS.get(int(error_code))


def _preference(
    client: WhatsApp,
    entry: dict[str, Any],
    value: dict[str, Any],
    pref: Any,
    contacts: list[dict[str, Any]],
    where: str,
) -> ConsentChange | None:
    """A user's stop or resume of marketing messages, or None for other preferences.

    Meta gives no id: the dedupe key is built from the user, the time and the
    value, so a redelivered webhook is stored once and a later change is new.
    """
    pref = _obj(pref, where)
    category = _field(pref, "category", str, where)
    choice = _field(pref, "value", str, where)
    detail = _field(pref, "detail", str, where, default="")
    at = _timestamp(pref.get("timestamp"), where)
    state = PREFERENCES.get(choice.lower())
    if category.lower() != MARKETING_CATEGORY or state is None:
        return None  # a signup through a link, a category newer than this code...
    phone = _opt_str(pref.get("wa_id"))
    user_id = _opt_str(pref.get("user_id"))
    contact = _match_contact(contacts, phone, user_id)
    if contact is not None:
        phone = phone or _opt_str(contact.get("wa_id"))
        user_id = user_id or _opt_str(contact.get("user_id"))
    if not (phone or user_id):
        raise BadPayload(f"{where}: no 'wa_id', 'user_id' or matching contact")
    _check_with_pywa(client, entry, value, "user_preferences", pref, contact,
                     UserMarketingPreferences, where)
    return ConsentChange(
        channel="whatsapp",
        provider_id=f"prefs:{phone or user_id}:{int(at.timestamp())}:{choice.lower()}",
        sender=_e164(phone) if phone else str(user_id),
        user_id=user_id,
        state=state,
        detail=detail,
        at=at,
    )


def _check_with_pywa(
    client: WhatsApp,
    entry: dict[str, Any],
    value: dict[str, Any],
    key: str,
    item: dict[str, Any],
    contact: dict[str, Any] | None,
    parser: PywaParser,
    where: str,
) -> None:
    """Run pywa's parser over this one item; its refusal becomes :class:`BadPayload`."""
    if contact is None or not contact.get("user_id"):
        return  # pywa 4.5 cannot read contacts without user_id
    _check_timestamps(item, where)
    single = {**value, key: [item], "contacts": [contact]}
    field = "user_preferences" if key == "user_preferences" else "messages"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": str(entry.get("id", "")), "changes": [
            {"field": field, "value": single},
        ]}],
    }
    update = RawUpdate(json.dumps(payload).encode(), hmac_header=None,
                       update_hash=str(item.get("id", "")))
    try:
        with warnings.catch_warnings():
            # an enum value newer than pywa is no reason to refuse the webhook
            warnings.simplefilter("ignore", PywaUnknownEnumMemberWarning)
            parser.from_update(client=client, update=update)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError,
            OSError, RecursionError) as error:
        # OverflowError/OSError: a timestamp pywa reads (e.g. a conversation's
        # ``expiration_timestamp``) beyond what a datetime can hold; RecursionError:
        # an item nested almost as deep as ``json`` reads, re-encoded one level deeper.
        raise BadPayload(f"{where}: refused by pywa ({type(error).__name__}: {error})") from error


def _check_timestamps(item: dict[str, Any], where: str) -> None:
    """Refuse a ``*timestamp`` pywa would read that no datetime can hold, naming it.

    Meta sends these as strings of digits (``conversation.expiration_timestamp``);
    pywa turns them into datetimes and fails with OverflowError or OSError
    on a number such as 70 nines. Iterative: an item can nest deeply.
    """
    stack: list[tuple[str, Any]] = [(where, item)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        for key, child in value.items():
            here = f"{path}.{key}"
            if str(key).endswith("timestamp") and isinstance(child, str | int) and not (
                    isinstance(child, bool)) and str(child).lstrip("-").isdigit():
                try:
                    datetime.fromtimestamp(int(child), tz=UTC)
                except (OverflowError, OSError, ValueError) as error:
                    raise BadPayload(f"{here}: not a Unix time in range: {child!r}") from error
            stack.append((here, child))


def _match_contact(
    contacts: list[dict[str, Any]], phone: str | None, user_id: str | None
) -> dict[str, Any] | None:
    """The contact of this phone or user id; the only contact when nothing names one."""
    for contact in contacts:
        if (phone and contact.get("wa_id") == phone) or (
            user_id and contact.get("user_id") == user_id
        ):
            return contact
    if len(contacts) == 1 and not _conflicts(contacts[0], phone, user_id):
        return contacts[0]
    return None


def _conflicts(contact: dict[str, Any], phone: str | None, user_id: str | None) -> bool:
    return bool(
        (phone and contact.get("wa_id") and contact.get("wa_id") != phone)
        or (user_id and contact.get("user_id") and contact.get("user_id") != user_id)
    )


def _e164(phone: str) -> str:
    """``+`` and the digits of a wa_id; anything that is not a number is kept as it is."""
    digits = phone.removeprefix("+")
    return f"+{digits}" if digits.isdigit() else phone


def _timestamp(raw: Any, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise BadPayload(f"{where}: 'timestamp' is not a Unix time: {raw!r}") from error


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadPayload(f"{where} must be an object")
    return value


_MISSING: Any = object()


def _field(obj: Any, key: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    """``obj[key]`` checked to be a ``kind``; missing is an error unless a default is given."""
    obj = _obj(obj, where)
    value = obj.get(key)
    if value is None and default is not _MISSING:
        return default
    if not isinstance(value, kind):
        raise BadPayload(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def _message_id(obj: Any, where: str) -> str:
    """A message's ``id`` (a ``wamid``): the dedupe key, so never empty.

    Found by the full fuzz run: an empty id was accepted, stored as
    ``whatsapp:``, and every later message with an empty id was then
    answered 200 as a duplicate of the first and dropped.
    """
    value = _field(obj, "id", str, where)
    if not value.strip():
        raise BadPayload(f"{where}: 'id' must not be empty")
    return str(value)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
