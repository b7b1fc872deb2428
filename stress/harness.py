"""What the crash, fault and load parts share: fakes, a real server, signed traffic, the database.

- :class:`Providers` runs the three loopback provider fakes in the driver's
  process; every message a provider accepted is in their ``sent`` records.
- :func:`server` builds a :class:`tests.support.process.ServerProcess` with
  every channel and ``/events`` configured, the test flows of
  ``tests/support/process_rules`` (``echo`` answers every customer message,
  ``ping`` answers every ``customer.created``; both transactional, so
  consent, quiet hours and the WhatsApp window never decide whether a reply
  "should" go out) and pacing off.
- :class:`Traffic` makes correctly signed inputs (store events, customers'
  messages on WhatsApp, SMS and Telegram, delivery statuses), each with the
  inbox ``_id`` it must be stored under and the text the flows must send
  for it, if any.
- :func:`open_store` reads the database the server wrote to (the embedded
  one through the login in ``DATA_DIR/db-credentials.json``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from bot.infra import db_credentials
from bot.types import Doc
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp import FakeWhatsApp
from tests.support.process import ServerProcess, processes_using, wait_until
from tests.support.signing import (
    json_body,
    signed_twilio,
    signed_whatsapp,
    telegram_headers,
    telegram_message_update,
    twilio_inbound_form,
    twilio_status_form,
    whatsapp_status_webhook,
    whatsapp_text_webhook,
)
from tests.support.store_signing import events_headers

ADMIN_TOKEN = "stress-admin-token"
EVENTS_SECRET = "stress-events-secret"
WA_SECRET = "stress-wa-secret"
TG_SECRET = "stress-tg-secret"
TWILIO_FROM = "+15005550006"
EMAIL_SECRET = "stress-email-secret"


class Providers:
    """The WhatsApp, Twilio and Telegram fakes and an SMTP relay, started together."""

    def __init__(self) -> None:
        self.whatsapp = FakeWhatsApp()
        self.twilio = FakeTwilio()
        self.telegram = FakeTelegram()
        self.email = FakeSmtp()

    async def __aenter__(self) -> Providers:
        for fake in (self.whatsapp, self.twilio, self.telegram):
            await fake.start()
        self.email.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.email.stop()
        for fake in (self.whatsapp, self.twilio, self.telegram):
            await fake.close()

    def env(self) -> dict[str, str]:
        return {
            "WHATSAPP_API_URL": self.whatsapp.url, "WHATSAPP_PHONE_ID": self.whatsapp.phone_id,
            "WHATSAPP_TOKEN": self.whatsapp.token, "WHATSAPP_APP_SECRET": WA_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "stress-verify",
            "TWILIO_API_URL": self.twilio.url, "TWILIO_ACCOUNT_SID": self.twilio.account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio.auth_token, "TWILIO_FROM": TWILIO_FROM,
            "TELEGRAM_API_URL": self.telegram.url, "TELEGRAM_BOT_TOKEN": self.telegram.token,
            "TELEGRAM_SECRET_TOKEN": TG_SECRET,
            "SMTP_URL": self.email.url, "EMAIL_FROM": "Stress <shop@stress.example>",
            "EMAIL_INBOUND_SECRET": EMAIL_SECRET, "EMAIL_RATE": "0",
        }

    def sent_texts(self) -> Counter[str]:
        """Every text a provider accepted, counted (a count of 2 is a message sent twice)."""
        texts: Counter[str] = Counter()
        for bodies in self.whatsapp.sent.values():
            texts.update(str((b.get("text") or {}).get("body", "")) for b in bodies)
        for resources in self.twilio.sent.values():
            texts.update(str(r.get("body", "")) for r in resources)
        for messages in self.telegram.sent.values():
            texts.update(str(m.get("text", "")) for m in messages)
        for mail in list(self.email.messages):  # the relay's thread appends
            plain = mail.get_body(("plain",))
            texts.update([str(plain.get_content()).strip() if plain is not None else ""])
        return texts

    def send_calls(self) -> int:
        """Send requests the fakes received, accepted or not."""
        return sum(1 for fake in (self.whatsapp, self.twilio, self.telegram)
                   for r in fake.requests if r.method == "POST") + self.email.data_commands


class RunLogs:
    """Every server process's log of this stress run, kept for the security part.

    The issue asks that the logs of the *whole* run hold no token, password
    or full phone number at INFO, so the servers of every part log at INFO
    into one directory that outlives their data directories, and the
    secrets each was given are remembered here (one process runs every
    part). The directory is ``STRESS_LOG_DIR`` (kept), else a temporary one
    made on first use and removed when the process exits.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.secrets: set[str] = set()
        self._directory = directory

    @property
    def directory(self) -> Path:
        if self._directory is None:
            chosen = os.environ.get("STRESS_LOG_DIR")
            if chosen:
                self._directory = Path(chosen)
                self._directory.mkdir(parents=True, exist_ok=True)
            else:
                self._directory = Path(tempfile.mkdtemp(prefix="chasqui-stress-logs-"))
                atexit.register(shutil.rmtree, self._directory, ignore_errors=True)
        return self._directory

    def files(self) -> list[Path]:
        """The logs written so far (none before any server started)."""
        return [] if self._directory is None else sorted(self._directory.glob("*.log"))


