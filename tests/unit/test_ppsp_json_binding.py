"""The JSON binding's documents (PROTOCOL §14): RFC 7846-shaped requests,
the examples of §14.10, the answers and errors the tracker sends."""

from __future__ import annotations

import json

import pytest

from stunlike_tracker.ppsp import PpspError
from stunlike_tracker.ppsp.json_binding import (
    ActionResult,
    JsonRequest,
    SwarmAction,
    encode_indication_json,
    encode_response_json,
    error_response_json,
    expand_swarm_actions,
    is_mdns_hostname,
    parse_json_indication_untrusted,
    parse_json_request_untrusted,
    parse_json_response_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    Indication,
    Method,
    NatAbility,
    PeerAddress,
    PeerInfo,
    PeerMode,
    Request,
    Response,
    Status,
    StreamStatistics,
)

# A CONNECT as RFC 7846 §3.3 shapes it: the peer's address, a peer number
# element, and swarm actions (join one swarm as LEECH, leave another).
RFC_CONNECT = b"""{
  "version": 1,
  "request_type": "CONNECT",
  "transaction_id": "12345",
  "peer_id": "656164657220",
  "request_data": {
    "peer_num": {"peer_count": 5, "ability_nat": "STUN", "concurrent_links": 5,
                 "online_time": 200, "upload_bandwidth": 2},
    "peer_addr": [{"ip_address": {"address_type": "ipv4", "address": "192.0.2.2"},
                   "port": 80, "priority": 1, "type": "HOST",
                   "connection": "wireless", "asn": "45645"}],
    "swarm_action": [{"swarm_id": "1111", "action": "JOIN", "peer_mode": "LEECH"},
                     {"swarm_id": "2222", "action": "LEAVE", "peer_mode": "SEED"}]
  }
}"""

RFC_FIND = b"""{"version": 1, "request_type": "FIND", "transaction_id": "12346",
  "peer_id": "656164657220",
  "request_data": {"swarm_id": "1111", "peer_num": {"peer_count": 5, "ability_nat": "NO_NAT"}}}"""

RFC_STAT_REPORT = b"""{"version": 1, "request_type": "STAT_REPORT", "transaction_id": "12347",
  "peer_id": "656164657220",
  "request_data": {"stat": [{"swarm_id": "1111", "uploaded_bytes": 512,
                             "downloaded_bytes": 768, "available_bandwidth": 1024000}]}}"""

MDNS = "4b1f33a2-97e4-4a6c-9f3e-5b1e0f3c7d21.local"


def test_rfc_connect_with_swarm_actions() -> None:
    parsed = parse_json_request_untrusted(RFC_CONNECT)
    request = parsed.request
    assert (request.method, request.peer_id, request.transaction_id) == (
        Method.CONNECT,
        "656164657220",
        "12345",
    )
    assert request.addresses == (
        PeerAddress(AddrType.IPV4, "192.0.2.2", 80, AddressType.HOST, 1, None, "wireless", "45645"),
    )
    assert request.peer_num is not None
    assert request.peer_num.count == 5
    assert request.peer_num.ability_nat is NatAbility.STUN
    assert request.peer_num.concurrent_links == "5"
    assert parsed.swarm_actions == (
        SwarmAction("1111", "JOIN", PeerMode.LEECH),
        SwarmAction("2222", "LEAVE", PeerMode.SEED),
    )
    connect, join, leave = expand_swarm_actions(parsed)
    assert connect == request
    assert (join.method, join.swarm_id, join.peer_mode, join.transaction_id) == (
        Method.JOIN,
        "1111",
        PeerMode.LEECH,
        "12345/1",
    )
    assert join.peer_num == request.peer_num
    assert (leave.method, leave.swarm_id, leave.transaction_id) == (
        Method.DISCONNECT,
        "2222",
        "12345/2",
    )


def test_rfc_find_and_stat_report() -> None:
    find = parse_json_request_untrusted(RFC_FIND).request
    assert (find.method, find.swarm_id) == (Method.FIND, "1111")
    assert find.peer_num is not None
    assert find.peer_num.ability_nat is NatAbility.NO_NAT
    report = parse_json_request_untrusted(RFC_STAT_REPORT).request
    assert report.stats == (StreamStatistics("1111", 512, 768, 1024000),)


def test_keep_alive_stat_report_has_no_stats() -> None:
    data = b'{"version":1,"request_type":"STAT_REPORT","transaction_id":"t","peer_id":"p"}'
    assert parse_json_request_untrusted(data).request.stats is None


def test_long_transaction_ids_are_cut_for_actions() -> None:
    parsed = JsonRequest(
        Request(Method.CONNECT, "p", "x" * 64),
        (SwarmAction("s", "JOIN"),),
    )
    _, join = expand_swarm_actions(parsed)
    assert join.transaction_id == "x" * 62 + "/1"


