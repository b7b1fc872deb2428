"""Normalise the phones and emails that stores send, so customers can be matched.

A customer is found by store id, then by phone (E.164), then by email; a
webhook from WhatsApp or Twilio carries an E.164 number. Store forms carry
whatever the shopper typed ("011 15 2233-4455", "+54 9 11 ...", "5491122..."),
so every adapter runs phones and emails through here before they reach a
:class:`bot.core.inputs.CustomerInfo`. Both functions are total: bad input gives
None, never an exception, because one typo in a form must not make a whole
webhook fail.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

_MAX_PHONE_CHARS = 64
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def _parse_valid(text: str, region: str | None) -> PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalize_phone(raw: str | None, default_country: str) -> str | None:
    """Return ``raw`` as an E.164 string ("+5491122334455"), or None if it is not a valid number.

    Accepted forms: international with ``+`` or the ``00`` prefix, national
    numbers of ``default_country`` (an ISO 3166 alpha-2 code, e.g. "AR":
    "011 15 2233-4455" becomes "+5491122334455"), with any spaces, dashes,
    dots or parentheses.

    Digits without a ``+`` are ambiguous ("5491122334455" could be national
    or carry a country code). They are read as a national number of
    ``default_country`` first and, only when that is not a valid number
    there, as an international number with the ``+`` left out. Reading them
    national first is right for what shoppers type into a store's form; the
    fallback catches ids such as WhatsApp's ``wa_id`` (always with country
    code, never with ``+``). A number is valid only if ``phonenumbers`` says
    so for its country (length and prefixes), so garbage gives None.

    Args:
        raw: the text as the store sent it; None or blank gives None.
        default_country: region for numbers written without a country code.
    """
    if raw is None:
        return None
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    if not text or len(text) > _MAX_PHONE_CHARS or not any(ch.isdigit() for ch in text):
        return None
    region = default_country.upper() if default_country else None
    number = _parse_valid(text, region)
    if number is None and not text.startswith("+"):
        number = _parse_valid("+" + text, None)
    if number is None:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_email(raw: str | None) -> str | None:
    """Return ``raw`` trimmed and lower-cased, or None if it does not look like an address.

    Lower-casing the whole address (not only the domain) is deliberate:
    matching a customer by email must not fail on "Ana@Example.com" versus
    "ana@example.com", and stores and mail providers treat local parts
    case-insensitively in practice. The check is only a shape check (one
    ``@``, a dot in the domain, no spaces): deliverability is the mail
    provider's business.
    """
    if raw is None:
        return None
    text = raw.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    if len(text) > 254 or not _EMAIL.match(text):
        return None
    return text.lower()
