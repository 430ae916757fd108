"""Soak: simulated peers join, find, report and leave against a real tracker
process on loopback, while its RSS and association count are sampled.

Long mode (one command; minutes, thousands of peers):

    python3 -m tests.integration.soak --workers 200 --seconds 600

CI runs a short mode (tests/integration/test_soak.py). Each worker plays
peer after peer: a new socket and DTLS association, CONNECT, JOIN one of 10
swarms (SEED or LEECH), two FINDs, a STAT_REPORT, DISCONNECT nil, then
close_notify. The tracker runs its defaults (tests/integration/stats_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import Method, PeerMode, PeerNum, Request
from tests.integration.hostile import RawPeer

STATS_SERVER = Path(__file__).resolve().parent / "stats_server.py"


@dataclass
class SoakReport:
    peers: int = 0  # peer lives completed
    requests: int = 0
    failed: int = 0  # requests with no answer or not 200
    handshakes_failed: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    def steady_growth_kib(self) -> int:
        """RSS growth over the last half of the run (after warm-up)."""
        rss: list[int] = [int(s["rss_kib"]) for s in self.samples]
        if len(rss) < 4:
            return 0
        half = len(rss) // 2
        return max(rss[half:]) - max(rss[: half + 1])

    def max_sessions(self) -> int:
        return max((s["sessions"] for s in self.samples), default=0)


class _StatsServer:
    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        self.ca_path = tmp / "ca.pem"
        self.proc = subprocess.Popen(
            [sys.executable, str(STATS_SERVER), str(self.ca_path), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[-1])

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return report

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _life(
    report: SoakReport, target: tuple[str, int], ca_pem: bytes, peer_id: str, n: int
) -> None:
    peer = await RawPeer.open(target, ca_pem, local_host=f"127.0.{2 + n % 200}.{1 + n % 250}")
    try:
        if not await peer.handshake(within=10.0):
            report.handshakes_failed += 1
            return
        swarm = f"soak-{n % 10}"
        mode = PeerMode.SEED if n % 3 == 0 else PeerMode.LEECH
        steps = [
            Request(Method.CONNECT, peer_id, "c"),
            Request(Method.JOIN, peer_id, "j", swarm_id=swarm, peer_mode=mode),
            Request(Method.FIND, peer_id, "f1", swarm_id=swarm, peer_num=PeerNum(10)),
            Request(Method.STAT_REPORT, peer_id, "s"),
            Request(Method.FIND, peer_id, "f2", swarm_id=swarm),
            Request(Method.DISCONNECT, peer_id, "d", swarm_id="nil"),
        ]
        for step in steps:
            report.requests += 1
            answer = await peer.request(encode_request(step), rto=2.0, tries=3)
            if answer is None or b'status="200"' not in answer:
                report.failed += 1
        peer.close_notify()
        report.peers += 1
    finally:
        peer.close()


async def soak(workers: int, seconds: float, cache_ttl: float = 60.0) -> SoakReport:
    """``cache_ttl``: the response cache keeps every answer this long, so
    memory is steady only after it (the short mode shortens it)."""
    report = SoakReport()
    ids = itertools.count()
    with tempfile.TemporaryDirectory() as tmp:
        server = _StatsServer(Path(tmp), {"response_cache_ttl": cache_ttl})
        target = ("127.0.0.1", server.port)
        ca_pem = server.ca_path.read_bytes()
        end = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < end:
                n = next(ids)
                await _life(report, target, ca_pem, f"soak-{n}", n)

        async def sampler() -> None:
            while time.monotonic() < end:
                report.samples.append({"t": time.monotonic(), **server.stats()})
                await asyncio.sleep(max(0.5, seconds / 40))

        try:
            await asyncio.gather(sampler(), *(worker() for _ in range(workers)))
            report.final = server.stats()
        finally:
            server.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    report = asyncio.run(soak(args.workers, args.seconds))
    print(
        f"{report.peers} peer lives, {report.requests} requests, {report.failed} failed, "
        f"{report.handshakes_failed} handshakes failed; sessions max {report.max_sessions()}, "
        f"final {report.final.get('sessions')} sessions {report.final.get('peers')} peers; "
        f"RSS {report.samples[0]['rss_kib'] // 1024} -> {report.final.get('rss_kib', 0) // 1024}"
        f" MiB, steady growth {report.steady_growth_kib()} KiB"
    )


if __name__ == "__main__":
    main()
