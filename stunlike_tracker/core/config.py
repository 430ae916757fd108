"""Tracker settings, with the defaults of docs/PROTOCOL.md §3, §4, §6, §8 (§13 lists them).

Every field carries ``metadata={"doc": ...}``: ``stunlike-tracker
print-config`` and the config-file loader are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """TURN REST credentials for a coturn relay (PROTOCOL §7).

    ``secrets[0]`` signs new credentials; the relay should accept every
    secret in the list while they rotate.
    """

    uris: tuple[str, ...]
    secrets: tuple[bytes, ...]
    ttl: int = 600


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    init_timeout: float = field(default=30.0, metadata=_doc("REGISTERED peer timer, seconds"))
    track_timeout: float = field(
        default=90.0, metadata=_doc("TRACKING peer timer (and tombstone lifetime), seconds")
    )
    keep_alive: int = field(
        default=25, metadata=_doc("keep-alive period sent to peers in CONNECT, seconds")
    )
    default_peer_num: int = field(default=10, metadata=_doc("peers listed when PeerNum is absent"))
    max_peer_num: int = field(default=30, metadata=_doc("PeerNum is clamped to this"))
    response_cache_ttl: float = field(
        default=60.0, metadata=_doc("how long answers are kept for retransmissions, seconds")
    )
    # Under sustained load the TTL alone lets the cache grow with the request
    # rate; beyond this many bytes the oldest answers go first.
    response_cache_bytes: int = field(
        default=128 * 1024 * 1024,
        metadata=_doc("memory store: cached answers kept in at most this many bytes"),
    )
    datagram_budget: int = field(
        default=1200, metadata=_doc("bytes of XML per response datagram (multi-part beyond)")
    )
    # PROTOCOL §4: over IPv6 the whole datagram, DTLS record included, fits the
    # 1,232-byte UDP payload of IPv6's minimum MTU: 1,232 - 40 of DTLS.
    ipv6_datagram_budget: int = field(
        default=1192, metadata=_doc("bytes of XML per response datagram to an IPv6 peer")
    )
    # FIND answers reuse each listed peer's encoded PeerInfo (about 520 bytes
    # an entry; when full the cache starts over, 0 turns it off).
    listing_cache_entries: int = field(
        default=16384, metadata=_doc("encoded peer listings kept for JOIN/FIND answers")
    )
    max_request_size: int = field(
        default=2048, metadata=_doc("largest request document accepted, bytes (larger: 400)")
    )
    offers_per_peer: int = field(default=4, metadata=_doc("unused ICE offers kept per peer"))
    offer_ttl: float = field(
        default=120.0, metadata=_doc("lifetime of an unused ICE offer and of a grant, seconds")
    )
    max_candidates_per_offer: int = field(
        default=8, metadata=_doc("candidates kept per ICE offer (highest priority first)")
    )
    # HOST addresses kept from a CONNECT (listed only for peers without an
    # offer, so a PeerInfo always fits one datagram).
    max_host_addresses: int = field(default=4, metadata=_doc("HOST addresses kept from a CONNECT"))
    # ATTACHes in flight toward one target, and from one requester to it.
    max_attaches_per_target: int = field(
        default=4, metadata=_doc("ATTACH introductions in flight toward one peer")
    )
    max_swarms_per_peer: int = field(default=64, metadata=_doc("swarms one peer may join"))
    max_content_entries: int = field(
        default=32, metadata=_doc("statistics and content-map entries kept per peer")
    )
    # None: open tracker; otherwise the closed allow-list of SwarmIDs.
    allowed_swarms: frozenset[str] | None = field(
        default=None, metadata=_doc("closed tracker: the only SwarmIDs accepted; unset: any")
    )
    # Lab/LAN mode keeps loopback and private candidates (PROTOCOL §8).
    lan_mode: bool = field(
        default=False, metadata=_doc("lab/LAN mode: keep loopback and private candidates")
    )
    # "open" (self-asserted Peer-ID + ReconnectToken) or "mutual" (certificates).
    identity_mode: str = field(
        default="open", metadata=_doc("open or mutual (set from [server] mutual)")
    )
    # ATTACH indication resend intervals and give-up time (PROTOCOL §6).
    attach_resend_intervals: tuple[float, ...] = field(
        default=(0.5, 1.0, 2.0), metadata=_doc("ATTACH indication resend intervals, seconds")
    )
    attach_timeout: float = field(
        default=5.0, metadata=_doc("ATTACH gives up (503) after this many seconds")
    )
    # PROTOCOL §8 per-peer rate limit: requests per second and burst; 0 disables.
    peer_rate: float = field(
        default=20.0, metadata=_doc("requests per second per DTLS association; 0: no limit")
    )
    peer_burst: float = field(default=40.0, metadata=_doc("burst of the per-association limit"))
    turn: TurnConfig | None = field(default=None, metadata=_doc("set from the [turn] section"))
    node_id: str = field(
        default="local", metadata=_doc("this node's name among the nodes of one tracker")
    )
    max_peers_per_session: int = field(
        default=4,
        metadata={"doc": "Peer-IDs one DTLS association may register (PROTOCOL.md §8 Sybil limit)"},
    )
    max_peers_per_source: int = field(
        default=256,
        metadata={"doc": "Peer-IDs one source IP (IPv6: /64) may register on a node"},
    )
    max_source_share: float = field(
        default=0.3,
        metadata={"doc": "share of a peer list one source IP may fill while others have peers"},
    )
    tracker_addresses: frozenset[str] = field(
        default=frozenset(),
        metadata=_doc(
            'the tracker\'s own addresses ("IP:PORT", "[IPv6]:PORT"): candidates naming '
            "them are dropped (PROTOCOL.md §8); the server adds the address it is bound to"
        ),
    )
