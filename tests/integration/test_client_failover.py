"""Failover between two tracker endpoints sharing one store (issue 12 item 4,
PROTOCOL §9): when the client's node stops answering, it re-CONNECTs to the next
on a new DTLS session with the same identity, and that CONNECT restores every
swarm; a seeding Peer keeps serving through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
import pytest_asyncio

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.peer.peer import Peer
from stunlike_tracker.ppsp.messages import PeerMode, Response
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server
from stunlike_tracker.store.memory import MemoryStore
from tests.integration.support import Pki, client_settings


@dataclass
class TwoNodes:
    first: RunningServer
    second: RunningServer
    store: MemoryStore

    def settings(self, pki: Pki, **kw: object) -> ClientSettings:
        base = client_settings(self.first, pki, **kw)  # type: ignore[arg-type]
        return replace(base, backup_trackers=(self.second.address,))


async def _nodes(pki: Pki, *, mutual: bool = False) -> TwoNodes:
    store = MemoryStore()
    servers = []
    for node in ("node-a", "node-b"):
        config = TrackerConfig(lan_mode=True, node_id=node, keep_alive=1)
        settings = ServerSettings(
            cert_pem=pki.server.cert_pem,
            key_pem=pki.server.key_pem,
            host="127.0.0.1",
            port=0,
            peer_ca_pem=pki.ca.cert_pem,
            mutual=mutual,
            tracker=config,
        )
        servers.append(await start_server(settings, store))
    return TwoNodes(servers[0], servers[1], store)


@pytest_asyncio.fixture
async def nodes(pki: Pki) -> AsyncIterator[TwoNodes]:
    pair = await _nodes(pki)
    yield pair
    for server in (pair.first, pair.second):
        await server.close()


def _restored(client: TrackerClient) -> asyncio.Future[Response]:
    """Resolves with the response of the client's next re-CONNECT."""
    future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    previous = client.on_reconnect

    def on_reconnect(response: Response) -> None:
        if previous is not None:
            previous(response)
        if not future.done():
            future.set_result(response)

    client.on_reconnect = on_reconnect
    return future


@pytest.mark.asyncio
async def test_a_client_fails_over_with_its_token_and_keeps_every_swarm(
    nodes: TwoNodes, pki: Pki
) -> None:
    client = TrackerClient(nodes.settings(pki), "roamer")
    try:
        await client.connect()
        await client.join("s1", PeerMode.SEED)
        await client.join("s2")
        assert client.tracker_address == nodes.first.address
        token = client.reconnect_token
        restored = _restored(client)
        await nodes.first.close()  # the node is gone
        response = await asyncio.wait_for(client.find("s1"), 10)
        assert response.status == 200
        reconnect = await restored
        assert sorted(reconnect.swarm_ids) == ["s1", "s2"]
        assert client.tracker_address == nodes.second.address
        assert client.reconnects == 1 and client.reconnect_token != token
        record = nodes.store.get_peer("roamer")
        assert record is not None and record.node_id == "node-b"
        assert {m.swarm_id: m.mode for m in record.memberships} == {
            "s1": PeerMode.SEED,
            "s2": PeerMode.LEECH,
        }
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_mutual_mode_fails_over_with_its_certificate(pki: Pki) -> None:
    pair = await _nodes(pki, mutual=True)
    client = TrackerClient(pair.settings(pki, cert=pki.peer("alice")), "alice")
    try:
        await client.connect()
        await client.join("x")
        assert client.reconnect_token is None
        restored = _restored(client)
        await pair.first.close()
        # Idle: the keep-alive (1 s here) finds the node gone.
        reconnect = await asyncio.wait_for(restored, 10)
        assert reconnect.swarm_ids == ("x",)
        record = pair.store.get_peer("alice")
        assert record is not None and record.node_id == "node-b"
    finally:
        await client.close()
        await pair.second.close()


@pytest.mark.asyncio
async def test_a_seeder_keeps_seeding_through_a_failover(nodes: TwoNodes, pki: Pki) -> None:
    seeder = Peer(nodes.settings(pki), "seeder", lan_mode=True)
    only_second = replace(client_settings(nodes.second, pki))
    leecher = Peer(only_second, "leecher", lan_mode=True, connect_timeout=10.0)
    try:
        await seeder.start()
        await seeder.join("films", PeerMode.SEED)
        restored = _restored(seeder.client)
        await nodes.first.close()
        reconnect = await asyncio.wait_for(restored, 10)  # keep-alive noticed
        assert reconnect.swarm_ids == ("films",)
        await leecher.start()
        response = await leecher.join("films")
        assert [p.peer_id for p in response.peers] == ["seeder"]

        async def served() -> bytes:
            async for channel in seeder.incoming():
                await channel.send(b"the film")
                return await channel.recv()
            raise AssertionError("no incoming channel")

        serving = asyncio.ensure_future(served())
        channel = await asyncio.wait_for(leecher.connect("seeder"), 20)
        assert await asyncio.wait_for(channel.recv(), 10) == b"the film"
        await channel.send(b"thanks")
        assert await asyncio.wait_for(serving, 10) == b"thanks"
    finally:
        await leecher.close()
        await seeder.close()
