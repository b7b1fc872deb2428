"""The allocator setting that keeps the C heap from fragmenting under load.

Each case runs in a fresh interpreter: glibc's thresholds are process-wide
and move as the process allocates, so only a new process shows them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Frees a 4 MiB block (glibc then raises its mmap threshold to 4 MiB, as it
# does after any freed mapping), then allocates 200 KiB, the size of an
# asyncio socket read: prints whether that block got its own mapping.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from bot.infra.malloc import keep_large_blocks_out_of_the_heap

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    if sys.argv[1] == "default":
        print("default")
    else:
        print("set" if keep_large_blocks_out_of_the_heap() else "not-set")
    big = bytearray(4 * 2**20)
    del big
    before = libc.mallinfo2().hblks
    read = bytearray(200 * 1024)
    print("mapped" if libc.mallinfo2().hblks > before else "heap")
""")

needs_glibc = pytest.mark.skipif(
    not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="glibc's allocator only")


def probe(mode: str = "service", **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


@needs_glibc
def test_large_blocks_get_their_own_mapping_even_after_a_larger_one_was_freed() -> None:
    assert probe() == ["set", "mapped"]


@needs_glibc
def test_without_the_setting_glibc_carves_them_from_the_heap() -> None:
    # What the setting is for: glibc's own threshold rose to the freed 4 MiB.
    assert probe("default") == ["default", "heap"]


@needs_glibc
def test_an_operators_own_tuning_stands() -> None:
    assert probe(MALLOC_MMAP_THRESHOLD_="8388608") == ["not-set", "heap"]
    assert probe(GLIBC_TUNABLES="glibc.malloc.mmap_threshold=8388608") == ["not-set", "heap"]
