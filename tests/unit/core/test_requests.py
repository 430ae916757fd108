"""Every request and transition of PROTOCOL §3, through the pure core."""

from __future__ import annotations

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import PeerExpired, RequestDropped, Transmit
from stunlike_tracker.core.states import PeerState, state_of
from stunlike_tracker.ppsp import encode_request, parse_response_untrusted
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    Method,
    NatAbility,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    SegmentInfo,
    StreamStatistics,
)
from tests.unit.core.harness import Harness, candidate


def test_connect_reports_reflexive_address_keepalive_and_token() -> None:
    h = Harness()
    s = h.session("203.0.113.5", 41000)
    r = h.connect(s, "A", addresses=(candidate("10.0.0.2", 5000),))
    assert r.status == 200
    assert r.keep_alive == 25
    assert r.reconnect_token
    (info,) = r.peers
    (addr,) = info.addresses
    assert (addr.ip, addr.port, addr.type) == ("203.0.113.5", 41000, AddressType.REFLEXIVE)
    assert addr.priority == 1694498815  # RFC 8445 srflx, local pref 65535, component 1
    assert state_of(h.store.get_peer("A")) is PeerState.REGISTERED


def test_connect_twice_on_one_session_is_403_already_connected() -> None:
    h = Harness()
    s, _ = h.connected("A")
    r = h.connect(s, "A")
    assert (r.status, r.reason) == (403, "Already Connected")


def test_no_nat_peer_is_recognised() -> None:
    h = Harness()
    s = h.session("203.0.113.5", 41000)
    h.connect(s, "A", addresses=(candidate("203.0.113.5", 41000),))
    record = h.store.get_peer("A")
    assert record is not None and record.nat_ability is NatAbility.NO_NAT


def test_loopback_and_unspecified_host_addresses_are_dropped_outside_lan_mode() -> None:
    h = Harness()
    s = h.session()
    h.connect(
        s,
        "A",
        addresses=(candidate("127.0.0.1", 1), candidate("0.0.0.0", 2), candidate("192.0.2.1", 3)),
    )
    record = h.store.get_peer("A")
    assert record is not None and [a.ip for a in record.host_addresses] == ["192.0.2.1"]
    lab = Harness(TrackerConfig(lan_mode=True))
    s = lab.session()
    lab.connect(s, "A", addresses=(candidate("127.0.0.1", 1),))
    record = lab.store.get_peer("A")
    assert record is not None and [a.ip for a in record.host_addresses] == ["127.0.0.1"]


def test_requests_before_connect_are_403_not_connected() -> None:
    h = Harness()
    s = h.session()
    for r in (
        h.join(s, "A", "S"),
        h.find(s, "A", "S"),
        h.stat(s, "A"),
        h.disconnect(s, "A", "ALL"),
    ):
        assert (r.status, r.reason) == (403, "Not Connected")


def test_join_leech_gets_peers_seed_gets_none_unless_peer_num() -> None:
    h = Harness()
    seeds = [h.connected(f"S{i}") for i in range(3)]
    for i, (s, _) in enumerate(seeds):
        r = h.join(s, f"S{i}", "swarm", PeerMode.SEED)
        assert r.status == 200 and r.swarm_ids == ("swarm",)
        assert r.peers == ()
    s, _ = h.connected("L")
    r = h.join(s, "L", "swarm")
    assert r.status == 200
    assert sorted(p.peer_id or "" for p in r.peers) == ["S0", "S1", "S2"]
    assert all(p.mode is PeerMode.SEED for p in r.peers)
    assert all(p.addresses[0].type is AddressType.REFLEXIVE for p in r.peers)
    s3, _ = h.connected("S3")
    r = h.join(s3, "S3", "swarm", PeerMode.SEED, peer_num=PeerNum(count=2))
    assert len(r.peers) == 2
    assert state_of(h.store.get_peer("L")) is PeerState.TRACKING


def test_join_again_updates_mode_without_error() -> None:
    h = Harness()
    s, _ = h.connected("A")
    assert h.join(s, "A", "x").status == 200
    assert h.join(s, "A", "x", PeerMode.SEED).status == 200
    record = h.store.get_peer("A")
    assert record is not None and len(record.memberships) == 1
    assert record.memberships[0].mode is PeerMode.SEED
    assert h.store.member_count("x", PeerMode.LEECH) == 0
    assert h.store.member_count("x", PeerMode.SEED) == 1


