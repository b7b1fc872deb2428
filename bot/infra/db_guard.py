"""A guard between the service and its embedded database process.

``python bot/infra/db_guard.py <secantus arguments>`` starts secantus and stays
beside it. If the service dies without stopping it (kill -9), the guard
notices that its parent is gone and stops the database the orderly way
(SIGTERM, so the last commits are flushed; SIGKILL after a grace period), so
no orphan keeps the data directory locked and nothing written is lost.
SIGTERM or SIGINT to the guard is passed on the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

GRACE_SECONDS = 15.0
POLL_SECONDS = 0.2


def stop(child: subprocess.Popen[bytes]) -> int:
    """SIGTERM the database, wait for it, SIGKILL as a last resort."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode or 0


def main() -> None:
    parent = os.getppid()
    child = subprocess.Popen([sys.executable, "-m", "secantus", *sys.argv[1:]])

    def forward(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(stop(child))

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        code = child.poll()
        if code is not None:
            raise SystemExit(code)
        if os.getppid() != parent:  # the service died without stopping us
            raise SystemExit(stop(child))
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
