"""STUN message codec: RFC 8489, and recognition of RFC 3489 ("classic") messages.

Pure functions and frozen values: bytes in, values out, no sockets, no clock.

Naming: every function that reads bytes from the network ends in
``_untrusted`` and raises exactly one exception type, :class:`StunError`,
whose ``reason`` is a short string meant as a drop-counter key. Encoders take
values from our own code and raise :class:`ValueError` on arguments that no
valid message could carry (a programming error, not a network event).

Wire rules enforced here, with the section that states them:

* header (RFC 8489 §5): the two most significant bits are zero, the length
  counts the bytes after the 20-byte header, is a multiple of 4 and equals
  what the datagram holds; the magic cookie is 0x2112A442. A message without
  the cookie is an RFC 3489 message (RFC 8489 §11, RFC 3489 §11.1): its
  transaction ID is the 16 bytes after the length field, kept whole;
* attributes (RFC 8489 §14): type, length, value, padded to 4 bytes; the
  padding lies inside the message length; padding bytes are ignored;
* MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message up to the
  attribute, with the header length rewritten to end just after it;
  attributes after it are ignored except MESSAGE-INTEGRITY-SHA256 and
  FINGERPRINT; compared with :func:`hmac.compare_digest`;
* MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): HMAC-SHA256, 16 to 32 bytes in
  steps of 4 (truncated); only FINGERPRINT may follow it;
* FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message up to the attribute,
  XOR 0x5354554E; it is the last attribute.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import struct
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

__all__ = [
    "ATTR_CHANGE_REQUEST",
    "ATTR_ERROR_CODE",
    "ATTR_FINGERPRINT",
    "ATTR_ICE_CONTROLLED",
    "ATTR_ICE_CONTROLLING",
    "ATTR_MAPPED_ADDRESS",
    "ATTR_MESSAGE_INTEGRITY",
    "ATTR_MESSAGE_INTEGRITY_SHA256",
    "ATTR_NONCE",
    "ATTR_PASSWORD_ALGORITHM",
    "ATTR_PASSWORD_ALGORITHMS",
    "ATTR_PRIORITY",
    "ATTR_REALM",
    "ATTR_SOFTWARE",
    "ATTR_UNKNOWN_ATTRIBUTES",
    "ATTR_USERHASH",
    "ATTR_USERNAME",
    "ATTR_USE_CANDIDATE",
    "ATTR_XOR_MAPPED_ADDRESS",
    "FINGERPRINT_XOR",
    "HEADER_LEN",
    "MAGIC_COOKIE",
    "METHOD_BINDING",
    "REASON_BAD_FINGERPRINT",
    "REASON_MALFORMED",
    "StunAttribute",
    "StunClass",
    "StunError",
    "StunHeader",
    "StunMessage",
    "compute_fingerprint",
    "decode_error_code_untrusted",
    "decode_mapped_address_untrusted",
    "decode_software_untrusted",
    "decode_unknown_attributes_untrusted",
    "decode_xor_mapped_address_untrusted",
    "encode_error_code",
    "encode_mapped_address",
    "encode_message",
    "encode_software",
    "encode_unknown_attributes",
    "encode_xor_mapped_address",
    "long_term_key",
    "message_type",
    "parse_header_untrusted",
    "parse_message_untrusted",
    "short_term_key",
    "split_message_type",
    "verify_message_integrity",
    "verify_message_integrity_sha256",
]

# RFC 8489 §5.
HEADER_LEN: Final = 20
MAGIC_COOKIE: Final = 0x2112A442
MAGIC_COOKIE_BYTES: Final = b"\x21\x12\xa4\x42"
# RFC 8489 §14.7.
FINGERPRINT_XOR: Final = 0x5354554E
# RFC 8489 §18.3: types below 0x8000 are comprehension-required.
COMPREHENSION_OPTIONAL_MIN: Final = 0x8000

METHOD_BINDING: Final = 0x001

# Attribute types (RFC 8489 §18.3; RFC 8445 §16.1 for the ICE ones; RFC 3489
# §11.2 / RFC 5780 §7.2 for CHANGE-REQUEST).
ATTR_MAPPED_ADDRESS: Final = 0x0001
ATTR_CHANGE_REQUEST: Final = 0x0003
ATTR_USERNAME: Final = 0x0006
ATTR_MESSAGE_INTEGRITY: Final = 0x0008
ATTR_ERROR_CODE: Final = 0x0009
ATTR_UNKNOWN_ATTRIBUTES: Final = 0x000A
ATTR_REALM: Final = 0x0014
ATTR_NONCE: Final = 0x0015
ATTR_MESSAGE_INTEGRITY_SHA256: Final = 0x001C
ATTR_PASSWORD_ALGORITHM: Final = 0x001D
ATTR_USERHASH: Final = 0x001E
ATTR_XOR_MAPPED_ADDRESS: Final = 0x0020
ATTR_PRIORITY: Final = 0x0024
ATTR_USE_CANDIDATE: Final = 0x0025
ATTR_PASSWORD_ALGORITHMS: Final = 0x8002
ATTR_SOFTWARE: Final = 0x8022
ATTR_FINGERPRINT: Final = 0x8028
ATTR_ICE_CONTROLLED: Final = 0x8029
ATTR_ICE_CONTROLLING: Final = 0x802A

# Drop-counter keys carried by StunError.reason.
REASON_MALFORMED: Final = "stun-malformed"
REASON_BAD_FINGERPRINT: Final = "stun-bad-fingerprint"

_FAMILY_IPV4: Final = 0x01
_FAMILY_IPV6: Final = 0x02
_V4_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"
# RFC 8489 §14.3, §14.8, §14.14: text attributes are bounded.
_MAX_TEXT_CHARS: Final = 127
_MAX_TEXT_BYTES: Final = 763

_HEADER_FULL = struct.Struct("!HH4s12s")
_TL = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_ADDR4 = struct.Struct("!BBH4s")
_ADDR6 = struct.Struct("!BBH16s")


class StunError(Exception):
    """The one error a STUN parser raises; ``reason`` is a drop-counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class StunClass(IntEnum):
    """The two class bits C1 C0 of the message type (RFC 8489 §5)."""

    REQUEST = 0
    INDICATION = 1
    SUCCESS = 2
    ERROR = 3


