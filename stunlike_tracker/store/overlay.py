"""One request's view of a shared store: what was loaded, what was written.

A network store serves a PPSP request in two round trips (PROTOCOL §9):

1. ``load``: everything the core may read for this request, fetched at once
   (the requester's record and cached answer, a random sample of the swarm
   with the members' listing records, offers taken for them, a grant, ...);
2. the core runs, synchronously, against an ``Overlay`` holding that data:
   its reads are answered from memory and its writes are recorded;
3. ``commit``: the recorded writes, applied atomically per hash slot, the
   requester's record under a compare-and-set on what step 1 read.

The overlay is pure (no I/O); it implements the synchronous store contract
the core was written against, so the core does not know which store it
runs on. Things taken in step 1 and not used by the core (an offer for a
member the core did not list, a grant for an ATTACH it refused) are given
back in step 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stunlike_tracker.ppsp.messages import IceOffer, Method, PeerMode
from stunlike_tracker.store.records import CachedResponse, OfferGrant, PeerRecord


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What one request may read (built by the server from the parsed request)."""

    peer_id: str
    transaction_id: str
    method: Method
    swarm_id: str | None = None
    # JOIN/FIND: members to sample from each mode set of ``swarm_id``.
    sample: int = 0
    # Take the sampled members' offers now (only for a requester this node
    # saw CONNECT over the same session, so nobody drains offers by asking).
    take_offers: bool = False
    target_id: str | None = None
    offer_id: str | None = None
    indication_id: str | None = None


@dataclass(frozen=True, slots=True)
class TakenOffer:
    offer: IceOffer
    expires_at: float


@dataclass(frozen=True, slots=True)
class TakenGrant:
    grant: OfferGrant
    expires_at: float


def listing_record(record: PeerRecord, swarm_id: str) -> PeerRecord | None:
    """What other members of ``swarm_id`` need to know of a peer: how to list
    it and where its association lives; never its tokens."""
    membership = record.membership(swarm_id)
    if membership is None:
        return None
    return replace(
        record,
        token_hash=None,
        previous_token_hash=None,
        memberships=(membership,),
        stream_stats=(),
        content_maps=tuple(c for c in record.content_maps if c[0] == swarm_id),
    )


@dataclass(slots=True)
class Loaded:
    """Step 1's result."""

    record: PeerRecord | None = None
    # The record's stored text, for the compare-and-set (None: absent).
    record_text: str | None = None
    tombstone: PeerRecord | None = None
    cached: tuple[CachedResponse, float] | None = None
    samples: dict[PeerMode, list[str]] = field(default_factory=dict)
    # Listing records of sampled members and of an ATTACH's target.
    listed: dict[str, PeerRecord] = field(default_factory=dict)
    offers: dict[str, TakenOffer] = field(default_factory=dict)
    grant: TakenGrant | None = None
    # ATTACH_ACK for an ATTACH taken on another node: that node's id.
    indication_origin: str | None = None
    expired: tuple[PeerRecord, ...] = ()


@dataclass(slots=True)
class Writes:
    """Step 3's input, gathered while the core runs."""

    # The requester's record: (wrote it?, new value or None for deleted).
    record_written: bool = False
    record: PeerRecord | None = None
    delete_tombstone: bool = False
    clear_offers: bool = False
    cache: list[tuple[str, str, CachedResponse, float]] = field(default_factory=list)
    offers: list[tuple[IceOffer, float, int]] = field(default_factory=list)
    grants: list[tuple[OfferGrant, float]] = field(default_factory=list)
    # Taken in step 1, not used: give back.
    unused_offers: dict[str, TakenOffer] = field(default_factory=dict)
    unused_grant: TakenGrant | None = None
    indications: list[tuple[str, str, str, float]] = field(default_factory=list)
    indication_taken: str | None = None


