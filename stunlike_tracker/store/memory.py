"""The embedded in-memory store (PROTOCOL §9 default). Single-threaded use."""

from __future__ import annotations

import heapq
import random
from collections import deque

from stunlike_tracker.ppsp.messages import IceOffer, PeerMode
from stunlike_tracker.store.records import CachedResponse, OfferGrant, PeerRecord, StoredOffer


class _MemberSet:
    """A set with O(1) add/remove and O(k) random sampling (swap-remove)."""

    __slots__ = ("_index", "_items")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self._items)
            self._items.append(item)

    def discard(self, item: str) -> None:
        pos = self._index.pop(item, None)
        if pos is None:
            return
        last = self._items.pop()
        if pos < len(self._items):
            self._items[pos] = last
            self._index[last] = pos

    def sample(self, k: int, rng: random.Random) -> list[str]:
        n = len(self._items)
        if k >= n:
            items = list(self._items)
            rng.shuffle(items)
            return items
        items = self._items
        if 4 * k > n:
            # random.sample over a range object is O(k), not O(n).
            return [items[i] for i in rng.sample(range(n), k)]
        # Few out of many (a FIND's 11 of a swarm): draw indices until k
        # distinct ones came up -- about k draws, each one C call, where
        # random.sample spends ~7 us of Python per FIND. Every k-subset is
        # equally likely (to within n / 2**53), in a uniformly random order.
        draw = rng.random
        picked: dict[int, None] = {}
        while len(picked) < k:
            picked[int(draw() * n)] = None
        return [items[i] for i in picked]


# What one cached answer costs besides its key's and its datagrams' bytes:
# the key string, the entry tuple, the digest, the expiry, the dict slot
# and the FIFO slot (CPython 3.11, measured by tests/store/
# test_memory_cache_bound.py, which fails if this undercounts).
CACHE_ENTRY_OVERHEAD = 400
DEFAULT_CACHE_BYTES = 128 * 1024 * 1024

# One cached answer: (session_id, request digest, datagrams, expires_at).
# The datagrams are one bytes object when there is one (most answers), a
# tuple of them for a multi-part answer, None while an ATTACH is in flight.
_Datagrams = bytes | tuple[bytes, ...] | None
_Cached = tuple[str, bytes, _Datagrams, float]


def _cache_key(peer_id: str, transaction_id: str) -> str:
    """One string, not a tuple of two: ~100 bytes less per entry. XML text
    never holds NUL, so the key is unambiguous."""
    return f"{peer_id}\0{transaction_id}"


def _cached_size(key: str, datagrams: _Datagrams) -> int:
    if datagrams is None:
        return CACHE_ENTRY_OVERHEAD + len(key)
    if isinstance(datagrams, bytes):
        return CACHE_ENTRY_OVERHEAD + len(key) + len(datagrams)
    return CACHE_ENTRY_OVERHEAD + len(key) + sum(map(len, datagrams))


