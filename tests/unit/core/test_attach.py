"""ICE offers in JOIN/FIND and ATTACH introductions (PROTOCOL §6)."""

from __future__ import annotations

from dataclasses import replace

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Effect, Session, Transmit
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Method,
    PeerAddress,
    PeerMode,
    Request,
)
from tests.unit.core.harness import Harness, candidate, make_offer


def seeded(h: Harness, offers: int = 2) -> tuple[Session, Session]:
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    for i in range(1, offers):
        h.stat(b, "B", ice_offer=make_offer(f"b{i}"))
    a, _ = h.connected("A")
    return a, b


def attach(
    h: Harness,
    a: Session,
    offer_id: str | None,
    txid: str = "ta",
    target: str = "B",
    swarm: str = "x",
) -> list[Effect]:
    req = Request(
        Method.ATTACH,
        "A",
        txid,
        swarm_id=swarm,
        target_peer_id=target,
        offer_id=offer_id,
        ice_offer=make_offer("a0", "203.0.113.1", 6000),
    )
    return h.raw(a, encode_request(req))


def test_each_offer_goes_to_exactly_one_requester() -> None:
    h = Harness()
    a, _b = seeded(h, offers=2)
    r1 = h.join(a, "A", "x")
    c, _ = h.connected("C")
    r2 = h.join(c, "C", "x", PeerMode.LEECH)
    d, _ = h.connected("D")
    r3 = h.join(d, "D", "x")
    offers = [p.offer.id for r in (r1, r2, r3) for p in r.peers if p.peer_id == "B" and p.offer]
    assert sorted(offers) == ["b0", "b1"]  # the third requester gets the address only
    (b_info,) = [p for p in r3.peers if p.peer_id == "B"]
    assert b_info.offer is None and b_info.addresses


def test_offer_passes_through_unchanged() -> None:
    h = Harness()
    a, _ = seeded(h, offers=1)
    (info,) = h.join(a, "A", "x").peers
    assert info.offer == make_offer("b0")


def test_attach_is_delivered_acknowledged_and_answered() -> None:
    h = Harness()
    a, b = seeded(h)
    h.join(a, "A", "x")
    effects = attach(h, a, "b0")
    (ind,) = Harness.indications_in(effects, b)
    assert ind.swarm_id == "x" and ind.offer_id == "b0"
    assert ind.peer.peer_id == "A" and ind.peer.offer is not None
    assert ind.peer.offer.id == "a0" and ind.peer.addresses[0].type is not None
    assert not [e for e in effects if isinstance(e, Transmit) and e.session_id == a.session_id]
    # A retransmits while B has not acknowledged: absorbed
    assert attach(h, a, "b0") == []
    ack = h.send(b, Request(Method.ATTACH_ACK, "B", "tb", indication_id=ind.transaction_id))
    assert ack.status == 200
    # A got its 200 in the ACK's effects; a retransmission now replays it
    replay = Harness.response_in(attach(h, a, "b0"), a)
    assert replay.status == 200 and replay.transaction_id == "ta"


def test_ack_effects_carry_the_requesters_answer() -> None:
    h = Harness()
    a, b = seeded(h)
    h.join(a, "A", "x")
    (ind,) = Harness.indications_in(attach(h, a, "b0"), b)
    effects = h.raw(
        b, encode_request(Request(Method.ATTACH_ACK, "B", "tb", indication_id=ind.transaction_id))
    )
    assert Harness.response_in(effects, a).status == 200
    assert Harness.response_in(effects, b).status == 200


def test_unacknowledged_indication_is_resent_then_503() -> None:
    h = Harness()
    a, b = seeded(h)
    h.join(a, "A", "x")
    start = h.now
    attach(h, a, "b0")
    resent_at = []
    t = start
    while t < start + 6:
        t = h.tracker.next_timer() or (t + 1)
        effects = h.tracker.on_timer(t)
        if Harness.indications_in(effects, b):
            resent_at.append(round(t - start, 3))
        if [e for e in effects if isinstance(e, Transmit) and e.session_id == a.session_id]:
            final = Harness.response_in(effects, a)
            break
    assert resent_at == [0.5, 1.5, 3.5]
    assert round(t - start, 3) == 5.0
    assert (final.status, final.transaction_id) == (503, "ta")
    assert h.tracker.next_timer() is None


