"""The JSON binding over a shared store (PROTOCOL §9, §14): a WebSocket peer on
node 1 and a native DTLS peer on node 2 share one swarm, and an ATTACH
crosses the node bus to the WebSocket and its JSON ATTACH_ACK crosses back."""

from __future__ import annotations

import asyncio

import pytest

from stunlike_tracker.config import HttpsConfig
from stunlike_tracker.http.https_listener import start_https
from stunlike_tracker.ppsp.messages import PeerMode
from tests.integration.multinode import start_nodes
from tests.integration.support import Pki, client_for
from tests.store.backends import RedisBackends

from .client import WsClient, request
from .test_json_binding import browser_offer, native_offer


@pytest.mark.asyncio
async def test_websocket_and_native_peers_on_two_nodes(
    redis_backends: RedisBackends, pki: Pki
) -> None:
    nodes = await start_nodes(pki, redis_backends.url("redis"), 2)
    https = await start_https(nodes[0], HttpsConfig(), "127.0.0.1", 0)
    native = client_for(nodes[1], pki, "native-m")
    ws = await WsClient(https.address, pki.ca.cert_pem).open()
    try:
        await native.connect()
        await native.join("films", PeerMode.SEED, ice_offer=native_offer("n-1"))
        answer = await ws.call(
            request(
                "CONNECT",
                "m1",
                "web-m",
                swarm_action=[{"swarm_id": "films", "action": "JOIN", "peer_mode": "LEECH"}],
                ice_offer=browser_offer("o-1"),
            )
        )
        listed = answer["response_data"]["swarm_action"][0]["peer_group"]
        assert [p["peer_id"] for p in listed] == ["native-m"]
        found = await native.find("films")
        assert [p.peer_id for p in found.peers] == ["web-m"]
        assert found.peers[0].offer is not None and found.peers[0].offer.id == "o-1"
        attach = asyncio.create_task(native.attach("films", "web-m", native_offer("n-2"), "o-1"))
        indication = await ws.indication()
        assert indication["indication_data"]["peer_info"]["peer_id"] == "native-m"
        ack = await ws.call(
            request("ATTACH_ACK", "m2", "web-m", indication_id=indication["transaction_id"])
        )
        assert ack["status"] == 200
        assert (await asyncio.wait_for(attach, 10)).status == 200
    finally:
        await ws.close()
        await native.close()
        await https.close()
        for node in nodes:
            await node.close()
