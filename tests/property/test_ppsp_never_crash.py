"""Never-crash: any input gives a message or a PpspError, nothing else
(PROTOCOL §2 "XML is untrusted input"; ARCHITECTURE habits 4 and 9)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import (
    PpspError,
    encode_indication,
    encode_request,
    encode_response,
    parse_indication_untrusted,
    parse_message_untrusted,
    parse_request_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import Indication, Request, Response

from .ppsp_strategies import PRINTABLE, indications, requests, responses

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: list[tuple[Callable[[bytes], object], type | tuple[type, ...]]] = [
    (parse_request_untrusted, Request),
    (parse_response_untrusted, Response),
    (parse_indication_untrusted, Indication),
    (parse_message_untrusted, (Request, Response, Indication)),
]


def check_all_parsers(data: bytes) -> None:
    for parse, kind in PARSERS:
        try:
            result = parse(data)
        except PpspError as exc:
            assert exc.status == 400
            assert isinstance(exc.reason, str) and exc.reason
            # An error is only answerable with an ID the codec accepts.
            if exc.transaction_id is not None:
                assert 1 <= len(exc.transaction_id) <= 64
                assert all(0x21 <= ord(c) <= 0x7E for c in exc.transaction_id)
            assert exc.answerable == (exc.transaction_id is not None)
        else:
            assert isinstance(result, kind)


# -- arbitrary bytes ------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(data: bytes) -> None:
    check_all_parsers(data)


# -- mutated valid documents ---------------------------------------------------------------------

SNIPPETS = [
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&lol;",
    b'"',
    b"'",
    b"/>",
    b"</",
    b"<!DOCTYPE x>",
    b'<!DOCTYPE x [<!ENTITY a "b">]>',
    b"<?pi?>",
    b'<?xml version="1.0"?>',
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\xed\xa0\x80",
    b'xmlns:a="urn:a"',
    b"a:",
    b' version="2.0"',
    b"<X><X><X><X><X><X><X><X><X></X></X></X></X></X></X></X></X></X>",
    b"<X/>" * 300,
    b"<PeerID>p</PeerID>",
    b"<TransactionID>t</TransactionID>",
    b"<SwarmID>ALL</SwarmID>",
    b"<Part index='0' count='1'/>",
    b"99999999999999999999999999",
    b"-1",
    b" ",
    b"\t\r\n",
]


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:  # delete a slice
            end = draw(st.integers(pos, min(len(data), pos + 16)))
            del data[pos:end]
        elif op == 1:  # insert a hostile snippet
            data[pos:pos] = draw(st.sampled_from(SNIPPETS))
        elif op == 2 and pos < len(data):  # replace one byte
            data[pos] = draw(st.integers(0, 255))
        elif op == 3:  # truncate
            del data[pos:]
        else:  # duplicate a slice
            end = draw(st.integers(pos, min(len(data), pos + 64)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


valid_documents = st.one_of(
    requests().map(encode_request),
    responses(max_peers=4).map(encode_response),
    indications.map(encode_indication),
)


@SETTINGS
@given(valid_documents.flatmap(mutated))
def test_mutated_documents(data: bytes) -> None:
    check_all_parsers(data)


# -- well-formed XML with the protocol's vocabulary and hostile values -----------------------------

NAMES = [
    "PPSPTrackerProtocol",
    "Request",
    "Response",
    "Indication",
    "PeerID",
    "SwarmID",
    "TransactionID",
    "PeerMode",
    "PeerNum",
    "ContentGroup",
    "Representation",
    "SegmentInfo",
    "StatisticsGroup",
    "Stat",
    "UploadedBytes",
    "DownloadedBytes",
    "AvailBandwidth",
    "PeerGroup",
    "PeerInfo",
    "PeerAddress",
    "IceOffer",
    "TargetPeerID",
    "OfferID",
    "IndicationID",
    "ReconnectToken",
    "KeepAlive",
    "TurnServer",
    "Part",
    "Unknown",
]
ATTRS = [
    "version",
    "status",
    "reason",
    "abilityNAT",
    "concurrentLinks",
    "id",
    "startIndex",
    "endIndex",
    "chunkmapSize",
    "property",
    "addrType",
    "ip",
    "port",
    "type",
    "priority",
    "foundation",
    "ufrag",
    "pwd",
    "fingerprint",
    "uri",
    "username",
    "credential",
    "ttl",
    "index",
    "count",
]
VALUES = [
    "",
    " ",
    "1.0",
    "2.0",
    "0",
    "1",
    "-1",
    "65536",
    "4294967296",
    "18446744073709551616",
    "1" * 30,
    "\u0661",
    "ipv4",
    "ipv6",
    "10.0.0.1",
    "::1",
    "fe80::1%eth0",
    "HOST",
    "SEEDER",
    "LEECH",
    "STUN",
    "ALL",
    "nil",
    "CONNECT",
    "JOIN",
    "FIND",
    "STAT_REPORT",
    "DISCONNECT",
    "ATTACH",
    "ATTACH_ACK",
    "SUCCESSFUL",
    "VERSION NOT SUPPORTED",
    "StreamStatistics",
    "ContentMap",
    "/w==",
    "x" * 65,
    "\u00e9",
]
values = st.one_of(st.sampled_from(VALUES), st.text(alphabet=PRINTABLE + " ", max_size=8))


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(st.sampled_from(NAMES))
    attrs = draw(st.dictionaries(st.sampled_from(ATTRS), values, max_size=4))
    attr_text = "".join(f' {k}="{_escape(v)}"' for k, v in attrs.items())
    children = (
        draw(st.lists(elements(depth + 1), max_size=3)) if depth < 4 and draw(st.booleans()) else []
    )
    text = "" if children else _escape(draw(values))
    return f"<{name}{attr_text}>{text}{''.join(children)}</{name}>"


@st.composite
def vocabulary_documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["Request", "Response", "Indication"]))
    head = f"<{kind}>{_escape(draw(values))}</{kind}>"
    body = "".join(draw(st.lists(elements(1), max_size=8)))
    version = draw(st.sampled_from(["1.0", "1.0", "1.0", "2.0"]))
    return f'<PPSPTrackerProtocol version="{version}">{head}{body}</PPSPTrackerProtocol>'.encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vocabulary_documents())
def test_vocabulary_documents(data: bytes) -> None:
    check_all_parsers(data)
