"""SMS segment arithmetic: GSM-7 versus UCS-2, as carriers and Twilio count it.

An SMS is billed and paced per segment, so the SMS channel must know how many
segments a text takes before sending it, and cut it to ``SMS_MAX_SEGMENTS``.

A text that uses only the GSM 03.38 default alphabet (plus its extension
table, where each character costs two septets: an escape and the character)
is sent as GSM-7: 160 septets in one segment, 153 per segment once it is
split (7 go to the concatenation header). Any other character switches the
whole text to UCS-2: 70 UTF-16 code units in one segment, 67 per segment
when split. A character is never split across two segments (neither an
escape pair nor a surrogate pair), which is why counting packs greedily
instead of dividing.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["count_segments", "encoding", "fit_segments", "is_gsm7"]

# GSM 03.38 default alphabet (3GPP TS 23.038, 6.2.1), in table order.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table (6.2.1.1): each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\x0c^{}\\[~]|€")

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding(text: str) -> str:
    """``"GSM-7"`` or ``"UCS-2"``: the encoding a carrier would use for ``text``."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _units(text: str, gsm: bool) -> list[int]:
    """The cost of each character: septets for GSM-7, UTF-16 code units for UCS-2."""
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(units: Iterable[int], per_segment: int) -> int:
    """Segments needed when no character may straddle two segments."""
    segments, used = 1, 0
    for cost in units:
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return segments


def count_segments(text: str) -> int:
    """How many SMS segments ``text`` takes (0 for the empty text).

    >>> count_segments("a" * 160), count_segments("a" * 161)
    (1, 2)
    >>> count_segments("ó" * 70), count_segments("ó" * 71)
    (1, 2)
    """
    if not text:
        return 0
    gsm = is_gsm7(text)
    units = _units(text, gsm)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    if sum(units) <= single:
        return 1
    return _pack(units, multi)


def fit_segments(text: str, max_segments: int, ellipsis: str | None = None) -> str:
    """``text`` cut so that it fits in ``max_segments``, marked with an ellipsis when cut.

    Args:
        text: the text to send.
        max_segments: the most segments the result may take (at least 1).
        ellipsis: what marks the cut. By default "…" when the text is UCS-2
            anyway, and "..." when it is GSM-7, because "…" is not a GSM-7
            character: appending it would switch the whole text to UCS-2 and
            cut its capacity by more than half.

    Returns:
        ``text`` itself when it fits, else its longest prefix (trailing blanks
        removed) that fits together with the ellipsis.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text) <= max_segments:
        return text
    mark = ellipsis if ellipsis is not None else ("..." if is_gsm7(text) else "…")
    low, high = 0, len(text)  # the answer's prefix length lies in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if count_segments(text[:middle].rstrip() + mark) <= max_segments:
            low = middle
        else:
            high = middle
    return text[:low].rstrip() + mark
