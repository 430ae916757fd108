"""One logical tracker from several nodes over Redis / Redis Cluster, with
real DTLS clients (PROTOCOL §6, §9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from stunlike_tracker.peer.client import TrackerError
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress, PeerMode
from stunlike_tracker.server.app import RunningServer
from tests.integration.multinode import start_nodes
from tests.integration.support import Pki, client_for
from tests.store.backends import RedisBackends


def _offer(offer_id: str) -> IceOffer:
    host = PeerAddress(AddrType.IPV4, "127.0.0.1", 40000, AddressType.HOST, 2130706431, "1")
    return IceOffer(offer_id, "ufrag", "p" * 22, None, (host,))


@pytest_asyncio.fixture(params=["redis", "cluster"])
async def nodes(
    request: pytest.FixtureRequest, redis_backends: RedisBackends, pki: Pki
) -> AsyncIterator[list[RunningServer]]:
    running = await start_nodes(pki, redis_backends.url(request.param), 2)
    try:
        yield running
    finally:
        for node in running:
            await node.close()


@pytest.mark.asyncio
async def test_find_on_node_2_lists_peers_joined_on_node_1(
    nodes: list[RunningServer], pki: Pki
) -> None:
    seeders = [client_for(nodes[0], pki, f"seed{i}") for i in range(3)]
    leech = client_for(nodes[1], pki, "leech")
    try:
        for i, seeder in enumerate(seeders):
            await seeder.connect()
            await seeder.join("movie", PeerMode.SEED, ice_offer=_offer(f"o{i}"))
        await leech.connect()
        joined = await leech.join("movie")
        assert sorted(p.peer_id or "" for p in joined.peers) == ["seed0", "seed1", "seed2"]
        assert sorted(p.offer.id for p in joined.peers if p.offer) == ["o0", "o1", "o2"]
        found = await leech.find("movie")
        assert {p.peer_id for p in found.peers} == {"seed0", "seed1", "seed2"}
        assert all(p.offer is None for p in found.peers)  # each offer handed out once
    finally:
        for client in (*seeders, leech):
            await client.close()


@pytest.mark.asyncio
async def test_attach_on_node_2_reaches_a_peer_on_node_1(
    nodes: list[RunningServer], pki: Pki
) -> None:
    target = client_for(nodes[0], pki, "target")
    requester = client_for(nodes[1], pki, "requester")
    try:
        await target.connect()
        await target.join("s", PeerMode.SEED, ice_offer=_offer("t0"))
        await requester.connect()
        joined = await requester.join("s")
        [listed] = joined.peers
        assert listed.offer is not None and listed.offer.id == "t0"
        response = await asyncio.wait_for(
            requester.attach("s", "target", _offer("r0"), offer_id="t0"), 4.0
        )
        assert response.status == 200  # the target's ATTACH_ACK came back across nodes
        indication = target.indications.get_nowait()
        assert indication.peer.peer_id == "requester" and indication.offer_id == "t0"
        # PROTOCOL §6: 404 when the target is gone.
        await target.disconnect("nil")
        with pytest.raises(TrackerError) as gone:
            await requester.attach("s", "target", _offer("r1"))
        assert gone.value.status == 404
    finally:
        await target.close()
        await requester.close()