def test_forged_or_foreign_offer_ids_are_404() -> None:
    h = Harness()
    a, b = seeded(h)
    h.join(a, "A", "x")
    r = Harness.response_in(attach(h, a, "forged", "att1"), a)
    assert (r.status, r.reason) == (404, "Offer Not Found")
    c, _ = h.connected("C")
    h.join(c, "C", "x")  # takes b1
    r = Harness.response_in(attach(h, a, "b1", "att2"), a)
    assert r.status == 404  # handed to C, not to A
    # ... and A's failed attempt did not burn C's grant
    answer = Request(
        Method.ATTACH,
        "C",
        "tc1",
        swarm_id="x",
        target_peer_id="B",
        offer_id="b1",
        ice_offer=make_offer("c0"),
    )
    (ind,) = Harness.indications_in(h.raw(c, encode_request(answer)), b)
    assert ind.offer_id == "b1" and ind.peer.peer_id == "C"


def test_an_offer_id_is_answered_once() -> None:
    h = Harness()
    a, b = seeded(h)
    h.join(a, "A", "x")
    (ind,) = Harness.indications_in(attach(h, a, "b0", "att1"), b)
    h.send(b, Request(Method.ATTACH_ACK, "B", "tb", indication_id=ind.transaction_id))
    r = Harness.response_in(attach(h, a, "b0", "att2"), a)
    assert r.status == 404


def test_attach_without_offer_reaches_target_for_the_reverse_path() -> None:
    h = Harness()
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)  # no offers published
    a, _ = h.connected("A")
    (info,) = h.join(a, "A", "x").peers
    assert info.offer is None
    (ind,) = Harness.indications_in(attach(h, a, None), b)
    assert ind.offer_id is None and ind.peer.offer is not None


def test_attach_to_self_other_swarm_or_gone_peer() -> None:
    h = Harness()
    a, _b = seeded(h)
    h.join(a, "A", "x")
    r = Harness.response_in(attach(h, a, None, "att1", target="A"), a)
    assert (r.status, r.reason) == (403, "Cannot Attach To Self")
    c, _ = h.connected("C")
    h.join(c, "C", "y")
    r = Harness.response_in(attach(h, a, None, "att2", target="C"), a)
    assert (r.status, r.reason) == (404, "Target Not Found")
    r = Harness.response_in(attach(h, a, None, "att3", target="nobody"), a)
    assert r.status == 404
    r = Harness.response_in(attach(h, a, None, "att4", swarm="y"), a)
    assert (r.status, r.reason) == (403, "Not Joined")


def test_target_expiring_while_pending_answers_404() -> None:
    h = Harness()
    a, _b = seeded(h)
    h.join(a, "A", "x")
    attach(h, a, "b0")
    record = h.store.get_peer("B")
    assert record is not None
    h.store.put_peer(replace(record, deadline=h.now + 0.1))
    effects = h.tracker.on_timer(h.now + 0.2)
    r = Harness.response_in(effects, a)
    assert (r.status, r.reason) == (404, "Target Gone")
    assert len(h.tracker.attaches) == 0


def test_candidate_flood_and_loopback_candidates_are_cut() -> None:
    h = Harness()
    b, _ = h.connected("B")
    flood = IceOffer(
        id="big",
        ufrag="u",
        pwd="p" * 22,
        candidates=(
            *tuple(candidate("203.0.113.1", 1000 + i) for i in range(12)),
            candidate("127.0.0.1", 9),
            candidate("224.0.0.1", 9),
        ),
    )
    assert h.join(b, "B", "x", PeerMode.SEED, ice_offer=flood).status == 200
    a, _ = h.connected("A")
    (info,) = h.join(a, "A", "x").peers
    # at most 8 (PROTOCOL §8), and only as many as let the PeerInfo fit a datagram
    assert info.offer is not None and 1 <= len(info.offer.candidates) <= 8
    assert all(c.ip == "203.0.113.1" for c in info.offer.candidates)


