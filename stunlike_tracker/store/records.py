"""What the tracker keeps about a peer (shared PROTOCOL §3, §8, §9).

Records are frozen: the core builds a new one and hands it to the store, so
the in-memory backend behaves like a serialising one (no aliasing).
"""

from __future__ import annotations

from dataclasses import dataclass

from stunlike_tracker.ppsp.messages import (
    IceOffer,
    NatAbility,
    PeerAddress,
    PeerMode,
    Representation,
    StreamStatistics,
)


@dataclass(frozen=True, slots=True)
class Membership:
    """One swarm a peer is in, with its mode and JOIN start point."""

    swarm_id: str
    mode: PeerMode
    content: tuple[Representation, ...] = ()
    joined_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PeerRecord:
    peer_id: str
    session_id: str
    reflexive: PeerAddress
    connected_at: float
    # When the peer's init/track timer fires (PROTOCOL §3: timers are per peer).
    deadline: float
    host_addresses: tuple[PeerAddress, ...] = ()
    nat_ability: NatAbility = NatAbility.STUN
    # Open mode: SHA-256 of the ReconnectToken; mutual mode: None. The token
    # before it stays valid until the new one is used (its answer may be lost).
    token_hash: bytes | None = None
    previous_token_hash: bytes | None = None
    # The node holding the peer's DTLS association (PROTOCOL §9).
    node_id: str = "local"
    memberships: tuple[Membership, ...] = ()
    stream_stats: tuple[StreamStatistics, ...] = ()
    # (swarm_id, representation) pairs from the latest ContentMap reports.
    content_maps: tuple[tuple[str, Representation], ...] = ()

    def with_deadline(self, deadline: float) -> PeerRecord:
        """This record with a new timer: what every request does, so without
        ``dataclasses.replace`` (several times the cost of one constructor call)."""
        return PeerRecord(
            self.peer_id,
            self.session_id,
            self.reflexive,
            self.connected_at,
            deadline,
            self.host_addresses,
            self.nat_ability,
            self.token_hash,
            self.previous_token_hash,
            self.node_id,
            self.memberships,
            self.stream_stats,
            self.content_maps,
        )

    def membership(self, swarm_id: str) -> Membership | None:
        for m in self.memberships:
            if m.swarm_id == swarm_id:
                return m
        return None

    @property
    def swarm_ids(self) -> tuple[str, ...]:
        return tuple(m.swarm_id for m in self.memberships)


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """PROTOCOL §4 response cache entry, bound to the session that asked."""

    session_id: str
    request_digest: bytes
    # None while the request is still being processed (ATTACH in flight).
    datagrams: tuple[bytes, ...] | None


@dataclass(frozen=True, slots=True)
class OfferGrant:
    """An offer of ``owner`` handed to ``requester`` in a JOIN/FIND response."""

    owner: str
    offer_id: str
    requester: str


@dataclass(frozen=True, slots=True)
class StoredOffer:
    offer: IceOffer
    expires_at: float
