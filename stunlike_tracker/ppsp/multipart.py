"""Multi-part responses: one response over several datagrams (PROTOCOL §4).

"A response larger than the datagram budget (default 1200 bytes of XML) is
sent as several datagrams, each a complete response document with the same
TransactionID, a share of the PeerInfo elements and <Part index="i"
count="n"/>. Any part alone is usable; the peer merges what arrives."

Splitting is greedy and deterministic: the peers keep their order and fill
each part as far as the budget allows, which gives the fewest parts for
that order. A PeerInfo too large for any part on its own still goes out,
alone in its part, rather than being dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence

from .encode import (
    PEER_GROUP_CLOSE,
    PEER_GROUP_OPEN,
    ROOT_CLOSE,
    ROOT_OPEN,
    part_xml,
    peer_info_xml,
    response_fields_xml,
)
from .errors import PpspError
from .messages import Part, PeerInfo, Response
from .reasons import Reason
from .xmlsafe import MAX_ELEMENTS

DEFAULT_DATAGRAM_BUDGET = 1200
"""PROTOCOL §4: bytes of XML per response datagram, by default."""

_GROUP_OPEN = PEER_GROUP_OPEN.encode("ascii")
_TAIL_EMPTY = ROOT_CLOSE.encode("ascii")
_TAIL = (PEER_GROUP_CLOSE + ROOT_CLOSE).encode("ascii")


def encode_response_datagrams(
    r: Response,
    budget: int = DEFAULT_DATAGRAM_BUDGET,
    encoded_peers: Sequence[bytes] | None = None,
) -> list[bytes]:
    """``r`` as one datagram if it fits ``budget`` bytes, else as parts.

    Every part repeats all fields of ``r`` but ``peers`` (same
    TransactionID, status, swarms, TURN servers...) and adds ``Part``; any
    ``part`` already set on ``r`` is replaced. Each part fits the budget
    unless one of its peers cannot fit any part, or ``r`` without peers
    already exceeds it; a response without peers is never split. Parts also
    stay within the parser's element limit (``xmlsafe.MAX_ELEMENTS``), so a
    large configured budget cannot produce a part our own peers refuse.

    The bytes are those of ``encode_response`` on each part, built from
    pieces encoded once: the fields every part repeats, and each PeerInfo.
    ``encoded_peers``, when given, are ``r.peers`` already encoded (the
    ``peer_info_xml`` UTF-8 bytes of each, in order), reused as they are.
    """
    prefix = (ROOT_OPEN + response_fields_xml(r)).encode("utf-8")
    peers = r.peers
    if not peers:
        return [prefix + _TAIL_EMPTY]
    if encoded_peers is not None and len(encoded_peers) == len(peers):
        infos = list(encoded_peers)
    else:
        infos = [peer_info_xml(peer).encode("utf-8") for peer in peers]
    size = len(prefix) + len(_GROUP_OPEN) + sum(map(len, infos)) + len(_TAIL)
    counts = list(map(_peer_elements, peers))
    head_elements = _head_elements(r)
    fits = size <= budget and head_elements + sum(counts) <= MAX_ELEMENTS
    if not fits and len(peers) >= 2:
        groups = _pack(len(prefix), head_elements, infos, counts, budget)
        if len(groups) > 1:
            count = len(groups)
            return [
                b"".join(
                    [
                        prefix,
                        _part_bytes(index, count),
                        _GROUP_OPEN,
                        *infos[group],
                        _TAIL,
                    ]
                )
                for index, group in enumerate(groups)
            ]
    return [b"".join([prefix, _GROUP_OPEN, *infos, _TAIL])]


@functools.lru_cache(maxsize=1024)
def _part_bytes(index: int, count: int) -> bytes:
    return part_xml(index, count).encode("ascii")


def _overhead(prefix_size: int, digits: int) -> int:
    """Bytes of a part document besides its PeerInfo elements, for parts
    numbered with at most ``digits`` digits (index and count alike)."""
    widest = 10**digits - 1
    return prefix_size + len(_part_bytes(widest, widest)) + len(_GROUP_OPEN) + len(_TAIL)


def _head_elements(r: Response) -> int:
    """Elements of a part besides its PeerInfo subtrees: root, Response,
    TransactionID, the optional fields, Part and PeerGroup."""
    optional = (r.keep_alive is not None) + (r.reconnect_token is not None)
    return 5 + len(r.swarm_ids) + len(r.turn_servers) + optional


def _peer_elements(peer: PeerInfo) -> int:
    """Elements of one encoded PeerInfo subtree."""
    offer = 0 if peer.offer is None else 1 + len(peer.offer.candidates)
    return 1 + (peer.peer_id is not None) + (peer.mode is not None) + len(peer.addresses) + offer


def _pack(
    prefix_size: int, head_elements: int, infos: list[bytes], counts: list[int], budget: int
) -> list[slice]:
    """Greedy first-fit in order, by bytes and by elements; the Part
    element's width depends on the number of parts, so repeat with wider
    numbers until the count fits. Each part is a run of consecutive peers."""
    element_room = MAX_ELEMENTS - head_elements
    sizes = list(map(len, infos))
    digits = 1
    while True:
        room = budget - _overhead(prefix_size, digits)
        starts: list[int] = []
        used = elements = 0
        for i, (size, count) in enumerate(zip(sizes, counts, strict=True)):
            if starts and used + size <= room and elements + count <= element_room:
                used += size
                elements += count
            else:
                starts.append(i)
                used, elements = size, count
        if len(str(len(starts))) <= digits:
            ends = [*starts[1:], len(sizes)]
            return [slice(start, end) for start, end in zip(starts, ends, strict=True)]
        digits = len(str(len(starts)))


def merge_response_parts(parts: Iterable[Response]) -> Response:
    """One response from the parts that arrived (PROTOCOL §4).

    Peers are concatenated in part-index order; a part received twice
    counts once; missing parts are simply absent ("any part alone is
    usable"). ``part`` is dropped. An unsplit response (no ``Part``) merges
    only with copies of itself. Parts that disagree on anything but their
    peers and index (TransactionID, status, count...) raise a 400
    PpspError, as does an empty input.
    """
    received = list(parts)
    if not received:
        raise PpspError(Reason.NO_RESPONSE_PARTS)
    first = received[0]
    by_index: dict[int, Response] = {}
    for part in received:
        if part.transaction_id != first.transaction_id:
            raise PpspError(Reason.INCONSISTENT_RESPONSE_PARTS)
        if _shared_fields(part) != _shared_fields(first):
            raise _inconsistent(first)
        index = -1 if part.part is None else part.part.index
        if by_index.setdefault(index, part).peers != part.peers:
            raise _inconsistent(first)
    peers: list[PeerInfo] = []
    for index in sorted(by_index):
        peers.extend(by_index[index].peers)
    return dataclasses.replace(first, peers=tuple(peers), part=None)


def _shared_fields(r: Response) -> Response:
    """``r`` without what differs between parts: peers and part index."""
    count = None if r.part is None else Part(index=0, count=r.part.count)
    return dataclasses.replace(r, peers=(), part=count)


def _inconsistent(first: Response) -> PpspError:
    return PpspError(Reason.INCONSISTENT_RESPONSE_PARTS, transaction_id=first.transaction_id)