SECRET_VARIABLES = ("TOKEN", "SECRET", "PASSWORD")  # environment names that hold secrets
RUN_LOGS = RunLogs()


def server(providers: Providers, data_dir: Path, log_name: str = "server.log",
           port: int | None = None, **extra: str) -> ServerProcess:
    """A server process on ``data_dir`` (the embedded database unless ``MONGODB_URI`` is given).

    ``port`` pins the port, so a restart keeps ``PUBLIC_URL`` (Twilio signs it).
    It logs at INFO into :data:`RUN_LOGS` (see :class:`RunLogs`).
    """
    env = {
        "ADMIN_TOKEN": ADMIN_TOKEN, "STORE_EVENTS_SECRET": EVENTS_SECRET,
        "FLOWS_PACKAGE": "tests.support.process_rules", "FLOWS": "echo,ping",
        "WHATSAPP_RATE": "0", "SMS_RATE": "0", "TELEGRAM_RATE": "0",
        "CLOCK": "system", "DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO",
        **providers.env(), **extra,
    }
    RUN_LOGS.secrets.update(value for name, value in env.items()
                            if any(word in name for word in SECRET_VARIABLES) and value)
    process = ServerProcess(env, RUN_LOGS.directory / f"{data_dir.parent.name}-"
                                                      f"{data_dir.name}-{log_name}")
    if "MONGODB_URI" not in extra:
        process.env.pop("MONGODB_URI", None)  # the on-disk embedded database
    if port is not None:
        process.port = port
        process.env["PORT"] = str(port)
    process.env["PUBLIC_URL"] = extra.get("PUBLIC_URL", process.url)
    return process


@dataclass
class Input:
    """One signed webhook, the inbox id it is stored under, and the reply it must bring."""

    kind: str  # event, whatsapp, sms, telegram, email, status
    path: str
    body: bytes
    headers: dict[str, str]
    inbox_id: str
    reply: str | None = None
    status: int | None = None  # the HTTP status it was answered with, None: no answer
    elapsed: float = 0.0  # seconds its last post took


