"""PPSP tracker protocol messages (shared PROTOCOL §2, draft-07 §7).

Plain frozen dataclasses; no parsing or encoding here (see ``codec``).
One flat ``Request`` carries every request method: the fields a method does
not use stay at their defaults, and the codec checks which ones a method
requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PROTOCOL_VERSION = "1.0"


class Method(StrEnum):
    CONNECT = "CONNECT"
    JOIN = "JOIN"
    FIND = "FIND"
    STAT_REPORT = "STAT_REPORT"
    DISCONNECT = "DISCONNECT"
    ATTACH = "ATTACH"
    ATTACH_ACK = "ATTACH_ACK"


class PeerMode(StrEnum):
    LEECH = "LEECH"
    SEED = "SEED"


class AddrType(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class AddressType(StrEnum):
    HOST = "HOST"
    REFLEXIVE = "REFLEXIVE"
    RELAYED = "RELAYED"
    PROXY = "PROXY"


class NatAbility(StrEnum):
    NO_NAT = "NoNAT"
    STUN = "STUN"
    TURN = "TURN"
    PROXY = "PROXY"


class Status:
    """Status codes and their fixed texts (PROTOCOL §2 table)."""

    OK = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    INTERNAL = 500
    OVERLOADED = 503

    TEXT: dict[int, str] = {  # noqa: RUF012 - constant table
        200: "SUCCESSFUL",
        400: "INVALID SYNTAX",
        401: "AUTHENTICATION REQUIRED",
        403: "MESSAGE FORBIDDEN",
        404: "OBJECT NOT FOUND",
        500: "INTERNAL ERROR",
        503: "TEMPORARILY OVERLOADED",
    }
    VERSION_NOT_SUPPORTED_TEXT = "VERSION NOT SUPPORTED"


# Reserved SwarmID values of DISCONNECT (PROTOCOL §2.1).
SWARM_ALL = "ALL"
SWARM_NIL = "nil"


@dataclass(frozen=True, slots=True)
class PeerAddress:
    addr_type: AddrType
    ip: str
    port: int
    type: AddressType | None = None
    priority: int | None = None
    foundation: str | None = None
    connection: str | None = None
    asn: str | None = None


@dataclass(frozen=True, slots=True)
class IceOffer:
    """One ICE session of a peer (PROTOCOL §6)."""

    id: str
    ufrag: str
    pwd: str
    fingerprint: str | None = None
    candidates: tuple[PeerAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class PeerInfo:
    peer_id: str | None = None
    mode: PeerMode | None = None
    addresses: tuple[PeerAddress, ...] = ()
    offer: IceOffer | None = None


@dataclass(frozen=True, slots=True)
class PeerNum:
    """``<PeerNum>``: how many peers are wanted, and preferences."""

    count: int | None = None
    ability_nat: NatAbility | None = None
    concurrent_links: str | None = None
    online_time: str | None = None
    upload_bw_level: str | None = None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A chunk scope; ``chunk_map`` is the Base64 text as sent (may be invalid)."""

    start: int | None = None
    end: int | None = None
    chunkmap_size: int | None = None
    chunk_map: str | None = None


@dataclass(frozen=True, slots=True)
class Representation:
    id: str
    segments: tuple[SegmentInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    swarm_id: str
    uploaded_bytes: int | None = None
    downloaded_bytes: int | None = None
    avail_bandwidth: int | None = None


@dataclass(frozen=True, slots=True)
class ContentMap:
    swarm_id: str
    representations: tuple[Representation, ...] = ()


Stat = StreamStatistics | ContentMap


@dataclass(frozen=True, slots=True)
class TurnServer:
    uri: str
    username: str
    credential: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Part:
    index: int
    count: int


@dataclass(frozen=True, slots=True)
class Request:
    method: Method
    peer_id: str
    transaction_id: str
    swarm_id: str | None = None
    peer_mode: PeerMode | None = None
    peer_num: PeerNum | None = None
    content: tuple[Representation, ...] = ()
    # CONNECT: the peer's own addresses (PeerGroup/PeerInfo/PeerAddress).
    addresses: tuple[PeerAddress, ...] = ()
    # STAT_REPORT: None when there is no StatisticsGroup (a keep-alive).
    stats: tuple[Stat, ...] | None = None
    ice_offer: IceOffer | None = None
    target_peer_id: str | None = None
    offer_id: str | None = None
    indication_id: str | None = None
    reconnect_token: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    transaction_id: str
    reason: str = ""
    peers: tuple[PeerInfo, ...] = ()
    # JOIN/FIND: the swarm; CONNECT (re-CONNECT): the restored swarms.
    swarm_ids: tuple[str, ...] = ()
    keep_alive: int | None = None
    turn_servers: tuple[TurnServer, ...] = ()
    reconnect_token: str | None = None
    part: Part | None = None
    # The element text; None means the standard text of ``status``.
    text: str | None = None

    @property
    def status_text(self) -> str:
        if self.text is not None:
            return self.text
        return Status.TEXT.get(self.status, "INTERNAL ERROR")


@dataclass(frozen=True, slots=True)
class Indication:
    """The tracker's unsolicited ATTACH document (PROTOCOL §6)."""

    transaction_id: str
    swarm_id: str
    peer: PeerInfo
    offer_id: str | None = None
    kind: str = "ATTACH"


Message = Request | Response | Indication
