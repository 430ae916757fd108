"""Addresses the tracker reports: types, priorities and hygiene (SPEC §2.1, §8)."""

from __future__ import annotations

import ipaddress

from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress

# RFC 8445 §5.1.2.2 recommended type preferences.
_TYPE_PREFERENCE = {
    AddressType.HOST: 126,
    AddressType.REFLEXIVE: 100,
    AddressType.PROXY: 10,
    AddressType.RELAYED: 0,
}


def ice_priority(kind: AddressType, local_preference: int = 65535, component: int = 1) -> int:
    """RFC 8445 §5.1.2.1: 2^24*type + 2^8*local + (256 - component)."""
    return (_TYPE_PREFERENCE[kind] << 24) | (local_preference << 8) | (256 - component)


def address_family(ip: str) -> AddrType:
    return AddrType.IPV6 if ":" in ip else AddrType.IPV4


def reflexive_address(source: tuple[str, int]) -> PeerAddress:
    """The tracker-observed address of a datagram, as a REFLEXIVE PeerAddress."""
    ip = source[0]
    mapped = ipaddress.ip_address(ip)
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        ip = str(mapped.ipv4_mapped)
    return PeerAddress(
        addr_type=address_family(ip),
        ip=ip,
        port=source[1],
        type=AddressType.REFLEXIVE,
        priority=ice_priority(AddressType.REFLEXIVE),
    )


def is_acceptable_address(address: PeerAddress, *, lan_mode: bool) -> bool:
    """SPEC §8 candidate hygiene: no unspecified, multicast or loopback
    addresses (nor port 0) unless the tracker runs in lab/LAN mode."""
    if address.port == 0:
        return False
    try:
        ip = ipaddress.ip_address(address.ip)
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    return lan_mode or not ip.is_loopback


def host_addresses(claimed: tuple[PeerAddress, ...], *, lan_mode: bool) -> tuple[PeerAddress, ...]:
    """A CONNECT's own addresses, typed and prioritised (SPEC §2.1: STUN-like
    responses give every address a type and a priority)."""
    kept = []
    for address in claimed:
        if not is_acceptable_address(address, lan_mode=lan_mode):
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


def sanitize_offer(offer: IceOffer, *, lan_mode: bool, max_candidates: int) -> IceOffer:
    """Drop unacceptable candidates and keep the ``max_candidates`` best (SPEC §8)."""
    good = [c for c in offer.candidates if is_acceptable_address(c, lan_mode=lan_mode)]
    good.sort(key=lambda c: c.priority or 0, reverse=True)
    return IceOffer(
        id=offer.id,
        ufrag=offer.ufrag,
        pwd=offer.pwd,
        fingerprint=offer.fingerprint,
        candidates=tuple(good[:max_candidates]),
    )
