"""End-to-end load on loopback: a real tracker process, real DTLS clients.

Run: python3 bench/server_bench.py [--clients 50] [--seconds 10] [--swarm-size 200]

Starts `stunlike-tracker serve` (uvloop when installed) in its own process on
127.0.0.1, connects ``--clients`` tracker clients (each its own socket and
DTLS association), joins them to one swarm, then has every client send FIND
requests back to back for ``--seconds``. Prints handshakes/s, FIND/s and
latency percentiles, and the tracker's RSS before and after the clients
connected. The clients run in this one Python process, so on a 2-core
machine they, not the tracker, are usually the limit: read the numbers as a
lower bound for the tracker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode, PeerNum


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(clients: int, seconds: float, swarm_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # One client sends FIND after FIND from one address: no per-peer rate
        # limit and no per-source budget here (docs/SECURITY.md).
        Path(f"{tmp}/t.toml").write_text(
            "[tracker]\npeer_rate = 0.0\n[budgets]\nsession_rate = 1e9\nsession_burst = 1e9\n"
            "address_rate = 1e9\naddress_burst = 1e9\nhandshake_rate = 0.0\n"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "stunlike_tracker.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--lan", "--certs", f"{tmp}/certs", "--config", f"{tmp}/t.toml"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            line = server.stdout.readline().split()[-1]
            host, port = line.rsplit(":", 1)
            settings = ClientSettings(
                tracker=(host, int(port)),
                ca_pem=Path(f"{tmp}/certs/ca.pem").read_bytes(),
                local_host="127.0.0.1",
            )
            rss_idle = rss_kib(server.pid)
            seeds = [TrackerClient(settings, f"seed-{i}") for i in range(swarm_size)]
            workers = [TrackerClient(settings, f"worker-{i}") for i in range(clients)]
            t0 = time.perf_counter()
            await asyncio.gather(*(c.connect() for c in seeds + workers))
            connect_s = time.perf_counter() - t0
            await asyncio.gather(*(c.join("bench", PeerMode.SEED) for c in seeds))
            await asyncio.gather(*(c.join("bench", peer_num=PeerNum(0)) for c in workers))
            rss_loaded = rss_kib(server.pid)
            latencies: list[float] = []
            stop = time.perf_counter() + seconds

            async def loop(client: TrackerClient) -> None:
                while time.perf_counter() < stop:
                    start = time.perf_counter()
                    await client.find("bench")
                    latencies.append(time.perf_counter() - start)

            t1 = time.perf_counter()
            await asyncio.gather(*(loop(c) for c in workers))
            elapsed = time.perf_counter() - t1
            for c in seeds + workers:
                await c.close()
        finally:
            server.terminate()
            server.wait()
    n = len(seeds) + len(workers)
    lat = sorted(latencies)
    print(f"{n} DTLS associations + CONNECT in {connect_s:.2f} s ({n / connect_s:.0f}/s)")
    print(
        f"FIND (10 peers each): {len(lat) / elapsed:.0f}/s over {elapsed:.1f} s, {clients} clients"
    )
    print(
        f"latency ms: p50 {1000 * statistics.median(lat):.2f}"
        f"  p99 {1000 * lat[int(len(lat) * 0.99) - 1]:.2f}  max {1000 * lat[-1]:.2f}"
    )
    print(f"tracker RSS: {rss_idle} KiB idle, {rss_loaded} KiB with {n} peers "
          f"({(rss_loaded - rss_idle) / n:.0f} KiB per peer)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--swarm-size", type=int, default=200)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(run(args.clients, args.seconds, args.swarm_size))
    except ImportError:
        asyncio.run(run(args.clients, args.seconds, args.swarm_size))


if __name__ == "__main__":
    main()