def message_type(method: int, cls: int) -> int:
    """Interleave a 12-bit method and a 2-bit class into the 14-bit type (RFC 8489 §5)."""
    if not 0 <= method <= 0xFFF:
        raise ValueError(f"method out of range: {method:#x}")
    if not 0 <= cls <= 3:
        raise ValueError(f"class out of range: {cls}")
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((cls & 1) << 4)
        | ((cls & 2) << 7)
    )


def split_message_type(msg_type: int) -> tuple[int, StunClass]:
    """Inverse of :func:`message_type`: ``(method, class)``."""
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    cls = ((msg_type >> 4) & 1) | ((msg_type >> 7) & 2)
    return method, StunClass(cls)


@dataclass(frozen=True, slots=True)
class StunHeader:
    """A checked STUN header.

    ``transaction_id`` is 12 bytes for RFC 5389/8489 and 16 bytes for an
    RFC 3489 message (``classic``), whose ID includes what would be the cookie.
    """

    msg_type: int
    method: int
    cls: StunClass
    length: int
    transaction_id: bytes
    classic: bool


@dataclass(frozen=True, slots=True)
class StunAttribute:
    """One attribute as read; ``offset`` is where its 4-byte TLV header starts."""

    type: int
    value: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class StunMessage:
    """A parsed STUN message.

    ``attributes`` keeps wire order and omits what RFC 8489 §14.5/§14.6 say
    to ignore (attributes after MESSAGE-INTEGRITY other than
    MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and after
    MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT). ``raw`` is the message.
    """

    method: int
    cls: StunClass
    transaction_id: bytes
    attributes: tuple[StunAttribute, ...]
    classic: bool
    raw: bytes

    @property
    def msg_type(self) -> int:
        return message_type(self.method, self.cls)

    def get(self, attr_type: int) -> bytes | None:
        """The value of the first attribute of this type, or ``None``."""
        for attr in self.attributes:
            if attr.type == attr_type:
                return attr.value
        return None

    def find(self, attr_type: int) -> StunAttribute | None:
        for attr in self.attributes:
            if attr.type == attr_type:
                return attr
        return None

    def types(self) -> tuple[int, ...]:
        return tuple(attr.type for attr in self.attributes)


