"""A loopback fake of Twilio's Messages resource (REST API 2010-04-01).

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP basic auth
(account sid, auth token) and form fields ``To``, ``From``, ``Body``,
``StatusCallback`` answers 201 with the Message resource JSON (``sid`` "SM"
+ 32 hex, ``status`` "queued"), and errors as ``{"code", "message",
"more_info", "status"}``. :meth:`FakeTwilio.push_status` then plays Twilio's
part in delivery: it POSTs a signed status callback to the message's
``StatusCallback``. :meth:`FakeTwilio.refuse` plays a number Twilio refuses
every time: invalid (21211), unsubscribed by STOP (21610) or not a mobile
(21614).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web

from channels.segments import count_segments
from tests.fakes import Failure, FakeProvider
from tests.support.signing import twilio_signature

API = "/2010-04-01"
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by "
    "the 'To' number",
    21602: "Message body is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}
STATUS_CODES: dict[int, int] = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


@dataclass(frozen=True)
class Refusal:
    """How the fake answers every message to one number (:meth:`FakeTwilio.refuse`)."""

    status: int
    code: int
    message: str | None = None


class FakeTwilio(FakeProvider):
    """Twilio's Messages resource for one account.

    ``sent`` maps each ``To`` number to the Message resources created for it;
    ``messages`` maps each sid to its resource (with the ``StatusCallback`` it
    was given under ``"status_callback"``).
    """

    def __init__(
        self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-token"
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: dict[str, dict[str, Any]] = {}
        self._refusals: dict[str, Refusal] = {}

    def refuse(self, to: str, code: int, *, status: int = 400,
               message: str | None = None) -> None:
        """Refuse every message to ``to`` (E.164) with error ``code`` until :meth:`allow`."""
        self._refusals[to] = Refusal(status, code, message)

    def allow(self, to: str) -> None:
        """Stop refusing ``to``."""
        self._refusals.pop(to, None)

    def reset(self) -> None:
        """Forget what was received, failures still scripted and refused numbers."""
        super().reset()
        self._refusals.clear()

    def routes(self) -> list[web.RouteDef]:
        """Create and fetch a Message."""
        base = API + "/Accounts/{account_sid}/Messages"
        return [web.post(base + ".json", self._create), web.get(base + "/{sid}.json", self._fetch)]

    def fail_next(
        self,
        status: int = 500,
        code: int | None = None,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` creates with a Twilio error (code defaults from status)."""
        if code is None:
            code = STATUS_CODES.get(status, 20500 if status >= 500 else 21211)
        self._script(Failure(status, code, message, retry_after, times))

    def error_response(
        self, status: int, code: int, message: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        """A Twilio REST error body."""
        body = {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
        return web.json_response(body, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _create(self, request: web.Request) -> web.Response:
        authorized = self._authorized(request)
        record = await self._record(request, authorized)
        if not authorized:
            return self.error_response(401, 20003)
        if request.match_info["account_sid"] != self.account_sid:
            return self.error_response(404, 20404)
        failure = await self._scripted(request)
        if failure is not None:
            return self.error_response(
                failure.status, failure.code or 20500, failure.message, failure.retry_after)
        form = record.form or {}
        to, body = form.get("To", ""), form.get("Body", "")
        if not to:
            return self.error_response(400, 21604)
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            return self.error_response(400, 21211, f"The 'To' number {to} is not a valid phone "
                                                   "number.")
        if not body and not form.get("MediaUrl"):
            return self.error_response(400, 21602)
        if len(body) > 1600:
            return self.error_response(400, 21617)
        refusal = self._refusals.get(to)
        if refusal is not None:
            return self.error_response(refusal.status, refusal.code, refusal.message)
        resource = self._resource(form)
        self.messages[resource["sid"]] = {**resource, "status_callback": form.get("StatusCallback")}
        self.sent[to].append(resource)
        self.ids.append(resource["sid"])
        return web.json_response(resource, status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        authorized = self._authorized(request)
        await self._record(request, authorized)
        if not authorized:
            return self.error_response(401, 20003)
        stored = self.messages.get(request.match_info["sid"])
        if stored is None or request.match_info["account_sid"] != self.account_sid:
            return self.error_response(404, 20404)
        return web.json_response({k: v for k, v in stored.items() if k != "status_callback"})

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"{API}/Accounts/{self.account_sid}/Messages/{sid}"
        body = form.get("Body", "")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, count_segments(body))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form.get("To"),
            "uri": f"{uri}.json",
        }

    async def push_status(
        self, sid: str, status: str = "delivered", error_code: str | None = None
    ) -> int:
        """POST a signed status callback for message ``sid`` to its StatusCallback URL.

        Returns the HTTP status the service answered.
        """
        stored = self.messages[sid]
        url = stored["status_callback"]
        if not url:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": stored["from"],
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": stored["to"],
        }
        if error_code:
            params["ErrorCode"] = error_code
        stored["status"] = status
        headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, url, params)}
        async with aiohttp.ClientSession() as session, session.post(
            url, data=params, headers=headers
        ) as response:
            return response.status
