"""Hand-parsed ClientHello and hand-built HelloVerifyRequest (RFC 6347 §4.2.1).

The server's stateless pre-check reads an initial DTLS datagram *before*
anything is allocated for its source address: no pyOpenSSL object exists
for a spoofed hello.  All it needs from the ClientHello is:

* the record sequence number -- the HelloVerifyRequest copies it
  (RFC 6347 §4.2.1: "the server MUST use the record sequence number in the
  ClientHello as the record sequence number in the HelloVerifyRequest");
* the handshake ``message_seq`` -- copied into the HelloVerifyRequest
  (RFC 6347 §4.2.2, stateless servers echo the ClientHello's message_seq);
* the ``cookie`` field.

Layout (RFC 6347 §4.1 record header, §4.2.2 handshake header, §4.2.1
ClientHello)::

    record:    type(1)=22 version(2) epoch(2)=0 seq(6) length(2)
    handshake: msg_type(1)=1 length(3) message_seq(2)
               fragment_offset(3)=0 fragment_length(3)=length
    body:      client_version(2) random(32) session_id<0..32>
               cookie<0..255> cipher_suites<2..2^16-2>
               compression_methods<1..255> [extensions<0..2^16-1>]

One error type (:class:`HelloParseError`) leaves the parser; its message is
a short drop reason suitable for a counter.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import CONTENT_HANDSHAKE, RECORD_HEADER_LENGTH

__all__ = [
    "HANDSHAKE_HEADER_LENGTH",
    "ClientHelloInfo",
    "HelloParseError",
    "build_hello_verify_request",
    "parse_client_hello_untrusted",
]

HANDSHAKE_HEADER_LENGTH = 12
_HT_CLIENT_HELLO = 1
_HT_HELLO_VERIFY_REQUEST = 3
_DTLS_1_0 = 0xFEFF
_DTLS_1_2 = 0xFEFD
_MAX_SESSION_ID = 32
_MAX_COOKIE = 255


class HelloParseError(ValueError):
    """Not a ClientHello the pre-check can act on; ``str(exc)`` is the drop reason."""


@dataclass(frozen=True, slots=True)
class ClientHelloInfo:
    record_sequence: bytes  # 6 bytes, copied into the HelloVerifyRequest
    message_seq: int
    client_version: int
    cookie: bytes


def _u16(data: bytes, off: int) -> int:
    return (data[off] << 8) | data[off + 1]


def _u24(data: bytes, off: int) -> int:
    return (data[off] << 16) | (data[off + 1] << 8) | data[off + 2]


def parse_client_hello_untrusted(datagram: bytes) -> ClientHelloInfo:
    """Parse a datagram that should hold exactly one unfragmented ClientHello record."""
    n = len(datagram)
    if n < RECORD_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH:
        raise HelloParseError("short")
    if datagram[0] != CONTENT_HANDSHAKE:
        raise HelloParseError("not-handshake")
    if datagram[1] != 0xFE:
        raise HelloParseError("bad-record-version")
    # RFC 6347 §4.1: the epoch is 0 until the first ChangeCipherSpec.
    if datagram[3] or datagram[4]:
        raise HelloParseError("bad-epoch")
    record_len = _u16(datagram, 11)
    if RECORD_HEADER_LENGTH + record_len != n:
        # One ClientHello record per datagram: anything glued on, or a record
        # running past the datagram, is not something a client sends.
        raise HelloParseError("bad-record-length")
    hs = RECORD_HEADER_LENGTH
    if datagram[hs] != _HT_CLIENT_HELLO:
        raise HelloParseError("not-client-hello")
    msg_len = _u24(datagram, hs + 1)
    message_seq = _u16(datagram, hs + 4)
    frag_off = _u24(datagram, hs + 6)
    frag_len = _u24(datagram, hs + 9)
    # A stateless server cannot reassemble: only whole, unfragmented hellos
    # (RFC 6347 §4.2.1 needs the cookie, which may sit in any fragment).
    if frag_off != 0 or frag_len != msg_len:
        raise HelloParseError("fragmented")
    if hs + HANDSHAKE_HEADER_LENGTH + msg_len != n:
        raise HelloParseError("bad-handshake-length")
    off = hs + HANDSHAKE_HEADER_LENGTH
    end = n
    # client_version(2) + random(32) + session_id length(1)
    if off + 35 > end:
        raise HelloParseError("truncated")
    client_version = _u16(datagram, off)
    if datagram[off] != 0xFE:
        raise HelloParseError("bad-client-version")
    # DTLS versions count down: 0xFEFF is 1.0, 0xFEFD is 1.2 (RFC 6347 §4.1).
    # A client whose highest version is 1.0 cannot negotiate 1.2 with us.
    if client_version > _DTLS_1_2:
        raise HelloParseError("unsupported-version")
    off += 34
    sid_len = datagram[off]
    if sid_len > _MAX_SESSION_ID:
        raise HelloParseError("bad-session-id")
    off += 1 + sid_len
    if off + 1 > end:
        raise HelloParseError("truncated")
    cookie_len = datagram[off]
    off += 1
    if off + cookie_len > end:
        raise HelloParseError("truncated")
    cookie = datagram[off : off + cookie_len]
    off += cookie_len
    if off + 2 > end:
        raise HelloParseError("truncated")
    suites_len = _u16(datagram, off)
    off += 2
    if suites_len < 2 or suites_len % 2 or off + suites_len > end:
        raise HelloParseError("bad-cipher-suites")
    off += suites_len
    if off + 1 > end:
        raise HelloParseError("truncated")
    comp_len = datagram[off]
    off += 1
    if comp_len < 1 or off + comp_len > end:
        raise HelloParseError("bad-compression-methods")
    off += comp_len
    if off != end:
        if off + 2 > end:
            raise HelloParseError("bad-extensions")
        ext_len = _u16(datagram, off)
        if off + 2 + ext_len != end:
            raise HelloParseError("bad-extensions")
    return ClientHelloInfo(
        record_sequence=datagram[5:11],
        message_seq=message_seq,
        client_version=client_version,
        cookie=cookie,
    )


def build_hello_verify_request(hello: ClientHelloInfo, cookie: bytes) -> bytes:
    """The HelloVerifyRequest answering *hello* with *cookie*, as one datagram.

    RFC 6347 §4.2.1: record and ``server_version`` are DTLS 1.0 (0xFEFF)
    whatever version will be negotiated; the record sequence number is the
    ClientHello's; epoch 0.
    """
    if len(cookie) > _MAX_COOKIE:
        raise ValueError("cookie longer than 255 bytes")
    body = _DTLS_1_0.to_bytes(2, "big") + bytes((len(cookie),)) + cookie
    blen = len(body).to_bytes(3, "big")
    handshake = (
        bytes((_HT_HELLO_VERIFY_REQUEST,))
        + blen
        + hello.message_seq.to_bytes(2, "big")
        + b"\x00\x00\x00"
        + blen
        + body
    )
    return (
        bytes((CONTENT_HANDSHAKE,))
        + _DTLS_1_0.to_bytes(2, "big")
        + b"\x00\x00"
        + hello.record_sequence
        + len(handshake).to_bytes(2, "big")
        + handshake
    )