def test_every_datagram_fits_the_budget_with_large_offers_and_long_ids() -> None:
    h = Harness()
    long_id = "p" * 64
    b, _ = h.connected(long_id)
    big = IceOffer(
        id="o" * 64,
        ufrag="u" * 64,
        pwd="w" * 64,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=tuple(
            PeerAddress(
                AddrType.IPV6,
                f"2001:db8:1234:5678:9abc:def0:1234:{i:x}",
                65000 + i,
                AddressType.HOST,
                2130706431 - i,
                "f" * 32,
            )
            for i in range(8)
        ),
    )
    assert h.join(b, long_id, "s" * 64, PeerMode.SEED, ice_offer=big).status == 200
    a, _ = h.connected("q" * 64)
    effects = h.raw(a, encode_request(Request(Method.JOIN, "q" * 64, "t" * 64, swarm_id="s" * 64)))
    datagrams = [d for e in effects if isinstance(e, Transmit) for d in e.datagrams]
    assert datagrams and all(len(d) <= 1200 for d in datagrams)
    (info,) = Harness.response_in(effects, a).peers
    assert info.offer is not None and info.offer.candidates  # trimmed, not dropped
    # the indication carrying A's answer fits as well
    answer = Request(
        Method.ATTACH,
        "q" * 64,
        "t-attach",
        swarm_id="s" * 64,
        target_peer_id=long_id,
        offer_id=info.offer.id,
        ice_offer=replace(big, id="a" * 64, candidates=big.candidates[:3]),
    )
    effects = h.raw(a, encode_request(answer))
    assert all(len(d) <= 1200 for e in effects if isinstance(e, Transmit) for d in e.datagrams)
    assert Harness.indications_in(effects, b)


def test_one_introduction_at_a_time_per_requester_and_few_per_target() -> None:
    h = Harness(TrackerConfig(max_attaches_per_target=2))
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)
    sessions = {}
    for name in ("A", "C", "D"):
        sessions[name], _ = h.connected(name)
        h.join(sessions[name], name, "x")
    assert attach(h, sessions["A"], None, "a1")  # in flight
    r = Harness.response_in(attach(h, sessions["A"], None, "a2"), sessions["A"])
    assert (r.status, r.reason) == (503, "Target Busy")
    req = Request(
        Method.ATTACH, "C", "c1", swarm_id="x", target_peer_id="B", ice_offer=make_offer("c0")
    )
    assert Harness.indications_in(h.raw(sessions["C"], encode_request(req)), b)
    req = Request(
        Method.ATTACH, "D", "d1", swarm_id="x", target_peer_id="B", ice_offer=make_offer("d0")
    )
    r = Harness.response_in(h.raw(sessions["D"], encode_request(req)), sessions["D"])
    assert (r.status, r.reason) == (503, "Target Busy")


def test_target_leaving_ends_pending_introductions_with_404() -> None:
    for leave in ("x", "ALL", "nil"):
        h = Harness()
        a, b = seeded(h)
        h.join(a, "A", "x")
        attach(h, a, "b0")
        effects = h.raw(b, encode_request(Request(Method.DISCONNECT, "B", "tl", swarm_id=leave)))
        r = Harness.response_in(effects, a)
        assert (r.status, r.reason) == (404, "Target Gone"), leave
        assert len(h.tracker.attaches) == 0


def test_pending_introduction_follows_a_reconnecting_target() -> None:
    h = Harness()
    b, token = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED, ice_offer=make_offer("b0"))
    a, _ = h.connected("A")
    h.join(a, "A", "x")
    attach(h, a, "b0")
    b2 = h.session()
    effects = h.raw(b2, encode_request(Request(Method.CONNECT, "B", "tr", reconnect_token=token)))
    (ind,) = Harness.indications_in(effects, b2)  # resent at once on the new session
    h.send(b2, Request(Method.ATTACH_ACK, "B", "tack", indication_id=ind.transaction_id))
    assert Harness.response_in(attach(h, a, "b0"), a).status == 200


