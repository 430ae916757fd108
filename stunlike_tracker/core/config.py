"""Tracker settings, with the defaults of shared SPEC.md §3, §4, §6, §8."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """TURN REST credentials for a coturn relay (SPEC §7).

    ``secrets[0]`` signs new credentials; the relay should accept every
    secret in the list while they rotate.
    """

    uris: tuple[str, ...]
    secrets: tuple[bytes, ...]
    ttl: int = 600


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    init_timeout: float = 30.0
    track_timeout: float = 90.0
    keep_alive: int = 25
    default_peer_num: int = 10
    max_peer_num: int = 30
    response_cache_ttl: float = 60.0
    datagram_budget: int = 1200
    max_request_size: int = 2048
    offers_per_peer: int = 4
    offer_ttl: float = 120.0
    max_candidates_per_offer: int = 8
    # HOST addresses kept from a CONNECT (listed only for peers without an
    # offer, so a PeerInfo always fits one datagram).
    max_host_addresses: int = 4
    # ATTACHes in flight toward one target, and from one requester to it.
    max_attaches_per_target: int = 4
    max_swarms_per_peer: int = 64
    max_content_entries: int = 32
    # None: open tracker; otherwise the closed allow-list of SwarmIDs.
    allowed_swarms: frozenset[str] | None = None
    # Lab/LAN mode keeps loopback and private candidates (SPEC §8).
    lan_mode: bool = False
    # "open" (self-asserted Peer-ID + ReconnectToken) or "mutual" (certificates).
    identity_mode: str = "open"
    # ATTACH indication resend intervals and give-up time (SPEC §6).
    attach_resend_intervals: tuple[float, ...] = (0.5, 1.0, 2.0)
    attach_timeout: float = 5.0
    # SPEC §8 per-peer rate limit: requests per second and burst; 0 disables.
    peer_rate: float = 20.0
    peer_burst: float = 40.0
    turn: TurnConfig | None = None
    node_id: str = "local"
