"""Sybil limits (issue 11 item 3, PROTOCOL §8): Peer-IDs per association and per
source address, and one source's share of a peer list."""

from __future__ import annotations

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.sybil import RegistrationIndex, spread_by_source
from stunlike_tracker.ppsp.messages import PeerMode, PeerNum
from tests.unit.core.harness import Harness


def test_one_association_registers_at_most_the_cap_of_peer_ids() -> None:
    h = Harness(TrackerConfig(max_peers_per_session=4))
    s = h.session("198.51.100.7", 40000)
    answers = [h.connect(s, f"sybil{n}") for n in range(10)]
    assert [r.status for r in answers] == [200] * 4 + [403] * 6
    assert {r.reason for r in answers[4:]} == {"Too Many PeerIDs On Association"}
    assert h.store.peer_count() == 4
    # Leaving the system frees a place; another association is not affected.
    assert h.disconnect(s, "sybil0", "nil").status == 200
    assert h.connect(s, "sybil9").status == 200
    t, _ = h.connected("honest")
    assert t.session_id != s.session_id


def test_one_source_address_registers_at_most_the_cap_of_peer_ids() -> None:
    h = Harness(TrackerConfig(max_peers_per_source=5))
    answers = [h.connect(h.session("198.51.100.7"), f"sybil{n}") for n in range(8)]
    assert [r.status for r in answers] == [200] * 5 + [403] * 3
    assert {r.reason for r in answers[5:]} == {"Too Many PeerIDs From Address"}
    # IPv6: one /64 is one source.
    v6 = [h.connect(h.session(f"2001:db8:0:1::{n + 1}"), f"v6-{n}") for n in range(7)]
    assert [r.status for r in v6] == [200] * 5 + [403] * 2
    # Another address is fine.
    assert h.connect(h.session("198.51.100.8"), "honest").status == 200


def test_expired_registrations_stop_counting() -> None:
    h = Harness(TrackerConfig(max_peers_per_session=2, init_timeout=30))
    s = h.session()
    assert h.connect(s, "a").status == 200
    assert h.connect(s, "b").status == 200
    assert h.connect(s, "c").status == 403
    h.now += 31  # a and b expired (no tick has run)
    assert h.connect(s, "c").status == 200


def test_a_reconnect_does_not_count_the_peer_twice() -> None:
    h = Harness(TrackerConfig(max_peers_per_source=1))
    s, token = h.connected("A", ip="198.51.100.7")
    t = h.session("198.51.100.7")
    assert h.connect(t, "A", token).status == 200  # re-CONNECT from a new socket
    assert h.connect(h.session("198.51.100.7"), "B").status == 403
    assert s.session_id != t.session_id


def test_find_gives_one_source_a_bounded_share_when_others_exist() -> None:
    h = Harness(TrackerConfig(max_peers_per_source=1000, max_source_share=0.3))
    for n in range(60):
        s = h.session("198.51.100.66")  # one attacker address, many sockets
        h.connect(s, f"sybil{n}")
        h.join(s, f"sybil{n}", "x", PeerMode.SEED)
    for n in range(6):
        s = h.session(f"203.0.113.{n + 1}")
        h.connect(s, f"honest{n}")
        h.join(s, f"honest{n}", "x", PeerMode.SEED)
    q, _ = h.connected("q", ip="192.0.2.99")
    h.join(q, "q", "x", PeerMode.SEED)
    for _ in range(20):
        h.now += 0.1
        r = h.find(q, "q", "x", peer_num=PeerNum(10))
        sybils = [i for i in r.peers if (i.peer_id or "").startswith("sybil")]
        assert len(sybils) <= 3
        assert len(r.peers) > len(sybils)


def test_find_lists_peers_of_one_source_freely_when_there_is_no_other() -> None:
    h = Harness()  # a LAN: every peer behind one address
    for n in range(12):
        s = h.session("192.0.2.1")
        h.connect(s, f"p{n}")
        h.join(s, f"p{n}", "x", PeerMode.SEED)
    q, _ = h.connected("q", ip="192.0.2.1")
    h.join(q, "q", "x", PeerMode.SEED)
    assert len(h.find(q, "q", "x", peer_num=PeerNum(10)).peers) == 10


def test_spread_by_source_keeps_order_and_holds_back_the_excess() -> None:
    items = ["a1", "a2", "b1", "a3", "c1", "a4"]
    taken, held = spread_by_source(items, lambda i: i[0], 5, 2)
    assert taken == ["a1", "a2", "b1", "c1"]
    assert held == ["a3", "a4"]


def test_a_count_below_the_cap_skips_the_stale_scan_without_changing_a_verdict() -> None:
    index = RegistrationIndex()
    for i in range(3):
        index.add(f"p{i}", "sess", "203.0.113.1", deadline=10.0)
    # Below the cap the figure may still include expired entries: never a refusal.
    assert index.from_source("203.0.113.1", "new", now=20.0, cap=5) < 5
    assert len(index) == 3
    # At the cap the expired entries are pruned and do not count.
    assert index.from_source("203.0.113.1", "new", now=20.0, cap=3) == 0
    assert index.on_session("sess", "new", now=20.0, cap=1) == 0
    assert len(index) == 0
