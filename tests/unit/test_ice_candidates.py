"""RFC 8445 priorities and foundations, aioice conversion, PROTOCOL §8 hygiene."""

from __future__ import annotations

import aioice.candidate
import pytest
from aioice import Candidate

from stunlike_tracker.ice.aioice_candidates import (
    candidate_from_peer_address,
    peer_address_from_candidate,
)
from stunlike_tracker.ice.candidates import (
    MAX_PRIORITY,
    CandidateType,
    addr_type_of,
    address_type_for,
    candidate_foundation,
    candidate_priority,
    ice_type_for,
    is_acceptable_candidate,
    is_valid_foundation,
    priority_type_preference,
    sanitize_offer,
)
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress

# --- priorities -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cand_type", "expected"),
    [
        # 2^24 * type pref + 2^8 * 65535 + (256 - 1)
        (CandidateType.HOST, 2130706431),
        (CandidateType.PRFLX, 1862270975),
        (CandidateType.SRFLX, 1694498815),  # the PROTOCOL §6 example's REFLEXIVE priority
        (CandidateType.RELAY, 16777215),
    ],
)
def test_priority_of_each_type(cand_type: CandidateType, expected: int) -> None:
    assert candidate_priority(cand_type) == expected
    assert candidate_priority(str(cand_type)) == expected


@pytest.mark.parametrize("cand_type", list(CandidateType))
@pytest.mark.parametrize("component", [1, 2, 256])
@pytest.mark.parametrize("local_pref", [0, 1, 40000, 65535])
def test_priority_agrees_with_aioice(
    cand_type: CandidateType, component: int, local_pref: int
) -> None:
    ours = candidate_priority(cand_type, local_preference=local_pref, component=component)
    assert ours == aioice.candidate.candidate_priority(component, str(cand_type), local_pref)


def test_priority_orders_types_and_components() -> None:
    host, prflx, srflx, relay = (candidate_priority(t) for t in CandidateType)
    assert host > prflx > srflx > relay > 0
    assert candidate_priority("host", component=1) > candidate_priority("host", component=2)
    assert candidate_priority("host", local_preference=2) > candidate_priority(
        "host", local_preference=1
    )
    assert candidate_priority("host") <= MAX_PRIORITY


@pytest.mark.parametrize(
    "kwargs",
    [
        {"local_preference": -1},
        {"local_preference": 65536},
        {"component": 0},
        {"component": 257},
    ],
)
def test_priority_rejects_out_of_range(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        candidate_priority("host", **kwargs)


def test_priority_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown candidate type"):
        candidate_priority("HOST")


def test_type_preference_roundtrip() -> None:
    assert priority_type_preference(candidate_priority("host")) == 126
    assert priority_type_preference(candidate_priority("srflx")) == 100
    assert priority_type_preference(candidate_priority("relay")) == 0
    with pytest.raises(ValueError):
        priority_type_preference(2**31)


# --- foundations ------------------------------------------------------------


def test_foundation_is_stable_and_distinguishing() -> None:
    a = candidate_foundation("host", "10.0.0.1")
    assert a == candidate_foundation(CandidateType.HOST, "10.0.0.1")
    assert is_valid_foundation(a) and len(a) <= 32
    assert a != candidate_foundation("srflx", "10.0.0.1")
    assert a != candidate_foundation("host", "10.0.0.2")
    assert a != candidate_foundation("host", "10.0.0.1", transport="tcp")
    srflx_1 = candidate_foundation("srflx", "10.0.0.1", server_ip="192.0.2.1")
    assert srflx_1 != candidate_foundation("srflx", "10.0.0.1", server_ip="192.0.2.9")
    # Same address written differently: same foundation.
    assert candidate_foundation("host", "2001:db8::1") == candidate_foundation(
        "host", "2001:DB8:0::1"
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1", True),
        ("a+/Z9", True),
        ("x" * 32, True),
        ("", False),
        ("x" * 33, False),
        ("a b", False),
        ("a-b", False),
        ("é", False),
        ("a\r\n", False),
    ],
)
def test_foundation_syntax(value: str, ok: bool) -> None:
    assert is_valid_foundation(value) is ok


# --- type mapping and aioice conversion ------------------------------------


def test_type_mapping() -> None:
    assert address_type_for("host") is AddressType.HOST
    assert address_type_for("srflx") is AddressType.REFLEXIVE
    assert address_type_for("prflx") is AddressType.REFLEXIVE
    assert address_type_for("relay") is AddressType.RELAYED
    assert address_type_for("RELAY") is AddressType.RELAYED
    assert address_type_for("proxy") is None
    assert ice_type_for(AddressType.HOST) is CandidateType.HOST
    assert ice_type_for(AddressType.REFLEXIVE) is CandidateType.SRFLX
    assert ice_type_for(AddressType.RELAYED) is CandidateType.RELAY
    assert ice_type_for(AddressType.PROXY) is None
    assert ice_type_for(None) is None


