"""Stateless STUN Binding responder for the tracker port (PROTOCOL §5).

Theory of operation
-------------------
:meth:`BindingResponder.handle_untrusted` takes one datagram and the address
it came from and returns the datagram to send back to that address, or
``None``. It keeps no per-client state; its only attributes are counters.

What is answered:

* an RFC 8489 Binding request gets a Binding success response holding
  XOR-MAPPED-ADDRESS (the datagram's source) and FINGERPRINT, nothing else:
  40 bytes for an IPv4 source, 52 for IPv6 (RFC 8489 §6.3.1.1, §14.2, §7);
* an RFC 3489 Binding request (no magic cookie) gets a Binding success
  response holding MAPPED-ADDRESS, with the 16-byte transaction ID echoed byte
  for byte (RFC 8489 §11, RFC 3489 §11.1, §11.2.1). We send neither
  SOURCE-ADDRESS nor CHANGED-ADDRESS (RFC 3489 §8.2): we have no second
  address to offer, and PROTOCOL §5 asks for MAPPED-ADDRESS only;
* a Binding request with comprehension-required attributes we do not know
  (type < 0x8000) gets a 420 error response with UNKNOWN-ATTRIBUTES, plus
  FINGERPRINT for RFC 8489 (RFC 8489 §6.3.1, §14.13; RFC 3489 §8.2).

What is dropped, each counted in ``drops`` under its reason:

* ``stun-malformed``: header or attribute framing errors (RFC 8489 §5, §14);
* ``stun-bad-fingerprint``: FINGERPRINT wrong or not last (RFC 8489 §7, §14.7);
* ``stun-indication``: indications, e.g. Binding keepalives; an indication is
  never answered (RFC 8489 §6.3.2);
* ``stun-not-request``: success and error responses (we send no requests);
* ``stun-not-binding``: requests of any other method;
* ``stun-change-request``: a CHANGE-REQUEST asking to change IP or port;
* ``stun-response-too-large``: the response would be more than
  ``max_response_ratio`` (PROTOCOL §5: 2) times the request, with the one exception
  PROTOCOL §5 makes: a bare 20-byte RFC 8489 request from an IPv6 source gets its
  52-byte answer (XOR-MAPPED-ADDRESS needs 24 bytes for IPv6). A bare RFC
  3489 request from IPv6 (44-byte answer) is still dropped; a request
  carrying FINGERPRINT (28 bytes) or any attribute is answered. A minimal
  420 (24-byte request) fits because its reason phrase is then left empty;
* ``stun-bad-source``: the source address is not an IP literal (a caller bug).

CHANGE-REQUEST (RFC 3489 §11.2.4, RFC 5780 §7.2)
------------------------------------------------
This server has one address, so it cannot send from another IP or port. A
request whose CHANGE-REQUEST sets the change-IP or change-port flag is
dropped: not answered, and not given a 420 either, though RFC 8489 §11 would
allow that (it treats the attribute as unknown). Why drop:

* answering it from the same address makes RFC 3489 / RFC 5780 clients take
  our reply for one from the other address and misclassify the NAT;
* a 420 misleads the RFC 3489 algorithm (RFC 3489 §10.1) the same way, since
  it only asks whether *a* response came back: measured with Debian's
  ``stun-client`` 0.97 on loopback, a 420 to Test II gives "Open", while
  silence gives "Firewall" (no NAT, Test II lost), which is what a
  single-address server can honestly tell;
* silence is what every generation of client reads as "the server could not
  reach you from there".

A CHANGE-REQUEST with neither flag set asks for nothing we cannot do: it is
RFC 3489 Test I, which ``stun-client`` sends in every Binding request, so it
is answered like a plain Binding request (dropping it too makes
``stun-client`` report "Blocked"). ``turnutils_stunclient -f`` (RFC 5780)
waits forever against any single-address server, whichever of drop, 420 or
answer we choose; its plain mode sends a bare request and works.

Speed
-----
This is the hot path of every ICE agent that points at the tracker. The
common case, a bare RFC 8489 request from an IPv4 source, is handled inline
in :meth:`BindingResponder.handle_untrusted`; every response shape is packed
with one precompiled :class:`struct.Struct`, and nothing is allocated besides
the response and a few small ints. ``bench/stun_bench.py`` measures it.
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections import Counter
from typing import Final

from .codec import (
    ATTR_CHANGE_REQUEST,
    ATTR_ERROR_CODE,
    ATTR_FINGERPRINT,
    ATTR_MAPPED_ADDRESS,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_MESSAGE_INTEGRITY_SHA256,
    ATTR_NONCE,
    ATTR_PASSWORD_ALGORITHM,
    ATTR_PRIORITY,
    ATTR_REALM,
    ATTR_UNKNOWN_ATTRIBUTES,
    ATTR_USE_CANDIDATE,
    ATTR_USERHASH,
    ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS,
    FINGERPRINT_XOR,
    HEADER_LEN,
    MAGIC_COOKIE,
    METHOD_BINDING,
    REASON_BAD_FINGERPRINT,
    REASON_MALFORMED,
    StunClass,
    encode_error_code,
    encode_message,
    encode_unknown_attributes,
)

__all__ = [
    "KNOWN_REQUEST_ATTRIBUTES",
    "REASON_BAD_SOURCE",
    "REASON_CHANGE_REQUEST",
    "REASON_INDICATION",
    "REASON_NOT_BINDING",
    "REASON_NOT_REQUEST",
    "REASON_TOO_LARGE",
    "Address",
    "BindingResponder",
]

Address = tuple[str, int] | tuple[str, int, int, int]

REASON_INDICATION: Final = "stun-indication"
REASON_NOT_REQUEST: Final = "stun-not-request"
REASON_NOT_BINDING: Final = "stun-not-binding"
REASON_CHANGE_REQUEST: Final = "stun-change-request"
REASON_TOO_LARGE: Final = "stun-response-too-large"
REASON_BAD_SOURCE: Final = "stun-bad-source"

# Comprehension-required attributes (type < 0x8000) a Binding request may
# carry that we understand, in the sense that ignoring them is the right
# handling for an unauthenticated Binding server: the RFC 8489 §18.3 registry
# entries a request can hold, and the ICE ones (RFC 8445 §16.1). Anything
# else below 0x8000 earns a 420 (RFC 8489 §6.3.1); that includes RFC 3489's
# RESPONSE-ADDRESS (0x0002), which RFC 8489 §11 says to treat as unknown.
KNOWN_REQUEST_ATTRIBUTES: Final = frozenset(
    {
        ATTR_MAPPED_ADDRESS,
        ATTR_CHANGE_REQUEST,
        ATTR_USERNAME,
        ATTR_MESSAGE_INTEGRITY,
        ATTR_ERROR_CODE,
        ATTR_UNKNOWN_ATTRIBUTES,
        ATTR_REALM,
        ATTR_NONCE,
        ATTR_MESSAGE_INTEGRITY_SHA256,
        ATTR_PASSWORD_ALGORITHM,
        ATTR_USERHASH,
        ATTR_XOR_MAPPED_ADDRESS,
        ATTR_PRIORITY,
        ATTR_USE_CANDIDATE,
    }
)

# RFC 3489 §11.2.4: change-IP (A) and change-port (B) flags.
_CHANGE_FLAGS: Final = 0x06
# ERROR-CODE values for our 420 (RFC 8489 §14.8). The phrase is the IANA
# one; RFC 3489 §11.2.9 wants phrases a multiple of 4 bytes, so the classic one
# is padded with spaces. When the phrase would push the response past
# ``max_response_ratio`` times the request (a 24-byte request with one unknown
# attribute), the phrase is left empty, which RFC 8489 §14.8 allows.
_ERROR_420_PHRASES: Final = (
    (encode_error_code(420, "Unknown Attribute"), encode_error_code(420)),
    (encode_error_code(420, "Unknown Attribute   "), encode_error_code(420)),
)

_BINDING_REQUEST: Final = 0x0001
_BINDING_SUCCESS: Final = 0x0101
_COOKIE_HIGH: Final = MAGIC_COOKIE >> 16
_V4_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"

_HDR = struct.Struct("!HHI")
_TL = struct.Struct("!HH")
_U32 = struct.Struct("!I")
# Response shapes, FINGERPRINT excluded: header (type, length, the 16 bytes
# after the length echoed), then the address attribute.
_XMA4 = struct.Struct("!HH16sHHHHI")  # RFC 8489 §14.2, IPv4
_XMA6 = struct.Struct("!HH16sHHHH16s")  # RFC 8489 §14.2, IPv6
_MA4 = struct.Struct("!HH16sHHHH4s")  # RFC 8489 §14.1 / RFC 3489 §11.2.1
_MA6 = struct.Struct("!HH16sHHHH16s")
_FP_TL: Final = _TL.pack(ATTR_FINGERPRINT, 4)
_LEN_XMA4_FP: Final = 8 + 4 + 8  # body length: XOR-MAPPED-ADDRESS + FINGERPRINT
_LEN_XMA6_FP: Final = 20 + 4 + 8
_SIZE_XMA4: Final = HEADER_LEN + _LEN_XMA4_FP  # 40
_SIZE_XMA6: Final = HEADER_LEN + _LEN_XMA6_FP  # 52
_SIZE_MA4: Final = HEADER_LEN + 12  # 32
_SIZE_MA6: Final = HEADER_LEN + 24  # 44

_crc32 = zlib.crc32
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


class BindingResponder:
    """Answers STUN Binding requests; see the module docstring for the rules."""

    __slots__ = ("_bare_ipv4_fits", "_max_ratio", "answered", "drops", "errors_sent")

    def __init__(self, *, max_response_ratio: float = 2.0) -> None:
        if max_response_ratio <= 0:
            raise ValueError("max_response_ratio must be positive")
        self._max_ratio = max_response_ratio
        self._bare_ipv4_fits = max_response_ratio * HEADER_LEN >= _SIZE_XMA4
        self.drops: Counter[str] = Counter()
        self.answered = 0  # responses returned, 420s included
        self.errors_sent = 0  # of which 420 error responses

    def handle_untrusted(self, data: bytes, source: Address) -> bytes | None:
        """The response to send back to ``source``, or ``None`` (counted in ``drops``)."""
        if len(data) == HEADER_LEN:
            msg_type, length, cookie = _HDR.unpack_from(data)
            if msg_type == _BINDING_REQUEST and length == 0:
                host = source[0]
                if cookie == MAGIC_COOKIE and ":" not in host and self._bare_ipv4_fits:
                    # The common case, inlined: a bare RFC 8489 request from
                    # IPv4 (RFC 8489 §14.2: X-Port = port ^ cookie >> 16,
                    # X-Address = address ^ cookie; then FINGERPRINT, §14.7).
                    try:
                        head = _XMA4.pack(
                            _BINDING_SUCCESS,
                            _LEN_XMA4_FP,
                            data[4:HEADER_LEN],
                            ATTR_XOR_MAPPED_ADDRESS,
                            8,
                            1,
                            source[1] ^ _COOKIE_HIGH,
                            int.from_bytes(_inet_pton(_AF_INET, host), "big") ^ MAGIC_COOKIE,
                        )
                    except (OSError, struct.error, TypeError):
                        return self._drop(REASON_BAD_SOURCE)
                    self.answered += 1
                    return head + _FP_TL + _U32.pack(_crc32(head) ^ FINGERPRINT_XOR)
                return self._success(data, HEADER_LEN, source, cookie != MAGIC_COOKIE)
        return self._handle_general(data, len(data), source)

    def _drop(self, reason: str) -> bytes | None:
        """Count a drop; returns ``None`` so call sites can ``return self._drop(...)``."""
        self.drops[reason] += 1
        return None

    def _handle_general(self, data: bytes, n: int, source: Address) -> bytes | None:
        if n < HEADER_LEN:
            return self._drop(REASON_MALFORMED)
        msg_type, length, cookie = _HDR.unpack_from(data)
        # RFC 8489 §5: top two bits zero; length a multiple of 4 and equal to
        # what follows the header in the datagram.
        if msg_type & 0xC000 or length & 3 or length + HEADER_LEN != n:
            return self._drop(REASON_MALFORMED)
        unknown: list[int] | None = None
        change = 0
        change_malformed = False
        after_integrity = after_integrity_sha256 = fingerprint_seen = False
        pos = HEADER_LEN
        # (n - pos) stays a positive multiple of 4 inside the loop, so a
        # 4-byte attribute header always fits.
        while pos < n:
            attr_type, attr_len = _TL.unpack_from(data, pos)
            next_pos = pos + 4 + ((attr_len + 3) & ~3)
            if next_pos > n:  # RFC 8489 §14: value and padding inside the message
                return self._drop(REASON_MALFORMED)
            if fingerprint_seen:  # RFC 8489 §14.7: FINGERPRINT is last
                return self._drop(REASON_BAD_FINGERPRINT)
            if attr_type == ATTR_FINGERPRINT:
                if attr_len != 4:
                    return self._drop(REASON_MALFORMED)
                # RFC 8489 §7, §14.7: CRC-32 of what precedes it, XOR 0x5354554E.
                crc = _crc32(memoryview(data)[:pos]) ^ FINGERPRINT_XOR
                if crc != _U32.unpack_from(data, pos + 4)[0]:
                    return self._drop(REASON_BAD_FINGERPRINT)
                fingerprint_seen = True
            elif after_integrity_sha256:
                pass  # RFC 8489 §14.6: ignored after MESSAGE-INTEGRITY-SHA256
            elif attr_type == ATTR_MESSAGE_INTEGRITY_SHA256:
                if attr_len < 16 or attr_len > 32 or attr_len & 3:  # RFC 8489 §14.6
                    return self._drop(REASON_MALFORMED)
                after_integrity_sha256 = True
            elif after_integrity:
                pass  # RFC 8489 §14.5: ignored after MESSAGE-INTEGRITY
            elif attr_type == ATTR_MESSAGE_INTEGRITY:
                if attr_len != 20:  # RFC 8489 §14.5
                    return self._drop(REASON_MALFORMED)
                after_integrity = True
            elif attr_type == ATTR_CHANGE_REQUEST:
                if attr_len == 4:  # RFC 3489 §11.2.4
                    change |= _U32.unpack_from(data, pos + 4)[0]
                else:
                    change_malformed = True  # reported once FINGERPRINT is checked
            elif attr_type < 0x8000 and attr_type not in KNOWN_REQUEST_ATTRIBUTES:
                # RFC 8489 §6.3.1: unknown comprehension-required attribute.
                if unknown is None:
                    unknown = [attr_type]
                elif attr_type not in unknown:
                    unknown.append(attr_type)
            pos = next_pos

        if change_malformed:
            return self._drop(REASON_MALFORMED)
        if msg_type != _BINDING_REQUEST:
            cls = ((msg_type >> 4) & 1) | ((msg_type >> 7) & 2)
            if cls == StunClass.INDICATION:
                return self._drop(REASON_INDICATION)  # RFC 8489 §6.3.2: never answered
            if cls != StunClass.REQUEST:
                return self._drop(REASON_NOT_REQUEST)
            return self._drop(REASON_NOT_BINDING)
        if change & _CHANGE_FLAGS:
            return self._drop(REASON_CHANGE_REQUEST)  # see the module docstring
        classic = cookie != MAGIC_COOKIE
        if unknown is not None:
            return self._unknown_attributes(data, n, classic, unknown)
        return self._success(data, n, source, classic)

    def _success(self, data: bytes, n: int, source: Address, classic: bool) -> bytes | None:
        host = source[0]
        port = source[1]
        try:
            if ":" in host:
                packed = _inet_pton(_AF_INET6, host.partition("%")[0])
                if packed[:12] == _V4_MAPPED_PREFIX:
                    packed = packed[12:]  # an IPv4 client seen through a dual-stack socket
            else:
                packed = _inet_pton(_AF_INET, host)
            if not 0 <= port <= 0xFFFF:
                raise ValueError(port)
        except (OSError, ValueError, TypeError):
            return self._drop(REASON_BAD_SOURCE)
        echo = data[4:HEADER_LEN]  # cookie + transaction ID, or the RFC 3489 ID
        if classic:
            # RFC 3489 §11.2.1 / RFC 8489 §11: MAPPED-ADDRESS, ID echoed.
            if len(packed) == 4:
                size = _SIZE_MA4
                response = _MA4.pack(
                    _BINDING_SUCCESS, 12, echo, ATTR_MAPPED_ADDRESS, 8, 1, port, packed
                )
            else:
                size = _SIZE_MA6
                response = _MA6.pack(
                    _BINDING_SUCCESS, 24, echo, ATTR_MAPPED_ADDRESS, 20, 2, port, packed
                )
        elif len(packed) == 4:
            size = _SIZE_XMA4
            # RFC 8489 §14.2: X-Port = port ^ top 16 bits of the cookie,
            # X-Address = address ^ cookie.
            head = _XMA4.pack(
                _BINDING_SUCCESS,
                _LEN_XMA4_FP,
                echo,
                ATTR_XOR_MAPPED_ADDRESS,
                8,
                1,
                port ^ _COOKIE_HIGH,
                int.from_bytes(packed, "big") ^ MAGIC_COOKIE,
            )
            response = head + _FP_TL + _U32.pack(_crc32(head) ^ FINGERPRINT_XOR)
        else:
            size = _SIZE_XMA6
            # RFC 8489 §14.2: IPv6 X-Address = address ^ (cookie || transaction ID).
            xored = int.from_bytes(packed, "big") ^ int.from_bytes(echo, "big")
            xaddr = xored.to_bytes(16, "big")
            head = _XMA6.pack(
                _BINDING_SUCCESS,
                _LEN_XMA6_FP,
                echo,
                ATTR_XOR_MAPPED_ADDRESS,
                20,
                2,
                port ^ _COOKIE_HIGH,
                xaddr,
            )
            response = head + _FP_TL + _U32.pack(_crc32(head) ^ FINGERPRINT_XOR)
        # PROTOCOL §5: never more than 2x the request, but a bare RFC 8489 request
        # from IPv6 gets its 52-byte answer.
        if size > self._max_ratio * n and not (size == _SIZE_XMA6 and n == HEADER_LEN):
            return self._drop(REASON_TOO_LARGE)
        self.answered += 1
        return response

    def _unknown_attributes(
        self, data: bytes, n: int, classic: bool, unknown: list[int]
    ) -> bytes | None:
        # RFC 8489 §6.3.1 (and RFC 3489 §8.2): 420 with UNKNOWN-ATTRIBUTES;
        # FINGERPRINT only for RFC 8489 clients (RFC 3489 has no such thing).
        transaction_id = data[4:HEADER_LEN] if classic else data[8:HEADER_LEN]
        unknown_value = encode_unknown_attributes(unknown, classic=classic)
        limit = self._max_ratio * n
        for error_code in _ERROR_420_PHRASES[classic]:
            response = encode_message(
                METHOD_BINDING,
                StunClass.ERROR,
                transaction_id,
                ((ATTR_ERROR_CODE, error_code), (ATTR_UNKNOWN_ATTRIBUTES, unknown_value)),
                fingerprint=not classic,
            )
            if len(response) <= limit:  # PROTOCOL §5
                break
        else:
            return self._drop(REASON_TOO_LARGE)
        self.answered += 1
        self.errors_sent += 1
        return response
