"""Peer listings encoded once and reused (core/listings.py): never stale, bounded."""

from __future__ import annotations

from dataclasses import replace

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Transmit
from stunlike_tracker.core.listings import ListingCache
from stunlike_tracker.ppsp import encode_request, encode_response_datagrams
from stunlike_tracker.ppsp.encode import peer_info_xml
from stunlike_tracker.ppsp.messages import (
    AddrType,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Request,
)
from stunlike_tracker.store.records import PeerRecord

from .harness import Harness


def _record(peer_id: str, port: int) -> PeerRecord:
    reflexive = PeerAddress(AddrType.IPV4, "198.51.100.1", port)
    return PeerRecord(peer_id, "s", reflexive, 0.0, 10.0)


def test_a_listing_follows_a_reconnect_from_another_address_and_a_mode_change() -> None:
    h = Harness()
    s, token = h.connected("A", ip="198.51.100.1", port=1111)
    h.join(s, "A", "x", PeerMode.SEED)
    q, _ = h.connected("q")
    h.join(q, "q", "x")
    assert h.find(q, "q", "x").peers[0].addresses[0].port == 1111
    s2 = h.session("198.51.100.1", 2222)
    assert h.connect(s2, "A", token).status == 200
    (info,) = h.find(q, "q", "x").peers
    assert info.addresses[0].port == 2222 and info.mode is PeerMode.SEED
    h.join(s2, "A", "x", PeerMode.LEECH)
    assert h.find(q, "q", "x").peers[0].mode is PeerMode.LEECH


def test_cached_listings_give_the_bytes_of_a_fresh_encoding() -> None:
    cached, fresh = Harness(), Harness(TrackerConfig(listing_cache_entries=0))
    answers = []
    for h in (cached, fresh):
        for i in range(12):
            s, _ = h.connected(f"peer-{i:02d}", port=30000 + i)
            h.join(s, f"peer-{i:02d}", "x", PeerMode.SEED)
        q, _ = h.connected("q")
        h.join(q, "q", "x")
        for n in range(3):
            request = Request(Method.FIND, "q", f"f{n}", swarm_id="x", peer_num=PeerNum(30))
            effects = h.raw(q, encode_request(request))
            answers.append([d for e in effects if isinstance(e, Transmit) for d in e.datagrams])
    assert len(cached.tracker.listings) == 12 and len(fresh.tracker.listings) == 0
    assert answers[:3] == answers[3:]
    assert all(len(datagrams) > 1 for datagrams in answers)  # multi-part, as in the load


def test_encoded_peers_give_the_same_datagrams_as_encoding_them() -> None:
    h = Harness()
    for i in range(8):
        s, _ = h.connected(f"p{i}")
        h.join(s, f"p{i}", "x", PeerMode.SEED)
    q, _ = h.connected("q")
    response = h.join(q, "q", "x", peer_num=PeerNum(8))
    encoded = [peer_info_xml(p).encode() for p in response.peers]
    response = replace(response, part=None)
    assert encode_response_datagrams(response, 600, encoded) == encode_response_datagrams(
        response, 600
    )


def test_the_cache_is_bounded_and_forgets_departed_peers() -> None:
    cache = ListingCache(4)
    for i in range(10):
        info, data = cache.listing(_record(f"p{i}", 1000 + i), PeerMode.SEED)
        assert data == peer_info_xml(info).encode()
        assert len(cache) <= 4
    cache.forget("p9")
    assert len(cache) <= 3
    off = ListingCache(0)
    off.listing(_record("p", 1), PeerMode.LEECH)
    assert len(off) == 0


def test_a_departed_peer_leaves_the_cache() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x", PeerMode.SEED)
    q, _ = h.connected("q")
    h.join(q, "q", "x")
    assert len(h.tracker.listings) == 1
    assert h.disconnect(s, "A", "nil").status == 200
    assert len(h.tracker.listings) == 0
