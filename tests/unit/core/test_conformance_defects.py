"""Issue 11, items 8-14: conformance defects against docs/PROTOCOL.md, found from
outside. Each test failed on main before the fix it names."""

from __future__ import annotations

from dataclasses import replace

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import PeerExpired, Transmit
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    Method,
    NatAbility,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    SegmentInfo,
)
from tests.unit.core.harness import Harness, candidate, make_offer


# --- item 8: DISCONNECT ALL in REGISTERED keeps the init timer running --------
def test_disconnect_all_in_registered_does_not_renew_the_init_timer() -> None:
    h = Harness()
    s, _ = h.connected("A")  # init timer: 30 s from now
    h.now += 20
    assert h.disconnect(s, "A", "ALL").status == 200
    h.now += 11  # 31 s after CONNECT, 11 s after the DISCONNECT
    effects = h.tracker.on_timer(h.now)
    assert any(isinstance(e, PeerExpired) and e.peer_id == "A" for e in effects)
    assert h.store.get_peer("A") is None


def test_leaving_the_last_swarm_starts_the_init_timer() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x")
    h.now += 60
    assert h.disconnect(s, "A", "x").status == 200  # TRACKING -> REGISTERED
    h.now += 29
    assert not h.tracker.on_timer(h.now)
    assert h.store.get_peer("A") is not None
    h.now += 2
    assert h.tracker.on_timer(h.now)
    assert h.store.get_peer("A") is None


# --- item 9: only the tracker asserts REFLEXIVE --------------------------------
def _listed(h: Harness, peer_id: str) -> list[PeerAddress]:
    q, _ = h.connected("q" + peer_id)
    infos = [i for i in h.join(q, "q" + peer_id, "x").peers if i.peer_id == peer_id]
    (info,) = infos
    return list(info.addresses)


def test_self_asserted_reflexive_and_proxy_addresses_are_not_listed() -> None:
    h = Harness()
    s = h.session("203.0.113.5", 41000)
    claimed = (
        candidate("192.0.2.50", 6000, AddressType.REFLEXIVE),
        candidate("192.0.2.51", 6001, AddressType.PROXY),
        candidate("192.0.2.52", 6002, AddressType.HOST),
        candidate("192.0.2.53", 6003, AddressType.RELAYED),
    )
    assert h.connect(s, "A", addresses=claimed).status == 200
    h.join(s, "A", "x", PeerMode.SEED)
    listed = _listed(h, "A")
    reflexive = [a for a in listed if a.type is AddressType.REFLEXIVE]
    assert [(a.ip, a.port) for a in reflexive] == [("203.0.113.5", 41000)]
    assert [(a.type, a.ip) for a in listed if a.type is not AddressType.REFLEXIVE] == [
        (AddressType.HOST, "192.0.2.52"),
        (AddressType.RELAYED, "192.0.2.53"),
    ]


def test_self_asserted_addresses_are_validated() -> None:
    tracker_at = "192.0.2.1:3478"
    h = Harness(TrackerConfig(tracker_addresses=frozenset({tracker_at})))
    s = h.session("203.0.113.5", 41000)
    claimed = (
        candidate("224.0.0.1", 6000),  # multicast
        candidate("0.0.0.0", 6001),  # unspecified
        candidate("192.0.2.1", 3478),  # the tracker itself
        candidate("192.0.2.1", 9999),  # the tracker's host (outside LAN mode)
        candidate("10.0.0.7", 6002),  # private: LAN mode only
        candidate("192.168.1.7", 6003),
        candidate("127.0.0.1", 6004),  # loopback: LAN mode only
        candidate("198.51.100.20", 6005),  # the only acceptable one
    )
    h.connect(s, "A", addresses=claimed)
    record = h.store.get_peer("A")
    assert record is not None
    assert [a.ip for a in record.host_addresses] == ["198.51.100.20"]

    lan = Harness(TrackerConfig(lan_mode=True, tracker_addresses=frozenset({tracker_at})))
    s = lan.session("203.0.113.5", 41000)
    lan.connect(s, "A", addresses=claimed)
    record = lan.store.get_peer("A")
    assert record is not None
    assert [(a.ip, a.port) for a in record.host_addresses] == [
        ("192.0.2.1", 9999),
        ("10.0.0.7", 6002),
        ("192.168.1.7", 6003),
        ("127.0.0.1", 6004),
    ]


