"""The memory store's response cache stays within its byte bound (issue 10):
under sustained load the oldest answers go first, the newest are replayed, and memory stays flat."""

from __future__ import annotations

import gc
import hashlib
import random
import tracemalloc

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Session
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Request,
)
from stunlike_tracker.store.memory import CACHE_ENTRY_OVERHEAD, MemoryStore
from stunlike_tracker.store.records import CachedResponse


def entry(n: int, size: int = 1000) -> CachedResponse:
    return CachedResponse("s1", b"d%d" % n, (b"x" * size,))


def test_bytes_stay_under_the_bound_and_the_oldest_go_first() -> None:
    bound = 50 * (1000 + CACHE_ENTRY_OVERHEAD + 20)
    store = MemoryStore(max_cache_bytes=bound)
    for n in range(10_000):  # sustained load, all within the TTL
        store.cache_put("peer", f"t{n:06d}", entry(n), expires_at=100.0)
        assert store.cache_bytes() <= bound
    assert store.cache_get("peer", "t009999", 1.0) == entry(9999)
    assert store.cache_get("peer", "t000000", 1.0) is None
    assert store.sizes()["cache"] <= 50
    assert store.sizes()["cache_fifo"] <= 50
    assert store.cache_evictions == 10_000 - store.sizes()["cache"]


def test_expiry_frees_bytes_and_queue() -> None:
    store = MemoryStore()
    for n in range(100):
        store.cache_put("peer", f"t{n}", entry(n), expires_at=10.0 + n)
    store.cache_put("peer", "t0", entry(0, 10), expires_at=500.0)  # stored again, later
    store.purge(200.0)
    assert store.sizes()["cache"] == 1 and store.sizes()["cache_fifo"] == 1
    assert store.cache_get("peer", "t0", 200.0) == entry(0, 10)
    store.purge(600.0)
    assert store.cache_bytes() == 0 and store.sizes()["cache_fifo"] == 0


def test_the_bound_is_a_config_field_with_a_default() -> None:
    config = TrackerConfig()
    assert config.response_cache_bytes >= 16 * 1024 * 1024
    doc = TrackerConfig.__dataclass_fields__["response_cache_bytes"].metadata["doc"]
    assert "bytes" in doc


def _drive(tracker: Tracker, sessions: list[Session], rounds: range) -> None:
    """Each peer sends a keep-alive STAT_REPORT every round (one second), and
    every fifth one a FIND of 10 peers (a 4-part answer)."""
    for second in rounds:
        now = 1000.0 + second
        for i, session in enumerate(sessions):
            method = Method.FIND if (i + second) % 5 == 0 else Method.STAT_REPORT
            request = Request(
                method,
                f"peer-{i:04d}",
                f"r{second}-{i}",
                swarm_id="swarm" if method is Method.FIND else None,
                peer_num=PeerNum(10) if method is Method.FIND else None,
            )
            tracker.handle_datagram(encode_request(request), session, now)
        tracker.on_timer(now)


def test_memory_stays_flat_under_sustained_load() -> None:
    """Issue 10: the tracker's memory is flat once the cache is at its bound.

    120 peers ask once a second for 150 s (18,000 requests, their answers all
    within the 60 s TTL, ~10 MB if they were all kept). Traced memory grows
    while the cache fills its 256 KiB, then must stay flat: the growth over
    the last 50 s is compared with what had been allocated by then, and the
    total with the bound (measured, counted in bytes, not time)."""
    bound = 256 * 1024
    config = TrackerConfig(peer_rate=0, max_peers_per_source=10**9, max_source_share=1.0)
    tracker = Tracker(MemoryStore(random.Random(1), max_cache_bytes=bound), config)
    sessions = [Session(f"s{i}", (f"198.51.{i >> 8}.{i & 255}", 4000 + i)) for i in range(120)]
    for i, session in enumerate(sessions):
        host = (PeerAddress(AddrType.IPV4, "10.0.0.1", 5000 + i, AddressType.HOST),)
        peer = f"peer-{i:04d}"
        connect = Request(Method.CONNECT, peer, f"c{i}", addresses=host)
        join = Request(Method.JOIN, peer, f"j{i}", swarm_id="swarm", peer_mode=PeerMode.SEED)
        tracker.handle_datagram(encode_request(connect), session, 1000.0)
        tracker.handle_datagram(encode_request(join), session, 1000.0)
    gc.collect()
    tracemalloc.start()
    try:
        _drive(tracker, sessions, range(1, 101))
        gc.collect()
        at_100s = tracemalloc.get_traced_memory()[0]
        _drive(tracker, sessions, range(101, 151))
        gc.collect()
        at_150s = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    store = tracker.store
    assert isinstance(store, MemoryStore)
    assert store.cache_evictions > 10_000  # the bound, not the TTL, held the cache
    assert store.cache_bytes() <= bound
    # Flat: the last 50 s added under 5% to what 100 s of load had allocated,
    # and all of it stays within twice the bound (the cache's real footprint
    # is what ``cache_bytes`` counts, the rest is the peers' renewed state).
    assert at_150s <= 1.05 * at_100s, (at_100s, at_150s)
    assert at_150s <= 2 * bound, at_150s


def test_the_counted_bytes_cover_what_an_entry_really_holds() -> None:
    """``CACHE_ENTRY_OVERHEAD`` does not undercount (tracemalloc, 5,000 entries
    the shape of a keep-alive answer), so the bound is a bound on memory."""
    store = MemoryStore(max_cache_bytes=10**9)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(5_000):
            tx = f"{n:024x}"
            digest = hashlib.sha256(tx.encode()).digest()
            store.cache_put(f"peer-{n:035d}", tx, CachedResponse(f"local:{n}", digest,
                            (bytes(300),)), expires_at=100.0 + n)  # fmt: skip
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= store.cache_bytes(), (held, store.cache_bytes())
    assert held >= 0.7 * store.cache_bytes(), "the count is far too high: lower the overhead"
