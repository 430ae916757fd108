"""Addresses the tracker reports: types and priorities (PROTOCOL §2.1); hygiene
is ``ice.candidates`` (PROTOCOL §8)."""

from __future__ import annotations

import ipaddress

from stunlike_tracker.ice.candidates import (
    CandidateType,
    addr_type_of,
    candidate_priority,
    ice_type_for,
    is_acceptable_candidate,
)
from stunlike_tracker.ppsp.messages import AddressType, NatAbility, PeerAddress

# Addresses that mean nothing outside the peer's own network: RFC 1918,
# RFC 6598 shared (carrier-grade NAT) space, IPv6 unique-local, plus
# loopback and link-local (PROTOCOL §8: kept only in lab/LAN mode).
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)

# What a peer may assert about its own addresses (PROTOCOL §8: only the
# tracker asserts REFLEXIVE, from the datagram source).
SELF_ASSERTED_TYPES = frozenset({AddressType.HOST, AddressType.RELAYED})


def ice_priority(kind: AddressType) -> int:
    """RFC 8445 §5.1.2.1 priority of an address type (PROXY ranks as relayed)."""
    return candidate_priority(ice_type_for(kind) or CandidateType.RELAY)


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


def is_ipv6_path(address: tuple[str, int]) -> bool:
    """True when datagrams to ``address`` travel over IPv6 (an IPv4 peer seen
    through the dual-stack socket, ``::ffff:a.b.c.d``, travels over IPv4)."""
    host = address[0]
    return ":" in host and not host.startswith("::ffff:")


def is_local_network(ip: str) -> bool:
    """Private, shared, unique-local, loopback or link-local (an IPv4-mapped
    IPv6 address is judged as the IPv4 address it maps)."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.is_loopback or parsed.is_link_local:
        return True
    return any(parsed in net for net in _LOCAL_NETWORKS if net.version == parsed.version)


def transport_address_text(ip: str, port: int) -> str:
    """``IP:PORT``, or ``[IPv6]:PORT``."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _parse_transport_address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return (str(ip), int(port))


def is_tracker_address(
    address: PeerAddress, tracker_addresses: frozenset[str], *, lan_mode: bool
) -> bool:
    """Does the address point at the tracker itself (``tracker_addresses``
    as ``IP:PORT`` texts)? The exact transport address always counts;
    outside LAN mode any port of a tracker IP does (on a LAN, peers and the
    tracker may share a host)."""
    if not tracker_addresses:
        return False
    try:
        ip = str(ipaddress.ip_address(address.ip))
    except ValueError:
        return False
    for text in tracker_addresses:
        own = _parse_transport_address(text)
        if own is not None and ip == own[0] and (address.port == own[1] or not lan_mode):
            return True
    return False


def host_addresses(
    claimed: tuple[PeerAddress, ...],
    *,
    lan_mode: bool,
    tracker_addresses: frozenset[str] = frozenset(),
) -> tuple[PeerAddress, ...]:
    """A CONNECT's own addresses, validated, typed and prioritised.

    PROTOCOL §8: a peer's own addresses are HOST or RELAYED (a claimed REFLEXIVE
    or PROXY address is dropped: only the tracker asserts REFLEXIVE); no
    unspecified, multicast or tracker address; private and loopback ones
    only in LAN mode. PROTOCOL §2.1: every kept address has a type and a priority.
    """
    kept = []
    for address in claimed:
        kind = address.type or AddressType.HOST
        if kind not in SELF_ASSERTED_TYPES:
            continue
        if not is_acceptable_candidate(address, lan_mode=lan_mode):
            continue
        if not lan_mode and is_local_network(address.ip):
            continue
        if is_tracker_address(address, tracker_addresses, lan_mode=lan_mode):
            continue
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


def nat_class(
    reflexive: PeerAddress,
    declared: tuple[PeerAddress, ...],
    offered: tuple[PeerAddress, ...] = (),
) -> NatAbility:
    """The ``abilityNAT`` class a peer matches (PROTOCOL §2.1 PeerNum preferences).

    ``declared`` are the CONNECT's addresses as claimed (before hygiene),
    ``offered`` the candidates of its ICE offers. NoNAT: a HOST address is
    the reflexive one. Otherwise TURN when it has a relayed candidate, PROXY
    when it declared a PROXY address (reached only through a proxy), else
    STUN (a NATed peer found through the tracker's STUN service).
    """
    if any(
        (a.type or AddressType.HOST) is AddressType.HOST
        and a.ip == reflexive.ip
        and a.port == reflexive.port
        for a in declared
    ):
        return NatAbility.NO_NAT
    if any(a.type is AddressType.RELAYED for a in (*declared, *offered)):
        return NatAbility.TURN
    if any(a.type is AddressType.PROXY for a in declared):
        return NatAbility.PROXY
    return NatAbility.STUN
