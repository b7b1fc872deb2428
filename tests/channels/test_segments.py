"""GSM-7 / UCS-2 segment counting and cutting."""

from __future__ import annotations

import pytest

from channels.segments import count_segments, encoding, fit_segments, is_gsm7


@pytest.mark.parametrize(
    ("text", "gsm"),
    [
        ("Hola, ¿cómo estás?", False),  # ó is not in GSM-7 (ò is)
        ("Hola, ¿como estas?", True),
        ("Año, niño, Ñandú", False),  # ñ and Ñ are GSM-7, ú is not
        ("Año niño Ñandu", True),
        ("é É è ù ì ò à Ç ü Ü ö Ö ä Ä", True),
        ("á", False),
        ("í", False),
        ("ç", False),  # only the capital Ç is in the table
        ("€ [ ] { } ~ ^ | \\", True),  # extension table
        ("Precio: 10 €", True),
        ("Gracias 🙏", False),
        ("`", False),  # the backtick is not GSM-7
        ("ΔΦΓΛΩΠΨΣΘΞ", True),
    ],
)
def test_gsm7_alphabet(text: str, gsm: bool) -> None:
    assert is_gsm7(text) is gsm
    assert encoding(text) == ("GSM-7" if gsm else "UCS-2")


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("ñ" * 160, 1),  # GSM-7 despite being non-ASCII
        ("€" * 80, 1),  # extension characters take two septets: 160
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),  # 161 septets
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair may not straddle
        ("ó" * 70, 1),
        ("ó" * 71, 2),
        ("ó" * 134, 2),
        ("ó" * 135, 3),
        ("a" * 69 + "ó", 1),  # one non-GSM character turns the whole text to UCS-2
        ("a" * 70 + "ó", 2),
        ("😀" * 35, 1),  # a surrogate pair takes two UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but a surrogate pair is not split either
    ],
)
def test_count_segments(text: str, segments: int) -> None:
    assert count_segments(text) == segments


def test_fit_keeps_a_text_that_fits() -> None:
    text = "Tu carrito te espera"
    assert fit_segments(text, 1) is text


def test_fit_cuts_gsm_text_with_a_gsm_ellipsis() -> None:
    text = "hola " * 100
    fitted = fit_segments(text, 2)
    assert fitted.endswith("...")
    assert is_gsm7(fitted)
    assert count_segments(fitted) == 2
    assert len(fitted) > 290  # still GSM-7 capacity, not UCS-2
    assert text.startswith(fitted[:-3])


def test_fit_cuts_ucs2_text_with_the_ellipsis_character() -> None:
    text = "canción " * 40
    fitted = fit_segments(text, 1)
    assert fitted.endswith("…")
    assert count_segments(fitted) == 1
    assert not fitted[:-1].endswith(" ")


def test_fit_takes_an_explicit_ellipsis() -> None:
    fitted = fit_segments("a" * 500, 1, ellipsis="…")
    assert fitted.endswith("…")
    assert count_segments(fitted) == 1


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_fit_never_exceeds_the_limit(limit: int) -> None:
    for text in ("x€" * 700, "ñandú 🙏 " * 200, "a" * 2000):
        assert count_segments(fit_segments(text, limit)) <= limit


def test_fit_refuses_zero_segments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit_segments("hola", 0)
