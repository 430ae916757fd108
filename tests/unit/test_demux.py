from __future__ import annotations

import pytest

from stunlike_tracker.transport.demux import Route, classify

STUN_BINDING = bytes.fromhex("000100002112a442") + bytes(12)


def test_stun_and_dtls() -> None:
    assert classify(STUN_BINDING) is Route.STUN
    assert classify(bytes.fromhex("16feff0000")) is Route.DTLS  # handshake record
    assert classify(bytes.fromhex("17fefd")) is Route.DTLS  # application data
    assert not Route.STUN.is_drop and not Route.DTLS.is_drop


@pytest.mark.parametrize(
    ("first", "route"),
    [
        (0, Route.STUN),
        (3, Route.STUN),
        (4, Route.UNASSIGNED),
        (15, Route.UNASSIGNED),
        (16, Route.ZRTP),
        (19, Route.ZRTP),
        (20, Route.DTLS),
        (63, Route.DTLS),
        (64, Route.TURN_CHANNEL),
        (79, Route.TURN_CHANNEL),
        (80, Route.UNASSIGNED),
        (127, Route.UNASSIGNED),
        (128, Route.RTP),
        (191, Route.RTP),
        (192, Route.UNASSIGNED),
        (255, Route.UNASSIGNED),
    ],
)
def test_rfc7983_boundaries(first: int, route: Route) -> None:
    assert classify(bytes((first,)) + b"rest") is route


def test_every_byte_classified_and_drops_have_reasons() -> None:
    for first in range(256):
        route = classify(bytes((first,)))
        assert route.is_drop == (route not in (Route.STUN, Route.DTLS))
        assert isinstance(route.value, str) and route.value


def test_empty_datagram() -> None:
    assert classify(b"") is Route.EMPTY
    assert Route.EMPTY.is_drop
