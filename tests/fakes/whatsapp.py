"""A loopback fake of the WhatsApp Cloud API's messages endpoint.

``POST /v{version}/{phone_id}/messages`` with ``Authorization: Bearer
<token>`` answers like Graph API: ``{"messaging_product": "whatsapp",
"contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid...."}]}``, and
errors as ``{"error": {"message", "type", "code", "error_data": {"details"},
"fbtrace_id"}}``. It checks what Meta checks first (token, phone id, message
shape, title lengths) so a malformed send fails here as it would there.
:meth:`FakeWhatsApp.refuse` plays a recipient Meta refuses every time: one
who stopped marketing (131050), reached the per-user marketing limit
(131049) or is not on WhatsApp (131026).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes import Failure, FakeProvider

# Titles and defaults of the documented error codes the fake may answer with.
ERROR_TITLES: dict[int, str] = {
    1: "API Unknown",
    2: "API Service",
    100: "Invalid parameter",
    190: "Invalid OAuth access token",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
    131051: "Unsupported message type",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}
ERROR_DETAILS: dict[int, str] = {
    130429: "Cloud API message throughput has been reached.",
    131047: "Message failed to send because more than 24 hours have passed since the "
    "customer last replied to this number.",
    131056: "Too many messages sent from the sender phone number to the same recipient "
    "phone number in a short period of time.",
    131026: "Message Undeliverable.",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business.",
}
STATUS_CODES: dict[int, int] = {429: 130429, 500: 131000, 503: 131016, 401: 190, 400: 100}
MESSAGE_TYPES = frozenset({
    "text", "interactive", "template", "image", "audio", "video", "document", "sticker",
    "location", "contacts", "reaction",
})


class FakeWhatsApp(FakeProvider):
    """The Cloud API ``/messages`` endpoint for one phone number id and token.

    ``sent`` maps each recipient (the ``to`` digits, or the BSUID in
    ``recipient``) to the message bodies accepted for it, in order.
    """

    def __init__(self, token: str = "wa-token", phone_id: str = "123456789012345") -> None:
        super().__init__()
        self.token = token
        self.phone_id = phone_id
        self._refusals: dict[str, Refusal] = {}

    def refuse(self, recipient: str, code: int, *, message_type: str | None = None,
               status: int = 400, details: str | None = None) -> None:
        """Refuse every well-formed send to ``recipient`` with error ``code`` until :meth:`allow`.

        ``recipient`` is a phone (any format: its digits count) or a BSUID.
        ``message_type`` limits the refusal to one type, e.g. "template": Meta
        refuses 131050 and 131049 to marketing templates while free-form
        replies in the service window still go out.
        """
        self._refusals[_recipient_key(recipient)] = Refusal(status, code, message_type, details)

    def allow(self, recipient: str) -> None:
        """Stop refusing ``recipient``."""
        self._refusals.pop(_recipient_key(recipient), None)

    def reset(self) -> None:
        """Forget what was received, failures still scripted and refused recipients."""
        super().reset()
        self._refusals.clear()

    def routes(self) -> list[web.RouteDef]:
        """The messages endpoint, any Graph API version."""
        return [web.post(r"/{version:v\d+(\.\d+)?}/{phone_id}/messages", self._messages)]

    def fail_next(
        self,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` sends with a Graph API error.

        Either argument may be left out: ``status=500`` answers code 131000,
        ``code=131047`` answers HTTP 400. ``retry_after`` adds a ``Retry-After``
        header.
        """
        if status is None:
            status = 503 if code == 131016 else 500 if code in (1, 2, 131000) else 400
        if code is None:
            code = STATUS_CODES.get(status, 131000 if status >= 500 else 100)
        self._script(Failure(status, code, message, retry_after, times))

    def error_response(
        self, status: int, code: int, details: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        """A Graph API error body."""
        title = ERROR_TITLES.get(code, "Error")
        error: dict[str, Any] = {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": details or ERROR_DETAILS.get(code, title),
            },
            "fbtrace_id": base64.b64encode(secrets.token_bytes(12)).decode(),
        }
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return web.json_response({"error": error}, status=status, headers=headers)

    async def _messages(self, request: web.Request) -> web.Response:
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        record = await self._record(request, authorized)
        if not authorized:
            return self.error_response(401, 190, "Invalid OAuth access token.")
        if request.match_info["phone_id"] != self.phone_id:
            return self.error_response(
                400, 100, f"Unsupported post request. Object with ID "
                f"'{request.match_info['phone_id']}' does not exist.")
        failure = await self._scripted(request)
        if failure is not None:
            return self.error_response(
                failure.status, failure.code or 100, failure.message, failure.retry_after)
        body = record.json
        problem = _check_message(body)
        if problem is not None:
            code, details = problem
            return self.error_response(400, code, details)
        if body.get("status") == "read":  # mark as read
            return web.json_response({"success": True})
        refusal = self._refusals.get(_recipient_key(str(body.get("to") or body["recipient"])))
        if refusal is not None and refusal.message_type in (None, body.get("type", "text")):
            return self.error_response(refusal.status, refusal.code, refusal.details)
        wamid = "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18" + uuid.uuid4().bytes).decode()
        to = body.get("to")
        if to:
            digits = "".join(ch for ch in str(to) if ch.isdigit())
            contact = {"input": str(to), "wa_id": digits}
            key = digits
        else:
            contact = {"input": body["recipient"], "user_id": body["recipient"]}
            key = body["recipient"]
        self.sent[key].append(body)
        self.ids.append(wamid)
        sent: dict[str, Any] = {"id": wamid}
        if body.get("type") == "template":
            sent["message_status"] = "accepted"
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}
        )


