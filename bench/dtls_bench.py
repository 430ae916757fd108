"""DTLS transport micro-benchmarks through the in-memory pair (no sockets).

    python3 bench/dtls_bench.py [--handshakes N] [--messages N] [--sessions N]

Prints:
* stateless hello checks per second (HelloVerifyRequest path and accept path);
* full handshakes per second (cookie exchange included; client and server
  run in this one process, so the figure is the cost of *both* sides);
* request/response round trips per second on one established pair
  (300-byte messages, both sides in-process again);
* memory per established server session: the Python heap as tracemalloc
  sees it, and the process RSS growth -- OpenSSL allocates with libc malloc,
  which tracemalloc does not trace, so RSS is the number that matters.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import time
import tracemalloc
from collections.abc import Callable

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsClientContext,
    DtlsClientSession,
    DtlsServerContext,
    DtlsServerSession,
)
from stunlike_tracker.transport.pair import DtlsPair

ADDR = ("198.51.100.7", 40000)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if name:
        libc = ctypes.CDLL(name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


def contexts(mutual: bool) -> tuple[DtlsClientContext, DtlsServerContext]:
    ca = certs.make_ca()
    server = certs.make_server_cert(ca)
    keys = CookieKeys.generate()
    if mutual:
        peer = certs.make_peer_cert(ca, "bench-peer")
        client_ctx = DtlsClientContext(
            ca_pem=ca.cert_pem, cert_pem=peer.cert_pem, key_pem=peer.key_pem
        )
        server_ctx = DtlsServerContext(
            server.cert_pem,
            server.key_pem,
            ca_pem=ca.cert_pem,
            require_client_cert=True,
            cookie_keys=keys,
        )
    else:
        client_ctx = DtlsClientContext(ca_pem=ca.cert_pem, verify_hostname="localhost")
        server_ctx = DtlsServerContext(server.cert_pem, server.key_pem, cookie_keys=keys)
    return client_ctx, server_ctx


clock = time.process_time  # CPU seconds: robust against other load on the machine


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def bench_hello_checks(n: int) -> None:
    client_ctx, server_ctx = contexts(False)
    client = DtlsClientSession(client_ctx)
    client.start(0.0)
    (hello,) = client.datagrams_to_send()
    hvr = server_ctx.check_client_hello_untrusted(hello, ADDR, 0.0).verify_request
    client.feed(hvr, 0.0)
    (hello2,) = client.datagrams_to_send()
    for label, datagram in (("-> HelloVerifyRequest", hello), ("-> accept (cookie ok)", hello2)):

        def run(datagram: bytes = datagram) -> float:
            start = clock()
            for _ in range(n):
                server_ctx.check_client_hello_untrusted(datagram, ADDR, 1.0)
            return clock() - start

        elapsed = best_of(3, run)
        print(f"  hello check {label:24s} {n / elapsed:12,.0f} /s  ({elapsed / n * 1e6:.1f} µs)")
    print(f"  ClientHello {len(hello)} B, HelloVerifyRequest {len(hvr)} B")


def bench_handshakes(n: int, mutual: bool) -> None:
    client_ctx, server_ctx = contexts(mutual)

    def run() -> float:
        start = clock()
        for i in range(n):
            pair = DtlsPair(client_ctx, server_ctx, client_addr=("198.51.100.7", 1024 + i))
            assert pair.handshake()
        return clock() - start

    elapsed = best_of(3, run)
    label = "mutual" if mutual else "server-auth"
    print(
        f"  handshakes ({label:11s}) {n / elapsed:10,.0f} /s  "
        f"({elapsed / n * 1e3:.2f} ms, client+server in one process)"
    )


def bench_server_handshake_cpu(n: int, mutual: bool) -> None:
    """Server-side CPU only: hello checks, session creation, feeds, drains."""
    client_ctx, server_ctx = contexts(mutual)

    def one(i: int) -> float:
        addr = ("198.51.100.7", 1024 + i)
        client = DtlsClientSession(client_ctx)
        client.start(0.0)
        server: DtlsServerSession | None = None
        spent = 0.0
        while not (client.handshake_complete and server and server.handshake_complete):
            to_client: list[bytes] = []
            t0 = clock()
            for datagram in client.datagrams_to_send():
                if server is None:
                    result = server_ctx.check_client_hello_untrusted(datagram, addr, 0.0)
                    if result.accepted:
                        server = DtlsServerSession(server_ctx, addr, now=0.0)
                        server.feed(datagram, 0.0)
                    else:
                        to_client.append(result.verify_request)
                else:
                    server.feed(datagram, 0.0)
            if server is not None:
                to_client.extend(server.datagrams_to_send())
            spent += clock() - t0
            assert to_client or client.handshake_complete
            for datagram in to_client:
                client.feed(datagram, 0.0)
        return spent

    def run() -> float:
        return sum(one(i) for i in range(n))

    elapsed = best_of(3, run)
    label = "mutual" if mutual else "server-auth"
    print(
        f"  server side of a handshake ({label:11s}) {n / elapsed:8,.0f} /s  "
        f"({elapsed / n * 1e3:.2f} ms)"
    )


def bench_request_response(n: int, size: int) -> None:
    client_ctx, server_ctx = contexts(False)
    pair = DtlsPair(client_ctx, server_ctx)
    assert pair.handshake()
    client, server = pair.client, pair.server
    assert server is not None
    request, response = b"q" * size, b"r" * size

    def run() -> tuple[float, float]:
        server_cpu = 0.0
        start = clock()
        for _ in range(n):
            client.send(request)
            sent = client.datagrams_to_send()
            t0 = clock()
            for datagram in sent:
                server.feed(datagram, 0.0)
            for _message in server.receive():
                server.send(response)
            replies = server.datagrams_to_send()
            server_cpu += clock() - t0
            for datagram in replies:
                client.feed(datagram, 0.0)
            client.receive()
        return clock() - start, server_cpu

    elapsed, server_cpu = min(run() for _ in range(3))
    print(
        f"  request/response ({size} B)  {n / elapsed:10,.0f} /s  "
        f"({elapsed / n * 1e6:.1f} µs per round trip, both sides)"
    )
    print(
        f"  server side only ({size} B)  {n / server_cpu:10,.0f} /s  "
        f"({server_cpu / n * 1e6:.1f} µs: decrypt request + encrypt response)"
    )


def bench_memory(n: int) -> None:
    client_ctx, server_ctx = contexts(False)
    for _ in range(20):  # warm OpenSSL's and Python's caches and free lists
        warm = DtlsPair(client_ctx, server_ctx)
        assert warm.handshake()
        warm.client_to_server(b"x")
    del warm
    gc.collect()
    malloc_trim()
    rss0 = rss_bytes()
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    servers: list[DtlsServerSession] = []
    for i in range(n):
        pair = DtlsPair(client_ctx, server_ctx, client_addr=("198.51.100.7", 1024 + i))
        assert pair.handshake()
        pair.client_to_server(b"hello")  # first application record frees the final flight
        assert pair.server is not None
        servers.append(pair.server)
        del pair  # the client side goes away at once: only servers stay
    gc.collect()
    malloc_trim()
    heap = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    rss = rss_bytes() - rss0
    print(f"  memory per established server session ({n} sessions):")
    print(f"    Python heap (tracemalloc) {heap / n:8,.0f} B")
    print(f"    process RSS growth        {rss / n:8,.0f} B  (OpenSSL's malloc is not traced)")
    assert len(servers) == n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hellos", type=int, default=20000)
    parser.add_argument("--handshakes", type=int, default=300)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()
    print("DTLS transport benchmarks (in-memory pair, one process)")
    bench_hello_checks(args.hellos)
    bench_handshakes(args.handshakes, mutual=False)
    bench_handshakes(args.handshakes, mutual=True)
    bench_server_handshake_cpu(args.handshakes, mutual=False)
    bench_server_handshake_cpu(args.handshakes, mutual=True)
    bench_request_response(args.messages, args.size)
    bench_memory(args.sessions)


if __name__ == "__main__":
    main()
