"""The system Chromium for the browser tests (Playwright cannot download its own here).

Without a browser the tests are skipped, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil

import pytest

TIMEOUT_MS = 10_000


def chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def browser_path() -> str:
    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found (install the Debian package chromium)")
        pytest.skip("no Chromium found: install the Debian package chromium, or set CHROMIUM")
    return path
