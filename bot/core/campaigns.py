"""Scheduled campaigns, the pure part: a request's body checked, and its segment built.

A campaign is a one-off marketing message to every customer matching a
segment, at a time (``POST /api/campaigns``, ``bot/http/campaigns_api.py``).
The segment is the JSON form of the :mod:`bot.core.segments` helpers, so a
store writes the same tests over HTTP that a flow writes in Python::

    {"all": [{"tagged": "vip"}, {"spent_over": ["100", "ARS"]}]}

One key per object: ``all`` / ``any`` (a non-empty list), ``not`` (one
segment), ``everyone`` (``true``), or a helper with its arguments:
``tagged``, ``bought_category``, ``bought_product``, ``consented`` (a
string), ``orders_at_least`` (an int), ``no_order_since`` (days, counted
back from the moment the campaign is expanded), ``spent_over`` (``[amount,
currency]`` or ``{"amount", "currency"}``).

Why a body is checked here and not by a model: every refusal must name the
field, down to the part of the segment (``segment.all[1].spent_over:
...``), and the segment is rebuilt at expansion from the stored JSON with
the same code. Pure: no I/O; "now" is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.core import segments as seg
from bot.core.segments import Segment
from bot.types import Doc

MAX_NAME = 200
MAX_TEXT = 4096
MAX_DEPTH = 10  # nesting of all/any/not a segment may use
LOCALES = ("es", "pt", "en")


class BadCampaign(ValueError):
    """A campaign body the service cannot use; the message starts with the field's path."""


EVERYONE = Segment("everyone", lambda facts: True)


def _one_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadCampaign(f"{where}: a non-empty string is required")
    return value


def _leaf(name: str, arg: Any, where: str, now: datetime) -> Segment:
    builders: dict[str, Callable[[Any], Segment]] = {
        "tagged": lambda a: seg.tagged(_one_text(a, where)),
        "bought_category": lambda a: seg.bought_category(_one_text(a, where)),
        "bought_product": lambda a: seg.bought_product(_one_text(a, where)),
        "consented": lambda a: seg.consented(_one_text(a, where)),
        "orders_at_least": seg.orders_at_least,
        "no_order_since": lambda a: seg.no_order_since(a, now),
        "spent_over": lambda a: _spent_over(a, where),
    }
    builder = builders.get(name)
    if builder is None:
        raise BadCampaign(f"{where}: unknown segment {name!r} (one of all, any, not, everyone, "
                          f"{', '.join(builders)})")
    try:
        return builder(arg)
    except BadCampaign:
        raise
    except (ValueError, TypeError) as exc:
        raise BadCampaign(f"{where}: {exc}") from None


def _spent_over(arg: Any, where: str) -> Segment:
    if isinstance(arg, dict) and set(arg) == {"amount", "currency"}:
        return seg.spent_over(arg["amount"], arg["currency"])
    if isinstance(arg, list) and len(arg) == 2:
        return seg.spent_over(arg[0], arg[1])
    raise BadCampaign(f'{where}: [amount, currency] or {{"amount", "currency"}} is required')


def segment_from_json(spec: Any, now: datetime, where: str = "segment",
                      depth: int = 0) -> Segment:
    """The :class:`Segment` a JSON segment describes (see the module docstring).

    Raises:
        BadCampaign: the spec is not one; the message names where, e.g.
            ``segment.all[0].tagged: a non-empty string is required``.
    """
    if depth > MAX_DEPTH:
        raise BadCampaign(f"{where}: nested more than {MAX_DEPTH} levels")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise BadCampaign(f"{where}: an object with exactly one key is required")
    ((name, arg),) = spec.items()
    here = f"{where}.{name}"
    if name in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise BadCampaign(f"{here}: a non-empty list of segments is required")
        parts = [segment_from_json(part, now, f"{here}[{i}]", depth + 1)
                 for i, part in enumerate(arg)]
        return seg.and_(*parts) if name == "all" else seg.or_(*parts)
    if name == "not":
        return seg.not_(segment_from_json(arg, now, here, depth + 1))
    if name == "everyone":
        if arg is not True:
            raise BadCampaign(f"{here}: must be true")
        return EVERYONE
    return _leaf(name, arg, here, now)


