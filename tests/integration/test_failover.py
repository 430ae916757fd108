"""Three tracker nodes (processes) on one Redis, 200 joined peers, one node
SIGKILLed: every peer of that node fails over to a surviving node with the
product client (re-CONNECT with its ReconnectToken) and no membership is
lost (PROTOCOL §3 re-CONNECT, §9). Counted and timed; the figures are printed
(run with -s) and recorded as test properties."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode
from stunlike_tracker.store.redis import RedisStore, connect
from tests.redis_servers import needs_redis
from tests.store.backends import RedisBackends

PEERS = 200
NODES = 3
SWARMS = 10


# Every test peer comes from 127.0.0.1: lift the per-address Sybil caps.
CONFIG = "[tracker]\nmax_peers_per_source = 1000\nmax_source_share = 1.0\n"


async def _start_node(certs: Path, secret: str, url: str) -> tuple[asyncio.subprocess.Process, int]:
    config = certs.parent / "tracker.toml"
    config.write_text(CONFIG)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stunlike_tracker.cli", "serve", "--config", str(config),
        "--host", "127.0.0.1", "--port", "0", "--certs", str(certs),
        "--cookie-secret", secret, "--store", url, "--lan",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith("listening udp 127.0.0.1:"), line
    return process, int(line.rsplit(":", 1)[1])


async def _in_batches(
    items: list[TrackerClient], work: Callable[[TrackerClient], Awaitable[None]]
) -> None:
    for start in range(0, len(items), 25):
        await asyncio.gather(*(work(c) for c in items[start : start + 25]))


@needs_redis
@pytest.mark.asyncio
@pytest.mark.parametrize("backend", ["redis", "cluster"])
async def test_a_sigkilled_node_loses_no_peer_and_no_membership(
    backend: str,
    redis_backends: RedisBackends,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    url = redis_backends.url(backend)
    certs = tmp_path / "certs"
    secret = secrets.token_hex(16)
    nodes = [await _start_node(certs, secret, url) for _ in range(NODES)]
    ports = [port for _process, port in nodes]
    ca = (certs / "ca.pem").read_bytes()
    clients: list[TrackerClient] = []
    for i in range(PEERS):
        home = i % NODES
        order = [ports[(home + k) % NODES] for k in range(NODES)]
        settings = ClientSettings(
            tracker=("127.0.0.1", order[0]),
            backup_trackers=tuple(("127.0.0.1", p) for p in order[1:]),
            ca_pem=ca,
            server_name="localhost",
            local_host="127.0.0.1",
        )
        clients.append(TrackerClient(settings, f"peer{i:03d}"))
    swarm_of = {c.peer_id: f"swarm{i % SWARMS}" for i, c in enumerate(clients)}
    try:

        async def join(client: TrackerClient) -> None:
            await client.connect()
            mode = PeerMode.SEED if int(client.peer_id[4:]) % 2 else PeerMode.LEECH
            await client.join(swarm_of[client.peer_id], mode)

        await _in_batches(clients, join)
        victim, _port = nodes[0]
        victim_prefix = f"{socket.gethostname()}-{victim.pid}-"
        os.kill(victim.pid, signal.SIGKILL)
        await victim.wait()
        killed_at = time.monotonic()

        async def find(client: TrackerClient) -> None:
            response = await asyncio.wait_for(client.find(swarm_of[client.peer_id]), 60)
            assert response.status == 200

        await _in_batches(clients, find)
        recovered_in = time.monotonic() - killed_at

        store = RedisStore(connect(url))
        try:
            lost = 0
            for swarm in {*swarm_of.values()}:
                members = await store.member_ids(swarm)
                expected = {p for p, s in swarm_of.items() if s == swarm}
                lost += len(expected - members)
            moved = 0
            for i, client in enumerate(clients):
                record = await store.get_peer(client.peer_id)
                assert record is not None and not record.node_id.startswith(victim_prefix)
                assert record.membership(swarm_of[client.peer_id]) is not None
                moved += i % NODES == 0
        finally:
            await store.close()
        print(
            f"\nfailover ({backend}): {moved} peers of the killed node re-attached on"
            " surviving nodes,"
            f" {PEERS} FINDs answered, {lost} memberships lost, {recovered_in:.2f} s"
        )
        record_property("failover_peers_moved", moved)
        record_property("failover_memberships_lost", lost)
        record_property("failover_seconds", round(recovered_in, 2))
        assert lost == 0 and moved == len(range(0, PEERS, NODES))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        for process, _port in nodes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
