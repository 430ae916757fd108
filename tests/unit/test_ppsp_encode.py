"""Encoder output shape (PROTOCOL §2): compact UTF-8, draft-07 root, no namespace."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import (
    encode_indication,
    encode_request,
    encode_response,
    parse_request_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddrType,
    ContentMap,
    Indication,
    Method,
    PeerAddress,
    PeerInfo,
    PeerNum,
    Representation,
    Request,
    Response,
    SegmentInfo,
    StreamStatistics,
)

ROOT = b'<PPSPTrackerProtocol version="1.0">'


def test_shape() -> None:
    data = encode_request(Request(method=Method.CONNECT, peer_id="A", transaction_id="T"))
    assert data == (
        ROOT + b"<Request>CONNECT</Request><PeerID>A</PeerID><TransactionID>T</TransactionID>"
        b"</PPSPTrackerProtocol>"
    )
    assert b"xmlns" not in data and not data.startswith(b"<?xml")


def test_response_always_has_status_and_reason() -> None:
    data = encode_response(Response(status=200, transaction_id="T"))
    assert data == (
        ROOT + b'<Response status="200" reason="">SUCCESSFUL</Response>'
        b"<TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    )


def test_indication_shape() -> None:
    data = encode_indication(Indication(transaction_id="I", swarm_id="S", peer=PeerInfo("A")))
    assert data == (
        ROOT + b"<Indication>ATTACH</Indication><TransactionID>I</TransactionID>"
        b"<SwarmID>S</SwarmID><PeerGroup><PeerInfo><PeerID>A</PeerID></PeerInfo></PeerGroup>"
        b"</PPSPTrackerProtocol>"
    )


def test_stat_report_shape_and_round_trip() -> None:
    r = Request(
        method=Method.STAT_REPORT,
        peer_id="A",
        transaction_id="T",
        stats=(
            StreamStatistics(swarm_id="S", uploaded_bytes=1),
            ContentMap(
                swarm_id="S",
                representations=(
                    Representation(id="r", segments=(SegmentInfo(start=0, chunk_map="gA=="),)),
                ),
            ),
        ),
        peer_num=PeerNum(),
    )
    data = encode_request(r)
    assert b'<Stat property="StreamStatistics"><SwarmID>S</SwarmID>' in data
    assert b'<SegmentInfo startIndex="0">gA==</SegmentInfo>' in data
    assert b"<PeerNum/>" in data
    assert parse_request_untrusted(data) == r


def test_text_escaping_round_trips() -> None:
    nasty = "a]]>b<c>&d\re\u2028f\U0001f600"
    seg = SegmentInfo(start=0, chunk_map=nasty)
    r = Request(
        method=Method.FIND,
        peer_id="A",
        transaction_id="T",
        swarm_id="S",
        content=(Representation(id='"q"&<x>', segments=(seg,)),),
    )
    assert parse_request_untrusted(encode_request(r)) == r


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\ud800", "\ufffe"])
def test_unrepresentable_characters_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="XML"):
        encode_response(Response(status=200, transaction_id="T", reason=bad))


def test_ipv6_address_attributes() -> None:
    addr = PeerAddress(addr_type=AddrType.IPV6, ip="2001:db8::1", port=443, asn="64496")
    r = Response(status=200, transaction_id="T", peers=(PeerInfo(addresses=(addr,)),))
    data = encode_response(r)
    assert b'<PeerAddress addrType="ipv6" ip="2001:db8::1" port="443" asn="64496"/>' in data
    assert parse_response_untrusted(data) == r
