"""Agent accounts: who may use the console and the agent API, and as whom.

An account is ``{"_id": email, "email", "name", "role": "agent"|"admin",
"password_hash", "lang", "created_at"}`` in the ``agents`` collection. The
email (lower-cased) is the ``_id``, so "one account per email" is the unique
``_id`` index itself and every lookup is by ``_id``.

Passwords are kept only as argon2id hashes (``argon2-cffi``: salted, slow,
memory-hard). Hashing takes tens of milliseconds and 64 MiB on purpose, so it
runs in a thread and never stalls the event loop.

``POST /api/agents`` creates an account (admins only: the ``ADMIN_TOKEN`` or
an admin's session); ``python -m bot.http.create_admin`` creates the first
one from the shell.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from bot.infra.database import Database
from bot.types import Doc

ROLES = ("agent", "admin")
LANGS = ("es", "en", "pt")
HASHER = PasswordHasher()
# A hash of nothing anyone knows: a sign-in for an unknown email verifies
# against it, so it takes as long as one for a real account.
_DUMMY_HASH = HASHER.hash("no account has this password")


@dataclass(frozen=True)
class Actor:
    """Who is making a request: an agent's session or the ``ADMIN_TOKEN``."""

    email: str | None  # None for the ADMIN_TOKEN
    name: str
    role: Literal["agent", "admin"]
    via: Literal["token", "session"]
    lang: str = "es"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def label(self) -> str:
        """How the actor is recorded on the actions it takes."""
        return self.email or "admin-token"


ACTOR = web.RequestKey("actor", Actor)
TOKEN_ACTOR = Actor(email=None, name="ADMIN_TOKEN", role="admin", via="token")


class NewAgent(BaseModel):
    """The body of ``POST /api/agents``."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=100)
    role: Literal["agent", "admin"] = "agent"
    password: str = Field(min_length=10, max_length=1024)
    lang: Literal["es", "en", "pt"] = "es"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        local, at, domain = value.partition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in value):
            raise ValueError("not an e-mail address")
        return value


def agents(database: Database) -> AsyncCollection[Doc]:
    """The ``agents`` collection, journaled like every write that must not be lost."""
    return database.db.get_collection("agents", write_concern=database.write_concern)


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (``stored`` None)."""
    def check() -> bool:
        try:
            return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


class EmailTaken(Exception):
    """An account with that email already exists."""


async def create_agent(database: Database, new: NewAgent, now: datetime) -> Doc:
    """Store a new account; raises :class:`EmailTaken` if the email has one."""
    doc: Doc = {"_id": new.email, "email": new.email, "name": new.name, "role": new.role,
                "lang": new.lang, "password_hash": await hash_password(new.password),
                "created_at": now}
    try:
        await agents(database).insert_one(doc)
    except DuplicateKeyError:
        raise EmailTaken(new.email) from None
    return doc


async def find_agent(database: Database, email: str) -> Doc | None:
    return await agents(database).find_one({"_id": normalize_email(email)})


def public_view(doc: Doc) -> Doc:
    """An account as the API shows it: never the hash."""
    created = doc.get("created_at")
    return {"email": doc["email"], "name": doc["name"], "role": doc["role"],
            "lang": doc.get("lang", "es"),
            "created_at": created.isoformat().replace("+00:00", "Z") if created else None}


def actor_of(doc: Doc) -> Actor:
    return Actor(email=doc["email"], name=doc["name"], role=doc["role"], via="session",
                 lang=doc.get("lang", "es"))
