"""Chunk maps: Base64 bitmaps, MSB first, bit i = chunk startIndex+i (PROTOCOL §2.1)."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import decode_chunk_map, encode_chunk_map, segment_covers
from stunlike_tracker.ppsp.messages import SegmentInfo


def seg(
    text: str | None, start: int | None = 0, end: int | None = None, size: int | None = None
) -> SegmentInfo:
    return SegmentInfo(start=start, end=end, chunkmap_size=size, chunk_map=text)


def test_decode() -> None:
    assert decode_chunk_map(seg("/w==")) == b"\xff"
    assert decode_chunk_map(seg(" A/8D\n  /wP/ \t")) == b"\x03\xff\x03\xff\x03\xff"
    assert decode_chunk_map(seg("")) == b""


@pytest.mark.parametrize(
    "text",
    [
        None,
        "A/8D/wP/A/8D/wP/A/8D/wP/A/8D/wP/....",  # the draft's V9
        "/w=",  # bad padding
        "/w",  # no padding
        "-_8=",  # urlsafe alphabet
        "/wé=",
        "/w==/w==",
    ],
)
def test_decode_invalid(text: str | None) -> None:
    assert decode_chunk_map(seg(text)) is None


def test_msb_first() -> None:
    # 0b10100000: chunks 10 and 12 present (startIndex 10).
    s = seg("oA==", start=10)
    assert segment_covers(s, 10, 10)
    assert not segment_covers(s, 11, 11)
    assert segment_covers(s, 12, 12)
    assert not segment_covers(s, 10, 12)
    assert not segment_covers(s, 9, 9)  # before the segment


def test_full_range_and_bounds() -> None:
    s = seg(encode_chunk_map([True] * 25), start=100, end=124, size=25)
    assert segment_covers(s, 100, 124)
    assert segment_covers(s, 110, 120)
    # Padding bits of the last byte are not chunks: endIndex/chunkmapSize cut.
    assert not segment_covers(s, 100, 125)
    padded = seg(encode_chunk_map([True] * 25).replace("gA==", "/w=="), start=100)
    assert decode_chunk_map(padded) is not None


def test_padding_bits_do_not_count() -> None:
    all_ones = "/////w=="  # 32 ones
    assert segment_covers(seg(all_ones, start=0), 0, 31)
    assert not segment_covers(seg(all_ones, start=0, end=24), 0, 25)
    assert not segment_covers(seg(all_ones, start=0, size=25), 0, 25)
    assert segment_covers(seg(all_ones, start=0, size=25), 0, 24)
    assert not segment_covers(seg(all_ones, start=0), 0, 32)  # beyond the map


def test_no_start_or_no_map_covers_nothing() -> None:
    assert not segment_covers(seg("/w==", start=None), 0, 0)
    assert not segment_covers(seg(None), 0, 0)
    assert not segment_covers(seg("...."), 0, 0)


def test_empty_range_is_vacuously_covered() -> None:
    assert segment_covers(seg(None), 5, 4)


def test_huge_numbers_are_cheap() -> None:
    s = seg("/w==", start=2**63)
    assert segment_covers(s, 2**63, 2**63 + 7)
    assert not segment_covers(s, 0, 2**64)


def test_encode() -> None:
    assert encode_chunk_map([]) == ""
    assert encode_chunk_map([True]) == "gA=="
    assert encode_chunk_map([True, False, True]) == "oA=="
    assert encode_chunk_map([True] * 8 + [False] * 7 + [True]) == "/wE="