def test_find_needs_join_and_never_returns_the_requester() -> None:
    h = Harness()
    a, _ = h.connected("A")
    assert (h.find(a, "A", "x").status, h.find(a, "A", "x").reason) == (403, "Not Joined")
    h.join(a, "A", "x")
    r = h.find(a, "A", "x")
    assert r.status == 200 and r.peers == () and r.swarm_ids == ("x",)
    b, _ = h.connected("B")
    h.join(b, "B", "x")
    assert [p.peer_id for p in h.find(a, "A", "x").peers] == ["B"]
    # a peer in another swarm is never listed
    c, _ = h.connected("C")
    h.join(c, "C", "y")
    assert [p.peer_id for p in h.find(a, "A", "x").peers] == ["B"]


def test_peer_num_is_clamped_to_30() -> None:
    h = Harness()
    for i in range(40):
        s, _ = h.connected(f"P{i}")
        h.join(s, f"P{i}", "x", PeerMode.SEED)
    s, _ = h.connected("L")
    r = h.join(s, "L", "x", peer_num=PeerNum(count=500))
    assert len(r.peers) == 30
    r = h.find(s, "L", "x")
    assert len(r.peers) == 10  # default


def test_leech_prefers_seeds_and_repeated_finds_spread_load() -> None:
    h = Harness()
    for i in range(20):
        s, _ = h.connected(f"L{i}")
        h.join(s, f"L{i}", "x")
    for i in range(5):
        s, _ = h.connected(f"S{i}")
        h.join(s, f"S{i}", "x", PeerMode.SEED)
    s, _ = h.connected("Q")
    h.join(s, "Q", "x", peer_num=PeerNum(count=0))
    seen: set[str] = set()
    for _ in range(20):
        r = h.find(s, "Q", "x", peer_num=PeerNum(count=8))
        ids = [p.peer_id or "" for p in r.peers]
        assert len(ids) == 8 and "Q" not in ids
        assert sum(i.startswith("S") for i in ids) == 5
        seen.update(ids)
    assert len({i for i in seen if i.startswith("L")}) > 12


def test_find_prefers_peers_covering_the_chunk_range() -> None:
    h = Harness()
    early, _ = h.connected("early")
    h.join(early, "early", "x", content=(Representation("r", (SegmentInfo(start=0),)),))
    late, _ = h.connected("late")
    h.join(late, "late", "x", content=(Representation("r", (SegmentInfo(start=500),)),))
    mapped, _ = h.connected("mapped")
    h.join(mapped, "mapped", "x")
    # chunks 100..115 present: 16 bits set from startIndex 100
    cmap = ContentMap("x", (Representation("r", (SegmentInfo(100, 115, 16, "//8="),)),))
    assert h.stat(mapped, "mapped", stats=(cmap,)).status == 200
    q, _ = h.connected("q")
    h.join(q, "q", "x", peer_num=PeerNum(count=0))
    want = (Representation("r", (SegmentInfo(start=100, end=110),)),)
    for _ in range(10):
        r = h.find(q, "q", "x", peer_num=PeerNum(count=2), content=want)
        assert sorted(p.peer_id or "" for p in r.peers) == ["early", "mapped"]


def test_find_nat_preference() -> None:
    h = Harness()
    pub = h.session("203.0.113.50", 7000)
    h.connect(pub, "pub", addresses=(candidate("203.0.113.50", 7000),))
    h.join(pub, "pub", "x")
    for i in range(6):
        s, _ = h.connected(f"n{i}")
        h.join(s, f"n{i}", "x")
    q, _ = h.connected("q")
    h.join(q, "q", "x", peer_num=PeerNum(count=0))
    # The preference ranks a bounded random sample (O(returned peers)), so it
    # is best-effort: without it "pub" would come back 1 time in 7.
    hits = 0
    for _ in range(40):
        h.now += 0.1  # stay under the per-peer rate limit
        r = h.find(q, "q", "x", peer_num=PeerNum(count=1, ability_nat=NatAbility.NO_NAT))
        hits += [p.peer_id for p in r.peers] == ["pub"]
    assert hits >= 15  # expected ~22 of 40; without the preference ~6


