"""Chunk map properties: encode/decode and coverage agree with the bits (PROTOCOL §2.1)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import decode_chunk_map, encode_chunk_map, segment_covers
from stunlike_tracker.ppsp.messages import SegmentInfo

SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(st.lists(st.booleans(), max_size=80))
def test_decode_inverts_encode(bits: list[bool]) -> None:
    raw = decode_chunk_map(SegmentInfo(start=0, chunk_map=encode_chunk_map(bits)))
    assert raw is not None and len(raw) == (len(bits) + 7) // 8
    unpacked = [bool(raw[i // 8] & (0x80 >> (i % 8))) for i in range(len(bits))]
    assert unpacked == bits


@SETTINGS
@given(
    st.lists(st.booleans(), min_size=1, max_size=40),
    st.integers(0, 2**64),
    st.data(),
)
def test_covers_matches_the_bits(bits: list[bool], start: int, data: st.DataObject) -> None:
    seg = SegmentInfo(
        start=start,
        end=start + len(bits) - 1,
        chunkmap_size=len(bits),
        chunk_map=encode_chunk_map(bits),
    )
    lo = data.draw(st.integers(start - 3, start + len(bits) + 3))
    hi = data.draw(st.integers(lo, start + len(bits) + 5))
    inside = start <= lo and hi < start + len(bits)
    expected = inside and all(bits[lo - start : hi - start + 1])
    assert segment_covers(seg, lo, hi) == expected


@SETTINGS
@given(st.text(max_size=40))
def test_decode_never_raises(text: str) -> None:
    decode_chunk_map(SegmentInfo(start=0, chunk_map=text))
    segment_covers(SegmentInfo(start=0, chunk_map=text), 0, 3)
