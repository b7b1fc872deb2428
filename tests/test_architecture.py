"""The import rules that keep the core free of providers (issue 13, item 1).

- ``bot/`` imports no edge: not ``channels``, ``store_events`` nor ``rules``.
  The core owns the protocols the edges implement (``bot.core.channel``);
  ``server.py`` wires the edges in, and flows are loaded by package name.
- ``bot/core/`` is pure: no runtime, database, HTTP, aiohttp or pymongo, so
  a decision can be run and tested with nothing but Python.

Every import counts, ``TYPE_CHECKING`` ones and imports inside functions
too: they are still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from channels.registry import CHANNEL_ORDER  # tests may import an edge; bot/ may not

ROOT = Path(__file__).resolve().parents[1]
EDGES = ("channels", "store_events", "rules")
IMPURE = ("bot.runtime", "bot.infra.database", "bot.http", "aiohttp", "pymongo")
# Modules of bot/core allowed one impure import, with the reason. Empty: keep it so.
CORE_EXCEPTIONS: dict[tuple[str, str], str] = {}


def imported_modules(source: str) -> list[str]:
    """Every module a source imports (absolute names; ``from x import y`` gives x and x.y)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def violations(source: str, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of ``source`` that fall within a ``forbidden`` package."""
    return sorted({name for name in imported_modules(source) if _within(name, forbidden)})


def _modules(folder: str) -> list[Path]:
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths, f"no Python files under {folder}/"
    return paths


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.mark.parametrize(("source", "found"), [
    ("import channels.base", ["channels.base"]),
    ("from channels.base import Channel", ["channels.base", "channels.base.Channel"]),
    ("from store_events import store_clock", ["store_events", "store_events.store_clock"]),
    ("if TYPE_CHECKING:\n    from rules import birthday", ["rules", "rules.birthday"]),
    ("def f():\n    import channels", ["channels"]),
    ("from bot.core.channel import Channel\nimport channelsx", []),
])
def test_the_check_sees_an_edge_import_wherever_it_is(source: str, found: list[str]) -> None:
    assert violations(source, EDGES) == found


def test_bot_imports_no_edge() -> None:
    """``bot/`` (``bot/testing.py`` included) never imports a provider, a store or a flow."""
    found = {_name(path): bad for path in _modules("bot")
             if (bad := violations(path.read_text(encoding="utf-8"), EDGES))}
    assert found == {}, f"bot/ imports an edge (put the protocol in bot/core): {found}"


def test_the_core_is_pure() -> None:
    """``bot/core/`` does no I/O: it imports no runtime, database, HTTP or driver."""
    found: dict[str, list[str]] = {}
    for path in _modules("bot/core"):
        module = _name(path)
        bad = [name for name in violations(path.read_text(encoding="utf-8"), IMPURE)
               if (module, name) not in CORE_EXCEPTIONS]
        if bad:
            found[module] = bad
    assert found == {}, f"bot/core imports I/O (keep it in bot/runtime or bot/http): {found}"


# Modules of bot/ allowed to name a channel in code, with the reason. Keep it short.
CHANNEL_NAME_EXCEPTIONS: dict[str, str] = {
    "bot.infra.settings": "each provider's environment variables are settings",
}


# Channel names that are also a field of customers and agents (their address,
# an identity key's kind): ``"email"`` in bot/ is that field, never the channel.
FIELD_NAMES = {"email"}


def channel_names_in(source: str) -> list[str]:
    """The string constants of ``source`` that are a channel's name (docstrings aside)."""
    return sorted({node.value for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.Constant) and node.value in CHANNEL_ORDER
                   and node.value not in FIELD_NAMES})


def test_bot_names_no_channel() -> None:
    """What a channel is (its window, its title, its name) comes from its traits.

    A ``"whatsapp"`` in ``bot/`` is provider knowledge that adding a channel
    would have to find; the console once listed the channels and tested
    ``channel != "whatsapp"`` for the service window.
    """
    found = {_name(path): names for path in _modules("bot")
             if _name(path) not in CHANNEL_NAME_EXCEPTIONS
             and (names := channel_names_in(path.read_text(encoding="utf-8")))}
    assert found == {}, f"bot/ names a channel (ask ChannelTraits instead): {found}"
