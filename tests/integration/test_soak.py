"""Soak, short mode (issue 11): peers join, find, report and leave against
a real tracker process for a bounded time; memory and associations must
stop growing once steady, and everything left is released at the end.
The long mode is one command: ``python3 -m tests.integration.soak``."""

from __future__ import annotations

import asyncio

from tests.integration.soak import soak


def test_soak_short_mode_reaches_a_steady_state_and_releases_everything() -> None:
    workers = 30
    # Answers are cached 5 s instead of 60 s, so the cache is steady early.
    report = asyncio.run(soak(workers=workers, seconds=20.0, cache_ttl=5.0))
    assert report.peers >= 300, report.peers  # peer lives completed
    assert report.handshakes_failed == 0
    # Loopback has no loss: every request is answered 200 (retries allowed).
    assert report.failed == 0, report.failed
    # One association per live peer at most (plus a few closing).
    assert report.max_sessions() <= workers + 10
    # Nothing left behind: every peer left (DISCONNECT nil, close_notify).
    assert report.final["peers"] == 0
    assert report.final["sessions"] <= 2
    # Once steady, memory does not grow (allocator noise allowed).
    assert report.steady_growth_kib() <= 4096, report.samples
