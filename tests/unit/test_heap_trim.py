"""The server gives freed handshake memory back to the OS (server/heap_trim.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stunlike_tracker.server.heap_trim import HeapTrimmer


def test_trims_only_after_enough_handshakes() -> None:
    trimmer = HeapTrimmer(every=3)
    if trimmer._trim is None:
        pytest.skip("not glibc")
    trimmer.handshake_done()
    trimmer.handshake_done()
    assert not trimmer.maybe_trim()
    trimmer.handshake_done()
    assert trimmer.maybe_trim()
    assert not trimmer.maybe_trim()  # the count starts over
    assert trimmer.trims == 1


_HOLES = """
import os
from stunlike_tracker.server.heap_trim import HeapTrimmer
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
big, kept = [], []
for n in range(2000):
    big.append(bytes(60 * 1024) + n.to_bytes(4, "big"))
    kept.append(bytes(1024) + n.to_bytes(4, "big"))
big.clear()
before = rss()
trimmer = HeapTrimmer(every=1)
trimmer.handshake_done()
trimmer.maybe_trim()
print(before, rss(), len(kept))
"""


def test_a_trim_returns_holes_left_between_live_allocations() -> None:
    """What handshakes leave: 60 KiB blocks freed between small live ones
    (malloc'd, not mmap'd), ~120 MB of holes that glibc keeps without a trim.
    In a fresh interpreter: the heap of a long test run would blur it."""
    if HeapTrimmer()._trim is None:
        pytest.skip("not glibc")
    done = subprocess.run(
        [sys.executable, "-c", _HOLES], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, _ = map(int, done.stdout.split())
    assert before - after >= 0.5 * 2000 * 60 * 1024, (before, after)
