"""IceServers: validation and the aiortc configuration it produces (no sockets)."""

from __future__ import annotations

import pytest
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from stunlike_tracker.peer.channel import IceServers
from stunlike_tracker.ppsp.messages import TurnServer

TURN = TurnServer(uri="turn:192.0.2.1:3478?transport=udp", username="1:p", credential="c", ttl=60)


def test_default_has_no_servers_at_all() -> None:
    # aiortc falls back to Google's STUN server when iceServers is None.
    config = IceServers().rtc_configuration()
    assert config.iceServers == []
    assert config.iceTransportPolicy is RTCIceTransportPolicy.ALL


def test_stun_and_turn() -> None:
    config = IceServers(stun=("tracker.example", 3478), turn=TURN).rtc_configuration()
    assert config.iceServers is not None
    assert [s.urls for s in config.iceServers] == ["stun:tracker.example:3478", TURN.uri]
    assert (config.iceServers[1].username, config.iceServers[1].credential) == ("1:p", "c")


def test_relay_only_uses_the_relay_transport_policy_and_drops_stun() -> None:
    config = IceServers(stun=("192.0.2.9", 3478), turn=TURN, relay_only=True).rtc_configuration()
    assert config.iceTransportPolicy is RTCIceTransportPolicy.RELAY
    assert config.iceServers is not None
    assert [s.urls for s in config.iceServers] == [TURN.uri]


def test_relay_only_needs_turn() -> None:
    with pytest.raises(ValueError, match="TURN"):
        IceServers(relay_only=True)


@pytest.mark.parametrize(
    "stun",
    [("2001:db8::1", 3478), ("", 3478), ("host?x", 3478), ("192.0.2.1", 0), ("h", 70000)],
)
def test_bad_stun_server(stun: tuple[str, int]) -> None:
    with pytest.raises(ValueError):
        IceServers(stun=stun)


@pytest.mark.parametrize(
    "uri",
    [
        "stun:192.0.2.1:3478",
        "turn:192.0.2.1:3478?transport=sctp",
        "turns:192.0.2.1:5349?transport=udp",
        "http://192.0.2.1",
        "turn:",
    ],
)
def test_turn_uris_aiortc_would_ignore_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        IceServers(turn=TurnServer(uri=uri, username="u", credential="c", ttl=1))


@pytest.mark.parametrize(
    "uri", ["turn:192.0.2.1", "turn:relay.example:3478?transport=tcp", "turns:relay.example"]
)
def test_good_turn_uris(uri: str) -> None:
    IceServers(turn=TurnServer(uri=uri, username="u", credential="c", ttl=1))