def test_stat_report_is_403_when_registered_and_keeps_alive_when_tracking() -> None:
    h = Harness()
    s, _ = h.connected("A")
    r = h.stat(s, "A")
    assert (r.status, r.reason) == (403, "Not Tracking")
    h.join(s, "A", "x")
    h.now += 80
    assert h.stat(s, "A").status == 200  # keep-alive resets the track timer
    h.now += 80
    assert h.tracker.on_timer(h.now) == []
    assert h.store.get_peer("A") is not None
    stats = (StreamStatistics("x", 512, 768, 1024000), StreamStatistics("other", 1, 2, 3))
    assert h.stat(s, "A", stats=stats).status == 200
    record = h.store.get_peer("A")
    assert record is not None and record.stream_stats == (stats[0],)


def test_disconnect_swarm_all_and_nil() -> None:
    h = Harness()
    s, _ = h.connected("A")
    for sw in ("x", "y", "z"):
        h.join(s, "A", sw)
    assert (h.disconnect(s, "A", "w").status, h.disconnect(s, "A", "w").reason) == (
        403,
        "Not Joined",
    )
    assert h.disconnect(s, "A", "x").status == 200
    assert h.store.member_count("x") == 0
    record = h.store.get_peer("A")
    assert record is not None and record.swarm_ids == ("y", "z")
    assert h.disconnect(s, "A", "ALL").status == 200
    assert state_of(h.store.get_peer("A")) is PeerState.REGISTERED
    assert h.store.member_count("y") == h.store.member_count("z") == 0
    assert h.disconnect(s, "A", "ALL").status == 200  # nothing left: still fine
    h.join(s, "A", "q")
    assert h.disconnect(s, "A", "q").status == 200
    assert state_of(h.store.get_peer("A")) is PeerState.REGISTERED
    h.join(s, "A", "q")
    assert h.disconnect(s, "A", "nil").status == 200
    assert h.store.get_peer("A") is None
    assert h.store.member_count("q") == 0
    assert h.store.get_tombstone("A", h.now) is None
    # gone from the system: a fresh CONNECT is a new registration
    s2 = h.session()
    assert h.connect(s2, "A").status == 200


def test_init_timer_expires_a_registered_peer() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.now += 29
    assert h.tracker.on_timer(h.now) == []
    h.now += 2
    effects = h.tracker.on_timer(h.now)
    assert effects == [PeerExpired("A", s.session_id)]
    assert h.store.get_peer("A") is None


def test_track_timer_expiry_removes_from_every_swarm_and_reconnect_restores_all() -> None:
    h = Harness()
    s, token = h.connected("A")
    h.join(s, "A", "x", content=(Representation("r", (SegmentInfo(start=20),)),))
    h.join(s, "A", "y", PeerMode.SEED)
    h.now += 91
    assert PeerExpired("A", s.session_id) in h.tracker.on_timer(h.now)
    assert h.store.get_peer("A") is None
    assert h.store.member_count("x") == h.store.member_count("y") == 0
    # within one track timeout of the expiry, a re-CONNECT restores both
    h.now += 60
    s2 = h.session("203.0.113.99", 50000)
    r = h.connect(s2, "A", token)
    assert r.status == 200 and sorted(r.swarm_ids) == ["x", "y"]
    record = h.store.get_peer("A")
    assert record is not None
    assert {m.swarm_id: m.mode for m in record.memberships} == {
        "x": PeerMode.LEECH,
        "y": PeerMode.SEED,
    }
    x = record.membership("x")
    assert x is not None and x.content[0].segments[0].start == 20
    assert h.store.member_count("x", PeerMode.LEECH) == 1
    assert h.store.member_count("y", PeerMode.SEED) == 1
    assert record.reflexive.ip == "203.0.113.99"


def test_tombstone_window_ends_after_one_track_timeout() -> None:
    h = Harness()
    s, token = h.connected("A")
    h.join(s, "A", "x")
    h.now += 91
    h.tracker.on_timer(h.now)
    h.now += 91
    h.tracker.on_timer(h.now)
    r = h.connect(h.session(), "A", token)
    assert r.status == 200 and r.swarm_ids == ()


