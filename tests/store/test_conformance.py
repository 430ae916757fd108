"""The store contract (stunlike_tracker/store/contract.py), for every backend."""

from __future__ import annotations

from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    PeerAddress,
    PeerMode,
)
from stunlike_tracker.store.contract import TrackerStore
from stunlike_tracker.store.records import CachedResponse, Membership, OfferGrant, PeerRecord

ADDR = PeerAddress(AddrType.IPV4, "198.51.100.1", 4000, AddressType.REFLEXIVE, 1694498815)


def record(peer_id: str, deadline: float = 100.0, *swarms: str) -> PeerRecord:
    return PeerRecord(
        peer_id=peer_id,
        session_id=f"s-{peer_id}",
        reflexive=ADDR,
        connected_at=0.0,
        deadline=deadline,
        memberships=tuple(Membership(s, PeerMode.LEECH) for s in swarms),
    )


def offer(offer_id: str) -> IceOffer:
    return IceOffer(id=offer_id, ufrag="uf", pwd="pw" * 11)


def test_peer_put_get_replace_delete(store: TrackerStore) -> None:
    assert store.get_peer("a") is None
    store.put_peer(record("a"))
    assert store.get_peer("a") == record("a")
    store.put_peer(record("a", 200.0, "x"))
    got = store.get_peer("a")
    assert got is not None and got.deadline == 200.0 and got.swarm_ids == ("x",)
    assert store.peer_count() == 1
    store.delete_peer("a")
    assert store.get_peer("a") is None and store.peer_count() == 0
    store.delete_peer("a")  # idempotent


def test_expired_peers_follow_the_latest_deadline(store: TrackerStore) -> None:
    store.put_peer(record("a", 10.0))
    store.put_peer(record("b", 5.0))
    store.put_peer(record("c", 50.0))
    assert store.expired_peers(4.0, 10) == []
    assert store.expired_peers(10.0, 10) == ["b", "a"]
    assert store.expired_peers(10.0, 1) == ["b"]
    store.put_peer(record("a", 60.0))  # renewed
    assert store.expired_peers(10.0, 10) == ["b"]
    store.delete_peer("b")
    assert store.expired_peers(10.0, 10) == []
    assert store.expired_peers(100.0, 10) == ["c", "a"]


def test_renewals_do_not_grow_the_expiry_index_without_bound(store: TrackerStore) -> None:
    store.put_peer(record("a", 1.0))
    for i in range(5000):
        store.put_peer(record("a", 2.0 + i))
    assert store.expired_peers(5000.0, 10) == []
    assert store.expired_peers(5002.0, 10) == ["a"]


def test_members_modes_and_counts(store: TrackerStore) -> None:
    store.add_member("s", "a", PeerMode.LEECH)
    store.add_member("s", "a", PeerMode.LEECH)
    store.add_member("s", "b", PeerMode.SEED)
    assert store.member_count("s") == 2
    assert store.member_count("s", PeerMode.SEED) == 1
    store.add_member("s", "a", PeerMode.SEED)  # LEECH -> SEED moves sets
    assert store.member_count("s", PeerMode.LEECH) == 0
    assert sorted(store.sample_members("s", PeerMode.SEED, 10)) == ["a", "b"]
    store.remove_member("s", "a")
    store.remove_member("s", "a")
    assert store.sample_members("s", PeerMode.SEED, 10) == ["b"]
    assert store.sample_members("nope", PeerMode.SEED, 10) == []
    assert store.member_count("nope") == 0


def test_sample_is_distinct_bounded_and_random(store: TrackerStore) -> None:
    for i in range(200):
        store.add_member("s", f"p{i}", PeerMode.LEECH)
    seen: set[str] = set()
    for _ in range(50):
        got = store.sample_members("s", PeerMode.LEECH, 10)
        assert len(got) == 10 and len(set(got)) == 10
        seen.update(got)
    assert len(seen) > 150  # 500 draws over 200 members reach most of them
    assert store.sample_members("s", PeerMode.LEECH, 0) == []
    for i in range(0, 200, 2):
        store.remove_member("s", f"p{i}")
    rest = store.sample_members("s", PeerMode.LEECH, 1000)
    assert sorted(rest) == sorted(f"p{i}" for i in range(1, 200, 2))


def test_offers_fifo_capped_replaced_and_expiring(store: TrackerStore) -> None:
    for i in range(6):
        store.push_offer("a", offer(f"o{i}"), expires_at=100.0, cap=4)
    assert store.offer_count("a", 0.0) == 4
    assert store.take_offer("a", 0.0) == offer("o2")  # o0, o1 dropped by the cap
    store.push_offer("a", offer("o3"), expires_at=5.0, cap=4)  # replaces o3
    assert store.offer_count("a", 0.0) == 3
    assert store.take_offer("a", 0.0) == offer("o4")
    assert store.take_offer("a", 0.0) == offer("o5")
    assert store.take_offer("a", 6.0) is None  # o3 expired
    assert store.take_offer("a", 0.0) is None
    store.push_offer("b", offer("x"), 100.0, 4)
    store.clear_offers("b")
    assert store.take_offer("b", 0.0) is None


def test_an_offer_is_taken_once(store: TrackerStore) -> None:
    store.push_offer("a", offer("o"), 100.0, 4)
    takes = [store.take_offer("a", 1.0) for _ in range(3)]
    assert takes.count(offer("o")) == 1


def test_grants_are_single_use_and_expire(store: TrackerStore) -> None:
    grant = OfferGrant("b", "o1", "a")
    store.put_grant(grant, 50.0)
    assert store.take_grant("b", "o1", "mallory", 1.0) is None  # not hers ...
    assert store.take_grant("b", "o1", "a", 1.0) == grant  # ... and still there
    assert store.take_grant("b", "o1", "a", 1.0) is None
    store.put_grant(grant, 50.0)
    assert store.take_grant("b", "o1", "a", 51.0) is None


def test_tombstones_expire(store: TrackerStore) -> None:
    store.put_tombstone(record("a", 1.0, "s"), 90.0)
    got = store.get_tombstone("a", 10.0)
    assert got is not None and got.swarm_ids == ("s",)
    assert store.get_tombstone("a", 90.0) is None
    store.delete_tombstone("a")
    assert store.get_tombstone("a", 10.0) is None


def test_response_cache(store: TrackerStore) -> None:
    entry = CachedResponse("s1", b"d" * 32, (b"resp",))
    assert store.cache_get("a", "t", 0.0) is None
    store.cache_put("a", "t", entry, 60.0)
    assert store.cache_get("a", "t", 59.0) == entry
    assert store.cache_get("a", "u", 59.0) is None
    assert store.cache_get("a", "t", 60.0) is None
    pending = CachedResponse("s1", b"d" * 32, None)
    store.cache_put("a", "v", pending, 60.0)
    assert store.cache_get("a", "v", 1.0) == pending


def test_purge_forgets_expired_entries(store: TrackerStore) -> None:
    store.cache_put("a", "t", CachedResponse("s", b"", (b"x",)), 10.0)
    store.put_tombstone(record("a"), 10.0)
    store.put_grant(OfferGrant("a", "o", "b"), 10.0)
    store.push_offer("a", offer("o"), 10.0, 4)
    store.purge(11.0)
    assert store.cache_get("a", "t", 0.0) is None
    assert store.get_tombstone("a", 0.0) is None
    assert store.take_grant("a", "o", "b", 0.0) is None
    assert store.take_offer("a", 0.0) is None
