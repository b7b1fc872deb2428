"""The security checks of ``make stress`` inside ``make test`` (``stress/security.py``).

Each check reads what the app really has: the routes from its router, the
comparisons from the source, the log lines a scenario at INFO produced.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import security
from stress.harness import RunLogs
from stress.inprocess import running


async def test_every_route_refuses_a_caller_without_the_right_credentials(
        mongo_uri: str) -> None:
    async with running(mongo_uri) as run:
        result = await security.check_auth(run)
    assert result.checked > 40  # every route, several ways each
    assert result.failures == []


def test_signatures_and_tokens_are_never_compared_with_equals() -> None:
    result, digests = security.check_constant_time()
    assert digests >= 6  # WhatsApp, its handshake, Twilio, Telegram, stores, admin bearer
    assert result.failures == []


async def test_no_secret_token_or_full_phone_number_is_logged_at_info(mongo_uri: str) -> None:
    """The regression: httpx logged every Bot API URL, the Telegram bot token in it, at INFO."""
    result, _, captured = await security.check_logs(mongo_uri)
    assert captured >= 5  # the capture saw the scenario (the fakes log every call)
    assert result.failures == []


async def test_the_console_refuses_cross_site_form_posts(mongo_uri: str) -> None:
    async with running(mongo_uri, public_url=security.PLAIN_URL) as run:
        result = await security.check_console(run)
    if result is None:
        pytest.skip("the console is not served")
    assert result.failures == []


def test_the_ast_check_flags_an_equality_on_a_signature() -> None:
    """The check itself: what it must flag, and the literal comparisons it must not."""
    flagged = security.compare_findings(
        "def verify(given, expected_signature, token):\n"
        "    if given == expected_signature: pass\n"
        "    if token != '': pass\n"
        "    if kind == 'token': pass\n", "x.py")
    assert len(flagged) == 1 and "expected_signature" in flagged[0]


def test_the_run_log_check_finds_a_secret_and_a_whole_number_but_not_a_masked_one(
        tmp_path: Path) -> None:
    logs = RunLogs(tmp_path)
    logs.secrets.add("tok-123456")
    (tmp_path / "a-server.log").write_text(
        "INFO bot.runtime.sender: sent to +54911****0042\n"
        "INFO x: seq 17645491100000042123 is no phone\n", encoding="utf-8")
    clean, files, lines = security.check_run_logs(logs)
    assert (clean.failures, files, lines) == ([], 1, 2)
    (tmp_path / "b-server.log").write_text(
        "INFO x: calling with tok-123456\nINFO y: message from 5491100000042\n",
        encoding="utf-8")
    leaky, _, _ = security.check_run_logs(logs)
    assert len(leaky.failures) == 2
    assert all("tok-123456" not in failure for failure in leaky.failures)  # named, not shown
