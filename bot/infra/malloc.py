"""glibc's allocator, told once at start-up to keep large blocks out of its heap.

Under the sustained load (``stress/load.py``) the service's C heap grew ~2 MB
a minute while what it held did not (``mallinfo2`` in the running service:
~30 MB in use throughout, the free space inside the heap 2 -> 8 MB in four
minutes): the heap fragmented. glibc serves a block above its mmap
threshold (128 KiB at first) with a mapping of its own, given back whole
when freed, but it raises the threshold to the size of any such block that
is freed, up to 32 MiB; after that, large blocks are carved from the heap
and leave holes there. Large short-lived blocks are frequent here: each
asyncio socket read allocates 256 KiB before cutting it down to the bytes
that came, and the database's replies and a batch's BSON are as large.
Which of them left the holes was not traced. Fixing the threshold (glibc
then stops moving it) was measured: the C heap stayed at 31 MB over the
same four minutes, and RSS grew 4 MB instead of 9. The trim threshold is
set with it, as glibc would have (twice the mmap threshold), so free space
at the heap's top is given back.

A mapping per large block costs a system call or two; at 500 inputs a
second that is a few hundred a second. An operator's own
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or
``glibc.malloc.*`` tunable wins: nothing is set then. On another C library
(musl, macOS) there is nothing to set.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 1024  # blocks at least this large get their own mapping
TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_large_blocks_out_of_the_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True when it was set."""
    tuned = (any(name in os.environ for name in TUNABLES)
             or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))
    if tuned or not _is_glibc():
        return False  # the operator tuned the allocator (theirs stands), or no glibc
    mallopt = ctypes.CDLL(None).mallopt
    done: bool = (mallopt(M_MMAP_THRESHOLD, threshold) == 1
                  and mallopt(M_TRIM_THRESHOLD, 2 * threshold) == 1)
    if not done:
        log.warning("could not set glibc's mmap threshold; the C heap may fragment")
    return done


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (OSError, ValueError):  # not a glibc system
        return False
