"""Correctly signed provider webhooks, for driving the real server in tests.

Signatures::

    whatsapp_signature(secret, body) -> "sha256=<hex>"          # X-Hub-Signature-256
    twilio_signature(token, url, params) -> "<base64>"          # X-Twilio-Signature
    telegram_headers(secret_token) -> {header: value}

Payload builders return plain dicts (JSON for WhatsApp and Telegram, form
fields for Twilio); ``json_body`` / ``form_body`` turn them into the bytes to
POST, and ``signed_whatsapp`` / ``signed_twilio`` give body and headers at
once::

    body, headers = signed_whatsapp("app-secret", whatsapp_text_webhook("Hola"))
    await client.post("/webhooks/whatsapp", data=body, headers=headers)

    url = "http://127.0.0.1:8080/webhooks/sms"       # PUBLIC_URL + path
    body, headers = signed_twilio("twilio-token", url, twilio_inbound_form("STOP"))

Defaults describe one customer (Ana, +54 9 11 2233-4455, user id
``AR.1234567890123``) writing to phone number id ``123456789012345``; every
id that must be unique (message ids, update ids) is fresh on each call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

PHONE = "+5491122334455"
USER_ID = "AR.1234567890123"
NAME = "Ana"
PHONE_ID = "123456789012345"
DISPLAY_PHONE = "15550783881"
WABA_ID = "102290129340398"
TWILIO_FROM = "+15005550006"
ACCOUNT_SID = "AC" + "0" * 32
CHAT_ID = 987654321

_update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)


# -- signatures ---------------------------------------------------------------


def whatsapp_signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(
    token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 of ``url`` + each name+value, sorted by name.

    ``url`` is the full URL Twilio called (``PUBLIC_URL`` + path, with any query).
    A repeated name+value pair counts once, as in Twilio's validators.
    """
    pairs = sorted(set(params.items() if isinstance(params, Mapping) else params))
    data = url + "".join(f"{name}{value}" for name, value in pairs)
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def telegram_headers(secret_token: str) -> dict[str, str]:
    """The header Telegram sends with every webhook once ``setWebhook`` had a secret_token."""
    return {"X-Telegram-Bot-Api-Secret-Token": secret_token, "Content-Type": "application/json"}


def json_body(payload: Any) -> bytes:
    """The payload as the provider would POST it (compact UTF-8 JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def form_body(params: Mapping[str, str]) -> bytes:
    """Form fields urlencoded, as Twilio POSTs them."""
    return urlencode(params).encode()


def signed_whatsapp(secret: str, payload: Any) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a WhatsApp webhook signed with the app secret."""
    body = json_body(payload)
    return body, {"X-Hub-Signature-256": whatsapp_signature(secret, body),
                  "Content-Type": "application/json"}


