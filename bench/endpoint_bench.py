"""The server's CPU per request without sockets: real DTLS clients, the real
endpoint and core, a transport that only collects datagrams.

    python3 bench/endpoint_bench.py [--requests 3000] [--profile]

Load runs (``stunlike-tracker load``) give the whole cost, syscalls included;
this isolates the Python part (record layer, XML, core, store) and, with
``--profile``, prints where it goes (cProfile, sorted by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from typing import Any

from stunlike_tracker import certs
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.loadgen.shapes import Op, ppsp_templates, transaction_id
from stunlike_tracker.server.budgets import BudgetLimits
from stunlike_tracker.server.endpoint import TrackerEndpoint
from stunlike_tracker.store.memory import MemoryStore
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsClientContext,
    DtlsClientSession,
    DtlsServerContext,
)


class Collect:
    def __init__(self) -> None:
        self.out: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.out.append((data, addr))

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Peer:
    def __init__(self, ctx: DtlsClientContext, n: int, seed: bool) -> None:
        self.addr = ("198.51.100.9", 10000 + n)
        self.dtls = DtlsClientSession(ctx)
        self.templates = ppsp_templates(f"peer-{n}", "bench", 20000 + n, seed=seed)
        self.counter = 0

    def request(self, op: Op) -> bytes:
        self.counter += 1
        self.dtls.send(self.templates.render(op, transaction_id(1, self.counter)))
        (datagram,) = self.dtls.datagrams_to_send()
        return datagram


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--swarm", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    ca = certs.make_ca()
    server_cert = certs.make_server_cert(ca)
    sctx = DtlsServerContext(
        server_cert.cert_pem, server_cert.key_pem, cookie_keys=CookieKeys.generate(), mtu=1240
    )
    cctx = DtlsClientContext(ca_pem=ca.cert_pem, mtu=1240)
    config = TrackerConfig(
        peer_rate=0, lan_mode=True, max_peers_per_source=10**9, max_source_share=1.0
    )
    tracker = Tracker(MemoryStore(), config)
    unlimited = 1e12
    budgets = BudgetLimits(
        address_rate=unlimited,
        address_burst=unlimited,
        session_rate=unlimited,
        session_burst=unlimited,
        address_sessions=10**9,
        address_half_open=10**9,
        handshake_rate=0.0,
        ban_strikes=10**9,
    )
    endpoint = TrackerEndpoint(tracker, sctx, budgets=budgets)
    transport = Collect()
    endpoint.connection_made(transport)  # type: ignore[arg-type]
    peers = [Peer(cctx, n, seed=n > 0) for n in range(args.swarm + 1)]

    def exchange(peer: Peer, datagrams: list[bytes]) -> list[bytes]:
        for datagram in datagrams:
            endpoint.datagram_received(datagram, peer.addr)
        got = [d for d, a in transport.out if a == peer.addr]
        transport.out.clear()
        for datagram in got:
            peer.dtls.feed(datagram, time.monotonic())
        return peer.dtls.receive()

    for peer in peers:
        peer.dtls.start(time.monotonic())
        for _ in range(6):
            exchange(peer, peer.dtls.datagrams_to_send())
            if peer.dtls.handshake_complete:
                break
        assert peer.dtls.handshake_complete
        exchange(peer, [peer.request(Op.CONNECT)])
        exchange(peer, [peer.request(Op.JOIN)])
    asker = peers[0]
    for op in (Op.STAT, Op.FIND):
        datagrams = [asker.request(op) for _ in range(args.requests)]
        profiler = cProfile.Profile() if args.profile else None
        start = time.process_time()
        if profiler:
            profiler.enable()
        for datagram in datagrams:
            endpoint.datagram_received(datagram, asker.addr)
        if profiler:
            profiler.disable()
        spent = time.process_time() - start
        replies = len(transport.out)
        transport.out.clear()
        print(f"{op.value}: {spent / args.requests * 1e6:.1f} us server CPU per request "
              f"({replies / args.requests:.1f} datagrams each, no syscalls)")  # fmt: skip
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    asyncio.run(main())