class Overlay:
    """The synchronous store contract over one request's loaded data."""

    def __init__(self, plan: LoadPlan, loaded: Loaded, now: float) -> None:
        self.plan = plan
        self.loaded = loaded
        self.now = now
        self.writes = Writes()
        self._record = loaded.record
        self._offers = dict(loaded.offers)
        self._grant = loaded.grant
        self._indication = loaded.indication_origin
        self._expired = {r.peer_id: r for r in loaded.expired}

    def finish(self) -> Writes:
        """The writes to commit, with what was taken and not used."""
        w = self.writes
        w.unused_offers = dict(self._offers)
        w.unused_grant = self._grant
        return w

    @property
    def final_record(self) -> PeerRecord | None:
        return self._record

    # --- registrations ---------------------------------------------------
    def get_peer(self, peer_id: str) -> PeerRecord | None:
        if peer_id == self.plan.peer_id:
            return self._record
        expired = self._expired.get(peer_id)
        if expired is not None:
            return expired
        return self.loaded.listed.get(peer_id)

    def put_peer(self, record: PeerRecord) -> None:
        if record.peer_id != self.plan.peer_id:
            return  # only the requester's record is written by a request
        self._record = record
        self.writes.record_written = True
        self.writes.record = record

    def delete_peer(self, peer_id: str) -> None:
        if peer_id in self._expired:
            return  # the sweep removed it already
        if peer_id == self.plan.peer_id:
            self._record = None
            self.writes.record_written = True
            self.writes.record = None

    def expired_peers(self, now: float, limit: int) -> list[str]:
        return list(self._expired)[:limit]

    def peer_count(self) -> int:
        return 0  # not known to one request

    # --- memberships: derived from the requester's record at commit ------
    def add_member(self, swarm_id: str, peer_id: str, mode: PeerMode) -> None:
        pass

    def remove_member(self, swarm_id: str, peer_id: str) -> None:
        pass

    def sample_members(self, swarm_id: str, mode: PeerMode, k: int) -> list[str]:
        if swarm_id != self.plan.swarm_id or k <= 0:
            return []
        return self.loaded.samples.get(mode, [])[:k]

    def member_count(self, swarm_id: str, mode: PeerMode | None = None) -> int:
        return 0

    # --- ICE offers ------------------------------------------------------
    def push_offer(self, peer_id: str, offer: IceOffer, expires_at: float, cap: int) -> None:
        if peer_id == self.plan.peer_id:
            self.writes.offers.append((offer, expires_at, cap))

    def take_offer(self, peer_id: str, now: float) -> IceOffer | None:
        taken = self._offers.pop(peer_id, None)
        return taken.offer if taken is not None else None

    def offer_count(self, peer_id: str, now: float) -> int:
        return 0

    def clear_offers(self, peer_id: str) -> None:
        if peer_id == self.plan.peer_id:
            self.writes.clear_offers = True
            self.writes.offers.clear()

    def put_grant(self, grant: OfferGrant, expires_at: float) -> None:
        self.writes.grants.append((grant, expires_at))

    def take_grant(
        self, owner: str, offer_id: str, requester: str, now: float
    ) -> OfferGrant | None:
        taken = self._grant
        if taken is None:
            return None
        g = taken.grant
        if (g.owner, g.offer_id, g.requester) != (owner, offer_id, requester):
            return None
        if taken.expires_at <= now:
            self._grant = None  # expired: not given back either
            return None
        self._grant = None
        return g

    # --- ATTACH across nodes (PROTOCOL §9) -----------------------------------
    def put_indication(
        self, target_id: str, indication_id: str, origin_node: str, expires_at: float
    ) -> None:
        self.writes.indications.append((target_id, indication_id, origin_node, expires_at))

    def take_indication(self, target_id: str, indication_id: str, now: float) -> str | None:
        if target_id != self.plan.peer_id or indication_id != self.plan.indication_id:
            return None
        origin, self._indication = self._indication, None
        if origin is not None:
            self.writes.indication_taken = indication_id
        return origin

    # --- tombstones ------------------------------------------------------
    def put_tombstone(self, record: PeerRecord, expires_at: float) -> None:
        pass  # only expiry writes tombstones, and the sweep did

    def get_tombstone(self, peer_id: str, now: float) -> PeerRecord | None:
        if peer_id == self.plan.peer_id:
            return self.loaded.tombstone
        return None

    def delete_tombstone(self, peer_id: str) -> None:
        if peer_id == self.plan.peer_id:
            self.writes.delete_tombstone = True

    # --- response cache --------------------------------------------------
    def cache_get(self, peer_id: str, transaction_id: str, now: float) -> CachedResponse | None:
        cached = self.loaded.cached
        if (
            cached is None
            or peer_id != self.plan.peer_id
            or transaction_id != self.plan.transaction_id
            or cached[1] <= now
        ):
            return None
        return cached[0]

    def cache_put(
        self, peer_id: str, transaction_id: str, entry: CachedResponse, expires_at: float
    ) -> None:
        self.writes.cache.append((peer_id, transaction_id, entry, expires_at))

    def purge(self, now: float) -> None:
        pass  # the store expires entries by itself