def signed_twilio(token: str, url: str, params: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a Twilio webhook to ``url`` signed with the auth token."""
    return form_body(params), {"X-Twilio-Signature": twilio_signature(token, url, params),
                               "Content-Type": "application/x-www-form-urlencoded"}


# -- WhatsApp (2026 format: contacts[].user_id, from_user_id) -----------------


def _wamid() -> str:
    return "wamid." + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:8]).decode()


def _contact(phone: str | None, user_id: str, name: str) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": name}, "user_id": user_id,
                               "country_code": user_id.split(".", 1)[0]}
    if phone:
        contact["wa_id"] = phone.lstrip("+")
    return contact


def _whatsapp_envelope(value: dict[str, Any], phone_id: str,
                       field: str = "messages") -> dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY_PHONE, "phone_number_id": phone_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": field}]}]}


def whatsapp_message_webhook(
    message: dict[str, Any],
    *,
    phone: str | None = PHONE,
    user_id: str = USER_ID,
    name: str = NAME,
    message_id: str | None = None,
    timestamp: int | None = None,
    phone_id: str = PHONE_ID,
) -> dict[str, Any]:
    """An incoming-message webhook around ``message`` (its ``type`` and content object).

    ``phone=None`` builds a username user's message: no ``from``, no ``wa_id``.
    """
    msg: dict[str, Any] = {"from_user_id": user_id, "id": message_id or _wamid(),
                           "timestamp": str(timestamp or int(time.time())), **message}
    if phone:
        msg["from"] = phone.lstrip("+")
    return _whatsapp_envelope(
        {"contacts": [_contact(phone, user_id, name)], "messages": [msg]}, phone_id)


def whatsapp_text_webhook(text: str = "Hola", **kwargs: Any) -> dict[str, Any]:
    """A text message; keyword arguments as in :func:`whatsapp_message_webhook`."""
    return whatsapp_message_webhook({"type": "text", "text": {"body": text}}, **kwargs)


def whatsapp_button_webhook(
    choice_id: str, title: str, *, context_id: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A tap on an interactive reply button (``button_reply``) of message ``context_id``."""
    message = {
        "type": "interactive",
        "context": {"from": DISPLAY_PHONE, "id": context_id or _wamid()},
        "interactive": {"type": "button_reply", "button_reply": {"id": choice_id, "title": title}},
    }
    return whatsapp_message_webhook(message, **kwargs)


def whatsapp_list_webhook(
    choice_id: str, title: str, *, context_id: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A row picked from an interactive list (``list_reply``) of message ``context_id``."""
    message = {
        "type": "interactive",
        "context": {"from": DISPLAY_PHONE, "id": context_id or _wamid()},
        "interactive": {"type": "list_reply", "list_reply": {"id": choice_id, "title": title}},
    }
    return whatsapp_message_webhook(message, **kwargs)


def whatsapp_status_webhook(
    message_id: str,
    status: str = "delivered",
    *,
    phone: str | None = PHONE,
    user_id: str = USER_ID,
    error_code: int | None = None,
    error_title: str = "Message undeliverable",
    timestamp: int | None = None,
    phone_id: str = PHONE_ID,
) -> dict[str, Any]:
    """A status (sent, delivered, read, failed) of our message ``message_id``.

    A failed status carries ``errors`` (``error_code``, default 131026) and, as
    Meta sends it, no ``contacts``.
    """
    entry: dict[str, Any] = {"id": message_id, "status": status,
                             "timestamp": str(timestamp or int(time.time())),
                             "recipient_user_id": user_id}
    if phone:
        entry["recipient_id"] = phone.lstrip("+")
    value: dict[str, Any] = {"statuses": [entry]}
    if status == "failed":
        code = error_code or 131026
        entry["errors"] = [{"code": code, "title": error_title, "message": error_title,
                            "error_data": {"details": error_title}}]
    else:
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "regular",
                            "category": "utility"}
        value["contacts"] = [_contact(phone, user_id, NAME)]
    return _whatsapp_envelope(value, phone_id)


PREFERENCE_DETAILS = {"stop": "User requested to stop marketing messages",
                      "resume": "User requested to resume marketing messages"}


def whatsapp_user_preferences_webhook(
    value: str = "stop",
    *,
    phone: str | None = PHONE,
    user_id: str = USER_ID,
    name: str = NAME,
    category: str = "marketing_messages",
    detail: str | None = None,
    timestamp: int | None = None,
    phone_id: str = PHONE_ID,
) -> dict[str, Any]:
    """A ``user_preferences`` webhook: the user stopped (or resumed) marketing messages.

    Meta's documented shape (field "user_preferences"): the contact, with its
    2026 ``user_id``, and one ``user_preferences`` item naming the ``wa_id``,
    ``category``, ``value`` ("stop", "resume"), ``detail`` and ``timestamp``.
    ``phone=None`` is a username user: no ``wa_id`` anywhere.
    """
    item: dict[str, Any] = {
        "detail": detail if detail is not None else PREFERENCE_DETAILS.get(value, value),
        "category": category, "value": value, "timestamp": timestamp or int(time.time())}
    if phone:
        item = {"wa_id": phone.lstrip("+"), **item}
    return _whatsapp_envelope({"contacts": [_contact(phone, user_id, name)],
                               "user_preferences": [item]}, phone_id, field="user_preferences")


# -- Twilio -------------------------------------------------------------------


def _sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def twilio_inbound_form(
    body: str = "Hola",
    *,
    from_: str = PHONE,
    to: str = TWILIO_FROM,
    message_sid: str | None = None,
    account_sid: str = ACCOUNT_SID,
    media_urls: Iterable[str] = (),
) -> dict[str, str]:
    """The form fields of Twilio's incoming-message webhook (SMS, or MMS with media)."""
    sid = message_sid or _sid("MM" if media_urls else "SM")
    media = list(media_urls)
    form = {
        "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": str(len(media)),
        "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "AR", "To": to, "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": "2010-04-01",
    }
    for n, url in enumerate(media):
        form[f"MediaUrl{n}"] = url
        form[f"MediaContentType{n}"] = "image/jpeg"
    return form


def twilio_status_form(
    message_sid: str,
    status: str = "delivered",
    *,
    to: str = PHONE,
    from_: str = TWILIO_FROM,
    account_sid: str = ACCOUNT_SID,
    error_code: str | None = None,
) -> dict[str, str]:
    """The form fields of a Twilio status callback for our message ``message_sid``."""
    form = {
        "SmsSid": message_sid, "SmsStatus": status, "MessageStatus": status, "To": to,
        "MessageSid": message_sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        form["ErrorCode"] = error_code
    return form


# -- Telegram -----------------------------------------------------------------


def _telegram_user(chat_id: int, first_name: str) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": "es"}


def telegram_message_update(
    text: str = "hola",
    *,
    chat_id: int = CHAT_ID,
    message_id: int | None = None,
    update_id: int | None = None,
    first_name: str = NAME,
    date: int | None = None,
) -> dict[str, Any]:
    """A private-chat text message update; ``"/start <token>"`` is a deep-link start."""
    user = _telegram_user(chat_id, first_name)
    message: dict[str, Any] = {
        "message_id": message_id or next(_update_ids) % 1_000_000,
        "from": user,
        "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
        "date": date or int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(" ", 1)[0]
        message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return {"update_id": update_id or next(_update_ids), "message": message}


def telegram_callback_update(
    data: str,
    *,
    chat_id: int = CHAT_ID,
    message_id: int = 1,
    callback_id: str | None = None,
    update_id: int | None = None,
    first_name: str = NAME,
    buttons: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A tap on an inline button with ``callback_data`` = ``data``.

    ``buttons`` ({callback_data: title}) is the keyboard of the message tapped;
    by default one button titled like its data.
    """
    keyboard = [[{"text": title, "callback_data": key}]
                for key, title in (buttons or {data: data}).items()]
    user = _telegram_user(chat_id, first_name)
    return {
        "update_id": update_id or next(_update_ids),
        "callback_query": {
            "id": callback_id or str(uuid.uuid4().int % 10**19),
            "from": user,
            "message": {
                "message_id": message_id,
                "from": {"id": 1, "is_bot": True, "first_name": "Chasqui",
                         "username": "chasqui_bot"},
                "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
                "date": int(time.time()),
                "text": "¿Te ayudamos con tu compra?",
                "reply_markup": {"inline_keyboard": keyboard},
            },
            "chat_instance": "-5555555555555555555",
            "data": data,
        },
    }
