"""Run the provider fakes (and an SMTP relay) for a local demo, until Ctrl-C.

    python -m tests.fakes --whatsapp-port 9001 --twilio-port 9002 --telegram-port 9003 \
        --smtp-port 9025

prints the environment variables that point the service at them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from tests.fakes import FakeProvider
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.fakes.whatsapp import FakeWhatsApp


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes",
                                     description="Run the provider fakes until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--whatsapp-port", type=int, default=9001)
    parser.add_argument("--twilio-port", type=int, default=9002)
    parser.add_argument("--telegram-port", type=int, default=9003)
    parser.add_argument("--smtp-port", type=int, default=9025)
    return parser.parse_args()


async def _serve(args: argparse.Namespace) -> None:
    whatsapp = FakeWhatsApp()
    twilio = FakeTwilio()
    telegram = FakeTelegram()
    fakes: list[FakeProvider] = [whatsapp, twilio, telegram]
    relay = FakeSmtp(port=args.smtp_port, host=args.host, log=True)
    try:
        relay.start()
        await whatsapp.start(args.host, args.whatsapp_port)
        await twilio.start(args.host, args.twilio_port)
        await telegram.start(args.host, args.telegram_port)
        print("# fake providers are up; point the service at them with:")
        for name, value in (
            ("WHATSAPP_API_URL", whatsapp.url),
            ("WHATSAPP_PHONE_ID", whatsapp.phone_id),
            ("WHATSAPP_TOKEN", whatsapp.token),
            ("WHATSAPP_APP_SECRET", "demo-app-secret"),
            ("WHATSAPP_VERIFY_TOKEN", "demo-verify-token"),
            ("TWILIO_API_URL", twilio.url),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token),
            ("TWILIO_FROM", "+15005550006"),
            ("TELEGRAM_API_URL", telegram.url),
            ("TELEGRAM_BOT_TOKEN", telegram.token),
            ("TELEGRAM_SECRET_TOKEN", "demo-secret-token"),
            ("SMTP_URL", relay.url),
            ("EMAIL_FROM", "'Demo <shop@demo.example>'"),
            ("EMAIL_INBOUND_SECRET", "demo-inbound-secret"),
        ):
            print(f"export {name}={value}")
        print("# Ctrl-C stops them.", flush=True)
        await asyncio.Event().wait()
    finally:
        relay.stop()
        for fake in reversed(fakes):
            await fake.close()


def main() -> None:
    """Parse the ports and serve until interrupted, logging every request received."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_arguments()))


if __name__ == "__main__":
    main()
