"""Redis faults (PROTOCOL §9): while Redis is down requests get 503 - never a
wrong 200, never a hang - and the node says so once; it reconnects by itself;
with AOF (appendfsync always) every membership acknowledged with 200
survives a Redis SIGKILL and restart."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from stunlike_tracker.peer.client import TrackerClient
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request
from stunlike_tracker.store.redis import RedisStore, connect
from tests.integration.multinode import start_nodes
from tests.integration.support import Pki, client_for
from tests.redis_servers import RedisServer, needs_redis

PEERS = 40


def _find(client: TrackerClient, swarm: str) -> Request:
    return Request(Method.FIND, client.peer_id, "", swarm_id=swarm)


@needs_redis
@pytest.mark.asyncio
async def test_redis_down_answers_503_and_restart_loses_nothing_acknowledged(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    redis = RedisServer(tmp_path, appendfsync="always")
    redis.start()
    nodes = await start_nodes(pki, redis.url, 2)
    clients = [client_for(nodes[i % 2], pki, f"p{i}") for i in range(PEERS)]
    try:
        acknowledged: dict[str, set[str]] = {}
        for i, client in enumerate(clients):
            await client.connect()
            swarm = f"s{i % 4}"
            response = await client.join(swarm, PeerMode.SEED if i % 3 else PeerMode.LEECH)
            assert response.status == 200
            acknowledged.setdefault(swarm, set()).add(client.peer_id)

        redis.kill()  # SIGKILL: only what was fsynced survives
        caplog.set_level(logging.WARNING, logger="stunlike_tracker.server.shared")
        started = time.monotonic()
        for client in clients[:6]:
            response = await asyncio.wait_for(client.request(_find(client, "s0")), 10)
            assert response.status == 503 and response.reason == "Store Unavailable"
        assert time.monotonic() - started < 10  # answered, not hung
        assert sum(n.endpoint.counters["store-unavailable-503"] for n in nodes) == 6
        outage = [r for r in caplog.records if "store unreachable" in r.getMessage()]
        assert len(outage) == 2  # once per node, not once per request

        redis.start()  # same port, same directory: the AOF is replayed
        for client in clients:
            response = await asyncio.wait_for(client.request(_find(client, "s0")), 10)
            # 403 Not Joined for peers of other swarms: the registration is back.
            assert response.status in (200, 403), response
        back = [r for r in caplog.records if "store reachable again" in r.getMessage()]
        assert len(back) == 2

        store = RedisStore(connect(redis.url))
        try:
            for swarm, members in acknowledged.items():
                assert await store.member_ids(swarm) == members
        finally:
            await store.close()
    finally:
        for client in clients:
            await client.close()
        for node in nodes:
            await node.close()
        redis.stop()
