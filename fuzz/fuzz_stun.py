"""Coverage-guided fuzzing of the STUN decoder and the Binding responder.

Properties: the decoder raises only ``StunError``; the responder never
raises, and never answers with more than twice the request (a bare 20-byte
request from IPv6 excepted, PROTOCOL §5).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from stunlike_tracker.stun.codec import StunError, parse_message_untrusted
    from stunlike_tracker.stun.responder import BindingResponder

import contextlib

from fuzz.common import run

RESPONDER = BindingResponder()


def test_one_input(data: bytes) -> None:
    with contextlib.suppress(StunError):
        parse_message_untrusted(data)
    for source in (("198.51.100.7", 40000), ("2001:db8::7", 40000)):
        reply = RESPONDER.handle_untrusted(data, source)
        if reply is not None:
            limit = max(2 * len(data), 52 if ":" in source[0] else 0)
            assert len(reply) <= limit, (len(data), len(reply))


if __name__ == "__main__":
    run(test_one_input)