@dataclass
class Traffic:
    """A steady mix of signed inputs for one server URL (``PUBLIC_URL``)."""

    url: str
    providers: Providers
    run: str = field(default_factory=lambda: f"{int(time.time()) % 100000}")
    customers: int = 200
    rng: random.Random = field(default_factory=random.Random)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    mix: tuple[tuple[str, int], ...] = (("event", 3), ("whatsapp", 3), ("sms", 2),
                                        ("telegram", 2), ("email", 1), ("status", 2))

    def next(self) -> Input:
        kinds, weights = zip(*self.mix, strict=True)
        kind = self.rng.choices(kinds, weights)[0]
        n = next(self.counter)
        tag = f"{self.run}-{n}"
        who = self.rng.randrange(self.customers)
        phone = f"+54911{who:08d}"
        if kind == "status":
            made = self._status(phone)
            if made is not None:
                return made
            kind = "event"
        if kind == "event":
            body = json_body({
                "id": f"evt_{tag}", "type": "customer.created",
                "occurred_at": "2026-11-24T10:00:00Z",
                "customer": {"id": f"cus_{tag}", "phone": f"+549115{n % 10**7:07d}"},
                "data": {"delay": 0, "n": tag}})
            return Input(kind, "/events", body, events_headers(EVENTS_SECRET, body),
                         f"events:evt_{tag}", f"ping {tag}")
        text = f"hola m{tag}"
        if kind == "email":
            mail_id = f"<{tag}@mail.stress.example>"
            body = json_body({"id": mail_id, "from": f"Cliente <c{who}@mail.stress.example>",
                              "to": "shop@stress.example", "subject": "Re: hola",
                              "text": f"{text}\n\nEl lun, Stress escribió:\n> hola",
                              "in_reply_to": None})
            return Input(kind, "/webhooks/email", body, events_headers(EMAIL_SECRET, body),
                         f"email:{mail_id}", f"eco: {text}")
        if kind == "whatsapp":
            payload = whatsapp_text_webhook(text, phone=phone, user_id=f"AR.{who:013d}")
            wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
            body, headers = signed_whatsapp(WA_SECRET, payload)
            return Input(kind, "/webhooks/whatsapp", body, headers, f"whatsapp:{wamid}",
                         f"eco: {text}")
        if kind == "sms":
            form = twilio_inbound_form(text, from_=phone,
                                       account_sid=self.providers.twilio.account_sid)
            body, headers = signed_twilio(self.providers.twilio.auth_token,
                                          self.url + "/webhooks/sms", form)
            return Input(kind, "/webhooks/sms", body, headers, f"sms:{form['MessageSid']}",
                         f"eco: {text}")
        chat = 700_000_000 + who
        update = telegram_message_update(text, chat_id=chat, message_id=n + 1)
        return Input(kind, "/webhooks/telegram", json_body(update), telegram_headers(TG_SECRET),
                     f"telegram:{chat}:{n + 1}", f"eco: {text}")

    def _status(self, phone: str) -> Input | None:
        """A delivery status of a message a fake accepted (none yet: None)."""
        fakes = [f for f in (self.providers.whatsapp, self.providers.twilio) if f.ids]
        if not fakes:
            return None
        fake = self.rng.choice(fakes)
        provider_id = self.rng.choice(fake.ids)
        state = self.rng.choice(("delivered", "read")) if fake is self.providers.whatsapp \
            else "delivered"
        if fake is self.providers.whatsapp:
            body, headers = signed_whatsapp(WA_SECRET, whatsapp_status_webhook(
                provider_id, state, phone=phone))
            return Input("status", "/webhooks/whatsapp", body, headers,
                         f"whatsapp:status:{provider_id}:{state}")
        resource = self.providers.twilio.messages[provider_id]
        form = twilio_status_form(provider_id, state, to=resource["to"],
                                  account_sid=self.providers.twilio.account_sid)
        body, headers = signed_twilio(self.providers.twilio.auth_token,
                                      self.url + "/webhooks/sms/status", form)
        return Input("status", "/webhooks/sms/status", body, headers,
                     f"sms:status:{provider_id}:{state}")


