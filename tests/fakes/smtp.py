"""A loopback SMTP relay (aiosmtpd) that keeps what it receives.

A real SMTP server speaking RFC 5321 on 127.0.0.1: EHLO, optional STARTTLS
(with a test CA from ``trustme``), optional AUTH, MAIL/RCPT/DATA. Tests point
``SMTP_URL`` at it and read :attr:`FakeSmtp.messages` (parsed with the
standard library's modern policy). It can refuse a recipient with any
reply code and answer the next DATA commands with an error, as relays do.

Usage::

    with FakeSmtp(user="u", password="p") as relay:
        settings = Settings(..., smtp_url=relay.url, email_from="Shop <shop@example.com>")
        relay.refuse["gone@example.com"] = (550, "5.1.1 user unknown")
        relay.fail_data(451, "4.3.0 try again later")
        ...
        assert relay.messages[0]["Subject"] == "Hola"
"""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
from collections import deque
from email.message import EmailMessage
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from bot.infra.embedded_db import free_port


class _Handler:
    def __init__(self, relay: FakeSmtp) -> None:
        self.relay = relay

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        refused = self.relay.refuse.get(address.lower())
        if refused is not None:
            return f"{refused[0]} {refused[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session,
                          envelope: Envelope) -> str:
        self.relay.data_commands += 1
        if self.relay.data_errors:
            code, text = self.relay.data_errors.popleft()
            return f"{code} {text}"
        raw = envelope.content if isinstance(envelope.content, bytes) else \
            str(envelope.content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.relay.messages.append(message)
        self.relay.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.relay.tls_used.append(session.ssl is not None)
        if self.relay.log:
            logging.getLogger("fake.smtp").info("to %s: %s", message["To"], message["Subject"])
        return "250 Message accepted"


class FakeSmtp:
    """The relay; ``starttls=True`` offers (and requires) STARTTLS with a test CA."""

    def __init__(self, *, user: str | None = None, password: str | None = None,
                 starttls: bool = False, host: str = "127.0.0.1", port: int | None = None,
                 log: bool = False) -> None:
        self.user, self.password = user, password
        self.host = host
        self.port = port or free_port()
        self.log = log  # the local demo logs each message received
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.tls_used: list[bool] = []  # per message: did it arrive over TLS?
        self.refuse: dict[str, tuple[int, str]] = {}
        self.data_errors: deque[tuple[int, str]] = deque()
        self.data_commands = 0  # DATA commands received, answered with an error or not
        self.logins: list[str] = []
        self.client_tls: ssl.SSLContext | None = None
        server_tls: ssl.SSLContext | None = None
        if starttls:
            authority = trustme.CA()
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
            self.client_tls = ssl.create_default_context()
            authority.configure_trust(self.client_tls)
        self._controller = Controller(
            _Handler(self), hostname=host, port=self.port,
            tls_context=server_tls, require_starttls=starttls,
            authenticator=self._authenticate if user else None,
            auth_required=False, auth_require_tls=starttls)

    def _authenticate(self, server: Any, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        if ok:
            self.logins.append(self.user or "")
        return AuthResult(success=ok, handled=False)

    @property
    def url(self) -> str:
        credentials = f"{self.user}:{self.password}@" if self.user else ""
        return f"smtp://{credentials}{self.host}:{self.port}"

    def fail_data(self, code: int, text: str, times: int = 1) -> None:
        """Answer the next ``times`` DATA commands with ``code text``."""
        self.data_errors.extend([(code, text)] * times)

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> FakeSmtp:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
