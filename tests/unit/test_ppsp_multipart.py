"""Multi-part responses over the datagram budget (PROTOCOL §4)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from stunlike_tracker.ppsp import (
    PpspError,
    encode_response,
    encode_response_datagrams,
    merge_response_parts,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Part,
    PeerAddress,
    PeerInfo,
    PeerMode,
    Response,
    TurnServer,
)
from stunlike_tracker.ppsp.xmlsafe import MAX_ELEMENTS


def peer(n: int, candidates: int = 2) -> PeerInfo:
    addr = PeerAddress(
        addr_type=AddrType.IPV4,
        ip=f"198.51.100.{n % 250 + 1}",
        port=40000 + n,
        type=AddressType.REFLEXIVE,
        priority=1694498815,
    )
    offer = IceOffer(
        id=f"offer-{n}",
        ufrag="x9Qf",
        pwd="0123456789abcdefghijkl",
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=tuple(
            PeerAddress(
                addr_type=AddrType.IPV4,
                ip=f"10.0.{n % 250}.{i + 1}",
                port=50000 + i,
                type=AddressType.HOST,
                priority=2130706431 - i,
                foundation=str(i),
            )
            for i in range(candidates)
        ),
    )
    return PeerInfo(peer_id=f"peer-{n:04d}", mode=PeerMode.SEED, addresses=(addr,), offer=offer)


def find_response(npeers: int, **kw: object) -> Response:
    return Response(
        status=200,
        transaction_id="tx-42",
        swarm_ids=("swarm-1",),
        peers=tuple(peer(n) for n in range(npeers)),
        **kw,  # type: ignore[arg-type]
    )


def test_small_response_is_one_datagram_without_part() -> None:
    r = find_response(1)
    datagrams = encode_response_datagrams(r)
    assert datagrams == [encode_response(r)]
    assert parse_response_untrusted(datagrams[0]).part is None


def test_large_response_is_split_into_complete_documents() -> None:
    r = find_response(30, keep_alive=25, reconnect_token="tok")
    assert len(encode_response(r)) > 1200
    datagrams = encode_response_datagrams(r)
    assert len(datagrams) > 1
    parts = [parse_response_untrusted(d) for d in datagrams]
    for i, (data, part) in enumerate(zip(datagrams, parts, strict=True)):
        assert len(data) <= 1200
        assert part.part == Part(index=i, count=len(datagrams))
        # Each part is a complete response: every field but peers repeated.
        assert dataclasses.replace(part, peers=(), part=None) == dataclasses.replace(r, peers=())
        assert part.peers
    assert merge_response_parts(parts) == r
    assert [p for part in parts for p in part.peers] == list(r.peers)  # order kept


def test_split_is_deterministic_and_greedy() -> None:
    r = find_response(30)
    first = encode_response_datagrams(r)
    assert encode_response_datagrams(r) == first
    # Greedy: moving the next peer into a part would overflow the budget.
    parts = [parse_response_untrusted(d) for d in first]
    for part, following in itertools.pairwise(parts):
        grown = dataclasses.replace(part, peers=(*part.peers, following.peers[0]))
        assert len(encode_response(grown)) > 1200


@pytest.mark.parametrize("budget", [810, 900, 1200, 1400, 1800, 4000])
def test_every_budget_is_respected(budget: int) -> None:
    r = find_response(30)
    datagrams = encode_response_datagrams(r, budget)
    assert all(len(d) <= budget for d in datagrams)
    parts = [parse_response_untrusted(d) for d in datagrams]
    assert merge_response_parts(parts) == r


def test_part_numbers_with_two_digits() -> None:
    r = find_response(30)
    # One peer (about 580 bytes of XML) per part at this budget; the widest
    # Part element still fits.
    datagrams = encode_response_datagrams(r, 810)
    assert len(datagrams) == 30
    assert all(len(d) <= 810 for d in datagrams)
    assert b'<Part index="29" count="30"/>' in datagrams[-1]


def test_oversized_peer_goes_alone_rather_than_dropped() -> None:
    big = peer(99, candidates=12)
    small = [peer(n, candidates=0) for n in range(4)]
    r = Response(status=200, transaction_id="t", peers=(small[0], big, *small[1:]))
    budget = len(encode_response(dataclasses.replace(r, peers=(big,)))) - 1
    datagrams = encode_response_datagrams(r, budget)
    parts = [parse_response_untrusted(d) for d in datagrams]
    assert [len(p.peers) for p in parts] == [1, 1, 3]
    assert parts[1].peers == (big,) and len(datagrams[1]) > budget
    assert all(len(d) <= budget for i, d in enumerate(datagrams) if i != 1)
    assert merge_response_parts(parts) == r


def test_single_peer_too_large_is_sent_unsplit() -> None:
    r = Response(status=200, transaction_id="t", peers=(peer(1, candidates=20),))
    assert encode_response_datagrams(r, 300) == [encode_response(r)]


def test_response_without_peers_is_never_split() -> None:
    turn = tuple(
        TurnServer(uri=f"turn:relay{i}.example:3478", username="u" * 40, credential="c" * 28, ttl=1)
        for i in range(20)
    )
    r = Response(status=200, transaction_id="t", turn_servers=turn)
    assert encode_response_datagrams(r) == [encode_response(r)]


def test_existing_part_is_replaced() -> None:
    r = find_response(1, part=Part(index=3, count=7))
    (data,) = encode_response_datagrams(r)
    assert parse_response_untrusted(data).part is None


# -- merging ----------------------------------------------------------------------------------


def split(r: Response, budget: int = 1200) -> list[Response]:
    return [parse_response_untrusted(d) for d in encode_response_datagrams(r, budget)]


def test_merge_any_order_duplicates_and_missing_parts() -> None:
    r = find_response(30)
    parts = split(r)
    assert len(parts) >= 3
    assert merge_response_parts(reversed(parts)) == r
    assert merge_response_parts([*parts, parts[0]]) == r
    partial = merge_response_parts([parts[2], parts[0]])
    assert partial.peers == parts[0].peers + parts[2].peers and partial.part is None


def test_merge_a_single_unsplit_response() -> None:
    r = find_response(2)
    assert merge_response_parts([r]) == r
    assert merge_response_parts([r, r]) == r


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: dataclasses.replace(p, transaction_id="other"),
        lambda p: dataclasses.replace(p, status=500),
        lambda p: dataclasses.replace(p, swarm_ids=()),
        lambda p: dataclasses.replace(p, part=Part(index=0, count=99)),
        lambda p: dataclasses.replace(p, part=None),
        lambda p: dataclasses.replace(p, peers=p.peers[1:]),
    ],
)
def test_merge_refuses_inconsistent_parts(tamper: object) -> None:
    parts = split(find_response(30))
    assert callable(tamper)
    bad = tamper(parts[0])
    assert isinstance(bad, Response)
    with pytest.raises(PpspError) as info:
        merge_response_parts([*parts, bad])
    assert info.value.status == 400


def test_merge_nothing() -> None:
    with pytest.raises(PpspError):
        merge_response_parts([])


def test_parts_stay_within_the_element_limit_whatever_the_budget() -> None:
    # 30 peers with 8 candidates each: 13 elements per PeerInfo, ~390 in all,
    # more than the parser's 256 even though the bytes fit a 60 KB budget.
    r = Response(
        status=200,
        transaction_id="t",
        swarm_ids=("s",),
        peers=tuple(peer(n, candidates=8) for n in range(30)),
    )
    assert len(encode_response(r)) < 60000
    with pytest.raises(PpspError, match="Too Many Elements"):
        parse_response_untrusted(encode_response(r))
    datagrams = encode_response_datagrams(r, 60000)
    assert len(datagrams) == 2
    parts = [parse_response_untrusted(d) for d in datagrams]
    assert merge_response_parts(parts) == r
    # The first part is filled to the limit: root, Response, TransactionID,
    # SwarmID, Part, PeerGroup, then 13 elements per PeerInfo.
    head = 6
    assert head + 13 * len(parts[0].peers) <= MAX_ELEMENTS < head + 13 * (len(parts[0].peers) + 1)