async def post(session: aiohttp.ClientSession, url: str, item: Input,
               timeout: float = 30.0) -> Input:
    """POST ``item``; its ``status`` is the answer's, or None when none came."""
    started = time.monotonic()
    try:
        async with session.post(url + item.path, data=item.body, headers=item.headers,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            await response.read()
            item.status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        item.status = None
    item.elapsed = time.monotonic() - started
    return item


def accepted(item: Input) -> bool:
    return item.status is not None and 200 <= item.status < 300


# -- processes ----------------------------------------------------------------

def database_pids(data_dir: Path) -> list[int]:
    """The database guard and the embedded database of the server on ``data_dir``."""
    return processes_using(data_dir / "db")


def database_pid(data_dir: Path) -> int:
    """The embedded database process itself (``python -m secantus``), not its guard."""
    for pid in database_pids(data_dir):
        with contextlib.suppress(OSError):
            if "secantus" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return pid
    raise RuntimeError(f"no embedded database found for {data_dir}")


def database_port(pid: int) -> int:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return int(args[args.index("--port") + 1])


async def kill_all(process: ServerProcess, data_dir: Path, only_service: bool = False) -> None:
    """SIGKILL the service (and, unless ``only_service``, its guard and database) at once."""
    assert process.process is not None
    pids = [process.process.pid] + ([] if only_service else database_pids(data_dir))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.process.wait()
    await wait_until(lambda: not database_pids(data_dir), 60,
                     "the database processes to go away")


def rss_kb(pid: int) -> int:
    """Resident set size of a process, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the database -------------------------------------------------------------

@contextlib.asynccontextmanager
async def open_store(data_dir: Path | None = None, uri: str | None = None,
                     name: str = "chasqui") -> AsyncIterator[Any]:
    """The service's database: the embedded one of ``data_dir`` (logging in), or ``uri``."""
    options: dict[str, Any] = {"tz_aware": True, "serverSelectionTimeoutMS": 10000}
    if uri is None:
        assert data_dir is not None
        uri = f"mongodb://127.0.0.1:{database_port(database_pid(data_dir))}"
        login = db_credentials.load(data_dir / "db-credentials.json")
        if login is not None:
            options.update(login.client_options())
    client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, **options)
    try:
        yield client[name]
    finally:
        await client.close()


async def stored_ids(database: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` are in the inbox."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        async for doc in database.inbox.find({"_id": {"$in": chunk}}, {"_id": 1}):
            found.add(doc["_id"])
    return found


async def unknown_outcomes(database: Any) -> set[str]:
    """Texts of messages recorded as failed because a worker died while sending them.

    These are the price of sending at most once (README, "Sending at most
    once"): they were handed to a provider, or about to be, when the process
    died, so they are not sent again.
    """
    return {doc.get("text", "") async for doc in database.messages.find(
        {"direction": "out", "$or": [
            {"error": {"$regex": "^outcome unknown"}},
            # Claimed "sending" by a worker that died: recorded so once the
            # claim expires (CLAIM_SECONDS, 2 minutes of wall time).
            {"outbox": True, "claim.sending": True}]}, {"text": 1})}


async def why_missing(database: Any, texts: set[str]) -> str:
    """What the database says about replies never sent, e.g. "skipped: <reason> x3"."""
    reasons: Counter[str] = Counter()
    for text in sorted(texts):
        doc = await database.messages.find_one({"text": text}, {"status": 1, "error": 1})
        if doc is None:
            reasons["never decided"] += 1
        else:
            reasons[f"{doc.get('status')}: {doc.get('error') or ''}".strip(": ")] += 1
    return "; ".join(f"{reason} x{n}" for reason, n in reasons.most_common())


async def pending_inputs(database: Any) -> int:
    return int(await database.inbox.count_documents({"state": "pending"}))


async def settle(providers: Providers, expected: set[str], database: Any,
                 timeout: float) -> set[str]:
    """Wait until every expected reply went out or is a known unknown; the ones missing.

    Bounded by ``timeout`` (a dead worker's leases take 30 s of wall time).
    """
    deadline = time.monotonic() + timeout
    while True:
        missing = expected - set(providers.sent_texts())
        if missing:
            missing -= await unknown_outcomes(database)
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.5)


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))
