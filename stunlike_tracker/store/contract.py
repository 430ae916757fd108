"""The store contract: everything the tracker core keeps (PROTOCOL §9).

Two levels, so that the core stays free of I/O and the embedded default
costs no round trip:

* ``TrackerStore``: the synchronous, item-level contract the core is written
  against. The embedded ``MemoryStore`` implements it directly (the server
  calls the core with it, nothing awaited).
* ``SharedStore``: the asynchronous, operation-level contract of a network
  store (``RedisStore``), shared by many tracker nodes. The server awaits
  ``load`` (one round trip: everything one request may read, consume-once
  things already taken), runs the core synchronously on the returned
  ``Overlay`` (a ``TrackerStore`` over that data, recording writes), then
  awaits ``commit`` (one round trip: the writes, atomic per hash slot). See
  store/overlay.py and server/shared.py.

Every backend passes the conformance suites in tests/store/.

Rules every backend keeps:
* ``take_offer`` is atomic: one offer is handed to exactly one caller.
* ``sample_members`` costs O(k), never O(swarm size), and returns distinct
  members chosen at random.
* Expired things (offers, tombstones, cached responses, grants) are never
  returned once ``now`` has passed their expiry, whether or not ``purge``
  has run.
"""

from __future__ import annotations

from typing import Protocol

from stunlike_tracker.ppsp.messages import IceOffer, PeerMode
from stunlike_tracker.store.overlay import LoadPlan, Overlay
from stunlike_tracker.store.records import CachedResponse, OfferGrant, PeerRecord


class TrackerStore(Protocol):
    # --- registrations ---------------------------------------------------
    def get_peer(self, peer_id: str) -> PeerRecord | None: ...

    def put_peer(self, record: PeerRecord) -> None:
        """Insert or replace; also (re)indexes the record's deadline."""

    def delete_peer(self, peer_id: str) -> None: ...

    def expired_peers(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` peers whose deadline is ≤ now, earliest first."""

    def peer_count(self) -> int: ...

    # --- memberships -----------------------------------------------------
    def add_member(self, swarm_id: str, peer_id: str, mode: PeerMode) -> None:
        """Idempotent; a peer is in one mode set of a swarm at a time."""

    def remove_member(self, swarm_id: str, peer_id: str) -> None: ...

    def sample_members(self, swarm_id: str, mode: PeerMode, k: int) -> list[str]: ...

    def member_count(self, swarm_id: str, mode: PeerMode | None = None) -> int: ...

    # --- ICE offers (PROTOCOL §6) --------------------------------------------
    def push_offer(self, peer_id: str, offer: IceOffer, expires_at: float, cap: int) -> None:
        """Add an unused offer (replacing one with the same id); keep the
        newest ``cap``."""

    def take_offer(self, peer_id: str, now: float) -> IceOffer | None:
        """Remove and return the oldest unexpired offer."""

    def offer_count(self, peer_id: str, now: float) -> int: ...

    def clear_offers(self, peer_id: str) -> None: ...

    def put_grant(self, grant: OfferGrant, expires_at: float) -> None: ...

    def take_grant(
        self, owner: str, offer_id: str, requester: str, now: float
    ) -> OfferGrant | None:
        """Remove and return the grant if it was made to ``requester`` (an
        offer id is answered once, and only by the peer it was handed to:
        anyone else's attempt leaves it in place)."""

    # --- ATTACH across nodes (PROTOCOL §9) -----------------------------------
    def put_indication(
        self, target_id: str, indication_id: str, origin_node: str, expires_at: float
    ) -> None:
        """An ATTACH toward ``target_id`` was taken on ``origin_node``: its
        ATTACH_ACK, arriving at the target's node, is relayed there."""

    def take_indication(self, target_id: str, indication_id: str, now: float) -> str | None:
        """The origin node of an indication sent to ``target_id`` (once)."""

    # --- tombstones (PROTOCOL §3) --------------------------------------------
    def put_tombstone(self, record: PeerRecord, expires_at: float) -> None: ...

    def get_tombstone(self, peer_id: str, now: float) -> PeerRecord | None: ...

    def delete_tombstone(self, peer_id: str) -> None: ...

    # --- response cache (PROTOCOL §4) ----------------------------------------
    def cache_get(self, peer_id: str, transaction_id: str, now: float) -> CachedResponse | None: ...

    def cache_put(
        self, peer_id: str, transaction_id: str, entry: CachedResponse, expires_at: float
    ) -> None: ...

    # --- housekeeping ----------------------------------------------------
    def purge(self, now: float) -> None:
        """Drop expired offers, grants, tombstones and cache entries."""


class SharedStore(Protocol):
    """A store many tracker nodes share (PROTOCOL §9); see the module docstring."""

    async def load(self, plan: LoadPlan, now: float) -> Overlay:
        """Step 1: read what the request may need; take consume-once items."""

    async def commit(self, overlay: Overlay) -> bool:
        """Step 2: apply the overlay's writes; False when the requester's
        record changed since ``load`` (nothing of it applied: run again)."""

    async def sweep(self, now: float, limit: int = 200, lease: float = 10.0) -> list[PeerRecord]:
        """Expire due peers; each is expired by exactly one node, also when
        the node that renewed it is dead. Returns this node's share."""

    async def close(self) -> None: ...