def test_the_offer_goes_with_the_first_join_only() -> None:
    data = json.dumps(
        {
            "version": 1,
            "request_type": "CONNECT",
            "transaction_id": "w1",
            "peer_id": "web-1",
            "request_data": {
                "swarm_action": [
                    {"swarm_id": "a", "action": "JOIN", "peer_mode": "SEED"},
                    {"swarm_id": "b", "action": "JOIN"},
                ],
                "ice_offer": {"id": "o-1", "ufrag": "uf", "pwd": "pw", "candidates": []},
            },
        }
    ).encode()
    _, first, second = expand_swarm_actions(parse_json_request_untrusted(data))
    assert first.ice_offer is not None and first.ice_offer.id == "o-1"
    assert second.ice_offer is None and second.peer_mode is None


def test_mdns_candidates_are_accepted_in_offers_only() -> None:
    assert is_mdns_hostname(MDNS)
    assert is_mdns_hostname(MDNS.upper().replace(".LOCAL", ".local"))
    for name in ("printer.local", MDNS + ".", "evil.example.com", MDNS.replace("-", "x")):
        assert not is_mdns_hostname(name)
    candidate = {
        "ip_address": {"address_type": "ipv4", "address": MDNS},
        "port": 54400,
        "type": "HOST",
        "priority": 2122260223,
        "foundation": "1",
    }
    join = {
        "version": 1,
        "request_type": "JOIN",
        "transaction_id": "j",
        "peer_id": "web-1",
        "request_data": {
            "swarm_id": "films",
            "ice_offer": {"id": "o", "ufrag": "u", "pwd": "p", "candidates": [candidate]},
        },
    }
    offer = parse_json_request_untrusted(json.dumps(join).encode()).request.ice_offer
    assert offer is not None
    assert offer.candidates[0].ip == MDNS
    # A CONNECT's own addresses are where the tracker may send: IP literals only.
    connect = {
        "version": 1,
        "request_type": "CONNECT",
        "transaction_id": "c",
        "peer_id": "web-1",
        "request_data": {"peer_addr": [candidate]},
    }
    with pytest.raises(PpspError) as caught:
        parse_json_request_untrusted(json.dumps(connect).encode())
    assert caught.value.reason == "Invalid peer_addr ip_address address"


@pytest.mark.parametrize(
    ("data", "reason", "transaction_id"),
    [
        (b"", "Malformed Message", None),
        (b"{", "Malformed Message", None),
        (b"[]", "Not A PPSP Document", None),
        (b'"text"', "Not A PPSP Document", None),
        (b"\xff{}", "Not UTF-8", None),
        (b"[" * 11 + b"]" * 11, "Too Deep", None),
        (b'{"transaction_id":"t"}', "Missing version", "t"),
        (b'{"version":1.0,"transaction_id":"t"}', "Version Not Supported", "t"),
        (b'{"version":true,"transaction_id":"t"}', "Version Not Supported", "t"),
        (b'{"version":1,"transaction_id":"t","request_type":"HELLO"}', "Unknown Request", "t"),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"FIND",'
            b'"request_data":{"swarm_id":"s","swarm_id":"s"}}',
            "Duplicate member",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"FIND",'
            b'"request_data":{"swarm_id":"ALL"}}',
            "Reserved SwarmID",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"FIND",'
            b'"request_data":{"swarm_id":"s","peer_num":{"peer_count":NaN}}}',
            "Invalid number",
            None,
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"FIND",'
            b'"request_data":{"swarm_id":"s","peer_num":{"peer_count":true}}}',
            "Invalid request_data peer_num peer_count",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"FIND",'
            b'"request_data":{"swarm_id":"s","swarm_action":[{"swarm_id":"x","action":"JOIN"}]}}',
            "Invalid swarm_action",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"ATTACH",'
            b'"request_data":{"swarm_id":"s"}}',
            "Missing target_peer_id",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"ATTACH_ACK"}',
            "Missing indication_id",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":"t","peer_id":"p","request_type":"CONNECT",'
            b'"request_data":{"peer_addr":{"port":1}}}',
            "Not An array request_data peer_addr",
            "t",
        ),
        (
            b'{"version":1,"transaction_id":" ","request_type":"FIND"}',
            "Invalid transaction_id",
            None,
        ),
    ],
)
def test_bad_requests_get_clear_400s(data: bytes, reason: str, transaction_id: str | None) -> None:
    with pytest.raises(PpspError) as caught:
        parse_json_request_untrusted(data)
    error = caught.value
    assert (error.status, error.reason, error.transaction_id) == (400, reason, transaction_id)
    body = json.loads(error_response_json(error))
    # RFC 7846: 01 Bad Request, or 02 Unsupported Version Number.
    expected = 2 if reason == "Version Not Supported" else 1
    assert (body["error_code"], body["status"]) == (expected, 400)
    assert body["transaction_id"] == transaction_id
    assert body["reason"] == reason


def test_size_cap() -> None:
    padding = " " * 9000
    data = b'{"version":1,"transaction_id":"t"' + padding.encode() + b"}"
    with pytest.raises(PpspError) as caught:
        parse_json_request_untrusted(data)
    assert caught.value.reason == "Message Too Large"


