"""The memory store's response cache stays within its byte bound (issue 10):
under sustained load the oldest answers go first, the newest are replayed."""

from __future__ import annotations

from stunlike_tracker.core.config import TrackerConfig
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
