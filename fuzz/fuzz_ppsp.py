"""Coverage-guided fuzzing of the PPSP XML decoder and the tracker core.

Properties: the decoder raises only ``PpspError``; the core, fed the same
bytes as a request on an established session, never raises and never
answers 500 (an internal error is a bug, PROTOCOL §2).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from stunlike_tracker.core.effects import RequestDropped, Session
    from stunlike_tracker.core.tracker import Tracker
    from stunlike_tracker.ppsp import PpspError, parse_message_untrusted
    from stunlike_tracker.store.memory import MemoryStore

import contextlib

from fuzz.common import run

TRACKER = Tracker(MemoryStore())
SESSION = Session("s1", ("198.51.100.7", 40000))
NOW = [1000.0]


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(PpspError):
        parse_message_untrusted(data)
    NOW[0] += 0.05  # stay within the per-peer rate limit
    effects = TRACKER.handle_datagram(data, SESSION, NOW[0])
    for effect in effects:
        if isinstance(effect, RequestDropped):
            assert effect.reason != "internal-error", effect.detail


if __name__ == "__main__":
    run(test_one_input)
