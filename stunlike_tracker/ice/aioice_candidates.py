"""aioice ``Candidate`` objects <-> PPSP ``PeerAddress`` values.

The only module of the package that touches aioice's candidate class, kept
apart so that ``ice.candidates`` (and with it the tracker core) never loads
an ICE agent. Used by ICE-agent code (the lab's bare aioice peers, tests).
The type map and the field checks are ``ice.candidates``'.
"""

from __future__ import annotations

import ipaddress

from aioice import Candidate

from stunlike_tracker.ice.candidates import (
    MAX_PRIORITY,
    addr_type_of,
    candidate_foundation,
    candidate_priority,
    ice_type_for,
    is_valid_foundation,
    peer_address_from_fields,
)
from stunlike_tracker.ppsp.messages import PeerAddress

__all__ = ["candidate_from_peer_address", "peer_address_from_candidate"]


def peer_address_from_candidate(candidate: Candidate) -> PeerAddress | None:
    """Convert an aioice ``Candidate`` to a PeerAddress (None when a peer
    cannot use it through the tracker; see ``peer_address_from_fields``)."""
    try:
        return peer_address_from_fields(
            transport=str(candidate.transport),
            component=int(candidate.component),
            host=str(candidate.host),
            port=int(candidate.port),
            priority=int(candidate.priority),
            cand_type=str(candidate.type),
            foundation=str(candidate.foundation),
        )
    except (AttributeError, TypeError, ValueError):
        return None


def candidate_from_peer_address(address: PeerAddress, *, component: int = 1) -> Candidate:
    """Convert a PeerAddress to an aioice ``Candidate`` (UDP).

    A missing priority is computed from the type with the default local
    preference; a missing or malformed foundation is derived from type and IP.
    Raises ``ValueError`` when the address cannot be an ICE candidate (no
    type, PROXY, bad IP, addrType mismatch, bad port or priority).
    """
    cand_type = ice_type_for(address.type)
    if cand_type is None:
        raise ValueError(f"address type {address.type!r} has no ICE equivalent")
    if addr_type_of(address.ip) != address.addr_type:  # ValueError for a bad IP too
        raise ValueError("addrType does not match the IP address")
    if not 1 <= address.port <= 0xFFFF:
        raise ValueError("port out of range")
    priority = address.priority
    if priority is None:
        priority = candidate_priority(cand_type, component=component)
    elif not 1 <= priority <= MAX_PRIORITY:
        raise ValueError("priority out of range")
    foundation = address.foundation
    ip = str(ipaddress.ip_address(address.ip))
    if foundation is None or not is_valid_foundation(foundation):
        foundation = candidate_foundation(cand_type, ip)
    return Candidate(
        foundation=foundation,
        component=component,
        transport="udp",
        priority=priority,
        host=ip,
        port=address.port,
        type=str(cand_type),
    )