def test_reconnect_on_new_session_keeps_state_and_replaces_addresses() -> None:
    h = Harness()
    s, token = h.connected("A", ip="198.51.100.1", port=1111)
    h.join(s, "A", "x")
    h.join(s, "A", "y", PeerMode.SEED)
    s2 = h.session("198.51.100.1", 2222)
    r = h.connect(s2, "A", token)
    assert r.status == 200 and sorted(r.swarm_ids) == ["x", "y"]
    assert r.peers[0].addresses[0].port == 2222
    assert r.reconnect_token and r.reconnect_token != token
    # the old session no longer speaks for A
    old = h.find(s, "A", "x")
    assert (old.status, old.reason) == (401, "PeerID Not Owned")
    assert h.find(s2, "A", "x").status == 200
    # Tokens rotate; the one before the newest stays valid until the newest
    # is used (the answer carrying it may have been lost).
    newest = r.reconnect_token
    r2 = h.connect(h.session(), "A", token)  # the answer with `newest` was "lost"
    assert r2.status == 200 and r2.reconnect_token not in (token, newest)
    r3 = h.connect(h.session(), "A", r2.reconnect_token)  # the newest is used ...
    assert r3.status == 200
    assert h.connect(h.session(), "A", token).status == 401  # ... older ones retire
    assert h.connect(h.session(), "A", newest).status == 401
    assert h.connect(h.session(), "A", r2.reconnect_token).status == 200


def test_reconnect_without_or_with_wrong_token_is_401_and_changes_nothing() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x")
    thief = h.session("192.0.2.66", 6666)
    r = h.connect(thief, "A")
    assert (r.status, r.reason) == (401, "Reconnect Token Required")
    r = h.connect(thief, "A", "guess")
    assert (r.status, r.reason) == (401, "Bad Reconnect Token")
    record = h.store.get_peer("A")
    assert record is not None and record.session_id == s.session_id
    assert h.find(s, "A", "x").status == 200


def test_mutual_mode_binds_peer_id_to_certificate() -> None:
    h = Harness(TrackerConfig(identity_mode="mutual"))
    s = h.session(identity="A")
    r = h.connect(s, "A")
    assert r.status == 200 and r.reconnect_token is None
    assert h.connect(h.session(identity="A"), "B").status == 401
    h.join(s, "A", "x")
    # same certificate, new session: re-CONNECT without a token
    s2 = h.session(identity="A")
    r = h.connect(s2, "A")
    assert r.status == 200 and r.swarm_ids == ("x",)
    # another identity cannot take A over
    assert h.connect(h.session(identity="B"), "A").status == 401


def test_closed_tracker_rejects_unknown_swarms_with_404() -> None:
    h = Harness(TrackerConfig(allowed_swarms=frozenset({"ok"})))
    s, _ = h.connected("A")
    r = h.join(s, "A", "nope")
    assert (r.status, r.reason) == (404, "Unknown Swarm")
    assert h.join(s, "A", "ok").status == 200


def test_swarms_per_peer_cap() -> None:
    h = Harness(TrackerConfig(max_swarms_per_peer=2))
    s, _ = h.connected("A")
    assert h.join(s, "A", "a").status == 200
    assert h.join(s, "A", "b").status == 200
    r = h.join(s, "A", "c")
    assert (r.status, r.reason) == (403, "Too Many Swarms")
    assert h.join(s, "A", "a", PeerMode.SEED).status == 200  # updating is fine


def test_retransmission_replays_without_reexecuting() -> None:
    h = Harness()
    s = h.session()
    connect = encode_request(Request(Method.CONNECT, "A", "t-c"))
    first = h.raw(s, connect)
    again = h.raw(s, connect)
    assert first == again  # byte-identical cached answer, not 403 Already Connected
    join = encode_request(Request(Method.JOIN, "A", "t-j", swarm_id="x"))
    assert h.raw(s, join) == h.raw(s, join)
    leave = encode_request(Request(Method.DISCONNECT, "A", "t-d", swarm_id="x"))
    assert h.raw(s, leave) == h.raw(s, leave)  # at-most-once DISCONNECT
    nil = encode_request(Request(Method.DISCONNECT, "A", "t-n", swarm_id="nil"))
    first_nil = h.raw(s, nil)
    assert h.raw(s, nil) == first_nil
    assert parse_response_untrusted(first_nil[0].datagrams[0]).status == 200  # type: ignore[union-attr]


def test_same_transaction_id_other_bytes_is_400() -> None:
    h = Harness()
    s = h.session()
    h.raw(s, encode_request(Request(Method.CONNECT, "A", "t1")))
    r = h.send(s, Request(Method.JOIN, "A", "t1", swarm_id="x"))
    assert (r.status, r.reason) == (400, "TransactionID Reused")
    assert h.store.member_count("x") == 0