@dataclass(frozen=True)
class CampaignRequest:
    """A checked ``POST /api/campaigns`` body."""

    name: str
    segment: Doc
    texts: dict[str, str]
    template: Doc | None
    channels: list[str]
    at: datetime | None
    dry_run: bool


def _texts(body: Doc) -> dict[str, str]:
    if "text" in body and "texts" in body:
        raise BadCampaign("texts: give text or texts, not both")
    if "text" in body:
        return {"es": _bounded(body["text"], "text")}
    texts = body.get("texts")
    if not isinstance(texts, dict) or not texts:
        raise BadCampaign("text: a text (or texts, per locale) is required")
    checked = {}
    for locale, text in texts.items():
        if locale not in LOCALES:
            raise BadCampaign(f"texts.{locale}: the locale is one of {', '.join(LOCALES)}")
        checked[locale] = _bounded(text, f"texts.{locale}")
    return checked


def _bounded(value: Any, where: str) -> str:
    text = _one_text(value, where)
    if len(text) > MAX_TEXT:
        raise BadCampaign(f"{where}: at most {MAX_TEXT} characters")
    return text


def _template(value: Any) -> Doc | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": _one_text(value, "template"), "params": []}
    if not isinstance(value, dict) or not set(value) <= {"name", "params"}:
        raise BadCampaign('template: a name, or {"name", "params"}, is required')
    params = value.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise BadCampaign("template.params: a list of strings is required")
    return {"name": _one_text(value.get("name"), "template.name"), "params": list(params)}


def _at(value: Any, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadCampaign("at: an ISO 8601 date and time with its offset is required, "
                          "e.g. 2026-03-10T10:00:00-03:00")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadCampaign(f"at: {value!r} is not an ISO 8601 date and time") from None
    if at.tzinfo is None:
        raise BadCampaign(f"at: {value!r} has no UTC offset (add one, e.g. -03:00 or Z)")
    return at.astimezone(UTC)


def parse_campaign(body: Any, now: datetime, channels: Collection[str]) -> CampaignRequest:
    """The checked request; ``channels`` are the configured ones (a chain may name only those).

    Raises:
        BadCampaign: the first problem, naming its field.
    """
    if not isinstance(body, dict):
        raise BadCampaign("body: a JSON object is required")
    known = {"name", "segment", "text", "texts", "template", "channels", "at", "dry_run"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadCampaign(f"{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadCampaign("dry_run: true or false")
    if "segment" not in body:
        raise BadCampaign('segment: required (e.g. {"tagged": "vip"}, or {"everyone": true})')
    segment_from_json(body["segment"], now)
    if dry_run:  # a count needs only the segment
        return CampaignRequest(name=str(body.get("name") or ""), segment=body["segment"],
                               texts={}, template=None, channels=[], at=None, dry_run=True)
    name = _one_text(body.get("name"), "name")
    if len(name) > MAX_NAME:
        raise BadCampaign(f"name: at most {MAX_NAME} characters")
    chain = body.get("channels") or []
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise BadCampaign("channels: a list of channel names is required")
    for i, channel in enumerate(chain):
        if channel not in channels:
            raise BadCampaign(f"channels[{i}]: {channel!r} is not a configured channel "
                              f"({', '.join(channels) or 'none is'})")
    if len(set(chain)) != len(chain):
        raise BadCampaign("channels: a channel appears twice")
    return CampaignRequest(name=name, segment=body["segment"], texts=_texts(body),
                           template=_template(body.get("template")), channels=list(chain),
                           at=_at(body.get("at"), required=True), dry_run=False)
