"""The draft-07 §8 examples parse to the right values (PROTOCOL §2).

The files are verbatim copies in tests/vectors/draft07/ (see its README).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stunlike_tracker.ppsp import (
    decode_chunk_map,
    encode_request,
    encode_response,
    parse_message_untrusted,
    parse_request_untrusted,
    parse_response_untrusted,
    segment_covers,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    Method,
    NatAbility,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    Response,
    SegmentInfo,
    StreamStatistics,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "draft07"
REQUESTS = [
    "v1-connect-request.xml",
    "v3-disconnect-request.xml",
    "v5-join-request.xml",
    "v7-find-request.xml",
    "v9-stat-report-request.xml",
]
RESPONSES = [
    "v2-connect-response.xml",
    "v4-disconnect-response.xml",
    "v6-join-response.xml",
]
PEER = "656164657221"
BAD_MAP = "A/8D/wP/A/8D/wP/A/8D/wP/A/8D/wP/...."


def load(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def request(name: str) -> Request:
    # Default request size limit (2,048 bytes, PROTOCOL §4): the draft's
    # examples must be accepted as published.
    return parse_request_untrusted(load(name))


def response(name: str) -> Response:
    return parse_response_untrusted(load(name))


def test_all_vector_files_are_covered() -> None:
    assert sorted(p.name for p in VECTORS.glob("*.xml")) == sorted(REQUESTS + RESPONSES)


@pytest.mark.parametrize("name", REQUESTS)
def test_request_vectors_fit_the_default_request_limit(name: str) -> None:
    assert len(load(name)) <= 2048
    assert isinstance(parse_message_untrusted(load(name)), Request)


@pytest.mark.parametrize("name", RESPONSES)
def test_response_vectors_parse_as_messages(name: str) -> None:
    assert isinstance(parse_message_untrusted(load(name)), Response)


def test_v1_connect_request() -> None:
    r = request("v1-connect-request.xml")
    assert r.method is Method.CONNECT
    assert r.peer_id == PEER
    assert r.transaction_id == "12345"
    assert r.swarm_id is None
    # Defect tolerated: the first address has priority but no type.
    assert r.addresses == (
        PeerAddress(addr_type=AddrType.IPV4, ip="192.0.2.1", port=80, priority=1),
        PeerAddress(
            addr_type=AddrType.IPV6,
            ip="2001:db8::1",
            port=80,
            type=AddressType.HOST,
            priority=2,
            connection="3G",
        ),
    )
    assert r.stats is None and r.ice_offer is None and r.peer_mode is None


def test_v2_connect_response() -> None:
    r = response("v2-connect-response.xml")
    # No status attribute in the draft: the text gives the status.
    assert r.status == 200
    assert r.text is None and r.status_text == "SUCCESSFUL"
    assert r.transaction_id == "12345"
    assert len(r.peers) == 1
    peer = r.peers[0]
    assert peer.peer_id is None and peer.mode is None and peer.offer is None
    assert peer.addresses == (
        PeerAddress(
            addr_type=AddrType.IPV4,
            ip="198.51.100.1",
            port=80,
            type=AddressType.REFLEXIVE,
            priority=1,
            connection="ADSL",
            asn="64496",
        ),
    )


def test_v3_disconnect_request_all() -> None:
    r = request("v3-disconnect-request.xml")
    assert r.method is Method.DISCONNECT
    assert r.peer_id == PEER
    assert r.swarm_id == "ALL"  # reserved value, allowed in DISCONNECT
    assert r.transaction_id == "12345"


def test_v4_disconnect_response() -> None:
    r = response("v4-disconnect-response.xml")
    assert r == Response(status=200, transaction_id="12345")


def test_v5_join_request() -> None:
    r = request("v5-join-request.xml")
    assert r.method is Method.JOIN
    assert r.peer_id == PEER
    assert r.swarm_id == "1111"
    assert r.transaction_id == "12345"
    assert r.peer_mode is PeerMode.LEECH
    assert r.peer_num == PeerNum(
        count=5,
        ability_nat=NatAbility.STUN,
        concurrent_links="HIGH",
        online_time="NORMAL",
        upload_bw_level="NORMAL",
    )
    assert r.content == (
        Representation(id="tag0", segments=(SegmentInfo(start=20),)),
        Representation(id="tag6", segments=(SegmentInfo(start=20),)),
    )


def test_v6_join_response_two_peers_no_swarm() -> None:
    r = response("v6-join-response.xml")
    assert r.status == 200
    assert r.swarm_ids == ()  # defect tolerated: no SwarmID
    assert [p.peer_id for p in r.peers] == ["956264622298", "3332001256741"]
    assert [p.addresses for p in r.peers] == [
        (PeerAddress(addr_type=AddrType.IPV4, ip="198.51.100.22", port=80, asn="64496"),),
        (PeerAddress(addr_type=AddrType.IPV4, ip="198.51.100.201", port=80, asn="64496"),),
    ]
    assert all(p.mode is None and p.offer is None for p in r.peers)


def test_v7_find_request_range() -> None:
    r = request("v7-find-request.xml")
    assert r.method is Method.FIND
    assert r.peer_id == PEER
    assert r.swarm_id == "1111"
    assert r.peer_mode is None
    assert r.peer_num is not None and r.peer_num.count == 5
    assert r.peer_num.ability_nat is NatAbility.STUN
    assert r.content == (Representation(id="tag4", segments=(SegmentInfo(start=110, end=150),)),)


def test_v9_stat_report_request() -> None:
    r = request("v9-stat-report-request.xml")
    assert r.method is Method.STAT_REPORT
    assert r.peer_id == PEER
    assert r.swarm_id is None
    assert r.stats is not None
    assert r.stats[:2] == (
        StreamStatistics(
            swarm_id="1111", uploaded_bytes=512, downloaded_bytes=768, avail_bandwidth=1024000
        ),
        StreamStatistics(
            swarm_id="2222", uploaded_bytes=1024, downloaded_bytes=2048, avail_bandwidth=512000
        ),
    )
    maps = r.stats[2:]
    assert maps == (
        ContentMap(
            swarm_id="1111",
            representations=(
                Representation(
                    id="tag0",
                    segments=(SegmentInfo(start=0, end=24, chunkmap_size=25, chunk_map=BAD_MAP),),
                ),
                Representation(
                    id="tag1",
                    segments=(
                        SegmentInfo(start=0, end=14, chunkmap_size=15, chunk_map=BAD_MAP),
                        SegmentInfo(start=20, end=24, chunkmap_size=5, chunk_map=BAD_MAP),
                    ),
                ),
            ),
        ),
        ContentMap(
            swarm_id="2222",
            representations=(
                Representation(
                    id="tag5",
                    segments=(SegmentInfo(start=0, end=4, chunkmap_size=5, chunk_map=BAD_MAP),),
                ),
                Representation(
                    id="tag6",
                    segments=(SegmentInfo(start=0, end=4, chunkmap_size=5, chunk_map=BAD_MAP),),
                ),
            ),
        ),
    )
    # Defect tolerated: the maps are kept as text but are not Base64.
    for stat in maps:
        assert isinstance(stat, ContentMap)
        for rep in stat.representations:
            for seg in rep.segments:
                assert decode_chunk_map(seg) is None
                assert not segment_covers(seg, 0, 0)


@pytest.mark.parametrize("name", REQUESTS)
def test_request_vectors_reencode_to_the_same_object(name: str) -> None:
    r = request(name)
    assert parse_request_untrusted(encode_request(r)) == r


@pytest.mark.parametrize("name", RESPONSES)
def test_response_vectors_reencode_to_the_same_object(name: str) -> None:
    r = response(name)
    assert parse_response_untrusted(encode_response(r)) == r
