"""store_events.phones: E.164 phones and comparable emails, never an exception."""

from __future__ import annotations

import pytest

from store_events.phones import normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+5491122334455", "AR", "+5491122334455"),
        ("+54 9 11 2233-4455", "AR", "+5491122334455"),
        ("+54 (9) 11 2233.4455", "AR", "+5491122334455"),
        ("  +54 9 11 2233 4455  ", "AR", "+5491122334455"),
        ("0054 9 11 2233 4455", "AR", "+5491122334455"),
        ("tel:+5491122334455", "AR", "+5491122334455"),
        # digits with the country code but no "+": not a national AR number, so international
        ("5491122334455", "AR", "+5491122334455"),
        ("14155552671", "AR", "+14155552671"),
        # national formats of the default country, with the old "0" and "15" prefixes
        ("011 15 2233-4455", "AR", "+5491122334455"),
        ("(011) 15-2233-4455", "AR", "+5491122334455"),
        ("(0351) 15-512-3456", "AR", "+5493515123456"),
        ("11 2233 4455", "AR", "+541122334455"),
        # the default country only matters without a country code
        ("+1 (415) 555-2671", "AR", "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("612 34 56 78", "ES", "+34612345678"),
        ("5491122334455", "US", "+5491122334455"),
        ("11 2233 4455", "ar", "+541122334455"),
    ],
)
def test_valid_numbers_become_e164(raw: str, country: str, expected: str) -> None:
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "abc", "not a phone", "+", "+54", "123", "+54 11 22", "0000000000",
     "+999 1234 5678", "1" * 80, "📞", "+54 9 11 2233-4455-6677-8899"],
)
def test_invalid_numbers_give_none(raw: str | None) -> None:
    assert normalize_phone(raw, "AR") is None


def test_invalid_default_country_never_raises() -> None:
    assert normalize_phone("011 15 2233-4455", "ZZ") is None
    assert normalize_phone("+5491122334455", "") == "+5491122334455"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ana@example.com", "ana@example.com"),
        ("  Ana.Gomez@Example.COM ", "ana.gomez@example.com"),
        ("mailto:ana@example.com", "ana@example.com"),
        ("ana+tienda@mail.example.com.ar", "ana+tienda@mail.example.com.ar"),
    ],
)
def test_emails_are_trimmed_and_lowercased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "ana", "ana@", "@example.com", "ana@example", "ana @example.com",
            "ana@@example.com", "ana@example.", "a" * 250 + "@example.com"],
)
def test_bad_emails_give_none(raw: str | None) -> None:
    assert normalize_email(raw) is None