def test_offer_candidates_naming_the_tracker_are_dropped() -> None:
    h = Harness(TrackerConfig(tracker_addresses=frozenset({"192.0.2.1:3478"})))
    s, _ = h.connected("A")
    offer = make_offer("o1", ip="192.0.2.1", port=3478)
    offer = replace(offer, candidates=(*offer.candidates, candidate("198.51.100.9", 7000)))
    h.join(s, "A", "x", PeerMode.SEED, ice_offer=offer)
    q, _ = h.connected("q")
    (info,) = h.join(q, "q", "x").peers
    assert info.offer is not None
    assert [c.ip for c in info.offer.candidates] == ["198.51.100.9"]


# --- item 10: the NAT class also derives TURN and PROXY ------------------------
def _find_nat(h: Harness, ability: NatAbility, want: int = 1) -> list[str]:
    q, _ = h.connected("q" + ability.value)
    h.join(q, "q" + ability.value, "x", PeerMode.SEED)
    r = h.find(q, "q" + ability.value, "x", peer_num=PeerNum(want, ability_nat=ability))
    return [i.peer_id or "" for i in r.peers]


def test_peers_with_relayed_candidates_match_turn_and_proxy_peers_match_proxy() -> None:
    h = Harness()
    for n in range(8):
        s, _ = h.connected(f"stun{n}")
        h.join(s, f"stun{n}", "x", PeerMode.SEED)
    s = h.session("203.0.113.70", 5000)
    h.connect(s, "relayed", addresses=(candidate("198.51.100.70", 6000, AddressType.RELAYED),))
    h.join(s, "relayed", "x", PeerMode.SEED)
    s = h.session("203.0.113.71", 5000)
    h.connect(s, "proxied", addresses=(candidate("198.51.100.71", 6000, AddressType.PROXY),))
    h.join(s, "proxied", "x", PeerMode.SEED)
    for peer_id, ability in (("relayed", NatAbility.TURN), ("proxied", NatAbility.PROXY)):
        record = h.store.get_peer(peer_id)
        assert record is not None and record.nat_ability is ability
    assert _find_nat(h, NatAbility.TURN) == ["relayed"]
    assert _find_nat(h, NatAbility.PROXY) == ["proxied"]


def test_an_offer_with_a_relayed_candidate_makes_the_peer_turn() -> None:
    h = Harness()
    s, _ = h.connected("A")
    relay = candidate("198.51.100.80", 6000, AddressType.RELAYED)
    offer = replace(make_offer("o1"), candidates=(relay,))
    h.join(s, "A", "x", PeerMode.SEED, ice_offer=offer)
    record = h.store.get_peer("A")
    assert record is not None and record.nat_ability is NatAbility.TURN


# --- item 11: expiry is checked at request time --------------------------------
def test_a_request_after_the_deadline_is_not_served_before_the_tick() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x")
    h.now += 90.5  # past the track timer; no on_timer has run
    effects = h.raw(s, _encode(Request(Method.FIND, "A", h.txid(), swarm_id="x")))
    response = h.response_in(effects, s)
    assert (response.status, response.reason) == (403, "Not Connected")
    assert any(isinstance(e, PeerExpired) and e.peer_id == "A" for e in effects)
    assert h.store.get_peer("A") is None
    assert h.store.member_count("x") == 0
    # ... and its tombstone lets it re-CONNECT with its swarms (PROTOCOL §3).
    assert h.store.get_tombstone("A", h.now) is not None


def test_an_expired_peer_is_never_listed_before_the_tick() -> None:
    h = Harness(TrackerConfig(track_timeout=90.0))
    s, _ = h.connected("B")
    h.join(s, "B", "x", PeerMode.SEED)
    h.now += 80
    q, _ = h.connected("q")
    h.join(q, "q", "x")  # sees B
    h.now += 11  # B's deadline passed; q's has not
    r = h.find(q, "q", "x")
    assert [i.peer_id for i in r.peers] == []


def test_attach_toward_an_expired_peer_is_dropped() -> None:
    h = Harness()
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)
    h.now += 60
    a, _ = h.connected("A")
    h.join(a, "A", "x")
    h.now += 31  # B expired (91 s), A is live
    request = Request(
        Method.ATTACH, "A", h.txid(), swarm_id="x", target_peer_id="B", ice_offer=make_offer("a1")
    )
    effects = h.raw(a, _encode(request))
    assert not [e for e in effects if isinstance(e, Transmit) and e.session_id == b.session_id]
    response = h.response_in(effects, a)
    assert (response.status, response.reason) == (404, "Target Not Found")