# --------------------------------------------------------------------------
# Parsing


def parse_header_untrusted(data: bytes | bytearray | memoryview) -> StunHeader:
    """Check the 20-byte header of a datagram that should be one STUN message."""
    if len(data) < HEADER_LEN:
        raise StunError(REASON_MALFORMED, "shorter than a STUN header")
    msg_type, length, cookie_bytes, tid = _HEADER_FULL.unpack_from(data)
    # RFC 8489 §5: the most significant 2 bits of every STUN message are zeroes.
    if msg_type & 0xC000:
        raise StunError(REASON_MALFORMED, "top two bits set")
    # RFC 8489 §5: the length is a multiple of 4 (attributes are padded) and,
    # over UDP, the datagram holds exactly the header plus that many bytes.
    if length & 3:
        raise StunError(REASON_MALFORMED, "length not a multiple of 4")
    if HEADER_LEN + length != len(data):
        raise StunError(REASON_MALFORMED, "length does not match the datagram")
    method, cls = split_message_type(msg_type)
    classic = cookie_bytes != MAGIC_COOKIE_BYTES
    # RFC 3489 §11.1: 128-bit transaction ID, no magic cookie (RFC 8489 §11).
    transaction_id = bytes(data[4:HEADER_LEN]) if classic else tid
    return StunHeader(msg_type, method, cls, length, transaction_id, classic)


def parse_message_untrusted(
    data: bytes | bytearray | memoryview, *, check_fingerprint: bool = True
) -> StunMessage:
    """Parse one STUN message (one UDP datagram).

    Raises :class:`StunError` with reason ``stun-malformed`` for framing
    errors and ``stun-bad-fingerprint`` for a FINGERPRINT that does not match
    (unless ``check_fingerprint`` is false) or is not the last attribute.
    """
    data = bytes(data)  # no copy when it already is bytes
    header = parse_header_untrusted(data)
    end = len(data)
    pos = HEADER_LEN
    attributes: list[StunAttribute] = []
    after_integrity = False  # RFC 8489 §14.5
    after_integrity_sha256 = False  # RFC 8489 §14.6
    fingerprint_seen = False
    while pos < end:
        if pos + 4 > end:
            raise StunError(REASON_MALFORMED, "truncated attribute header")
        attr_type, attr_len = _TL.unpack_from(data, pos)
        value_start = pos + 4
        next_pos = value_start + ((attr_len + 3) & ~3)
        # RFC 8489 §14: value and padding lie inside the message length.
        if next_pos > end:
            raise StunError(REASON_MALFORMED, "attribute overruns the message")
        # RFC 8489 §14.7: FINGERPRINT, when present, is the last attribute.
        if fingerprint_seen:
            raise StunError(REASON_BAD_FINGERPRINT, "attribute after FINGERPRINT")
        value = data[value_start : value_start + attr_len]
        if attr_type == ATTR_FINGERPRINT:
            if attr_len != 4:
                raise StunError(REASON_MALFORMED, "FINGERPRINT length is not 4")
            fingerprint_seen = True
            if check_fingerprint and _U32.unpack(value)[0] != compute_fingerprint(data[:pos]):
                raise StunError(REASON_BAD_FINGERPRINT, "FINGERPRINT does not match")
            attributes.append(StunAttribute(attr_type, value, pos))
        elif after_integrity_sha256:
            pass  # RFC 8489 §14.6: only FINGERPRINT counts after MI-SHA256.
        elif attr_type == ATTR_MESSAGE_INTEGRITY_SHA256:
            # RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
            if attr_len < 16 or attr_len > 32 or attr_len & 3:
                raise StunError(REASON_MALFORMED, "bad MESSAGE-INTEGRITY-SHA256 length")
            after_integrity_sha256 = True
            attributes.append(StunAttribute(attr_type, value, pos))
        elif after_integrity:
            pass  # RFC 8489 §14.5: ignored after MESSAGE-INTEGRITY.
        elif attr_type == ATTR_MESSAGE_INTEGRITY:
            # RFC 8489 §14.5: an HMAC-SHA1, 20 bytes.
            if attr_len != 20:
                raise StunError(REASON_MALFORMED, "MESSAGE-INTEGRITY length is not 20")
            after_integrity = True
            attributes.append(StunAttribute(attr_type, value, pos))
        else:
            attributes.append(StunAttribute(attr_type, value, pos))
        pos = next_pos
    return StunMessage(
        method=header.method,
        cls=header.cls,
        transaction_id=header.transaction_id,
        attributes=tuple(attributes),
        classic=header.classic,
        raw=data,
    )


