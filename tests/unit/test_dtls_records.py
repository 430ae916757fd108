from __future__ import annotations

import pytest

from stunlike_tracker.transport.records import (
    RECORD_HEADER_LENGTH,
    RecordError,
    pack_datagrams,
    parse_record_header_untrusted,
    split_records_untrusted,
)


def record(
    ctype: int, body: bytes, *, epoch: int = 0, seq: int = 0, version: int = 0xFEFD
) -> bytes:
    return (
        bytes((ctype,))
        + version.to_bytes(2, "big")
        + epoch.to_bytes(2, "big")
        + seq.to_bytes(6, "big")
        + len(body).to_bytes(2, "big")
        + body
    )


def test_header_fields() -> None:
    rec = record(23, b"abc", epoch=1, seq=0x0102030405)
    header = parse_record_header_untrusted(rec)
    assert (header.content_type, header.version, header.epoch) == (23, 0xFEFD, 1)
    assert header.sequence_number == 0x0102030405
    assert header.length == 3


def test_glued_records_are_split_at_boundaries() -> None:
    records = [record(22, b"x" * 100), record(20, b"\x01", seq=1), record(22, b"", epoch=1)]
    assert split_records_untrusted(b"".join(records)) == records
    assert split_records_untrusted(b"") == []


@pytest.mark.parametrize(
    "data",
    [
        record(22, b"abcdef")[:-1],  # body cut short
        record(22, b"abc")[: RECORD_HEADER_LENGTH - 1],  # header cut short
        record(22, b"abc") + b"\x16\xfe",  # trailing partial header
        record(99, b"abc"),  # unknown content type
        record(22, b"abc", version=0x0303),  # TLS, not DTLS
        record(24, b"heartbeat"),
    ],
)
def test_malformed_runs_raise_one_error_type(data: bytes) -> None:
    with pytest.raises(RecordError):
        split_records_untrusted(data)


def test_record_length_cap() -> None:
    header = bytes((23,)) + b"\xfe\xfd" + bytes(8) + (2**14 + 2049).to_bytes(2, "big")
    with pytest.raises(RecordError):
        parse_record_header_untrusted(header)


def test_pack_respects_mtu_and_keeps_records_whole() -> None:
    records = [record(22, bytes(n)) for n in (500, 500, 300, 1000, 50)]
    datagrams = pack_datagrams(records, 1200)
    assert all(len(d) <= 1200 for d in datagrams)
    assert b"".join(datagrams) == b"".join(records)
    for datagram in datagrams:
        split_records_untrusted(datagram)  # each datagram holds whole records
    assert len(datagrams) == 3


def test_pack_oversized_record_travels_alone() -> None:
    big, small = record(23, bytes(1500)), record(23, b"x")
    assert pack_datagrams([small, big, small], 1200) == [small, big, small]
    assert pack_datagrams([], 1200) == []
