"""Addresses the tracker reports: types and priorities (SPEC §2.1); hygiene
is ``ice.candidates`` (SPEC §8)."""

from __future__ import annotations

import ipaddress

from stunlike_tracker.ice.candidates import (
    CandidateType,
    addr_type_of,
    candidate_priority,
    is_acceptable_candidate,
)
from stunlike_tracker.ppsp.messages import AddressType, PeerAddress

_ICE_TYPE = {
    AddressType.HOST: CandidateType.HOST,
    AddressType.REFLEXIVE: CandidateType.SRFLX,
    AddressType.RELAYED: CandidateType.RELAY,
}


def ice_priority(kind: AddressType) -> int:
    """RFC 8445 §5.1.2.1 priority of an address type (PROXY ranks as relayed)."""
    return candidate_priority(_ICE_TYPE.get(kind, CandidateType.RELAY))


def reflexive_address(source: tuple[str, int]) -> PeerAddress:
    """The tracker-observed address of a datagram, as a REFLEXIVE PeerAddress."""
    ip = source[0]
    mapped = ipaddress.ip_address(ip)
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        ip = str(mapped.ipv4_mapped)
    return PeerAddress(
        addr_type=addr_type_of(ip),
        ip=ip,
        port=source[1],
        type=AddressType.REFLEXIVE,
        priority=ice_priority(AddressType.REFLEXIVE),
    )


def host_addresses(claimed: tuple[PeerAddress, ...], *, lan_mode: bool) -> tuple[PeerAddress, ...]:
    """A CONNECT's own addresses, typed and prioritised (SPEC §2.1: STUN-like
    responses give every address a type and a priority)."""
    kept = []
    for address in claimed:
        if not is_acceptable_candidate(address, lan_mode=lan_mode):
            continue
        kind = address.type or AddressType.HOST
        kept.append(
            PeerAddress(
                addr_type=address.addr_type,
                ip=address.ip,
                port=address.port,
                type=kind,
                priority=address.priority if address.priority is not None else ice_priority(kind),
                foundation=address.foundation,
                connection=address.connection,
                asn=address.asn,
            )
        )
    return tuple(kept)
