"""A DTLS 1.2 echo over pyOpenSSL memory BIOs, with the stateless cookie exchange.

    python3 bench/baselines/dtls_echo.py --certs DIR [--port 0] [--loop uvloop|asyncio]

The ceiling for a Python DTLS server: the same pyOpenSSL handshake, cookie
check and record splitting as the tracker's transport on main
(:class:`stunlike_tracker.transport.dtls.DtlsServerSession` with
``record_layer=False``: OpenSSL for the whole association), and nothing
after decryption but sending the plaintext back. Prints ``listening udp HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any, cast

from stunlike_tracker.certs import init_dev_certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsError,
    DtlsServerContext,
    DtlsServerSession,
    HelloAction,
)

Address = tuple[str, int]


class DtlsEcho(asyncio.DatagramProtocol):
    def __init__(self, ctx: DtlsServerContext) -> None:
        self.ctx = ctx
        self.sessions: dict[Address, DtlsServerSession] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        address: Address = (addr[0], addr[1])
        now = time.monotonic()
        session = self.sessions.get(address)
        if session is None or (session.handshake_complete and data[:1] == b"\x16"
                               and data[3:5] == b"\x00\x00"):  # fmt: skip
            hello = self.ctx.check_client_hello_untrusted(data, address, now)
            if hello.action is HelloAction.VERIFY_REQUEST:
                self.transport.sendto(hello.verify_request, address)
                return
            if hello.action is HelloAction.DROP:
                return
            try:
                session = DtlsServerSession(self.ctx, address, now=now)
            except DtlsError:
                return
            self.sessions[address] = session
        session.feed(data, now)
        for message in session.receive():
            try:
                session.send(message)
            except DtlsError:
                break
        for datagram in session.datagrams_to_send():
            self.transport.sendto(datagram, address)
        if session.closed:
            del self.sessions[address]


async def serve(certs: Path, port: int) -> None:
    paths = init_dev_certs(certs)
    ctx = DtlsServerContext(
        paths.tracker_cert.read_bytes(),
        paths.tracker_key.read_bytes(),
        cookie_keys=CookieKeys.generate(),
        mtu=1240,
        record_layer=False,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: DtlsEcho(ctx), sock=sock)
    print(f"listening udp 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    transport.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--certs", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.certs, args.port))
    else:
        asyncio.run(serve(args.certs, args.port))


if __name__ == "__main__":
    main()
