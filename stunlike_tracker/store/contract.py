"""The store contract: everything the tracker core keeps (SPEC §9).

Every backend implements this protocol and passes the conformance suite in
tests/store/. The contract is synchronous: the embedded backend is plain
memory; a network backend is driven from a worker thread by the server so
the event loop never blocks on it.

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

    # --- ICE offers (SPEC §6) --------------------------------------------
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

    # --- tombstones (SPEC §3) --------------------------------------------
    def put_tombstone(self, record: PeerRecord, expires_at: float) -> None: ...

    def get_tombstone(self, peer_id: str, now: float) -> PeerRecord | None: ...

    def delete_tombstone(self, peer_id: str) -> None: ...

    # --- response cache (SPEC §4) ----------------------------------------
    def cache_get(self, peer_id: str, transaction_id: str, now: float) -> CachedResponse | None: ...

    def cache_put(
        self, peer_id: str, transaction_id: str, entry: CachedResponse, expires_at: float
    ) -> None: ...

    # --- housekeeping ----------------------------------------------------
    def purge(self, now: float) -> None:
        """Drop expired offers, grants, tombstones and cache entries."""