def test_offers_per_peer_are_bounded_and_dropped_on_reconnect() -> None:
    h = Harness()
    b, token = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)
    for i in range(10):
        h.stat(b, "B", ice_offer=make_offer(f"o{i}"))
    assert h.store.offer_count("B", h.now) == 4
    h.connect(h.session(), "B", token)
    assert h.store.offer_count("B", h.now) == 0


def test_ack_for_unknown_indication_is_404() -> None:
    h = Harness()
    b, _ = h.connected("B")
    r = h.send(b, Request(Method.ATTACH_ACK, "B", "t", indication_id="nope"))
    assert r.status == 404


def test_reverse_path_target_answers_the_requesters_offer() -> None:
    h = Harness()
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)  # no offers: A must send its own
    a, _ = h.connected("A")
    h.join(a, "A", "x")
    (ind,) = Harness.indications_in(attach(h, a, None, "rev1"), b)
    h.send(b, Request(Method.ATTACH_ACK, "B", "tb1", indication_id=ind.transaction_id))
    assert ind.peer.offer is not None and ind.peer.offer.id == "a0"
    # B answers A's offer with an ATTACH of its own, naming A's offer id
    answer = Request(
        Method.ATTACH,
        "B",
        "tb2",
        swarm_id="x",
        target_peer_id="A",
        offer_id="a0",
        ice_offer=make_offer("b-answer"),
    )
    (back,) = Harness.indications_in(h.raw(b, encode_request(answer)), a)
    assert back.offer_id == "a0" and back.peer.peer_id == "B"
    assert back.peer.offer is not None and back.peer.offer.id == "b-answer"
    # nobody else can answer A's offer
    c, _ = h.connected("C")
    h.join(c, "C", "x")
    forged = Request(
        Method.ATTACH,
        "C",
        "tc",
        swarm_id="x",
        target_peer_id="A",
        offer_id="a0",
        ice_offer=make_offer("c-answer"),
    )
    assert Harness.response_in(h.raw(c, encode_request(forged)), c).status == 404


def test_trimming_an_offer_keeps_one_candidate_of_each_type() -> None:
    """The relayed candidate has the lowest priority but is what the hardest
    NAT pairs need: trimming drops spare candidates of a type first."""
    h = Harness()
    b, _ = h.connected("B")

    def cand(ip: str, kind: AddressType, priority: int) -> PeerAddress:
        return PeerAddress(AddrType.IPV4, ip, 40000, kind, priority, "0123456789abcdef" * 2)

    offer = IceOffer(
        id="o1",
        ufrag="abcd",
        pwd="p" * 22,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=(
            cand("10.0.1.2", AddressType.HOST, 2130706431),
            cand("10.0.2.2", AddressType.HOST, 2130706175),
            cand("10.0.3.2", AddressType.HOST, 2130705919),
            cand("203.0.113.10", AddressType.REFLEXIVE, 1694498815),
            cand("203.0.113.3", AddressType.RELAYED, 16777215),
        ),
    )
    assert h.join(b, "B", "x", PeerMode.SEED, ice_offer=offer).status == 200
    a, _ = h.connected("A")
    (info,) = h.join(a, "A", "x").peers
    assert info.offer is not None and len(info.offer.candidates) < 5
    kinds = [c.type for c in info.offer.candidates]
    assert set(kinds) == {AddressType.HOST, AddressType.REFLEXIVE, AddressType.RELAYED}
    assert info.offer.candidates[0].ip == "10.0.1.2"  # the best host stays


def test_a_requester_that_reconnects_can_attach_again_at_once() -> None:
    h = Harness()
    b, _ = h.connected("B")
    h.join(b, "B", "x", PeerMode.SEED)
    a, token = h.connected("A")
    h.join(a, "A", "x")
    assert Harness.indications_in(attach(h, a, None), b)  # in flight; B does not ack
    a2 = h.session()
    assert h.send(a2, Request(Method.CONNECT, "A", "rc", reconnect_token=token)).status == 200
    again = Request(
        Method.ATTACH, "A", "retry", swarm_id="x", target_peer_id="B", ice_offer=make_offer("a1")
    )
    assert Harness.indications_in(h.raw(a2, encode_request(again)), b)  # not Target Busy