def test_addr_type_of() -> None:
    assert addr_type_of("192.0.2.1") is AddrType.IPV4
    assert addr_type_of("2001:db8::1") is AddrType.IPV6
    with pytest.raises(ValueError):
        addr_type_of("example.org")
    with pytest.raises(ValueError):
        addr_type_of("fe80::1%eth0")


def _aioice(
    cand_type: str,
    host: str = "192.0.2.7",
    *,
    foundation: str = "abc",
    component: int = 1,
    transport: str = "udp",
    priority: int | None = None,
    port: int = 40000,
) -> Candidate:
    return Candidate(
        foundation=foundation,
        component=component,
        transport=transport,
        priority=(
            aioice.candidate.candidate_priority(1, cand_type) if priority is None else priority
        ),
        host=host,
        port=port,
        type=cand_type,
    )


@pytest.mark.parametrize(
    ("cand_type", "expected"),
    [
        ("host", AddressType.HOST),
        ("srflx", AddressType.REFLEXIVE),
        ("prflx", AddressType.REFLEXIVE),
        ("relay", AddressType.RELAYED),
    ],
)
def test_from_aioice_candidate(cand_type: str, expected: AddressType) -> None:
    address = peer_address_from_candidate(_aioice(cand_type))
    assert address == PeerAddress(
        addr_type=AddrType.IPV4,
        ip="192.0.2.7",
        port=40000,
        type=expected,
        priority=aioice.candidate.candidate_priority(1, cand_type),
        foundation="abc",
    )


def test_from_aioice_candidate_ipv6_is_canonical() -> None:
    address = peer_address_from_candidate(_aioice("host", host="2001:DB8:0::7"))
    assert address is not None
    assert address.addr_type is AddrType.IPV6
    assert address.ip == "2001:db8::7"


@pytest.mark.parametrize(
    "candidate",
    [
        _aioice("host", transport="tcp"),
        _aioice("host", component=2),
        _aioice("host", host="1f4712db-ea17-4bcf-a596-105139dfd8bf.local"),
        _aioice("host", host="fe80::1%eth0"),
        _aioice("weird"),
        _aioice("host", port=0),
        _aioice("host", priority=0),
        _aioice("host", priority=2**31),
    ],
)
def test_from_aioice_candidate_rejects_unusable(candidate: Candidate) -> None:
    assert peer_address_from_candidate(candidate) is None


def test_from_aioice_candidate_replaces_bad_foundation() -> None:
    address = peer_address_from_candidate(_aioice("host", foundation="not valid!"))
    assert address is not None and address.foundation is not None
    assert is_valid_foundation(address.foundation)


def test_to_aioice_candidate() -> None:
    address = PeerAddress(
        addr_type=AddrType.IPV4,
        ip="203.0.113.7",
        port=51665,
        type=AddressType.REFLEXIVE,
        priority=1694498815,
        foundation="2",
    )
    candidate = candidate_from_peer_address(address)
    assert isinstance(candidate, Candidate)
    assert candidate.to_sdp() == "2 1 udp 1694498815 203.0.113.7 51665 typ srflx"
    assert peer_address_from_candidate(candidate) == address


def test_to_aioice_candidate_fills_priority_and_foundation() -> None:
    address = PeerAddress(addr_type=AddrType.IPV4, ip="10.0.2.2", port=1, type=AddressType.RELAYED)
    candidate = candidate_from_peer_address(address, component=2)
    assert candidate.priority == candidate_priority("relay", component=2)
    assert candidate.component == 2
    assert is_valid_foundation(candidate.foundation)


@pytest.mark.parametrize(
    "address",
    [
        PeerAddress(addr_type=AddrType.IPV4, ip="10.0.0.1", port=1, type=AddressType.PROXY),
        PeerAddress(addr_type=AddrType.IPV4, ip="10.0.0.1", port=1),
        PeerAddress(addr_type=AddrType.IPV6, ip="10.0.0.1", port=1, type=AddressType.HOST),
        PeerAddress(addr_type=AddrType.IPV4, ip="host.example", port=1, type=AddressType.HOST),
        PeerAddress(addr_type=AddrType.IPV4, ip="10.0.0.1", port=0, type=AddressType.HOST),
        PeerAddress(
            addr_type=AddrType.IPV4, ip="10.0.0.1", port=1, type=AddressType.HOST, priority=0
        ),
    ],
)
def test_to_aioice_candidate_rejects(address: PeerAddress) -> None:
    with pytest.raises(ValueError):
        candidate_from_peer_address(address)