def test_cached_answers_are_bound_to_the_session() -> None:
    h = Harness()
    s, _ = h.connected("A")
    join = encode_request(Request(Method.JOIN, "A", "tj", swarm_id="x"))
    h.raw(s, join)
    other = h.session()
    r = Harness.response_in(h.raw(other, join), other)
    assert r.status == 401  # a replay from elsewhere learns nothing


def test_cache_expires_after_its_ttl() -> None:
    h = Harness()
    s, _ = h.connected("A")
    join = encode_request(Request(Method.JOIN, "A", "tj", swarm_id="x"))
    h.raw(s, join)
    h.now += 61
    h.tracker.on_timer(h.now)
    assert h.store.cache_get("A", "tj", h.now) is None


def test_malformed_datagrams_get_400_when_attributable_else_dropped() -> None:
    h = Harness()
    s = h.session()
    effects = h.raw(
        s,
        b"<PPSPTrackerProtocol version='1.0'><Request>NOPE</Request>"
        b"<PeerID>A</PeerID><TransactionID>t9</TransactionID></PPSPTrackerProtocol>",
    )
    (tx,) = effects
    assert isinstance(tx, Transmit)
    r = parse_response_untrusted(tx.datagrams[0])
    assert (r.status, r.transaction_id) == (400, "t9")
    (drop,) = h.raw(s, b"\x00garbage")
    assert isinstance(drop, RequestDropped)


def test_large_peer_lists_are_split_into_complete_parts() -> None:
    h = Harness()
    for i in range(30):
        s, _ = h.connected(f"peer-with-a-long-identifier-{i:03d}")
        h.join(s, f"peer-with-a-long-identifier-{i:03d}", "x", PeerMode.SEED)
    q, _ = h.connected("q")
    effects = h.raw(
        q, encode_request(Request(Method.JOIN, "q", "tq", swarm_id="x", peer_num=PeerNum(30)))
    )
    datagrams = [d for e in effects if isinstance(e, Transmit) for d in e.datagrams]
    assert len(datagrams) > 1
    assert all(len(d) <= 1200 for d in datagrams)
    parts = [parse_response_untrusted(d) for d in datagrams]
    assert all(p.part is not None and p.part.count == len(parts) for p in parts)
    assert sum(len(p.peers) for p in parts) == 30


def test_host_addresses_are_listed_after_the_reflexive_one() -> None:
    h = Harness()
    s = h.session("203.0.113.5", 41000)
    h.connect(s, "A", addresses=(PeerAddress(AddrType.IPV4, "192.0.2.2", 5000),))
    h.join(s, "A", "x", PeerMode.SEED)
    q, _ = h.connected("q")
    (info,) = h.join(q, "q", "x").peers
    assert [(a.type, a.ip) for a in info.addresses] == [
        (AddressType.REFLEXIVE, "203.0.113.5"),
        (AddressType.HOST, "192.0.2.2"),
    ]
    assert all(a.priority is not None for a in info.addresses)


def test_per_peer_rate_limit_answers_503_and_recovers() -> None:
    h = Harness(TrackerConfig(peer_rate=2.0, peer_burst=4.0))
    s, _ = h.connected("A")  # 1 token used
    h.join(s, "A", "x")  # 2
    statuses = [h.find(s, "A", "x").status for _ in range(4)]
    assert statuses == [200, 200, 503, 503]
    r = h.find(s, "A", "x")
    assert (r.status, r.reason) == (503, "Rate Limited")
    h.now += 1.0  # two tokens back
    assert h.find(s, "A", "x").status == 200
    # another peer is not affected
    t, _ = h.connected("B")
    assert h.join(t, "B", "x").status == 200
    h.now += 100
    h.tracker.on_timer(h.now)
    assert len(h.tracker.rate_limiter) == 0


def test_retransmissions_are_replayed_even_when_rate_limited() -> None:
    h = Harness(TrackerConfig(peer_rate=1.0, peer_burst=2.0))
    s = h.session()
    connect = encode_request(Request(Method.CONNECT, "A", "tc"))
    first = h.raw(s, connect)
    for _ in range(5):
        assert h.raw(s, connect) == first
