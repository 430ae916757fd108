"""Validation of scalar values read from untrusted PPSP documents.

Every function takes the raw attribute value or element text and returns
the typed value, or raises a 400 ``PpspError`` whose reason names the field
(a fixed string chosen by the caller, never the input).
"""

from __future__ import annotations

import ipaddress
import re

from .errors import bad_request
from .messages import AddressType, AddrType, NatAbility, PeerMode
from .reasons import Reason

# XML whitespace (XML 1.0 §2.3 "S"); str.strip() would also eat Unicode
# spaces such as U+00A0, which are not whitespace to XML.
XML_WS = " \t\r\n"

MAX_ID_LEN = 64
"""PROTOCOL §2.1: opaque IDs are at most 64 printable ASCII characters."""

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_PRINTABLE_WITH_SPACE = re.compile(r"[\x20-\x7e]+")
_DIGITS = re.compile(r"[0-9]{1,20}")

_PEER_MODES = {
    "LEECH": PeerMode.LEECH,
    "SEED": PeerMode.SEED,
    "SEEDER": PeerMode.SEED,  # PROTOCOL §2.1: accept SEEDER as SEED.
}


def strip_ws(raw: str) -> str:
    return raw.strip(XML_WS)


def opaque_id(raw: str, what: str) -> str:
    """PROTOCOL §2.1: 1..64 printable ASCII characters (0x21..0x7E) once the
    surrounding whitespace is stripped; PeerID, SwarmID, TransactionID and
    the other identifiers."""
    return token(raw, what, MAX_ID_LEN)


def token(raw: str, what: str, max_len: int) -> str:
    """1..max_len printable ASCII characters without spaces."""
    value = strip_ws(raw)
    if len(value) > max_len or _PRINTABLE.fullmatch(value) is None:
        raise bad_request(Reason.INVALID, what)
    return value


def phrase(raw: str, what: str, max_len: int) -> str:
    """1..max_len printable ASCII characters, inner spaces allowed (e.g. a
    certificate fingerprint "sha-256 AB:CD:...")."""
    value = strip_ws(raw)
    if len(value) > max_len or _PRINTABLE_WITH_SPACE.fullmatch(value) is None:
        raise bad_request(Reason.INVALID, what)
    return value


def uint(raw: str, what: str, max_value: int) -> int:
    """A plain decimal integer 0..max_value: ASCII digits only (no sign, no
    underscores, no Unicode digits, at most 20 of them)."""
    value = strip_ws(raw)
    if _DIGITS.fullmatch(value) is None:
        raise bad_request(Reason.INVALID, what)
    number = int(value)
    if number > max_value:
        raise bad_request(Reason.INVALID, what)
    return number


def peer_mode(raw: str) -> PeerMode:
    """PROTOCOL §2.1: LEECH or SEED; SEEDER is accepted as SEED."""
    mode = _PEER_MODES.get(strip_ws(raw))
    if mode is None:
        raise bad_request(Reason.INVALID, "PeerMode")
    return mode


def addr_type(raw: str) -> AddrType:
    try:
        return AddrType(strip_ws(raw))
    except ValueError:
        raise bad_request(Reason.INVALID, "PeerAddress addrType") from None


def address_type(raw: str) -> AddressType:
    try:
        return AddressType(strip_ws(raw))
    except ValueError:
        raise bad_request(Reason.INVALID, "PeerAddress type") from None


def nat_ability(raw: str) -> NatAbility:
    try:
        return NatAbility(strip_ws(raw))
    except ValueError:
        raise bad_request(Reason.INVALID, "PeerNum abilityNAT") from None


def is_mdns_hostname(value: str) -> bool:
    """PROTOCOL §14.5: an RFC 8445-style mDNS candidate name, a UUID (8-4-4-4-12
    hex digits, as browsers generate them) followed by ``.local``; no other
    name is accepted where an IP literal is due."""
    if len(value) != 42 or not value.endswith(".local"):
        return False
    groups = value[:36].split("-")
    if [len(g) for g in groups] != [8, 4, 4, 4, 12]:
        return False
    return all(c in "0123456789abcdefABCDEF" for g in groups for c in g)


def candidate_ip(raw: str, family: AddrType) -> str:
    """An ICE offer candidate's address: an IP literal of ``family``, or a
    browser's mDNS name, passed through lower-cased (PROTOCOL §14.5)."""
    value = strip_ws(raw)
    if is_mdns_hostname(value):
        return value.lower()
    return ip_address(value, family)


def ip_address(raw: str, family: AddrType) -> str:
    """PROTOCOL §2.1: ``ip`` must be an address of the family ``addrType`` names.

    Returned in canonical form (``str(ipaddress.ip_address(...))``). IPv6
    zone IDs ("fe80::1%eth0") mean nothing off the sender's host and are
    refused.
    """
    value = strip_ws(raw)
    if "%" in value:
        raise bad_request(Reason.INVALID, "PeerAddress ip")
    try:
        if family is AddrType.IPV4:
            return str(ipaddress.IPv4Address(value))
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        raise bad_request(Reason.INVALID, "PeerAddress ip") from None