# --- hygiene ----------------------------------------------------------------


def _addr(ip: str, port: int = 4000, **kw: object) -> PeerAddress:
    family = AddrType.IPV6 if ":" in ip else AddrType.IPV4
    return PeerAddress(addr_type=family, ip=ip, port=port, type=AddressType.HOST, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ip", "internet", "lan"),
    [
        ("203.0.113.7", True, True),
        ("10.0.2.2", True, True),  # private host candidates are normal
        ("192.168.1.2", True, True),
        ("fd00::2", True, True),
        ("2001:db8::1", True, True),
        ("0.0.0.0", False, False),
        ("::", False, False),
        ("224.0.0.251", False, False),
        ("239.255.255.250", False, False),
        ("ff02::fb", False, False),
        ("255.255.255.255", False, False),
        ("240.0.0.1", False, False),
        ("127.0.0.1", False, True),
        ("127.8.9.10", False, True),
        ("::1", False, True),
        ("169.254.1.1", False, True),
        ("fe80::1", False, True),
        ("::ffff:127.0.0.1", False, True),  # IPv4-mapped loopback is loopback
        ("::ffff:0.0.0.0", False, False),
        ("::ffff:224.0.0.1", False, False),
        ("::ffff:203.0.113.7", True, True),
        ("fe80::1%eth0", False, False),  # zone IDs never travel
        ("example.org", False, False),
        ("1.2.3", False, False),
        (" 203.0.113.7", False, False),
    ],
)
def test_hygiene(ip: str, internet: bool, lan: bool) -> None:
    assert is_acceptable_candidate(_addr(ip), lan_mode=False) is internet
    assert is_acceptable_candidate(_addr(ip), lan_mode=True) is lan


@pytest.mark.parametrize(
    "address",
    [
        _addr("203.0.113.7", port=0),
        _addr("203.0.113.7", port=65536),
        _addr("203.0.113.7", priority=0),
        _addr("203.0.113.7", priority=2**31),
        _addr("203.0.113.7", foundation=""),
        _addr("203.0.113.7", foundation="bad foundation"),
        PeerAddress(addr_type=AddrType.IPV6, ip="203.0.113.7", port=1),
        PeerAddress(addr_type=AddrType.IPV4, ip="2001:db8::1", port=1),
    ],
)
def test_hygiene_rejects_malformed(address: PeerAddress) -> None:
    assert not is_acceptable_candidate(address, lan_mode=True)


def _offer(*candidates: PeerAddress) -> IceOffer:
    return IceOffer(
        id="o-1",
        ufrag="x9Qf",
        pwd="p" * 22,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=candidates,
    )


def test_sanitize_drops_and_keeps_everything_else() -> None:
    good = _addr("203.0.113.7", priority=100)
    loop = _addr("127.0.0.1", priority=200)
    offer = _offer(loop, good, _addr("0.0.0.0"), _addr("224.0.0.1"))
    clean = sanitize_offer(offer, lan_mode=False)
    assert clean == IceOffer(
        id=offer.id,
        ufrag=offer.ufrag,
        pwd=offer.pwd,
        fingerprint=offer.fingerprint,
        candidates=(good,),
    )
    assert sanitize_offer(offer, lan_mode=True).candidates == (loop, good)


def test_sanitize_unchanged_offer_is_returned_as_is() -> None:
    offer = _offer(_addr("203.0.113.7"), _addr("10.0.0.1"))
    assert sanitize_offer(offer, lan_mode=False) is offer


def test_sanitize_caps_by_priority_keeping_order() -> None:
    candidates = [_addr(f"10.0.0.{i}", priority=i) for i in range(1, 13)]
    clean = sanitize_offer(_offer(*candidates), lan_mode=False)
    assert [c.priority for c in clean.candidates] == list(range(5, 13))
    assert sanitize_offer(_offer(*candidates), lan_mode=False, max_candidates=2).candidates == (
        candidates[10],
        candidates[11],
    )
    assert sanitize_offer(_offer(*candidates), lan_mode=False, max_candidates=0).candidates == ()
    with pytest.raises(ValueError):
        sanitize_offer(_offer(), lan_mode=False, max_candidates=-1)


def test_sanitize_removes_duplicate_transport_addresses() -> None:
    low = _addr("2001:db8::1", priority=5)
    high = _addr("2001:DB8::1", priority=9)
    other_port = _addr("2001:db8::1", port=4001, priority=1)
    clean = sanitize_offer(_offer(low, high, other_port), lan_mode=False)
    assert clean.candidates == (high, other_port)