def test_version_error_text() -> None:
    with pytest.raises(PpspError) as caught:
        parse_json_request_untrusted(b'{"version":2,"transaction_id":"t"}')
    body = json.loads(error_response_json(caught.value))
    assert body["response_type"] == "VERSION NOT SUPPORTED"
    assert (body["error_code"], body["status"]) == (2, 400)  # 02 Unsupported Version Number


def test_answer_with_swarm_actions_as_documented() -> None:
    """The CONNECT answer of PROTOCOL §14.10."""
    response = Response(200, "w1", "OK", keep_alive=25, reconnect_token="tok-1")
    action = ActionResult("films", "JOIN", 200, "OK")
    body = json.loads(encode_response_json(response, [action]))
    assert body == {
        "version": 1,
        "transaction_id": "w1",
        "error_code": 0,
        "status": 200,
        "response_type": "SUCCESSFUL",
        "reason": "OK",
        "response_data": {
            "keep_alive": 25,
            "reconnect_token": "tok-1",
            "swarm_action": [
                {
                    "swarm_id": "films",
                    "action": "JOIN",
                    "error_code": 0,
                    "status": 200,
                    "response_type": "SUCCESSFUL",
                    "reason": "OK",
                    "peer_group": [],
                }
            ],
        },
    }
    parsed = parse_json_response_untrusted(encode_response_json(response, [action]))
    assert parsed.response == response
    assert parsed.actions == (action,)


def test_indication_shape() -> None:
    indication = Indication(
        "tok-3",
        "films",
        PeerInfo("peer-A", PeerMode.LEECH, (PeerAddress(AddrType.IPV4, "198.51.100.20", 4),)),
        offer_id="o-17",
    )
    body = json.loads(encode_indication_json(indication))
    assert body["indication_type"] == "ATTACH"
    assert body["indication_data"]["offer_id"] == "o-17"
    assert body["indication_data"]["peer_info"]["peer_id"] == "peer-A"
    assert parse_json_indication_untrusted(encode_indication_json(indication)) == indication


def test_mdns_candidates_pass_through_xml_and_hygiene() -> None:
    """PROTOCOL §14.5: the same offer reaches native peers in XML unchanged."""
    from stunlike_tracker.ice.candidates import sanitize_offer
    from stunlike_tracker.ppsp import encode_request, parse_request_untrusted
    from stunlike_tracker.ppsp.messages import IceOffer

    mdns = PeerAddress(AddrType.IPV4, MDNS, 54400, AddressType.HOST, 2122260223, "1")
    offer = IceOffer("o", "uf", "pw", None, (mdns,))
    join = Request(Method.JOIN, "web-1", "j", swarm_id="films", ice_offer=offer)
    assert parse_request_untrusted(encode_request(join)) == join
    assert sanitize_offer(offer, lan_mode=False) == offer
    # Anywhere else an address must be an IP literal.
    connect = Request(Method.CONNECT, "web-1", "c", addresses=(mdns,))
    with pytest.raises(PpspError) as caught:
        parse_request_untrusted(encode_request(connect))
    assert caught.value.reason == "Invalid PeerAddress ip"
    other = IceOffer("o", "uf", "pw", None, (PeerAddress(AddrType.IPV4, "printer.local", 1),))
    assert sanitize_offer(other, lan_mode=True).candidates == ()


@pytest.mark.parametrize(
    ("status", "text", "error_code"),
    [
        (200, "SUCCESSFUL", 0),
        (400, "INVALID SYNTAX", 1),
        (400, "VERSION NOT SUPPORTED", 2),
        (403, "MESSAGE FORBIDDEN", 3),
        (404, "OBJECT NOT FOUND", 1),
        (500, "INTERNAL ERROR", 4),
        (503, "TEMPORARILY OVERLOADED", 5),
        (401, "AUTHENTICATION REQUIRED", 6),
    ],
)
def test_error_code_is_rfc7846s_and_status_is_ours(status: int, text: str, error_code: int) -> None:
    """PROTOCOL §14.9: ``error_code`` takes RFC 7846's registry values (00 No
    Error ... 06 Authentication Required); ``status`` keeps the draft-07 status."""
    response = Response(status, "t1", "Why", text=None if text == Status.TEXT[status] else text)
    body = json.loads(encode_response_json(response))
    assert (body["error_code"], body["status"], body["response_type"]) == (error_code, status, text)
    back = parse_json_response_untrusted(encode_response_json(response))
    assert back.response.status == status


@pytest.mark.parametrize(
    ("error_code", "status"), [(0, 200), (1, 400), (2, 400), (3, 403), (4, 500), (5, 503), (6, 401)]
)
def test_an_rfc7846_answer_without_status_is_read_by_its_error_code(
    error_code: int, status: int
) -> None:
    data = json.dumps({"version": 1, "transaction_id": "t", "error_code": error_code}).encode()
    assert parse_json_response_untrusted(data).response.status == status
