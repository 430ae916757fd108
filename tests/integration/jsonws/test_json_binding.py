"""The RFC 7846 JSON binding on a real HTTPS listener (PROTOCOL §14): POST and
WebSocket clients, a mixed swarm with a native DTLS peer, ATTACH pushed over
the WebSocket, re-CONNECT after a dropped socket, and clear 4xx for bad input."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
import pytest_asyncio

from stunlike_tracker.config import HttpsConfig
from stunlike_tracker.http.https_listener import HttpsListener, start_https
from stunlike_tracker.http.websocket import OP_BINARY, OP_TEXT, encode_frame
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    PeerAddress,
    PeerMode,
)
from stunlike_tracker.server.app import RunningServer

from ..support import Pki, client_for, make_pki, serve
from .client import HttpsClient, WsClient, request

MDNS = "4b1f33a2-97e4-4a6c-9f3e-5b1e0f3c7d21.local"
FINGERPRINT = "sha-256 " + ":".join(["AB"] * 32)


@dataclass
class Stack:
    pki: Pki
    server: RunningServer
    https: HttpsListener

    @property
    def address(self) -> tuple[str, int]:
        return self.https.address

    def ws(self) -> WsClient:
        return WsClient(self.address, self.pki.ca.cert_pem)

    def post(self) -> HttpsClient:
        return HttpsClient(self.address, self.pki.ca.cert_pem)


async def _stack(config: HttpsConfig | None = None) -> Stack:
    pki = make_pki()
    server = await serve(pki)
    https = await start_https(server, config or HttpsConfig(), "127.0.0.1", 0)
    return Stack(pki, server, https)


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[Stack]:
    running = await _stack()
    yield running
    await running.https.close()
    await running.server.close()


def browser_offer(offer_id: str) -> dict[str, object]:
    """An offer as a browser's RTCPeerConnection gives it: an mDNS host
    candidate and a server-reflexive one."""
    return {
        "id": offer_id,
        "ufrag": "Fq3x",
        "pwd": "p8Rk2sT5uV8wX1yZ4aB7c9",
        "fingerprint": FINGERPRINT,
        "candidates": [
            {
                "ip_address": {"address_type": "ipv4", "address": MDNS},
                "port": 54400,
                "type": "HOST",
                "priority": 2122260223,
                "foundation": "1",
            },
            {
                "ip_address": {"address_type": "ipv4", "address": "192.0.2.9"},
                "port": 54400,
                "type": "REFLEXIVE",
                "priority": 1686052607,
                "foundation": "2",
            },
        ],
    }


def native_offer(offer_id: str) -> IceOffer:
    host = PeerAddress(AddrType.IPV4, "192.0.2.20", 50410, AddressType.HOST, 2130706431, "1")
    return IceOffer(offer_id, "Hn2w", "Zt6yU1iO9pQ3rS5tV7wX2z", FINGERPRINT, (host,))


@pytest.mark.asyncio
async def test_post_binding_connect_join_find_stat_report_disconnect(stack: Stack) -> None:
    http = await stack.post().open()
    status, answer = await http.post(request("CONNECT", "p1", "post-1"))
    assert status == 200, answer
    assert (answer["status"], answer["response_type"], answer["reason"]) == (
        200,
        "SUCCESSFUL",
        "OK",
    )
    data = answer["response_data"]
    assert data["keep_alive"] == 25 and data["reconnect_token"] and data["session_token"]
    # PROTOCOL §14.3: no REFLEXIVE address from a TCP source.
    assert "peer_group" not in data
    status, answer = await http.post(
        request("JOIN", "p2", "post-1", swarm_id="films", peer_mode="SEED")
    )
    assert status == 200 and answer["response_data"]["swarm_ids"] == ["films"]
    status, answer = await http.post(request("FIND", "p3", "post-1", swarm_id="films"))
    assert status == 200 and "peer_group" not in answer["response_data"]  # alone in it
    stat = [{"swarm_id": "films", "uploaded_bytes": 10, "downloaded_bytes": 20}]
    status, answer = await http.post(request("STAT_REPORT", "p4", "post-1", stat=stat))
    assert status == 200, answer
    status, answer = await http.post(request("DISCONNECT", "p5", "post-1", swarm_id="nil"))
    assert status == 200, answer
    # The same Peer-ID without the session token is another session: 401... or,
    # now that it left, a plain FIND is refused as from an unknown peer.
    status, answer = await http.post(request("FIND", "p6", "post-1", swarm_id="films"))
    assert (status, answer["reason"]) == (403, "Not Connected")
    await http.close()


@pytest.mark.asyncio
async def test_post_session_is_named_by_its_token(stack: Stack) -> None:
    first = await stack.post().open()
    status, _ = await first.post(request("CONNECT", "c1", "post-2"))
    assert status == 200
    other = await stack.post().open()  # a new connection, no token
    status, answer = await other.post(request("FIND", "f1", "post-2", swarm_id="films"))
    assert (status, answer["reason"]) == (401, "PeerID Not Owned")
    other.session = first.session  # the token, on another TCP connection
    status, answer = await other.post(request("JOIN", "j1", "post-2", swarm_id="films"))
    assert status == 200, answer
    await first.close()
    await other.close()


@pytest.mark.asyncio
async def test_websocket_connect_with_swarm_actions(stack: Stack) -> None:
    ws = await stack.ws().open()
    seed = await ws.call(
        request(
            "CONNECT",
            "w1",
            "web-1",
            swarm_action=[{"swarm_id": "films", "action": "JOIN", "peer_mode": "SEED"}],
            ice_offer=browser_offer("o-1"),
        )
    )
    assert seed["status"] == 200, seed
    actions = seed["response_data"]["swarm_action"]
    assert [(a["swarm_id"], a["action"], a["status"]) for a in actions] == [("films", "JOIN", 200)]
    leech = await stack.ws().open()
    answer = await leech.call(
        request(
            "CONNECT",
            "l1",
            "web-2",
            swarm_action=[{"swarm_id": "films", "action": "JOIN", "peer_mode": "LEECH"}],
        )
    )
    listed = answer["response_data"]["swarm_action"][0]["peer_group"]
    assert [p["peer_id"] for p in listed] == ["web-1"]
    offer = listed[0]["ice_offer"]
    assert offer["id"] == "o-1" and offer["fingerprint"] == FINGERPRINT
    assert offer["candidates"][0]["ip_address"]["address"] == MDNS  # passed through
    assert listed[0]["peer_addr"] == []  # no TCP source as a UDP candidate
    # RFC 7846: a later CONNECT changes memberships; it is not "Already Connected".
    again = await leech.call(
        request(
            "CONNECT",
            "l2",
            "web-2",
            swarm_action=[
                {"swarm_id": "films", "action": "LEAVE"},
                {"swarm_id": "music", "action": "JOIN"},
            ],
        )
    )
    assert again["status"] == 200
    assert [a["status"] for a in again["response_data"]["swarm_action"]] == [200, 200]
    find = await leech.call(request("FIND", "l3", "web-2", swarm_id="films"))
    assert (find["status"], find["reason"]) == (403, "Not Joined")
    ws.ping()  # answered by a pong, nothing else
    await ws.close()
    await leech.close()


@pytest.mark.asyncio
async def test_mixed_swarm_find_and_attach_across_bindings(stack: Stack) -> None:
    """A native DTLS peer and a WebSocket peer in one swarm: FIND from either
    lists the other; the native ATTACH reaches the browser as a pushed JSON
    indication, and its JSON ATTACH_ACK completes the native ATTACH."""
    native = client_for(stack.server, stack.pki, "native-1")
    await native.connect()
    await native.join("films", PeerMode.SEED, ice_offer=native_offer("n-1"))
    ws = await stack.ws().open()
    answer = await ws.call(
        request(
            "CONNECT",
            "w1",
            "web-1",
            swarm_action=[{"swarm_id": "films", "action": "JOIN", "peer_mode": "LEECH"}],
            ice_offer=browser_offer("o-1"),
        )
    )
    listed = answer["response_data"]["swarm_action"][0]["peer_group"]
    assert [p["peer_id"] for p in listed] == ["native-1"]
    assert listed[0]["ice_offer"]["id"] == "n-1"
    # FIND from the WebSocket side lists the native peer (its offer is spent:
    # its REFLEXIVE and HOST addresses instead).
    find = await ws.call(request("FIND", "w2", "web-1", swarm_id="films"))
    found = find["response_data"]["peer_group"]
    assert [p["peer_id"] for p in found] == ["native-1"]
    assert found[0]["peer_addr"][0]["type"] == "REFLEXIVE"
    # FIND from the native side lists the WebSocket peer with its offer.
    native_find = await native.find("films")
    assert [p.peer_id for p in native_find.peers] == ["web-1"]
    web = native_find.peers[0]
    assert web.offer is not None and web.offer.id == "o-1"
    assert all(a.type is not AddressType.REFLEXIVE for a in web.addresses)
    assert web.offer.candidates[0].ip == MDNS
    # The native peer answers the browser's offer: pushed to the WebSocket.
    attach = asyncio.create_task(native.attach("films", "web-1", native_offer("n-2"), "o-1"))
    indication = await ws.indication()
    assert indication["indication_type"] == "ATTACH"
    data = indication["indication_data"]
    assert (data["swarm_id"], data["offer_id"]) == ("films", "o-1")
    assert data["peer_info"]["peer_id"] == "native-1"
    assert data["peer_info"]["ice_offer"]["id"] == "n-2"
    ack = await ws.call(
        request("ATTACH_ACK", "w3", "web-1", indication_id=indication["transaction_id"])
    )
    assert ack["status"] == 200
    done = await asyncio.wait_for(attach, 10)
    assert done.status == 200
    # And the other way: the browser ATTACHes to the native peer's next offer.
    await native.stat_report(ice_offer=native_offer("n-3"))
    find = await ws.call(request("FIND", "w4", "web-1", swarm_id="films"))
    assert find["response_data"]["peer_group"][0]["ice_offer"]["id"] == "n-3"
    answer = await ws.call(
        request(
            "ATTACH",
            "w5",
            "web-1",
            swarm_id="films",
            target_peer_id="native-1",
            offer_id="n-3",
            ice_offer=browser_offer("o-2"),
        )
    )
    assert answer["status"] == 200, answer
    native_indication = await asyncio.wait_for(native.indications.get(), 5)
    assert native_indication.peer.peer_id == "web-1"
    assert native_indication.peer.offer is not None
    assert native_indication.peer.offer.candidates[0].ip == MDNS
    await native.close(leave=True)
    await ws.close()


@pytest.mark.asyncio
async def test_dropped_websocket_is_a_lost_association(stack: Stack) -> None:
    ws = await stack.ws().open()
    answer = await ws.call(
        request(
            "CONNECT",
            "a1",
            "web-9",
            swarm_action=[{"swarm_id": "films", "action": "JOIN", "peer_mode": "SEED"}],
        )
    )
    token = answer["response_data"]["reconnect_token"]
    await ws.close()
    # The peer's registration and swarms outlive the socket ...
    native = client_for(stack.server, stack.pki, "native-2")
    await native.connect()
    await native.join("films", PeerMode.LEECH)
    found = await native.find("films")
    assert [p.peer_id for p in found.peers] == ["web-9"]
    assert found.peers[0].addresses == ()  # no offer, no HOST address, no TCP source
    assert (await native.find("films")).peers[0].addresses == ()  # the cached listing too
    # ... and a new WebSocket gets them back with the token (PROTOCOL §3, §8).
    again = await stack.ws().open()
    refused = await again.call(request("CONNECT", "b1", "web-9"))
    assert (refused["status"], refused["reason"]) == (401, "Reconnect Token Required")
    back = await again.call(request("CONNECT", "b2", "web-9", reconnect_token=token))
    assert back["status"] == 200
    assert back["response_data"]["swarm_ids"] == ["films"]
    find = await again.call(request("FIND", "b3", "web-9", swarm_id="films"))
    assert [p["peer_id"] for p in find["response_data"]["peer_group"]] == ["native-2"]
    await again.close()
    await native.close()


@pytest.mark.asyncio
async def test_bad_json_gets_clear_400s_over_post(stack: Stack) -> None:
    http = await stack.post().open()
    cases = [
        (b"{", "Malformed Message", None),
        (b"[" * 40 + b"]" * 40, "Too Deep", None),
        (
            b'{"version":1,"transaction_id":"t1","peer_id":"p","request_type":"FIND"}',
            "Missing swarm_id",
            "t1",
        ),
        (b'{"version":7,"transaction_id":"t2"}', "Version Not Supported", "t2"),
    ]
    for body, reason, transaction_id in cases:
        status, answer = await http.post(body)
        assert (status, answer["status"], answer["reason"]) == (400, 400, reason)
        assert answer["transaction_id"] == transaction_id
    status, _headers, raw = await http.request(
        "POST", "/ppsp", b"x" * 9000, {"Content-Type": "application/json"}
    )
    assert status == 413 and json.loads(raw)["reason"] == "Message Too Large"
    http = await stack.post().open()
    status, _headers, raw = await http.request(
        "POST", "/ppsp", b"{}", {"Content-Type": "text/plain"}
    )
    assert status == 415 and json.loads(raw)["status"] == 415
    status, _headers, raw = await http.request("GET", "/ppsp")
    assert status == 405
    http = await stack.post().open()
    status, _headers, _ = await http.raw(b"BROKEN\r\n\r\n")
    assert status == 400
    await http.close()


@pytest.mark.asyncio
async def test_websocket_errors(stack: Stack) -> None:
    ws = await stack.ws().open()
    ws.send(b'{"version":1,"transaction_id":"e1","peer_id":"p","request_type":"NOPE"}')
    answer = await ws.answer("e1")
    assert (answer["status"], answer["reason"]) == (400, "Unknown Request")
    ws.send(b"not json")
    malformed = await ws.receive()
    assert malformed is not None and malformed["transaction_id"] is None
    assert malformed["reason"] == "Malformed Message"  # the socket stays open
    ws.send(b" " * 9000)  # beyond the message size: closed with 1009
    assert await ws.receive() is None
    assert ws.close_code == 1009
    binary = await stack.ws().open()
    binary.send_frame(encode_frame(OP_BINARY, b"\x00", mask=os.urandom(4)))
    assert await binary.receive() is None and binary.close_code == 1003
    unmasked = await stack.ws().open()
    unmasked.send_frame(encode_frame(OP_TEXT, b"{}"))
    assert await unmasked.receive() is None and unmasked.close_code == 1002
    # A fragmented message is reassembled.
    pieces = await stack.ws().open()
    document = json.dumps(request("CONNECT", "f1", "frag-1")).encode()
    pieces.send_frame(encode_frame(OP_TEXT, document[:10], fin=False, mask=os.urandom(4)))
    pieces.send_frame(encode_frame(0, document[10:], mask=os.urandom(4)))
    assert (await pieces.answer("f1"))["status"] == 200
    await pieces.close()


@pytest.mark.asyncio
async def test_budgets_per_address_and_per_connection() -> None:
    running = await _stack(
        replace(HttpsConfig(), max_connections_per_address=2, message_rate=1.0, message_burst=2)
    )
    try:
        first = await running.ws().open()
        second = await running.ws().open()
        third = running.ws()
        with pytest.raises((AssertionError, ConnectionError, asyncio.IncompleteReadError, OSError)):
            await third.open()
        assert running.server.endpoint.drops["https-connections-over-budget"] == 1
        for index in range(4):
            first.send(request("CONNECT", f"r{index}", "rate-1"))
        reasons = [(await first.answer(f"r{i}"))["reason"] for i in range(4)]
        assert "Rate Limited" in reasons
        await first.close()
        await second.close()
    finally:
        await running.https.close()
        await running.server.close()


@pytest.mark.asyncio
async def test_the_page_and_its_config(stack: Stack) -> None:
    http = await stack.post().open()
    status, headers, body = await http.request("GET", "/peer/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<" in body
    status, _headers, body = await http.request("GET", "/peer/config.json")
    assert status == 200
    assert json.loads(body) == {"ws": "/ppsp/ws", "stun_port": stack.server.address[1]}
    status, headers, _ = await http.request("GET", "/peer")
    assert status == 301 and headers["location"] == "/peer/"
    for path in ("/peer/../certs", "/peer/nope.js", "/peer/%2e%2e", "/nothing"):
        status, _headers, _ = await http.request("GET", path)
        assert status == 404, path
    status, headers, body = await http.request("GET", "/status.json")
    assert status == 200 and json.loads(body)
    await http.close()


@pytest.mark.asyncio
async def test_idle_websocket_is_closed_and_its_peer_lives_on() -> None:
    running = await _stack(replace(HttpsConfig(), idle_timeout=0.3))
    try:
        ws = await running.ws().open()
        answer = await ws.call(request("CONNECT", "i1", "idle-1"))
        assert answer["status"] == 200
        assert await ws.receive(5) is None  # closed by the tracker ...
        assert ws.close_code == 1001
        record = running.server.tracker.store.get_peer("idle-1")
        assert record is not None  # ... the registration runs on its own timer
    finally:
        await running.https.close()
        await running.server.close()


@pytest.mark.asyncio
async def test_a_multi_part_answer_is_one_json_answer(stack: Stack) -> None:
    """PROTOCOL §14.3: the core splits a long peer list into datagram-sized
    parts (§4); the JSON answer carries all of them, merged."""
    seeds = []
    for index in range(12):
        ws = await stack.ws().open()
        answer = await ws.call(
            request(
                "CONNECT",
                f"s{index}",
                f"seed-{index}",
                swarm_action=[{"swarm_id": "big", "action": "JOIN", "peer_mode": "SEED"}],
                ice_offer=browser_offer(f"offer-{index}"),
            )
        )
        assert answer["status"] == 200
        seeds.append(ws)
    leech = await stack.ws().open()
    answer = await leech.call(
        request(
            "JOIN",
            "j1",
            "leech-1",
            swarm_id="big",
            peer_mode="LEECH",
            peer_num={"peer_count": 12},
        )
    )
    assert (answer["status"], answer["reason"]) == (403, "Not Connected")
    await leech.call(request("CONNECT", "c1", "leech-1"))
    answer = await leech.call(
        request("JOIN", "j2", "leech-1", swarm_id="big", peer_num={"peer_count": 12})
    )
    peers = answer["response_data"]["peer_group"]
    assert sorted(p["peer_id"] for p in peers) == sorted(f"seed-{i}" for i in range(12))
    assert all(p["ice_offer"]["id"].startswith("offer-") for p in peers)
    assert "part" not in answer["response_data"]
    # The same answer as XML would not fit one datagram.
    from stunlike_tracker.ppsp.json_binding import parse_json_response_untrusted
    from stunlike_tracker.ppsp.multipart import encode_response_datagrams

    parsed = parse_json_response_untrusted(json.dumps(answer).encode())
    assert len(encode_response_datagrams(parsed.response)) > 1
    for ws in (*seeds, leech):
        await ws.close()


@pytest.mark.asyncio
async def test_a_renewed_certificate_serves_new_connections(stack: Stack) -> None:
    import ssl

    from stunlike_tracker.certs import make_server_cert

    renewed = make_server_cert(stack.pki.ca)
    stack.https.reload_certificate(renewed.cert_pem, renewed.key_pem)
    http = await stack.post().open()
    assert http.writer is not None
    ssl_object = http.writer.get_extra_info("ssl_object")
    served = ssl_object.getpeercert(binary_form=True)
    assert served == ssl.PEM_cert_to_DER_cert(renewed.cert_pem.decode())
    assert served != ssl.PEM_cert_to_DER_cert(stack.pki.server.cert_pem.decode())
    await http.close()


@pytest.mark.asyncio
async def test_an_idle_post_session_is_forgotten() -> None:
    running = await _stack(replace(HttpsConfig(), idle_timeout=0.3))
    try:
        http = await running.post().open()
        status, _ = await http.post(request("CONNECT", "c1", "post-idle"))
        assert status == 200 and http.session is not None
        gateway = running.https.gateway
        for _ in range(100):  # the housekeeping runs every idle_timeout / 2
            if http.session not in gateway.by_token:
                break
            await asyncio.sleep(0.05)
        assert http.session not in gateway.by_token
        token = http.session
        http = await running.post().open()  # the old connection idled out too
        http.session = token  # now naming nothing: a fresh session
        status, answer = await http.post(request("FIND", "f1", "post-idle", swarm_id="films"))
        assert (status, answer["reason"]) == (401, "PeerID Not Owned")
        await http.close()
    finally:
        await running.https.close()
        await running.server.close()


@pytest.mark.asyncio
async def test_requests_in_flight_per_websocket_are_capped() -> None:
    running = await _stack(replace(HttpsConfig(), max_in_flight=1))
    try:
        target = await running.ws().open()
        join = [{"swarm_id": "s", "action": "JOIN", "peer_mode": "SEED"}]
        await target.call(
            request("CONNECT", "t1", "cap-b", swarm_action=join, ice_offer=browser_offer("b1"))
        )
        asker = await running.ws().open()
        joined = await asker.call(
            request("CONNECT", "a1", "cap-a", swarm_action=[{"swarm_id": "s", "action": "JOIN"}])
        )
        assert joined["response_data"]["swarm_action"][0]["peer_group"][0]["peer_id"] == "cap-b"
        asker.send(
            request(
                "ATTACH",
                "a2",
                "cap-a",
                swarm_id="s",
                target_peer_id="cap-b",
                offer_id="b1",
                ice_offer=browser_offer("a-1"),
            )
        )
        indication = await target.indication()  # the ATTACH is in flight now
        refused = await asker.call(request("FIND", "a3", "cap-a", swarm_id="s"))
        assert (refused["status"], refused["reason"]) == (503, "Rate Limited")
        await target.call(
            request("ATTACH_ACK", "t2", "cap-b", indication_id=indication["transaction_id"])
        )
        assert (await asker.answer("a2"))["status"] == 200
        assert (await asker.call(request("FIND", "a4", "cap-a", swarm_id="s")))["status"] == 200
        await asker.close()
        await target.close()
    finally:
        await running.https.close()
        await running.server.close()


@pytest.mark.asyncio
async def test_mutual_mode_takes_the_peer_id_from_the_client_certificate() -> None:
    """PROTOCOL §8 over TLS: a client certificate of the peer CA names the
    Peer-ID; without one, or for another Peer-ID, requests are 401."""
    pki = make_pki()
    server = await serve(pki, mutual=True)
    https = await start_https(server, HttpsConfig(), "127.0.0.1", 0)
    try:
        issued = pki.peer("cert-peer")
        ws = await WsClient(
            https.address, pki.ca.cert_pem, (issued.cert_pem, issued.key_pem)
        ).open()
        answer = await ws.call(request("CONNECT", "m1", "cert-peer"))
        assert answer["status"] == 200
        assert "reconnect_token" not in answer["response_data"]  # the certificate is the proof
        other = await ws.call(request("CONNECT", "m2", "someone-else"))
        assert (other["status"], other["reason"]) == (401, "PeerID Not Certified")
        await ws.close()
        anonymous = await WsClient(https.address, pki.ca.cert_pem).open()
        refused = await anonymous.call(request("CONNECT", "m3", "cert-peer"))
        assert (refused["status"], refused["reason"]) == (401, "PeerID Not Certified")
        await anonymous.close()
    finally:
        await https.close()
        await server.close()
