"""Response and indication documents (PROTOCOL §2, §4, §6, §7, §8)."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import (
    PpspError,
    encode_indication,
    encode_response,
    parse_indication_untrusted,
    parse_message_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Indication,
    Part,
    PeerAddress,
    PeerInfo,
    PeerMode,
    Response,
    Status,
    TurnServer,
)

REFLEXIVE = PeerAddress(
    addr_type=AddrType.IPV4,
    ip="203.0.113.7",
    port=40100,
    type=AddressType.REFLEXIVE,
    priority=1694498815,
)
OFFER = IceOffer(
    id="o-17",
    ufrag="x9Qf",
    pwd="pw",
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
PEER_B = PeerInfo(peer_id="B", mode=PeerMode.SEED, addresses=(REFLEXIVE,), offer=OFFER)


def resp(head: str, *body: str, tid: str = "T1") -> bytes:
    return (
        f'<PPSPTrackerProtocol version="1.0">{head}<TransactionID>{tid}</TransactionID>'
        f"{''.join(body)}</PPSPTrackerProtocol>"
    ).encode()


def refused(data: bytes) -> PpspError:
    with pytest.raises(PpspError) as info:
        parse_response_untrusted(data)
    return info.value


# -- status line ------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "text"), sorted(Status.TEXT.items()))
def test_status_from_text_alone(status: int, text: str) -> None:
    # The draft's examples: <Response>SUCCESSFUL</Response>, no attribute.
    r = parse_response_untrusted(resp(f"<Response>{text}</Response>"))
    assert (r.status, r.text, r.status_text) == (status, None, text)


def test_version_not_supported_text_alone() -> None:
    r = parse_response_untrusted(resp("<Response>VERSION NOT SUPPORTED</Response>"))
    assert (r.status, r.text) == (400, "VERSION NOT SUPPORTED")


def test_status_attribute_wins_and_standard_text_is_none() -> None:
    r = parse_response_untrusted(
        resp('<Response status="403" reason="Not Joined"> MESSAGE FORBIDDEN </Response>')
    )
    assert (r.status, r.reason, r.text) == (403, "Not Joined", None)
    r = parse_response_untrusted(resp('<Response status="403"/>'))
    assert (r.status, r.reason, r.text) == (403, "", None)
    r = parse_response_untrusted(resp('<Response status="299">FINE</Response>'))
    assert (r.status, r.text) == (299, "FINE")


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        ("<Response>OK</Response>", "Unknown Response Status"),
        ("<Response>successful</Response>", "Unknown Response Status"),
        ('<Response status="20">SUCCESSFUL</Response>', "Invalid Response status"),
        ('<Response status="600">SUCCESSFUL</Response>', "Invalid Response status"),
        ('<Response status="2OO">SUCCESSFUL</Response>', "Invalid Response status"),
        ("<Request>JOIN</Request>", "Not A Response"),
        ("<Indication>ATTACH</Indication>", "Not A Response"),
        ("", "Missing Response"),
    ],
)
def test_bad_status_line(head: str, reason: str) -> None:
    err = refused(resp(head))
    assert err.reason == reason and err.transaction_id == "T1"


def test_missing_transaction_id() -> None:
    data = b'<PPSPTrackerProtocol version="1.0"><Response>SUCCESSFUL</Response>'
    err = refused(data + b"</PPSPTrackerProtocol>")
    assert err.reason == "Missing TransactionID" and not err.answerable


# -- body ------------------------------------------------------------------------------------------


def test_connect_response_with_everything() -> None:
    r = parse_response_untrusted(
        resp(
            '<Response status="200" reason="">SUCCESSFUL</Response>',
            "<SwarmID>S1</SwarmID><SwarmID>S2</SwarmID>",
            "<KeepAlive>25</KeepAlive><ReconnectToken>tok</ReconnectToken>",
            '<TurnServer uri="turn:relay.example:3478" username="1700000000:A"'
            ' credential="c2VjcmV0" ttl="600"/>',
            '<TurnServer uri="turns:relay.example:5349" username="u" credential="c" ttl="0"/>',
            "<PeerGroup><PeerInfo>",
            '<PeerAddress addrType="ipv4" ip="203.0.113.7" port="40100" type="REFLEXIVE"'
            ' priority="1694498815"/>',
            "</PeerInfo></PeerGroup>",
        )
    )
    assert r == Response(
        status=200,
        transaction_id="T1",
        peers=(PeerInfo(addresses=(REFLEXIVE,)),),
        swarm_ids=("S1", "S2"),
        keep_alive=25,
        turn_servers=(
            TurnServer(
                uri="turn:relay.example:3478",
                username="1700000000:A",
                credential="c2VjcmV0",
                ttl=600,
            ),
            TurnServer(uri="turns:relay.example:5349", username="u", credential="c", ttl=0),
        ),
        reconnect_token="tok",
    )


def test_find_response_peer_with_offer() -> None:
    r = Response(status=200, transaction_id="T1", swarm_ids=("S",), peers=(PEER_B,))
    assert parse_response_untrusted(encode_response(r)) == r


def test_error_response_round_trip() -> None:
    r = Response(status=400, transaction_id="T1", reason="Version Not Supported")
    r = Response(
        status=r.status,
        transaction_id=r.transaction_id,
        reason=r.reason,
        text="VERSION NOT SUPPORTED",
    )
    data = encode_response(r)
    assert b'<Response status="400" reason="Version Not Supported">VERSION NOT SUPPORTED' in data
    assert parse_response_untrusted(data) == r


def test_part_element() -> None:
    r = parse_response_untrusted(
        resp("<Response>SUCCESSFUL</Response>", '<Part index="1" count="3"/>')
    )
    assert r.part == Part(index=1, count=3)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('<Part index="3" count="3"/>', "Invalid Part"),
        ('<Part index="0" count="0"/>', "Invalid Part"),
        ('<Part index="0"/>', "Missing Part count"),
        ('<Part count="2"/>', "Missing Part index"),
        ('<Part index="0" count="2"/><Part index="1" count="2"/>', "Duplicate Part"),
        ("<KeepAlive>-5</KeepAlive>", "Invalid KeepAlive"),
        ("<KeepAlive>1</KeepAlive><KeepAlive>1</KeepAlive>", "Duplicate KeepAlive"),
        ("<SwarmID>ALL</SwarmID>", "Reserved SwarmID"),
        ("<SwarmID>a b</SwarmID>", "Invalid SwarmID"),
        ('<TurnServer uri="turn:x" username="u" credential="c"/>', "Missing TurnServer ttl"),
        ('<TurnServer uri="turn:x" username="u" ttl="1"/>', "Missing TurnServer credential"),
        ('<TurnServer uri="" username="u" credential="c" ttl="1"/>', "Invalid TurnServer uri"),
        ("<PeerGroup/><PeerGroup/>", "Duplicate PeerGroup"),
        (
            "<PeerGroup><PeerInfo><PeerID>a</PeerID><PeerID>b</PeerID></PeerInfo></PeerGroup>",
            "Duplicate PeerID",
        ),
        (
            "<PeerGroup><PeerInfo><PeerMode>BOTH</PeerMode></PeerInfo></PeerGroup>",
            "Invalid PeerMode",
        ),
        (
            '<PeerGroup><PeerInfo><PeerAddress addrType="ipv6" ip="1.2.3.4" port="1"/></PeerInfo>'
            "</PeerGroup>",
            "Invalid PeerAddress ip",
        ),
    ],
)
def test_bad_response_body(body: str, reason: str) -> None:
    err = refused(resp("<Response>SUCCESSFUL</Response>", body))
    assert (err.status, err.reason, err.transaction_id) == (400, reason, "T1")


def test_empty_peer_group() -> None:
    r = parse_response_untrusted(resp("<Response>SUCCESSFUL</Response>", "<PeerGroup/>"))
    assert r.peers == ()


def test_reason_keeps_its_characters() -> None:
    r = Response(status=403, transaction_id="T", reason=' tab\there "quoted" <&>\r\n é ')
    assert parse_response_untrusted(encode_response(r)) == r


def test_encode_refuses_characters_xml_cannot_carry() -> None:
    with pytest.raises(ValueError, match="XML"):
        encode_response(Response(status=500, transaction_id="T", reason="nul\x00"))


# -- indications ---------------------------------------------------------------------------


def indication(*body: str, kind: str = "ATTACH") -> bytes:
    return (
        f'<PPSPTrackerProtocol version="1.0"><Indication>{kind}</Indication>'
        f"<TransactionID>I1</TransactionID>{''.join(body)}</PPSPTrackerProtocol>"
    ).encode()


def test_indication_round_trip() -> None:
    i = Indication(transaction_id="I1", swarm_id="S", peer=PEER_B, offer_id="o-3")
    data = encode_indication(i)
    assert data.startswith(b'<PPSPTrackerProtocol version="1.0"><Indication>ATTACH</Indication>')
    assert parse_indication_untrusted(data) == i
    assert parse_message_untrusted(data) == i


def test_indication_minimal() -> None:
    i = parse_indication_untrusted(
        indication(
            "<SwarmID>S</SwarmID><PeerGroup><PeerInfo><PeerID>A</PeerID></PeerInfo></PeerGroup>"
        )
    )
    assert i == Indication(transaction_id="I1", swarm_id="S", peer=PeerInfo(peer_id="A"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (indication("<SwarmID>S</SwarmID>"), "Missing PeerInfo"),
        (indication("<SwarmID>S</SwarmID><PeerGroup/>"), "Missing PeerInfo"),
        (indication("<SwarmID>S</SwarmID><PeerGroup><PeerInfo/></PeerGroup>"), "Missing PeerID"),
        (
            indication(
                "<SwarmID>S</SwarmID><PeerGroup><PeerInfo><PeerID>A</PeerID></PeerInfo>"
                "<PeerInfo><PeerID>B</PeerID></PeerInfo></PeerGroup>"
            ),
            "Duplicate PeerInfo",
        ),
        (
            indication("<PeerGroup><PeerInfo><PeerID>A</PeerID></PeerInfo></PeerGroup>"),
            "Missing SwarmID",
        ),
        (indication("<SwarmID>nil</SwarmID>"), "Reserved SwarmID"),
        (indication("<SwarmID>S</SwarmID>", kind="DETACH"), "Unknown Indication"),
        (indication("<SwarmID>S</SwarmID>", kind="attach"), "Unknown Indication"),
    ],
)
def test_bad_indication(data: bytes, reason: str) -> None:
    with pytest.raises(PpspError) as info:
        parse_indication_untrusted(data)
    assert (info.value.reason, info.value.transaction_id) == (reason, "I1")


def test_request_is_not_an_indication() -> None:
    data = b'<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request></PPSPTrackerProtocol>'
    with pytest.raises(PpspError, match="Not An Indication"):
        parse_indication_untrusted(data)


def test_message_without_kind() -> None:
    data = (
        b'<PPSPTrackerProtocol version="1.0"><TransactionID>T</TransactionID></PPSPTrackerProtocol>'
    )
    with pytest.raises(PpspError) as info:
        parse_message_untrusted(data)
    assert info.value.reason == "Unknown Message" and info.value.answerable
