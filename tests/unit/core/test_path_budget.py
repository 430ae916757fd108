"""The datagram budget follows the path (PROTOCOL §4, issue 15): answers to an
IPv6 peer are split at ``ipv6_datagram_budget``, to an IPv4 peer (also one
seen through the dual-stack socket as ``::ffff:a.b.c.d``) at
``datagram_budget``; offers are trimmed to fit the smaller of the two."""

from __future__ import annotations

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Transmit
from stunlike_tracker.ppsp import encode_request, parse_response_untrusted
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Request,
)
from tests.unit.core.harness import Harness

CONFIG = TrackerConfig(datagram_budget=1400, ipv6_datagram_budget=1000)


def _find_datagrams(h: Harness, ip: str) -> list[bytes]:
    session, _ = h.connected("leech", ip=ip)
    assert h.join(session, "leech", "s", peer_num=PeerNum(0)).status == 200
    request = Request(Method.FIND, "leech", h.txid(), swarm_id="s", peer_num=PeerNum(30))
    effects = h.raw(session, encode_request(request))
    return [d for e in effects if isinstance(e, Transmit) for d in e.datagrams]


def _swarm(h: Harness) -> None:
    for i in range(30):
        session, _ = h.connected(f"seed-{i:02d}", ip=f"2001:db8::{i + 1:x}")
        assert h.join(session, f"seed-{i:02d}", "s", PeerMode.SEED).status == 200


def test_an_ipv6_peer_gets_the_ipv6_budget() -> None:
    h = Harness(CONFIG)
    _swarm(h)
    datagrams = _find_datagrams(h, "2001:db8::99")
    assert len(datagrams) > 1 and max(map(len, datagrams)) <= 1000


def test_an_ipv4_peer_on_the_dual_stack_socket_gets_the_ipv4_budget() -> None:
    h = Harness(CONFIG)
    _swarm(h)
    datagrams = _find_datagrams(h, "::ffff:198.51.100.7")
    assert 1000 < max(map(len, datagrams)) <= 1400


def test_offers_fit_the_smallest_budget() -> None:
    h = Harness(CONFIG)
    candidates = tuple(
        PeerAddress(AddrType.IPV6, f"2001:db8::{j + 1:x}", 40000 + j, AddressType.HOST, 1000 - j)
        for j in range(8)
    )
    offer = IceOffer("o1", "u" * 32, "p" * 64, "sha-256 " + ":".join(["AB"] * 32), candidates)
    seed, _ = h.connected("seed", ip="198.51.100.1")
    assert h.join(seed, "seed", "s", PeerMode.SEED, ice_offer=offer).status == 200
    datagrams = _find_datagrams(h, "2001:db8::99")
    assert max(map(len, datagrams)) <= 1000
    (listed,) = parse_response_untrusted(datagrams[0]).peers
    assert listed.offer is not None and 0 < len(listed.offer.candidates) < 8  # trimmed
