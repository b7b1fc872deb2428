"""Create the first admin from the shell: ``python -m bot.http.create_admin``.

    .venv/bin/python -m bot.http.create_admin --email ana@shop.example --name Ana
    printf %s "$PASSWORD" | .venv/bin/python -m bot.http.create_admin \\
        --email ana@shop.example --name Ana --password-stdin

It reads the same environment as the service (``MONGODB_URI``, ``DATA_DIR``
...), and runs whether the service is running or not. With ``MONGODB_URI``
it uses that database. Without it, it uses the embedded database the running
service has on the same ``DATA_DIR`` (its port is in ``$DATA_DIR/db-port``,
its login in ``$DATA_DIR/db-credentials.json``), or, with the service
stopped, starts the embedded database itself for the moment it needs it. The
password is asked twice without echo, or read from standard input, never
from the command line (where ``ps`` and shell history would show it).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from bot.http.agents import EmailTaken, NewAgent, create_agent
from bot.infra.clock import make_clock
from bot.infra.database import open_database
from bot.infra.settings import Settings, format_settings_error


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.read().rstrip("\n")
    first = getpass.getpass("Password (10 characters or more): ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


async def create(settings: Settings, new: NewAgent) -> None:
    async with open_database(settings, join_running=True) as database:
        await create_agent(database, new, make_clock(settings.clock).now())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.http.create_admin",
                                     description="Create an admin account for the console.")
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", choices=("admin", "agent"), default="admin")
    parser.add_argument("--lang", choices=("es", "en", "pt"), default="es")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(format_settings_error(exc), file=sys.stderr)
        return 2
    try:
        new = NewAgent(email=args.email, name=args.name, role=args.role, lang=args.lang,
                       password=read_password(args.password_stdin))
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        asyncio.run(create(settings, new))
    except EmailTaken:
        print(f"an account with {new.email} exists already", file=sys.stderr)
        return 1
    except (RuntimeError, PyMongoError) as exc:  # no database to reach: say why, no traceback
        print(f"cannot reach the database: {exc}", file=sys.stderr)
        return 1
    print(f"created {new.role} {new.email}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