# --------------------------------------------------------------------------
# FINGERPRINT and MESSAGE-INTEGRITY


def compute_fingerprint(prefix: bytes | bytearray) -> int:
    """CRC-32 of the message up to FINGERPRINT, XOR 0x5354554E (RFC 8489 §14.7).

    ``prefix`` is the message up to (not including) the FINGERPRINT
    attribute, its header length already counting FINGERPRINT.
    """
    return zlib.crc32(prefix) ^ FINGERPRINT_XOR


def _with_length(prefix: bytes, length: int) -> bytes:
    return prefix[:2] + _U16.pack(length) + prefix[4:]


def _hmac_input(raw: bytes, attr: StunAttribute) -> bytes:
    # RFC 8489 §14.5/§14.6: the text is the message up to the attribute, with
    # the header length set as if the attribute were the last one.
    return _with_length(raw[: attr.offset], attr.offset - HEADER_LEN + 4 + len(attr.value))


def verify_message_integrity(message: StunMessage, key: bytes) -> bool:
    """Check MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5); absent means false."""
    attr = message.find(ATTR_MESSAGE_INTEGRITY)
    if attr is None:
        return False
    expected = hmac.new(key, _hmac_input(message.raw, attr), hashlib.sha1).digest()
    return hmac.compare_digest(attr.value, expected)


def verify_message_integrity_sha256(message: StunMessage, key: bytes) -> bool:
    """Check MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6), truncated values included."""
    attr = message.find(ATTR_MESSAGE_INTEGRITY_SHA256)
    if attr is None:
        return False
    digest = hmac.new(key, _hmac_input(message.raw, attr), hashlib.sha256).digest()
    return hmac.compare_digest(attr.value, digest[: len(attr.value)])


def _opaque_string(text: str) -> str:
    # RFC 8265 §4.2 (OpaqueString), the mapping part RFC 8489 §9.2.2 relies
    # on: non-ASCII spaces become U+0020, then NFC.
    mapped = "".join(" " if ch != " " and unicodedata.category(ch) == "Zs" else ch for ch in text)
    return unicodedata.normalize("NFC", mapped)


def short_term_key(password: str) -> bytes:
    """Short-term credential key: OpaqueString(password) (RFC 8489 §9.1.1)."""
    return _opaque_string(password).encode("utf-8")


def long_term_key(username: str, realm: str, password: str, *, algorithm: str = "md5") -> bytes:
    """Long-term credential key (RFC 8489 §9.2.2).

    ``MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))``, or
    SHA-256 of the same text when ``algorithm`` is ``"sha256"`` (the
    PASSWORD-ALGORITHM of RFC 8489 §18.5).
    """
    text = f"{username}:{_opaque_string(realm)}:{_opaque_string(password)}".encode()
    if algorithm == "md5":
        # MD5 is what RFC 8489 §9.2.2 mandates for this key; not our choice.
        return hashlib.md5(text).digest()  # noqa: S324
    if algorithm == "sha256":
        return hashlib.sha256(text).digest()
    raise ValueError(f"unknown password algorithm: {algorithm!r}")


# --------------------------------------------------------------------------
# Building


