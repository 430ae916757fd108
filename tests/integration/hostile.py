"""A DTLS client driven by hand, for hostile tests and the flood bench: it
completes a real handshake with the tracker, then sends encrypted requests
or raw bytes as fast as asked, from its own UDP socket (loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession


class RawPeer(asyncio.DatagramProtocol):
    def __init__(self, ctx: DtlsClientContext) -> None:
        self.session = DtlsClientSession(ctx)
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.received_bytes = 0
        self.received_datagrams = 0
        self.sent_bytes = 0
        self.sent_datagrams = 0

    @classmethod
    async def open(
        cls,
        tracker: tuple[str, int],
        ca_pem: bytes,
        *,
        local_host: str = "127.0.0.1",
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
    ) -> RawPeer:
        ctx = DtlsClientContext(
            ca_pem=ca_pem, verify_hostname="localhost", cert_pem=cert_pem, key_pem=key_pem
        )
        loop = asyncio.get_running_loop()
        peer = cls(ctx)
        await loop.create_datagram_endpoint(
            lambda: peer, local_addr=(local_host, 0), remote_addr=tracker
        )
        return peer

    # asyncio ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop: no subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received_bytes += len(data)
        self.received_datagrams += 1
        self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP from a closed port: the test looks at what arrived

    # sending ---------------------------------------------------------------
    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return (sockname[0], sockname[1])

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.sent_bytes += len(data)
        self.sent_datagrams += 1
        self.transport.sendto(data)

    def _flush(self) -> None:
        for datagram in self.session.datagrams_to_send():
            self.send_raw(datagram)

    def seal(self, message: bytes) -> list[bytes]:
        """Encrypt one application message; return its datagrams unsent."""
        self.session.send(message)
        return self.session.datagrams_to_send()

    def send(self, message: bytes) -> None:
        self.session.send(message)
        self._flush()

    # receiving -------------------------------------------------------------
    async def handshake(self, within: float = 10.0) -> bool:
        """True once the handshake completed, False if the tracker stayed
        silent (dropped us) for ``within`` seconds."""
        loop = asyncio.get_running_loop()
        self.session.start(time.monotonic())
        self._flush()
        end = loop.time() + within
        while not self.session.handshake_complete and not self.session.closed:
            deadline = self.session.get_timer()
            wait = end - loop.time()
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            if loop.time() >= end:
                return False
            try:
                data = await asyncio.wait_for(self.inbox.get(), max(wait, 0.001))
            except TimeoutError:
                self.session.handle_timer(time.monotonic())
            else:
                self.session.feed(data, time.monotonic())
            self._flush()
        return self.session.handshake_complete

    async def receive(self, within: float) -> list[bytes]:
        """Decrypted application messages that arrive within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        got: list[bytes] = []
        while not got and loop.time() < end:
            try:
                data = await asyncio.wait_for(self.inbox.get(), end - loop.time())
            except TimeoutError:
                break
            self.session.feed(data, time.monotonic())
            self._flush()
            got = self.session.receive()
        return got

    async def request(self, message: bytes, *, rto: float = 1.0, tries: int = 3) -> bytes | None:
        """Send a request and return the first application message back,
        resending it byte for byte on silence (PROTOCOL §4); None if none came."""
        for _ in range(tries):
            self.send(message)
            got = await self.receive(rto)
            if got:
                return got[0]
        return None

    def close_notify(self) -> None:
        """End the association properly (the tracker frees it at once)."""
        self.session.close()
        self._flush()

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
