"""ICE candidates as PPSP ``PeerAddress`` values (PROTOCOL §2.1, §6, §8).

Pure: no sockets, no clock, no event loop, no ICE agent (aioice's
``Candidate`` is converted in ``ice.aioice_candidates``). Three jobs:

* RFC 8445 §5.1.2.1 priorities and §5.1.1.3 foundations;
* the type map and the conversion of a candidate's fields to a
  ``PeerAddress`` (:func:`peer_address_from_fields`);
* candidate hygiene (PROTOCOL §8) for the tracker and for peers:
  :func:`is_acceptable_candidate` and :func:`sanitize_offer`.

Type mapping (PPSP ``type`` <-> ICE ``typ``)::

    HOST      <-> host
    REFLEXIVE <-> srflx   (an aioice "prflx" also maps to REFLEXIVE)
    RELAYED   <-> relay
    PROXY     --  no ICE equivalent; never converted to a Candidate
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from enum import StrEnum
from typing import Final

from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress
from stunlike_tracker.ppsp.values import is_mdns_hostname

__all__ = [
    "DEFAULT_LOCAL_PREFERENCE",
    "MAX_CANDIDATES_PER_OFFER",
    "MAX_PRIORITY",
    "TYPE_PREFERENCE",
    "CandidateType",
    "addr_type_of",
    "address_type_for",
    "candidate_foundation",
    "candidate_priority",
    "ice_type_for",
    "is_acceptable_candidate",
    "is_valid_foundation",
    "peer_address_from_fields",
    "priority_type_preference",
    "sanitize_offer",
]


class CandidateType(StrEnum):
    """ICE candidate types as written in SDP (RFC 8839 ``cand-type``)."""

    HOST = "host"
    PRFLX = "prflx"
    SRFLX = "srflx"
    RELAY = "relay"


# RFC 8445 §5.1.2.2 recommended type preferences.
TYPE_PREFERENCE: Final[dict[CandidateType, int]] = {
    CandidateType.HOST: 126,
    CandidateType.PRFLX: 110,
    CandidateType.SRFLX: 100,
    CandidateType.RELAY: 0,
}

# One interface, one address family: the RFC's recommended maximum.
DEFAULT_LOCAL_PREFERENCE: Final = 65535
# RFC 8445 §5.1.2.1: priority is a positive 32-bit integer below 2**31.
MAX_PRIORITY: Final = 2**31 - 1
# PROTOCOL §8: at most 8 candidates per offer.
MAX_CANDIDATES_PER_OFFER: Final = 8

# RFC 8839 §5.1: foundation = 1*32 ice-char; ice-char = ALPHA / DIGIT / "+" / "/".
_FOUNDATION_RE: Final = re.compile(r"[A-Za-z0-9+/]{1,32}")

_TO_ADDRESS_TYPE: Final[dict[str, AddressType]] = {
    CandidateType.HOST: AddressType.HOST,
    CandidateType.SRFLX: AddressType.REFLEXIVE,
    CandidateType.PRFLX: AddressType.REFLEXIVE,
    CandidateType.RELAY: AddressType.RELAYED,
}
_TO_ICE_TYPE: Final[dict[AddressType, CandidateType]] = {
    AddressType.HOST: CandidateType.HOST,
    AddressType.REFLEXIVE: CandidateType.SRFLX,
    AddressType.RELAYED: CandidateType.RELAY,
}


# --- priorities and foundations -------------------------------------------


def candidate_priority(
    candidate_type: CandidateType | str,
    *,
    local_preference: int = DEFAULT_LOCAL_PREFERENCE,
    component: int = 1,
) -> int:
    """RFC 8445 §5.1.2.1: ``2^24*type pref + 2^8*local pref + (256 - component)``.

    Raises ``ValueError`` for an unknown type, a local preference outside
    0..65535 or a component outside 1..256.
    """
    try:
        type_pref = TYPE_PREFERENCE[CandidateType(candidate_type)]
    except ValueError:
        raise ValueError(f"unknown candidate type {candidate_type!r}") from None
    if not 0 <= local_preference <= 0xFFFF:
        raise ValueError("local preference must be in 0..65535")
    if not 1 <= component <= 256:
        raise ValueError("component ID must be in 1..256")
    return (type_pref << 24) + (local_preference << 8) + (256 - component)


def priority_type_preference(priority: int) -> int:
    """The type preference encoded in the top byte of an RFC 8445 priority."""
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError("priority out of range")
    return priority >> 24


def candidate_foundation(
    candidate_type: CandidateType | str,
    base_ip: str,
    *,
    transport: str = "udp",
    server_ip: str | None = None,
) -> str:
    """An RFC 8445 §5.1.1.3 foundation.

    Candidates share a foundation exactly when they have the same type, base
    IP address, transport and (for server reflexive and relayed candidates)
    STUN/TURN server address. The value is a short digest of those, so it is
    stable across runs, 1..32 ice-chars and reveals no address.
    """
    key = "|".join(
        (
            str(CandidateType(candidate_type)),
            _canonical_ip(base_ip),
            transport.lower(),
            _canonical_ip(server_ip) if server_ip else "",
        )
    )
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:16]


def is_valid_foundation(value: str) -> bool:
    """True when ``value`` is 1..32 ice-chars (RFC 8839 §5.1)."""
    return _FOUNDATION_RE.fullmatch(value) is not None


def addr_type_of(ip: str) -> AddrType:
    """``ipv4`` or ``ipv6`` for an IP literal; ``ValueError`` otherwise."""
    return AddrType.IPV4 if _parse_ip(ip).version == 4 else AddrType.IPV6


def address_type_for(candidate_type: str) -> AddressType | None:
    """The PPSP address type of an ICE ``typ`` (None if it has none)."""
    return _TO_ADDRESS_TYPE.get(candidate_type.lower())


def ice_type_for(address_type: AddressType | None) -> CandidateType | None:
    """The ICE ``typ`` of a PPSP address type (None for PROXY or no type)."""
    if address_type is None:
        return None
    return _TO_ICE_TYPE.get(address_type)


# --- candidate -> PeerAddress ---------------------------------------------


def peer_address_from_fields(
    *,
    transport: str,
    component: int,
    host: str,
    port: int,
    priority: int,
    cand_type: str,
    foundation: str,
) -> PeerAddress | None:
    """The PeerAddress of an ICE candidate given by its fields (the one
    conversion, for SDP lines and for ICE agents' candidate objects).

    Returns None for candidates a peer cannot use through the tracker: not
    UDP, not component 1, an mDNS/host name instead of an IP literal, an
    unknown type, or out-of-range port/priority. A malformed foundation is
    replaced by one derived from type and IP.
    """
    address_type = address_type_for(cand_type)
    if transport.lower() != "udp" or component != 1 or address_type is None:
        return None
    try:
        ip = _parse_ip(host)
    except ValueError:
        return None
    if not (1 <= port <= 0xFFFF and 1 <= priority <= MAX_PRIORITY):
        return None
    if not is_valid_foundation(foundation):
        foundation = candidate_foundation(cand_type, str(ip))
    return PeerAddress(
        addr_type=AddrType.IPV4 if ip.version == 4 else AddrType.IPV6,
        ip=str(ip),
        port=port,
        type=address_type,
        priority=priority,
        foundation=foundation,
    )


# --- hygiene (PROTOCOL §8) ------------------------------------------------------


def is_acceptable_candidate(address: PeerAddress, *, lan_mode: bool) -> bool:
    """PROTOCOL §8 candidate hygiene for one address.

    Always rejected: an IP that is not a literal of the declared ``addrType``
    (IPv6 zone IDs included), port 0, unspecified, multicast and IPv4
    reserved/broadcast addresses (an IPv4-mapped IPv6 address is judged as the
    IPv4 address it maps), a priority outside 1..2^31-1 and a malformed
    foundation. Rejected unless ``lan_mode``: loopback and link-local.
    Private (RFC 1918, ULA) addresses are fine: they are ordinary host
    candidates.
    """
    if not 1 <= address.port <= 0xFFFF:
        return False
    if address.priority is not None and not 1 <= address.priority <= MAX_PRIORITY:
        return False
    if address.foundation is not None and not is_valid_foundation(address.foundation):
        return False
    if is_mdns_hostname(address.ip):
        return True  # a browser's host candidate, passed through (PROTOCOL §14.5)
    try:
        ip = _parse_ip(address.ip)
    except ValueError:
        return False
    if (ip.version == 4) != (address.addr_type == AddrType.IPV4):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv4Address) and ip.is_reserved:
        return False  # 240.0.0.0/4, including the limited broadcast address
    if lan_mode:
        return True
    return not (ip.is_loopback or ip.is_link_local)


def sanitize_offer(
    offer: IceOffer, *, lan_mode: bool, max_candidates: int = MAX_CANDIDATES_PER_OFFER
) -> IceOffer:
    """Drop the candidates PROTOCOL §8 forbids, duplicates, and any beyond the cap.

    Keeps the offer's id, credentials and fingerprint untouched. Duplicates
    (same IP and port) keep the higher-priority entry. When more than
    ``max_candidates`` remain, the highest-priority ones are kept (no
    priority counts as lowest); survivors keep their original order.
    """
    if max_candidates < 0:
        raise ValueError("max_candidates must be >= 0")
    acceptable = [
        (index, c)
        for index, c in enumerate(offer.candidates)
        if is_acceptable_candidate(c, lan_mode=lan_mode)
    ]
    by_priority = sorted(acceptable, key=lambda item: -_priority_key(item[1]))
    seen: set[tuple[str, int]] = set()
    kept: list[tuple[int, PeerAddress]] = []
    for index, candidate in by_priority:
        if len(kept) >= max_candidates:
            break
        key = (_canonical_ip(candidate.ip), candidate.port)
        if key in seen:
            continue
        seen.add(key)
        kept.append((index, candidate))
    kept.sort(key=lambda item: item[0])
    candidates = tuple(c for _, c in kept)
    if candidates == offer.candidates:
        return offer
    return IceOffer(
        id=offer.id,
        ufrag=offer.ufrag,
        pwd=offer.pwd,
        fingerprint=offer.fingerprint,
        candidates=candidates,
    )


# --- helpers ----------------------------------------------------------------


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an IP literal; zone IDs ("fe80::1%eth0") are refused."""
    if "%" in value:
        raise ValueError("scoped IPv6 addresses are not portable between hosts")
    return ipaddress.ip_address(value)


def _canonical_ip(value: str) -> str:
    try:
        return str(_parse_ip(value))
    except ValueError:
        return value


def _priority_key(address: PeerAddress) -> int:
    return address.priority if address.priority is not None else 0