def encode_message(
    method: int,
    cls: int,
    transaction_id: bytes,
    attributes: Iterable[tuple[int, bytes]] = (),
    *,
    integrity_key: bytes | None = None,
    integrity_sha256_key: bytes | None = None,
    integrity_sha256_length: int = 32,
    fingerprint: bool = False,
    padding: int = 0,
) -> bytes:
    """Build a STUN message.

    A 12-byte ``transaction_id`` gives an RFC 8489 message (magic cookie
    written); a 16-byte one gives an RFC 3489 message (no cookie). The
    attributes are written in order, then MESSAGE-INTEGRITY, then
    MESSAGE-INTEGRITY-SHA256, then FINGERPRINT (the order RFC 8489 §14.5-14.7
    requires). ``padding`` is the byte value used for attribute padding
    (ignored by receivers, RFC 8489 §14; RFC 5769 uses 0x20).
    """
    if len(transaction_id) == 12:
        id_field = MAGIC_COOKIE_BYTES + transaction_id
    elif len(transaction_id) == 16:
        id_field = bytes(transaction_id)
    else:
        raise ValueError("transaction ID must be 12 (RFC 8489) or 16 (RFC 3489) bytes")
    if not 0 <= padding <= 0xFF:
        raise ValueError("padding must be a byte value")
    msg_type = message_type(method, cls)
    pad_byte = bytes((padding,))
    body = bytearray()
    for attr_type, value in attributes:
        _append_attribute(body, attr_type, value, pad_byte)

    def prefix(extra: int) -> bytes:
        length = len(body) + extra
        if length > 0xFFFF:
            raise ValueError("message too long")
        return _TL.pack(msg_type, length) + id_field + bytes(body)

    if integrity_key is not None:
        mac = hmac.new(integrity_key, prefix(24), hashlib.sha1).digest()
        _append_attribute(body, ATTR_MESSAGE_INTEGRITY, mac, pad_byte)
    if integrity_sha256_key is not None:
        n = integrity_sha256_length
        if n < 16 or n > 32 or n & 3:
            raise ValueError("MESSAGE-INTEGRITY-SHA256 length must be 16..32, a multiple of 4")
        mac = hmac.new(integrity_sha256_key, prefix(4 + n), hashlib.sha256).digest()[:n]
        _append_attribute(body, ATTR_MESSAGE_INTEGRITY_SHA256, mac, pad_byte)
    if fingerprint:
        crc = compute_fingerprint(prefix(8))
        _append_attribute(body, ATTR_FINGERPRINT, _U32.pack(crc), pad_byte)
    return prefix(0)


def _append_attribute(body: bytearray, attr_type: int, value: bytes, pad_byte: bytes) -> None:
    if not 0 <= attr_type <= 0xFFFF:
        raise ValueError(f"attribute type out of range: {attr_type:#x}")
    if len(value) > 0xFFFF:
        raise ValueError("attribute value too long")
    body += _TL.pack(attr_type, len(value))
    body += value
    body += pad_byte * (-len(value) & 3)


# --------------------------------------------------------------------------
# Attribute values


def _pack_ip(host: str) -> tuple[int, bytes]:
    """``(family, packed)`` for an address literal; IPv4-mapped IPv6 becomes IPv4."""
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        if packed[:12] == _V4_MAPPED_PREFIX:
            return _FAMILY_IPV4, packed[12:]
        return _FAMILY_IPV6, packed
    return _FAMILY_IPV4, socket.inet_pton(socket.AF_INET, host)


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")


def encode_mapped_address(host: str, port: int) -> bytes:
    """MAPPED-ADDRESS value (RFC 8489 §14.1; also RFC 3489 §11.2.1 for IPv4)."""
    _check_port(port)
    family, packed = _pack_ip(host)
    return bytes((0, family)) + port.to_bytes(2, "big") + packed