def test_pending_attach_toward_a_peer_that_expires_ends_404_not_resent() -> None:
    h = Harness(TrackerConfig(track_timeout=90.0))
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)
    h.now += 89.8
    a, _ = h.connected("A")
    h.join(a, "A", "x")
    request = Request(
        Method.ATTACH, "A", h.txid(), swarm_id="x", target_peer_id="B", ice_offer=make_offer("a1")
    )
    h.raw(a, _encode(request))  # the indication goes out; B never acknowledges
    h.now += 0.6  # B's deadline has passed and the first resend is due
    effects = h.tracker.on_timer(h.now)
    assert not [e for e in effects if isinstance(e, Transmit) and e.session_id == b.session_id]
    response = h.response_in(effects, a)
    assert (response.status, response.reason) == (404, "Target Gone")


# --- item 12: re-JOIN without PeerMode keeps the mode --------------------------
def test_rejoin_without_peer_mode_keeps_seed() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x", PeerMode.SEED)
    r = h.send(s, Request(Method.JOIN, "A", h.txid(), swarm_id="x"))  # no PeerMode
    assert r.status == 200
    record = h.store.get_peer("A")
    assert record is not None
    membership = record.membership("x")
    assert membership is not None and membership.mode is PeerMode.SEED
    assert h.store.member_count("x", PeerMode.SEED) == 1
    assert h.store.member_count("x", PeerMode.LEECH) == 0
    # A first JOIN without PeerMode is still LEECH.
    t, _ = h.connected("B")
    h.send(t, Request(Method.JOIN, "B", h.txid(), swarm_id="x"))
    assert h.store.member_count("x", PeerMode.LEECH) == 1


# --- item 13: every SegmentInfo of a FIND's chunk scope is used ----------------
def test_find_ranks_by_every_segment_of_the_chunk_scope() -> None:
    h = Harness()

    def reported(peer_id: str, *segments: SegmentInfo) -> None:
        s, _ = h.connected(peer_id)
        h.join(s, peer_id, "x")
        cmap = ContentMap("x", (Representation("r", segments),))
        assert h.stat(s, peer_id, stats=(cmap,)).status == 200

    # 8 chunks present from each start ("/w==" = 0xFF).
    reported("early", SegmentInfo(0, 7, 8, "/w=="))
    reported("late", SegmentInfo(100, 107, 8, "/w=="), SegmentInfo(200, 207, 8, "/w=="))
    q, _ = h.connected("q")
    h.join(q, "q", "x", PeerMode.SEED)
    # "early" has the first range only, "late" the second and the third.
    scope = (
        Representation("r", (SegmentInfo(0, 5), SegmentInfo(100, 105), SegmentInfo(200, 205))),
    )
    for _ in range(10):
        h.now += 0.1
        r = h.find(q, "q", "x", peer_num=PeerNum(1), content=scope)
        assert [i.peer_id for i in r.peers] == ["late"]


# --- item 14: offer candidates always carry type and priority ------------------
def test_offer_candidates_without_type_or_priority_get_both() -> None:
    h = Harness()
    s, _ = h.connected("A")
    bare = (
        PeerAddress(AddrType.IPV4, "198.51.100.9", 5000),
        PeerAddress(AddrType.IPV4, "198.51.100.10", 5001, AddressType.RELAYED),
        PeerAddress(AddrType.IPV4, "198.51.100.11", 5002, None, 12345),
    )
    offer = IceOffer("o1", "ufrag", "p" * 22, "sha-256 " + ":".join(["AB"] * 32), bare)
    h.join(s, "A", "x", PeerMode.SEED, ice_offer=offer)
    q, _ = h.connected("q")
    (info,) = h.join(q, "q", "x").peers
    assert info.offer is not None
    got = [(c.ip, c.type, c.priority) for c in info.offer.candidates]
    assert got == [
        ("198.51.100.9", AddressType.HOST, 2130706431),
        ("198.51.100.10", AddressType.RELAYED, 16777215),
        ("198.51.100.11", AddressType.HOST, 12345),
    ]


def _encode(request: Request) -> bytes:
    from stunlike_tracker.ppsp import encode_request

    return encode_request(request)
