"""A store's own texts and timings for the flows, from the flow settings file.

The marketer changes a flow's words and waits in ``FLOWS_CONFIG`` (read and
checked at start-up by ``bot.infra.flow_config``), not in its module. What
the file says ends up here, per flow, and travels to the flows' actions
with the settings they read (``Recorder.settings[OVERRIDES]``): the
recorder knows which flow it runs, so ``say`` (``rules/_texts.py``) and
:func:`bot.core.commands.timing` pick that flow's entries.

Durations in the file are seconds or text like ``"2d"``, ``"36h"``,
``"1d 12h"``, ``"30m"``, ``"45s"``, ``"1w"`` (:func:`parse_duration`).

Pure: plain data and parsing.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

OVERRIDES = "flow_overrides"  # the key of the flows' settings that holds them
UNITS = {"w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
MAX_DURATION = 5 * 366 * 86400.0  # a wait beyond five years is a typo


@dataclass(frozen=True)
class FlowOverrides:
    """Per flow: texts (locale -> key -> text) and timings (name -> seconds)."""

    texts: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    timings: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def text(self, flow: str, locale: str, key: str) -> str | None:
        """The store's text ``key`` in ``locale`` for ``flow``, if it has one."""
        return self.texts.get(flow, {}).get(locale, {}).get(key)

    def timing(self, flow: str, name: str) -> float | None:
        """The store's timing ``name`` (seconds) for ``flow``, if it has one."""
        return self.timings.get(flow, {}).get(name)


NO_OVERRIDES = FlowOverrides()


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or text like ``"2d"``, ``"36h"``, ``"1d 12h"``.

    Raises:
        ValueError: not a duration, negative, or longer than five years.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (seconds, or e.g. \"2d\", \"36h\")")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        parts = PART.findall(text)
        if not parts or PART.sub("", text).strip():
            raise ValueError(f"{value!r} is not a duration like \"2d\", \"36h\", \"1d 12h\", "
                             "\"30m\" or a number of seconds")
        seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"{value!r} is not a duration (seconds, or e.g. \"2d\", \"36h\")")
    if not 0 <= seconds <= MAX_DURATION:
        raise ValueError(f"{value!r} must be between 0 and 5 years")
    return seconds


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a text fills in.

    Raises:
        ValueError: the text's braces do not parse (write ``{{`` for a brace).
    """
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for a literal brace)") from None
    names = set()
    for _, name, spec, _ in parsed:
        if name is not None:
            if not name.isidentifier():
                raise ValueError(f"{{{name}}} is not a placeholder name "
                                 "(write {{ and }} for a literal brace)")
            names.add(name)
            names |= placeholders(spec or "")
    return names