def encode_xor_mapped_address(host: str, port: int, transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS value (RFC 8489 §14.2) for a 12-byte transaction ID."""
    _check_port(port)
    if len(transaction_id) != 12:
        raise ValueError("XOR-MAPPED-ADDRESS needs a 12-byte transaction ID")
    family, packed = _pack_ip(host)
    key = MAGIC_COOKIE_BYTES + transaction_id
    xored = bytes(a ^ b for a, b in zip(packed, key, strict=False))
    return bytes((0, family)) + (port ^ (MAGIC_COOKIE >> 16)).to_bytes(2, "big") + xored


def _unpack_address(value: bytes) -> tuple[int, int, bytes]:
    if len(value) == 8:
        _, family, port, packed = _ADDR4.unpack(value)
        if family == _FAMILY_IPV4:
            return family, port, packed
    elif len(value) == 20:
        _, family, port, packed = _ADDR6.unpack(value)
        if family == _FAMILY_IPV6:
            return family, port, packed
    raise StunError(REASON_MALFORMED, "bad address attribute")


def _ip_text(family: int, packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if family == _FAMILY_IPV4 else socket.AF_INET6, packed)


def decode_mapped_address_untrusted(value: bytes) -> tuple[str, int]:
    """``(host, port)`` from a MAPPED-ADDRESS value (RFC 8489 §14.1)."""
    family, port, packed = _unpack_address(bytes(value))
    return _ip_text(family, packed), port


def decode_xor_mapped_address_untrusted(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    """``(host, port)`` from an XOR-MAPPED-ADDRESS value (RFC 8489 §14.2)."""
    if len(transaction_id) != 12:
        raise StunError(REASON_MALFORMED, "XOR-MAPPED-ADDRESS needs a 12-byte transaction ID")
    family, xport, xpacked = _unpack_address(bytes(value))
    key = MAGIC_COOKIE_BYTES + transaction_id
    packed = bytes(a ^ b for a, b in zip(xpacked, key, strict=False))
    return _ip_text(family, packed), xport ^ (MAGIC_COOKIE >> 16)


def _check_text(text: str, what: str) -> bytes:
    encoded = text.encode("utf-8")
    if len(text) > _MAX_TEXT_CHARS or len(encoded) > _MAX_TEXT_BYTES:
        raise ValueError(f"{what} must be fewer than 128 characters")
    return encoded


def _text_untrusted(value: bytes, what: str) -> str:
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise StunError(REASON_MALFORMED, f"{what} is not UTF-8") from None
    if len(text) > _MAX_TEXT_CHARS or len(value) > _MAX_TEXT_BYTES:
        raise StunError(REASON_MALFORMED, f"{what} too long")
    return text


def encode_error_code(code: int, reason: str = "") -> bytes:
    """ERROR-CODE value (RFC 8489 §14.8): class = hundreds, number = code % 100."""
    if not 300 <= code <= 699:
        raise ValueError(f"error code out of range 300..699: {code}")
    return bytes((0, 0, code // 100, code % 100)) + _check_text(reason, "reason phrase")


def decode_error_code_untrusted(value: bytes) -> tuple[int, str]:
    """``(code, reason)`` from an ERROR-CODE value (RFC 8489 §14.8)."""
    if len(value) < 4:
        raise StunError(REASON_MALFORMED, "ERROR-CODE too short")
    err_class, number = value[2] & 0x07, value[3]
    if not 3 <= err_class <= 6 or number > 99:
        raise StunError(REASON_MALFORMED, "ERROR-CODE out of range")
    return err_class * 100 + number, _text_untrusted(value[4:], "reason phrase")


def encode_unknown_attributes(types: Iterable[int], *, classic: bool = False) -> bytes:
    """UNKNOWN-ATTRIBUTES value (RFC 8489 §14.13).

    With ``classic`` an odd-length list repeats its last type so the value is
    a multiple of 4 bytes, as RFC 3489 §11.2.12 requires.
    """
    listed = list(types)
    for attr_type in listed:
        if not 0 <= attr_type <= 0xFFFF:
            raise ValueError(f"attribute type out of range: {attr_type:#x}")
    if classic and len(listed) % 2:
        listed.append(listed[-1])
    return struct.pack(f"!{len(listed)}H", *listed)


def decode_unknown_attributes_untrusted(value: bytes) -> tuple[int, ...]:
    if len(value) % 2:
        raise StunError(REASON_MALFORMED, "UNKNOWN-ATTRIBUTES length is odd")
    return struct.unpack(f"!{len(value) // 2}H", value)


def encode_software(text: str) -> bytes:
    """SOFTWARE value (RFC 8489 §14.14): UTF-8, fewer than 128 characters."""
    return _check_text(text, "SOFTWARE")


def decode_software_untrusted(value: bytes) -> str:
    return _text_untrusted(value, "SOFTWARE")
