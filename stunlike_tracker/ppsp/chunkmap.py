"""Chunk maps: the Base64 bitmap text of ``SegmentInfo`` (PROTOCOL §2.1).

"SegmentInfo ranges whose text is a Base64 chunk map, MSB first, bit i =
chunk startIndex+i." The codec keeps the text as sent, valid or not (the
draft's V9 example is not valid Base64); this module interprets it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from .messages import SegmentInfo

# XML whitespace may wrap and indent the text (the draft's V9 does).
_WS = re.compile(r"[ \t\r\n]+")


def decode_chunk_map(seg: SegmentInfo) -> bytes | None:
    """The bitmap bytes, or None when absent or not valid Base64.

    Standard alphabet with padding; whitespace anywhere in the text is
    ignored; anything else that is not Base64 makes the whole map invalid.
    """
    if seg.chunk_map is None:
        return None
    text = _WS.sub("", seg.chunk_map)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def segment_covers(seg: SegmentInfo, start: int, end: int) -> bool:
    """True iff every chunk ``start..end`` (inclusive) is marked present.

    Bit i (MSB first) stands for chunk ``seg.start + i``. Only bits inside
    the segment count: not beyond ``endIndex`` or ``chunkmapSize`` when
    given, nor beyond the map. Without ``startIndex`` or a valid map nothing
    is covered. An empty range (``start > end``) is covered vacuously.
    The cost does not depend on the numbers, only on the map's length.
    """
    if start > end:
        return True
    bitmap = decode_chunk_map(seg)
    if bitmap is None or seg.start is None:
        return False
    nbits = len(bitmap) * 8
    last = seg.start + nbits - 1
    if seg.end is not None:
        last = min(last, seg.end)
    if seg.chunkmap_size is not None:
        last = min(last, seg.start + seg.chunkmap_size - 1)
    if start < seg.start or end > last:
        return False
    first_bit, last_bit = start - seg.start, end - seg.start
    width = last_bit - first_bit + 1
    mask = ((1 << width) - 1) << (nbits - 1 - last_bit)
    return int.from_bytes(bitmap, "big") & mask == mask


def encode_chunk_map(bits: Sequence[bool]) -> str:
    """Base64 text of ``bits`` packed MSB first, the last byte zero-padded."""
    packed = bytearray((len(bits) + 7) // 8)
    for i, present in enumerate(bits):
        if present:
            packed[i // 8] |= 0x80 >> (i % 8)
    return base64.b64encode(bytes(packed)).decode("ascii")
