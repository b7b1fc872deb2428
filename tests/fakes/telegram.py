"""A loopback fake of the Telegram Bot API.

``POST`` (or ``GET``) ``/bot{token}/{method}`` with parameters as a query
string, JSON, urlencoded or multipart form, answering ``{"ok": true,
"result": ...}`` and errors as ``{"ok": false, "error_code", "description"}``
(with ``"parameters": {"retry_after": N}`` on 429). Methods: ``getMe``,
``sendMessage``, ``answerCallbackQuery``, ``setWebhook``, ``deleteWebhook``,
``getWebhookInfo``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.fakes import Failure, FakeProvider

DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class TelegramApiError(Exception):
    """An error answer, raised inside a method handler."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class FakeTelegram(FakeProvider):
    """The Bot API of one bot.

    ``sent`` maps each chat id (as text) to the Message objects sent there.
    ``blocked`` holds chat ids whose user blocked the bot (sends answer 403).
    ``callback_answers`` lists the ``answerCallbackQuery`` parameters received.
    """

    def __init__(
        self, token: str = "123456:TEST-token", username: str = "chasqui_bot"
    ) -> None:
        super().__init__()
        self.token = token
        self.username = username
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.blocked: set[str] = set()
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self._next_message_id: defaultdict[str, int] = defaultdict(lambda: 1)
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "answercallbackquery": self._answer_callback_query,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }

    def routes(self) -> list[web.RouteDef]:
        """Every method of every bot token (a wrong token answers 401)."""
        return [web.route("*", "/bot{token}/{method}", self._dispatch)]

    def fail_next(
        self,
        status: int = 500,
        description: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
        method: str | None = "sendMessage",
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: any method) with an error."""
        self._script(Failure(status, None, description, retry_after, times,
                             only=method.lower() if method else None))

    def error_response(
        self, status: int, description: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        """A Bot API error body."""
        body: dict[str, Any] = {"ok": False, "error_code": status}
        if status == 429:
            seconds = int(retry_after if retry_after is not None else 1)
            body["description"] = description or f"Too Many Requests: retry after {seconds}"
            body["parameters"] = {"retry_after": seconds}
        else:
            body["description"] = description or DESCRIPTIONS.get(status, "Error")
        return web.json_response(body, status=status)

    def bot_user(self) -> dict[str, Any]:
        """The bot's User object."""
        return {"id": self.bot_id, "is_bot": True, "first_name": "Chasqui",
                "username": self.username}

    async def _dispatch(self, request: web.Request) -> web.Response:
        authorized = request.match_info["token"] == self.token
        record = await self._record(request, authorized)
        if not authorized:
            return self.error_response(401)
        name = request.match_info["method"].lower()
        handler = self._methods.get(name)
        if handler is None:
            return self.error_response(404)
        failure = await self._scripted(request, name)
        if failure is not None:
            return self.error_response(failure.status, failure.message, failure.retry_after)
        params: dict[str, Any] = dict(record.query)
        params.update(record.form or {})
        if isinstance(record.json, dict):
            params.update(record.json)
        try:
            result = await handler(params)
        except TelegramApiError as error:
            return self.error_response(error.status, error.description)
        return web.json_response({"ok": True, "result": result})

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.bot_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(params.get("chat_id", "")).strip()
        text = params.get("text")
        if not chat_id:
            raise TelegramApiError(400, "Bad Request: chat_id is empty")
        if not text:
            raise TelegramApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            raise TelegramApiError(400, "Bad Request: message is too long")
        if not chat_id.lstrip("-").isdigit():
            raise TelegramApiError(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            raise TelegramApiError(403, "Forbidden: bot was blocked by the user")
        markup = _json_param(params.get("reply_markup"))
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                if len(str(button.get("callback_data", "")).encode()) > 64:
                    raise TelegramApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] += 1
        chat: dict[str, Any] = {"id": int(chat_id), "type": "private"}
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user(),
            "chat": chat,
            "date": int(time.time()),
            "text": str(text),
        }
        if markup:
            message["reply_markup"] = markup
        self.sent[chat_id].append(message)
        return message

    async def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise TelegramApiError(400, "Bad Request: query is too old and response timeout "
                                        "expired or query ID is invalid")
        self.callback_answers.append(params)
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url", "")
        if url and not str(url).startswith("https://"):
            raise TelegramApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided "
                                        "for webhook")
        self.webhook = {"url": url, "secret_token": params.get("secret_token"),
                        "allowed_updates": _json_param(params.get("allowed_updates"))}
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                "pending_update_count": 0}


def _json_param(value: Any) -> Any:
    """A parameter that may arrive JSON-encoded as text (form) or already decoded (JSON)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
