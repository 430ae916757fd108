"""`serve --workers N`: N processes on one UDP port sharing a Redis store; a
worker that dies is restarted and its peers recover by re-CONNECT."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode
from stunlike_tracker.store.redis import RedisStore, connect
from tests.redis_servers import needs_redis
from tests.store.backends import RedisBackends

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_workers_refuse_the_memory_store(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "serve", "--workers", "2", "--port", "0", "--certs", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "--workers needs a shared store" in line


async def _line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), 30)).decode().strip()


@needs_redis
@pytest.mark.asyncio
async def test_dead_workers_restart_and_peers_recover(
    redis_backends: RedisBackends, tmp_path: Path
) -> None:
    url = redis_backends.url("redis")
    port = _free_udp_port()
    certs = tmp_path / "certs"
    supervisor = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--workers", "2", "--store", url, "--host", "127.0.0.1",
        "--port", str(port), "--certs", str(certs), "--lan",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert supervisor.stdout is not None
    out = supervisor.stdout
    pids: dict[str, int] = {}
    ready: set[str] = set()
    listening = False
    while len(ready) < 2 or not listening:
        line = await _line(out)
        if line.startswith("worker ") and " pid " in line:
            pids[line.split()[1]] = int(line.split()[-1])
        if line.startswith("worker ") and line.endswith(" ready"):
            ready.add(line.split()[1])
        listening = listening or line == f"listening udp 127.0.0.1:{port}"
    settings = ClientSettings(
        tracker=("127.0.0.1", port),
        ca_pem=(certs / "ca.pem").read_bytes(),
        server_name="localhost",
        local_host="127.0.0.1",
        rto=0.2,
    )
    clients = [TrackerClient(settings, f"w{i}") for i in range(6)]
    store = RedisStore(connect(url))
    try:
        for client in clients:
            await client.connect()
            await client.join("movie", PeerMode.SEED)
        before = {c.peer_id: await store.get_peer(c.peer_id) for c in clients}
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        restarted: dict[str, int] = {}
        ready.clear()
        while len(ready) < 2:
            line = await _line(out)
            if line.startswith("worker ") and " pid " in line:
                restarted[line.split()[1]] = int(line.split()[-1])
            if line.startswith("worker ") and line.endswith(" ready"):
                ready.add(line.split()[1])
        assert set(restarted.values()).isdisjoint(pids.values())
        found = await asyncio.wait_for(asyncio.gather(*(c.find("movie") for c in clients)), 60)
        assert [r.status for r in found] == [200] * len(clients)
        for client in clients:
            record = await store.get_peer(client.peer_id)
            old = before[client.peer_id]
            assert record is not None and old is not None
            assert record.session_id != old.session_id  # a new association, re-CONNECTed
            assert record.membership("movie") is not None
        assert await store.member_ids("movie") == {c.peer_id for c in clients}
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await store.close()
        supervisor.send_signal(signal.SIGTERM)
        await asyncio.wait_for(supervisor.wait(), 60)