@dataclass(frozen=True)
class Refusal:
    """How the fake answers every send to one recipient (:meth:`FakeWhatsApp.refuse`)."""

    status: int
    code: int
    message_type: str | None = None
    details: str | None = None


def _recipient_key(recipient: str) -> str:
    """A phone's digits (as ``sent`` is keyed), or a BSUID ("AR.1234...") as it is."""
    if any(ch.isalpha() for ch in recipient):
        return recipient
    return "".join(ch for ch in recipient if ch.isdigit())


def _check_message(body: Any) -> tuple[int, str] | None:
    """The (code, details) Graph API would refuse this body with, or None."""
    if not isinstance(body, dict):
        return 100, "The request body must be a JSON object."
    if body.get("messaging_product") != "whatsapp":
        return 100, "The parameter messaging_product is required."
    if body.get("status") == "read":
        return None if body.get("message_id") else (100, "message_id is required.")
    if not body.get("to") and not body.get("recipient"):
        return 131008, "The parameter to is required."
    mtype = body.get("type", "text")
    if mtype not in MESSAGE_TYPES:
        return 131051, f"Message type {mtype} is not supported."
    content = body.get(mtype)
    if not isinstance(content, dict):
        return 131008, f"The parameter {mtype} is required."
    if mtype == "text" and not content.get("body"):
        return 131008, "The parameter text['body'] is required."
    if mtype == "interactive":
        return _check_interactive(content)
    if mtype == "template" and not (content.get("name") and content.get("language")):
        return 131008, "The parameters template['name'] and ['language'] are required."
    return None


def _check_interactive(interactive: dict[str, Any]) -> tuple[int, str] | None:
    action = interactive.get("action") or {}
    if not (interactive.get("body") or {}).get("text"):
        return 131008, "The parameter interactive['body']['text'] is required."
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return 131009, "Buttons count should be between 1 and 3."
        for button in buttons:
            if len(button.get("reply", {}).get("title", "")) > 20:
                return 131009, "Button title length is too long. Max length is 20."
        return None
    if interactive.get("type") == "list":
        if len(action.get("button", "")) > 20 or not action.get("button"):
            return 131009, "Button label is required, max length is 20."
        rows = [row for section in action.get("sections") or [] for row in section["rows"]]
        if not 1 <= len(rows) <= 10:
            return 131009, "Total row count exceed max allowed count: 10."
        for row in rows:
            if len(row.get("title", "")) > 24:
                return 131009, "Row title length is too long. Max length is 24."
        return None
    return 131009, f"Interactive type {interactive.get('type')} is not supported here."
