"""Request documents: each method, each rule of PROTOCOL §2/§2.1/§6, each error."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import PpspError, encode_request, parse_request_untrusted
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    Method,
    NatAbility,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    SegmentInfo,
    Status,
    StreamStatistics,
)

OFFER_XML = (
    '<IceOffer id="o-17" ufrag="x9Qf" pwd="abcdefghijklmnopqrstuv" fingerprint="sha-256 AB:CD">'
    '<PeerAddress addrType="ipv4" ip="10.0.2.2" port="51665" type="HOST" priority="2130706431"'
    ' foundation="1"/></IceOffer>'
)
OFFER = IceOffer(
    id="o-17",
    ufrag="x9Qf",
    pwd="abcdefghijklmnopqrstuv",
    fingerprint="sha-256 AB:CD",
    candidates=(
        PeerAddress(
            addr_type=AddrType.IPV4,
            ip="10.0.2.2",
            port=51665,
            type=AddressType.HOST,
            priority=2130706431,
            foundation="1",
        ),
    ),
)


def req(method: str, *body: str, peer: str = "A", tid: str = "T1", version: str = "1.0") -> bytes:
    head = f"<Request>{method}</Request><PeerID>{peer}</PeerID><TransactionID>{tid}</TransactionID>"
    root = f'<PPSPTrackerProtocol version="{version}">'
    return f"{root}{head}{''.join(body)}</PPSPTrackerProtocol>".encode()


def parse(data: bytes) -> Request:
    return parse_request_untrusted(data)


def refused(data: bytes) -> PpspError:
    with pytest.raises(PpspError) as info:
        parse(data)
    return info.value


# -- each method ------------------------------------------------------------------


def test_connect_with_addresses_and_token() -> None:
    r = parse(
        req(
            "CONNECT",
            "<PeerGroup><PeerInfo>",
            '<PeerAddress addrType="ipv4" ip="10.0.0.1" port="4000" type="HOST" priority="7"/>',
            '<PeerAddress addrType="ipv6" ip="2001:DB8:0::1" port="0"/>',
            "</PeerInfo></PeerGroup>",
            "<ReconnectToken> tok-1 </ReconnectToken>",
        )
    )
    assert r.method is Method.CONNECT
    assert r.addresses == (
        PeerAddress(
            addr_type=AddrType.IPV4, ip="10.0.0.1", port=4000, type=AddressType.HOST, priority=7
        ),
        PeerAddress(addr_type=AddrType.IPV6, ip="2001:db8::1", port=0),  # canonical form
    )
    assert r.reconnect_token == "tok-1"


def test_connect_minimal() -> None:
    assert parse(req("CONNECT")) == Request(method=Method.CONNECT, peer_id="A", transaction_id="T1")


def test_join_without_mode_leaves_it_to_the_core_and_accepts_seeder() -> None:
    assert parse(req("JOIN", "<SwarmID>S</SwarmID>")).peer_mode is None
    r = parse(req("JOIN", "<SwarmID>S</SwarmID><PeerMode>SEEDER</PeerMode>"))
    assert r.peer_mode is PeerMode.SEED
    r = parse(req("JOIN", "<SwarmID>S</SwarmID><PeerMode> SEED </PeerMode>", OFFER_XML))
    assert r.peer_mode is PeerMode.SEED
    assert r.ice_offer == OFFER


def test_join_with_start_point_and_peer_num() -> None:
    r = parse(
        req(
            "JOIN",
            "<SwarmID>S</SwarmID>",
            '<PeerNum abilityNAT="TURN">\n 12 \n</PeerNum>',
            '<ContentGroup><Representation id="r0"><SegmentInfo startIndex="7"/>',
            "</Representation></ContentGroup>",
        )
    )
    assert r.peer_num == PeerNum(count=12, ability_nat=NatAbility.TURN)
    assert r.content == (Representation(id="r0", segments=(SegmentInfo(start=7),)),)


def test_peer_num_without_count() -> None:
    r = parse(req("FIND", "<SwarmID>S</SwarmID>", '<PeerNum abilityNAT="NoNAT"/>'))
    assert r.peer_num == PeerNum(ability_nat=NatAbility.NO_NAT)


def test_find_with_range() -> None:
    r = parse(
        req(
            "FIND",
            "<SwarmID>S</SwarmID><ContentGroup><Representation id='x'>",
            "<SegmentInfo startIndex='3' endIndex='3'/></Representation></ContentGroup>",
        )
    )
    assert r.content[0].segments == (SegmentInfo(start=3, end=3),)
    assert r.peer_mode is None  # only JOIN defaults


def test_stat_report_keepalive_and_stats() -> None:
    assert parse(req("STAT_REPORT")).stats is None  # a keep-alive (PROTOCOL §3)
    assert parse(req("STAT_REPORT", "<StatisticsGroup/>")).stats == ()
    r = parse(
        req(
            "STAT_REPORT",
            "<StatisticsGroup>",
            '<Stat property="StreamStatistics"><SwarmID>S</SwarmID>',
            "<UploadedBytes>18446744073709551615</UploadedBytes></Stat>",
            '<Stat property="Future"><Whatever/></Stat>',
            "<Stat><SwarmID>S</SwarmID></Stat>",
            '<Stat property="ContentMap"><SwarmID>S</SwarmID><Representation id="r">',
            '<SegmentInfo startIndex="0" endIndex="7" chunkmapSize="8"> /w== </SegmentInfo>',
            "</Representation></Stat>",
            "</StatisticsGroup>",
            OFFER_XML,
        )
    )
    assert r.stats == (
        StreamStatistics(swarm_id="S", uploaded_bytes=2**64 - 1),
        ContentMap(
            swarm_id="S",
            representations=(
                Representation(
                    id="r",
                    segments=(SegmentInfo(start=0, end=7, chunkmap_size=8, chunk_map="/w=="),),
                ),
            ),
        ),
    )
    assert r.ice_offer == OFFER


@pytest.mark.parametrize("swarm", ["S", "ALL", "nil"])
def test_disconnect(swarm: str) -> None:
    assert parse(req("DISCONNECT", f"<SwarmID>{swarm}</SwarmID>")).swarm_id == swarm


def test_attach() -> None:
    r = parse(
        req(
            "ATTACH",
            "<SwarmID>S</SwarmID><TargetPeerID>B</TargetPeerID><OfferID>o-9</OfferID>",
            OFFER_XML,
        )
    )
    assert r == Request(
        method=Method.ATTACH,
        peer_id="A",
        transaction_id="T1",
        swarm_id="S",
        target_peer_id="B",
        offer_id="o-9",
        ice_offer=OFFER,
    )


def test_attach_ack() -> None:
    r = parse(req("ATTACH_ACK", "<IndicationID>I7</IndicationID>"))
    assert (r.method, r.indication_id) == (Method.ATTACH_ACK, "I7")


def test_offer_without_candidates_or_fingerprint() -> None:
    r = parse(req("JOIN", "<SwarmID>S</SwarmID>", '<IceOffer id="o" ufrag="u" pwd="p"/>'))
    assert r.ice_offer == IceOffer(id="o", ufrag="u", pwd="p")


# -- errors: every one is 400 and carries the IDs it could read ----------------------


def test_bad_version() -> None:
    err = refused(req("CONNECT", version="2.0"))
    assert err.status == Status.BAD_REQUEST
    assert err.text == "VERSION NOT SUPPORTED" == Status.VERSION_NOT_SUPPORTED_TEXT
    assert err.reason == "Version Not Supported"
    assert (err.transaction_id, err.peer_id) == ("T1", "A") and err.answerable


def test_missing_version() -> None:
    err = refused(req("CONNECT").replace(b' version="1.0"', b""))
    assert err.reason == "Missing Version" and err.text is None and err.answerable


def test_wrong_root() -> None:
    err = refused(b"<PPSP version='1.0'><Request>CONNECT</Request></PPSP>")
    assert err.reason == "Not A PPSP Document" and not err.answerable


@pytest.mark.parametrize("method", ["connect", "PUBLISH", "", "CONNECT JOIN"])
def test_unknown_method(method: str) -> None:
    err = refused(req(method))
    assert (err.status, err.reason, err.text) == (400, "Unknown Request", None)
    assert err.answerable


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b'<PPSPTrackerProtocol version="1.0"><PeerID>A</PeerID></PPSPTrackerProtocol>',
            "Missing Request",
        ),
        (req("JOIN"), "Missing SwarmID"),
        (req("FIND"), "Missing SwarmID"),
        (req("DISCONNECT"), "Missing SwarmID"),
        (req("ATTACH", OFFER_XML, "<TargetPeerID>B</TargetPeerID>"), "Missing SwarmID"),
        (req("ATTACH", "<SwarmID>S</SwarmID>", OFFER_XML), "Missing TargetPeerID"),
        (req("ATTACH", "<SwarmID>S</SwarmID><TargetPeerID>B</TargetPeerID>"), "Missing IceOffer"),
        (req("ATTACH_ACK"), "Missing IndicationID"),
    ],
)
def test_missing_fields(data: bytes, reason: str) -> None:
    err = refused(data)
    assert (err.status, err.reason) == (400, reason)


def test_missing_transaction_id_is_not_answerable() -> None:
    data = b'<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request><PeerID>A</PeerID>'
    err = refused(data + b"</PPSPTrackerProtocol>")
    assert err.reason == "Missing TransactionID"
    assert not err.answerable and err.peer_id == "A"


def test_missing_peer_id_is_answerable() -> None:
    data = b'<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request>'
    err = refused(data + b"<TransactionID>T</TransactionID></PPSPTrackerProtocol>")
    assert err.reason == "Missing PeerID"
    assert err.answerable and err.transaction_id == "T" and err.peer_id is None
    assert err.to_response() is not None


@pytest.mark.parametrize(
    ("peer", "tid", "reason"),
    [
        ("", "T", "Invalid PeerID"),
        ("a b", "T", "Invalid PeerID"),
        ("x" * 65, "T", "Invalid PeerID"),
        ("é", "T", "Invalid PeerID"),
        ("\u00a0A", "T", "Invalid PeerID"),  # NBSP is not XML whitespace
        ("A", "", "Invalid TransactionID"),
        ("A", "t\tt", "Invalid TransactionID"),
        ("A", "x" * 65, "Invalid TransactionID"),
    ],
)
def test_bad_ids(peer: str, tid: str, reason: str) -> None:
    err = refused(req("CONNECT", peer=peer, tid=tid))
    assert err.reason == reason


def test_ids_are_stripped_and_64_chars_allowed() -> None:
    r = parse(req("CONNECT", peer="\n  " + "~" * 64 + "\t", tid=" !"))
    assert (r.peer_id, r.transaction_id) == ("~" * 64, "!")


@pytest.mark.parametrize(
    "body",
    [
        "<SwarmID>bad id</SwarmID>",
        "<TargetPeerID></TargetPeerID>",
        "<OfferID>" + "o" * 65 + "</OfferID>",
        "<IndicationID>&#127;</IndicationID>",
        "<ReconnectToken>a b</ReconnectToken>",
    ],
)
def test_other_bad_ids(body: str) -> None:
    err = refused(req("STAT_REPORT", body))
    assert err.reason.startswith("Invalid ")
    assert err.answerable


@pytest.mark.parametrize("method", ["JOIN", "FIND", "ATTACH"])
@pytest.mark.parametrize("swarm", ["ALL", "nil"])
def test_reserved_swarm_outside_disconnect(method: str, swarm: str) -> None:
    body = f"<SwarmID>{swarm}</SwarmID><TargetPeerID>B</TargetPeerID>{OFFER_XML}"
    err = refused(req(method, body))
    assert err.reason == "Reserved SwarmID" and err.answerable


def test_reserved_swarm_in_stats() -> None:
    body = '<StatisticsGroup><Stat property="StreamStatistics"><SwarmID>ALL</SwarmID></Stat>'
    assert refused(req("STAT_REPORT", body + "</StatisticsGroup>")).reason == "Reserved SwarmID"


def test_reserved_values_are_case_sensitive() -> None:
    assert parse(req("JOIN", "<SwarmID>all</SwarmID>")).swarm_id == "all"


@pytest.mark.parametrize(
    "dup",
    [
        "<Request>CONNECT</Request>",
        "<PeerID>A</PeerID>",
        "<TransactionID>T1</TransactionID>",
        "<SwarmID>S</SwarmID><SwarmID>S</SwarmID>",
        "<PeerMode>LEECH</PeerMode><PeerMode>LEECH</PeerMode>",
        "<PeerNum>1</PeerNum><PeerNum>1</PeerNum>",
        "<ContentGroup/><ContentGroup/>",
        "<StatisticsGroup/><StatisticsGroup/>",
        "<PeerGroup/><PeerGroup/>",
        "<PeerGroup><PeerInfo/><PeerInfo/></PeerGroup>",
        OFFER_XML + OFFER_XML,
        "<OfferID>o</OfferID><OfferID>o</OfferID>",
    ],
)
def test_duplicate_singular_elements(dup: str) -> None:
    err = refused(req("CONNECT", dup))
    assert err.status == 400 and err.reason.startswith("Duplicate ")


def test_duplicate_ids_are_not_answerable() -> None:
    # Two TransactionIDs: no way to tell which one the peer waits for.
    err = refused(req("CONNECT", "<TransactionID>T2</TransactionID>"))
    assert err.reason == "Duplicate TransactionID" and not err.answerable
    assert err.peer_id == "A"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ('addrType="ipv4" ip="10.0.0.256" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv4" ip="2001:db8::1" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv6" ip="10.0.0.1" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv6" ip="fe80::1%eth0" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv4" ip="010.0.0.1" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv4" ip="" port="1"', "Invalid PeerAddress ip"),
        ('addrType="ipv4" ip="example.com" port="1"', "Invalid PeerAddress ip"),
        ('addrType="IPv4" ip="10.0.0.1" port="1"', "Invalid PeerAddress addrType"),
        ('addrType="ipv4" ip="10.0.0.1" port="65536"', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port="-1"', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port="+80"', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port="8_0"', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port="\u0668\u0660"', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port=""', "Invalid PeerAddress port"),
        ('addrType="ipv4" ip="10.0.0.1" port="1" type="host"', "Invalid PeerAddress type"),
        (
            'addrType="ipv4" ip="10.0.0.1" port="1" priority="4294967296"',
            "Invalid PeerAddress priority",
        ),
        ('addrType="ipv4" ip="10.0.0.1" port="1" priority="1.5"', "Invalid PeerAddress priority"),
        ('addrType="ipv4" ip="10.0.0.1" port="1" foundation=""', "Invalid PeerAddress foundation"),
        ('ip="10.0.0.1" port="1"', "Missing PeerAddress addrType"),
        ('addrType="ipv4" port="1"', "Missing PeerAddress ip"),
        ('addrType="ipv4" ip="10.0.0.1"', "Missing PeerAddress port"),
    ],
)
def test_bad_peer_address(address: str, reason: str) -> None:
    data = req("CONNECT", f"<PeerGroup><PeerInfo><PeerAddress {address}/></PeerInfo></PeerGroup>")
    err = refused(data)
    assert (err.status, err.reason) == (400, reason)
    assert err.answerable


def test_address_extremes() -> None:
    body = (
        "<PeerGroup><PeerInfo>"
        '<PeerAddress addrType="ipv4" ip=" 0.0.0.0 " port="65535" priority="4294967295"/>'
        '<PeerAddress addrType="ipv6" ip="::ffff:192.0.2.1" port="00080" type="RELAYED"/>'
        "</PeerInfo></PeerGroup>"
    )
    a, b = parse(req("CONNECT", body)).addresses
    assert (a.ip, a.port, a.priority) == ("0.0.0.0", 65535, 2**32 - 1)
    assert (b.ip, b.port, b.type) == ("::ffff:c000:201", 80, AddressType.RELAYED)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<PeerNum>-1</PeerNum>", "Invalid PeerNum"),
        ("<PeerNum>five</PeerNum>", "Invalid PeerNum"),
        ("<PeerNum>1e3</PeerNum>", "Invalid PeerNum"),
        ("<PeerNum>" + "9" * 21 + "</PeerNum>", "Invalid PeerNum"),
        ('<PeerNum abilityNAT="UPNP">3</PeerNum>', "Invalid PeerNum abilityNAT"),
        ('<PeerNum concurrentLinks="">3</PeerNum>', "Invalid PeerNum concurrentLinks"),
        ("<PeerMode>leech</PeerMode>", "Invalid PeerMode"),
        (
            "<ContentGroup><Representation><SegmentInfo/></Representation></ContentGroup>",
            "Missing Representation id",
        ),
        (
            '<ContentGroup><Representation id="r"><SegmentInfo startIndex="9" endIndex="8"/>'
            "</Representation></ContentGroup>",
            "Invalid SegmentInfo range",
        ),
        (
            '<ContentGroup><Representation id="r"><SegmentInfo startIndex="x"/>'
            "</Representation></ContentGroup>",
            "Invalid SegmentInfo startIndex",
        ),
        (
            '<StatisticsGroup><Stat property="StreamStatistics"><UploadedBytes>1</UploadedBytes>'
            "</Stat></StatisticsGroup>",
            "Missing SwarmID",
        ),
        (
            '<StatisticsGroup><Stat property="StreamStatistics"><SwarmID>S</SwarmID>'
            "<UploadedBytes>-1</UploadedBytes></Stat></StatisticsGroup>",
            "Invalid UploadedBytes",
        ),
        (
            '<StatisticsGroup><Stat property="StreamStatistics"><SwarmID>S</SwarmID>'
            "<AvailBandwidth>18446744073709551616</AvailBandwidth></Stat></StatisticsGroup>",
            "Invalid AvailBandwidth",
        ),
        ('<IceOffer ufrag="u" pwd="p"/>', "Missing IceOffer id"),
        ('<IceOffer id="o" pwd="p"/>', "Missing IceOffer ufrag"),
        ('<IceOffer id="o" ufrag="u"/>', "Missing IceOffer pwd"),
        ('<IceOffer id="o" ufrag="u u" pwd="p"/>', "Invalid IceOffer ufrag"),
        ('<IceOffer id="o" ufrag="u" pwd="p" fingerprint=""/>', "Invalid IceOffer fingerprint"),
        (
            '<IceOffer id="o" ufrag="u" pwd="p"><PeerAddress addrType="ipv4" ip="1" port="1"/>'
            "</IceOffer>",
            "Invalid PeerAddress ip",
        ),
    ],
)
def test_bad_values(body: str, reason: str) -> None:
    err = refused(req("STAT_REPORT", body))
    assert (err.status, err.reason) == (400, reason)
    assert (err.transaction_id, err.peer_id) == ("T1", "A")


def test_error_reason_never_echoes_the_input() -> None:
    err = refused(req("CONNECT<script>", peer="A"))
    assert "script" not in err.reason and "script" not in str(err)


def test_response_document_is_not_a_request() -> None:
    data = b'<PPSPTrackerProtocol version="1.0"><Response>SUCCESSFUL</Response>'
    data += b"<TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    err = refused(data)
    assert err.reason == "Not A Request" and err.answerable


def test_ambiguous_document() -> None:
    err = refused(req("CONNECT", "<Response>SUCCESSFUL</Response>"))
    assert err.reason == "Ambiguous Message" and err.answerable


# -- encoding -------------------------------------------------------------------------------


def test_encode_is_compact_and_round_trips() -> None:
    r = Request(
        method=Method.ATTACH,
        peer_id="A",
        transaction_id="T1",
        swarm_id="S",
        target_peer_id="B",
        ice_offer=OFFER,
    )
    data = encode_request(r)
    assert data.startswith(b'<PPSPTrackerProtocol version="1.0"><Request>ATTACH</Request>')
    assert b"\n" not in data and b"> <" not in data
    assert parse(data) == r


def test_encode_connect_addresses_under_peer_group() -> None:
    addr = PeerAddress(addr_type=AddrType.IPV4, ip="10.0.0.1", port=1)
    data = encode_request(
        Request(method=Method.CONNECT, peer_id="A", transaction_id="T", addresses=(addr,))
    )
    assert b'<PeerGroup><PeerInfo><PeerAddress addrType="ipv4" ip="10.0.0.1" port="1"/>' in data