class MemoryStore:
    def __init__(
        self, rng: random.Random | None = None, *, max_cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - peer sampling, not secrets
        self._peers: dict[str, PeerRecord] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._swarms: dict[tuple[str, PeerMode], _MemberSet] = {}
        self._offers: dict[str, deque[StoredOffer]] = {}
        self._grants: dict[tuple[str, str], tuple[OfferGrant, float]] = {}
        self._tombstones: dict[str, tuple[PeerRecord, float]] = {}
        # Response cache (PROTOCOL §4): entries with their size, a FIFO of keys in
        # insertion order (the TTL is one value, so also expiry order) that
        # both expiry and the byte bound consume from the front.
        self._cache: dict[str, _Cached] = {}
        self._cache_fifo: deque[tuple[float, str]] = deque()
        self._cache_bytes = 0
        self._max_cache_bytes = max(0, max_cache_bytes)
        self.cache_evictions = 0
        # (expires_at, kind, key) for purge; stale entries are skipped.
        self._expiries: list[tuple[float, str, tuple[str, str]]] = []

    # --- registrations ---------------------------------------------------
    def get_peer(self, peer_id: str) -> PeerRecord | None:
        return self._peers.get(peer_id)

    def put_peer(self, record: PeerRecord) -> None:
        old = self._peers.get(record.peer_id)
        self._peers[record.peer_id] = record
        # One timer entry per peer, renewed lazily: a renewal (every request)
        # pushes nothing; the entry, when it comes due, is filed again at the
        # record's deadline (``expired_peers``). Only an earlier deadline than
        # the entry's needs one more. (Measured: a heap entry per renewal
        # kept ~2 entries of 64 bytes per registered peer.)
        if old is None or record.deadline < old.deadline:
            heapq.heappush(self._deadlines, (record.deadline, record.peer_id))
            if len(self._deadlines) > 2 * len(self._peers) + 64:
                # Entries of deleted peers and re-filed duplicates: rebuild.
                self._deadlines = [(r.deadline, p) for p, r in self._peers.items()]
                heapq.heapify(self._deadlines)

    def delete_peer(self, peer_id: str) -> None:
        self._peers.pop(peer_id, None)

    def expired_peers(self, now: float, limit: int) -> list[str]:
        found: dict[str, None] = {}  # ordered, O(1) membership
        refiled: set[str] = set()
        heap = self._deadlines
        while heap and heap[0][0] <= now and len(found) < limit:
            _, peer_id = heapq.heappop(heap)
            record = self._peers.get(peer_id)
            if record is None or peer_id in found or peer_id in refiled:
                continue  # deleted, or a duplicate entry
            if record.deadline <= now:
                found[peer_id] = None
            else:  # renewed since the entry was filed
                refiled.add(peer_id)
        for peer_id in refiled:
            heapq.heappush(heap, (self._peers[peer_id].deadline, peer_id))
        # Expired peers stay indexed until the caller deletes or renews them.
        for peer_id in found:
            heapq.heappush(heap, (self._peers[peer_id].deadline, peer_id))
        return list(found)

    def peer_count(self) -> int:
        return len(self._peers)

    # --- memberships -----------------------------------------------------
    def add_member(self, swarm_id: str, peer_id: str, mode: PeerMode) -> None:
        for other in PeerMode:
            if other is not mode:
                self._discard(swarm_id, other, peer_id)
        self._swarms.setdefault((swarm_id, mode), _MemberSet()).add(peer_id)

    def remove_member(self, swarm_id: str, peer_id: str) -> None:
        for mode in PeerMode:
            self._discard(swarm_id, mode, peer_id)

    def _discard(self, swarm_id: str, mode: PeerMode, peer_id: str) -> None:
        members = self._swarms.get((swarm_id, mode))
        if members is not None:
            members.discard(peer_id)
            if not members:
                del self._swarms[(swarm_id, mode)]

    def sample_members(self, swarm_id: str, mode: PeerMode, k: int) -> list[str]:
        members = self._swarms.get((swarm_id, mode))
        if members is None or k <= 0:
            return []
        return members.sample(k, self._rng)

    def member_count(self, swarm_id: str, mode: PeerMode | None = None) -> int:
        modes = list(PeerMode) if mode is None else [mode]
        return sum(len(self._swarms.get((swarm_id, m), ())) for m in modes)

    # --- ICE offers ------------------------------------------------------
    def push_offer(self, peer_id: str, offer: IceOffer, expires_at: float, cap: int) -> None:
        queue = self._offers.setdefault(peer_id, deque())
        for stored in list(queue):
            if stored.offer.id == offer.id:
                queue.remove(stored)
        queue.append(StoredOffer(offer, expires_at))
        while len(queue) > max(cap, 0):
            queue.popleft()
        if not queue:
            del self._offers[peer_id]
        else:
            heapq.heappush(self._expiries, (expires_at, "offer", (peer_id, offer.id)))

    def take_offer(self, peer_id: str, now: float) -> IceOffer | None:
        queue = self._offers.get(peer_id)
        while queue:
            stored = queue.popleft()
            if stored.expires_at > now:
                if not queue:
                    del self._offers[peer_id]
                return stored.offer
        self._offers.pop(peer_id, None)
        return None

    def offer_count(self, peer_id: str, now: float) -> int:
        return sum(1 for s in self._offers.get(peer_id, ()) if s.expires_at > now)

    def clear_offers(self, peer_id: str) -> None:
        self._offers.pop(peer_id, None)

    def put_grant(self, grant: OfferGrant, expires_at: float) -> None:
        key = (grant.owner, grant.offer_id)
        self._grants[key] = (grant, expires_at)
        heapq.heappush(self._expiries, (expires_at, "grant", key))

    def take_grant(
        self, owner: str, offer_id: str, requester: str, now: float
    ) -> OfferGrant | None:
        key = (owner, offer_id)
        entry = self._grants.get(key)
        if entry is None or entry[1] <= now or entry[0].requester != requester:
            return None
        del self._grants[key]
        return entry[0]

    # --- ATTACH across nodes: one node, nothing crosses -----------------
    def put_indication(
        self, target_id: str, indication_id: str, origin_node: str, expires_at: float
    ) -> None:
        pass

    def take_indication(self, target_id: str, indication_id: str, now: float) -> str | None:
        return None

    # --- tombstones ------------------------------------------------------
    def put_tombstone(self, record: PeerRecord, expires_at: float) -> None:
        self._tombstones[record.peer_id] = (record, expires_at)
        heapq.heappush(self._expiries, (expires_at, "tomb", (record.peer_id, "")))

    def get_tombstone(self, peer_id: str, now: float) -> PeerRecord | None:
        entry = self._tombstones.get(peer_id)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def delete_tombstone(self, peer_id: str) -> None:
        self._tombstones.pop(peer_id, None)

    # --- response cache --------------------------------------------------
    def cache_get(self, peer_id: str, transaction_id: str, now: float) -> CachedResponse | None:
        entry = self._cache.get(_cache_key(peer_id, transaction_id))
        if entry is None or entry[3] <= now:
            return None
        session_id, digest, datagrams, _ = entry
        if isinstance(datagrams, bytes):
            datagrams = (datagrams,)
        return CachedResponse(session_id, digest, datagrams)

    def cache_put(
        self, peer_id: str, transaction_id: str, entry: CachedResponse, expires_at: float
    ) -> None:
        key = _cache_key(peer_id, transaction_id)
        given = entry.datagrams
        datagrams: _Datagrams = given[0] if given is not None and len(given) == 1 else given
        cache = self._cache
        old = cache.get(key)
        if old is not None:
            self._cache_bytes -= _cached_size(key, old[2])
        else:
            self._cache_fifo.append((expires_at, key))
        cache[key] = (entry.session_id, entry.request_digest, datagrams, expires_at)
        self._cache_bytes += _cached_size(key, datagrams)
        fifo = self._cache_fifo
        while self._cache_bytes > self._max_cache_bytes and fifo:
            # The oldest answers go first; a retransmission of one is then
            # executed again (the price of a bound under sustained load).
            _, oldest = fifo.popleft()
            gone = cache.pop(oldest, None)
            if gone is not None:
                self._cache_bytes -= _cached_size(oldest, gone[2])
                self.cache_evictions += 1

    def cache_bytes(self) -> int:
        """Bytes the cached answers count for (at most the configured bound)."""
        return self._cache_bytes

    # --- housekeeping ----------------------------------------------------
    def purge(self, now: float) -> None:
        fifo = self._cache_fifo
        while fifo and fifo[0][0] <= now:
            _, cache_key = fifo.popleft()
            entry = self._cache.get(cache_key)
            if entry is None:
                continue
            if entry[3] <= now:
                del self._cache[cache_key]
                self._cache_bytes -= _cached_size(cache_key, entry[2])
            else:  # stored again since with a later expiry: keep it queued
                fifo.append((entry[3], cache_key))
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _expires_at, kind, key = heapq.heappop(heap)
            if kind == "grant":
                grant = self._grants.get(key)
                if grant is not None and grant[1] <= now:
                    del self._grants[key]
            elif kind == "offer":
                queue = self._offers.get(key[0])
                if queue is not None:
                    for stored in [x for x in queue if x.expires_at <= now]:
                        queue.remove(stored)  # at most ``cap`` entries
                    if not queue:
                        del self._offers[key[0]]
            else:
                tomb = self._tombstones.get(key[0])
                if tomb is not None and tomb[1] <= now:
                    del self._tombstones[key[0]]

    # --- introspection (status page, metrics; O(peers) / O(swarms)) -------
    def peers(self) -> list[PeerRecord]:
        return list(self._peers.values())

    def swarm_count(self) -> int:
        return len({swarm_id for swarm_id, _mode in self._swarms})

    def sizes(self) -> dict[str, int]:
        """Entry counts, for metrics and leak tests."""
        return {
            "peers": len(self._peers),
            "swarm_sets": len(self._swarms),
            "offer_queues": len(self._offers),
            "grants": len(self._grants),
            "tombstones": len(self._tombstones),
            "cache": len(self._cache),
            "cache_fifo": len(self._cache_fifo),
            "deadline_index": len(self._deadlines),
            "expiry_index": len(self._expiries),
        }
