"""DTLS 1.2 record framing (RFC 6347 §4.1): split a byte run into records, pack datagrams.

A memory BIO is a byte stream, so what OpenSSL writes for one flight comes
out of ``bio_read()`` as several records glued together (FIELD-NOTES quirk
3).  :func:`split_records_untrusted` cuts such a run at record boundaries
(13-byte header, length in bytes 11-12) and :func:`pack_datagrams` puts
whole records into datagrams of at most ``mtu`` bytes (RFC 6347 §4.1.1:
records never span datagrams; several may share one).

Incoming datagrams go through the same splitter before they reach OpenSSL:
a datagram that is not a whole number of well-formed records is dropped as
a unit (RFC 6347 §4.1.2.7 lets invalid records be discarded silently), so
garbage can never linger in the memory BIO and misframe the next datagram.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CONTENT_ALERT",
    "CONTENT_APPLICATION_DATA",
    "CONTENT_CHANGE_CIPHER_SPEC",
    "CONTENT_HANDSHAKE",
    "MAX_DATAGRAM",
    "RECORD_HEADER_LENGTH",
    "RecordError",
    "RecordHeader",
    "pack_datagrams",
    "parse_record_header_untrusted",
    "split_records_untrusted",
]

RECORD_HEADER_LENGTH = 13
CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23
_KNOWN_CONTENT = frozenset(
    {CONTENT_CHANGE_CIPHER_SPEC, CONTENT_ALERT, CONTENT_HANDSHAKE, CONTENT_APPLICATION_DATA}
)
# RFC 6347 §4.1 / RFC 5246 §6.2.3: a ciphertext fragment is at most 2^14 + 2048 bytes.
MAX_RECORD_BODY = 2**14 + 2048
MAX_DATAGRAM = 65535
_DTLS_MAJOR = 0xFE  # DTLS versions are 0xFEFF (1.0) and 0xFEFD (1.2), RFC 6347 §4.1


class RecordError(ValueError):
    """The bytes are not a sequence of well-formed DTLS 1.x records."""


@dataclass(frozen=True, slots=True)
class RecordHeader:
    content_type: int
    version: int
    epoch: int
    sequence_number: int
    length: int


def parse_record_header_untrusted(data: bytes, offset: int = 0) -> RecordHeader:
    """Parse the 13-byte DTLSPlaintext/DTLSCiphertext header at *offset*."""
    end = offset + RECORD_HEADER_LENGTH
    if offset < 0 or end > len(data):
        raise RecordError("truncated record header")
    ctype = data[offset]
    if ctype not in _KNOWN_CONTENT:
        raise RecordError("unknown content type")
    if data[offset + 1] != _DTLS_MAJOR:
        raise RecordError("not a DTLS record version")
    length = int.from_bytes(data[offset + 11 : end], "big")
    if length > MAX_RECORD_BODY:
        raise RecordError("record too long")
    return RecordHeader(
        content_type=ctype,
        version=int.from_bytes(data[offset + 1 : offset + 3], "big"),
        epoch=int.from_bytes(data[offset + 3 : offset + 5], "big"),
        sequence_number=int.from_bytes(data[offset + 5 : offset + 11], "big"),
        length=length,
    )


def split_records_untrusted(data: bytes) -> list[bytes]:
    """Cut *data* into whole records; RecordError unless it is exactly that."""
    records: list[bytes] = []
    offset = 0
    total = len(data)
    while offset < total:
        header = parse_record_header_untrusted(data, offset)
        end = offset + RECORD_HEADER_LENGTH + header.length
        if end > total:
            raise RecordError("truncated record body")
        records.append(data[offset:end])
        offset = end
    return records


def pack_datagrams(records: Iterable[bytes], mtu: int) -> list[bytes]:
    """Greedily pack whole records into datagrams of at most *mtu* bytes.

    A record longer than *mtu* travels alone (OpenSSL never makes handshake
    records larger than the MTU it was given; only an over-long application
    message can do that, and :meth:`send` callers are told the limit).
    """
    datagrams: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and size + len(record) > mtu:
            datagrams.append(b"".join(current))
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        datagrams.append(b"".join(current))
    return datagrams
