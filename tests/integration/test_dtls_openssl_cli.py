"""Interop: ``openssl s_client -dtls1_2`` against our server context and sessions.

The UDP loop below is a deliberately tiny stand-in for the real server: it
binds 127.0.0.1 port 0, demultiplexes by first byte, runs the stateless
hello check for unknown addresses and feeds sessions otherwise.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import cast

import pytest

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import Address, CookieKeys
from stunlike_tracker.transport.demux import Route, classify
from stunlike_tracker.transport.dtls import DtlsServerContext, DtlsServerSession, HelloAction

OPENSSL = shutil.which("openssl")


class _TinyDtlsServer(asyncio.DatagramProtocol):
    def __init__(self, ctx: DtlsServerContext) -> None:
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[Address, DtlsServerSession] = {}
        self.timers: dict[Address, asyncio.TimerHandle] = {}
        self.verify_requests = 0
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.peer_closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector transport does not subclass DatagramTransport in 3.11
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if classify(data) is not Route.DTLS:
            return
        now = self.loop.time()
        session = self.sessions.get(addr)
        if session is None:
            result = self.ctx.check_client_hello_untrusted(data, addr, now)
            if result.action is HelloAction.VERIFY_REQUEST:
                self.verify_requests += 1
                self._send(result.verify_request, addr)
                return
            if result.action is not HelloAction.ACCEPT:
                return
            session = self.sessions[addr] = DtlsServerSession(self.ctx, addr, now=now)
        session.feed(data, now)
        self._flush(session)

    def _send(self, datagram: bytes, addr: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(datagram, addr)

    def _flush(self, session: DtlsServerSession) -> None:
        for datagram in session.datagrams_to_send():
            self._send(datagram, session.addr)
        for message in session.receive():
            self.messages.put_nowait(message)
        if session.closed:
            self.peer_closed.set()
        old = self.timers.pop(session.addr, None)
        if old is not None:
            old.cancel()
        when = session.get_timer()
        if when is not None:
            self.timers[session.addr] = self.loop.call_at(when, self._on_timer, session)

    def _on_timer(self, session: DtlsServerSession) -> None:
        self.timers.pop(session.addr, None)
        session.handle_timer(self.loop.time())
        self._flush(session)

    def close(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        if self.transport is not None:
            self.transport.close()


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
@pytest.mark.asyncio
async def test_openssl_s_client_handshakes_with_cookie_and_sends(tmp_path: Path) -> None:
    ca = certs.make_ca()
    server_cert = certs.make_server_cert(ca)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    ctx = DtlsServerContext(
        server_cert.cert_pem, server_cert.key_pem, cookie_keys=CookieKeys.generate()
    )
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _TinyDtlsServer(ctx), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    assert OPENSSL is not None
    proc = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_client",
        "-dtls1_2",
        "-connect",
        f"127.0.0.1:{port}",
        "-CAfile",
        str(ca_file),
        "-verify_return_error",
        "-verify_hostname",
        "localhost",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"hello from s_client\n")
        await proc.stdin.drain()
        message = await asyncio.wait_for(server.messages.get(), timeout=10)
        assert message == b"hello from s_client\n"
        proc.stdin.close()
        await asyncio.wait_for(server.peer_closed.wait(), timeout=10)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.close()
    text = output.decode("utf-8", "replace")
    assert server.verify_requests >= 1  # our HelloVerifyRequest went out
    (session,) = server.sessions.values()
    assert session.handshake_complete
    assert session.protocol_version == "DTLSv1.2"
    assert "Verify return code: 0 (ok)" in text
    assert "DTLSv1.2" in text


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
@pytest.mark.asyncio
@pytest.mark.parametrize("client_cert", [False, True])
async def test_openssl_s_client_and_our_record_layer_both_ways(
    tmp_path: Path, client_cert: bool
) -> None:
    """After s_client's first application record the session drops OpenSSL and
    seals/opens records itself (transport/record_layer.py): s_client must read
    what we seal, we must open what it sends next, and its close_notify."""
    ca = certs.make_ca()
    server_cert = certs.make_server_cert(ca)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    extra: list[str] = []
    if client_cert:
        peer = certs.make_peer_cert(ca, "peer-s-client")
        (tmp_path / "peer.pem").write_bytes(peer.cert_pem)
        (tmp_path / "peer.key").write_bytes(peer.key_pem)
        extra = ["-cert", str(tmp_path / "peer.pem"), "-key", str(tmp_path / "peer.key")]
        ctx = DtlsServerContext(
            server_cert.cert_pem,
            server_cert.key_pem,
            ca_pem=ca.cert_pem,
            require_client_cert=True,
            cookie_keys=CookieKeys.generate(),
        )
    else:
        ctx = DtlsServerContext(
            server_cert.cert_pem, server_cert.key_pem, cookie_keys=CookieKeys.generate()
        )
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _TinyDtlsServer(ctx), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    assert OPENSSL is not None
    proc = await asyncio.create_subprocess_exec(
        OPENSSL, "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}",
        "-CAfile", str(ca_file), "-verify_return_error", *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"first\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(server.messages.get(), timeout=10) == b"first\n"
        (session,) = server.sessions.values()
        assert session.record_layer_active
        if client_cert:
            assert session.peer_certificate_peer_id == "peer-s-client"
        session.send(b"sealed by our record layer\n")
        server._flush(session)
        proc.stdin.write(b"second\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(server.messages.get(), timeout=10) == b"second\n"
        proc.stdin.close()
        await asyncio.wait_for(server.peer_closed.wait(), timeout=10)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.close()
    assert b"sealed by our record layer" in output
    assert session.closed and session.error is None
    assert session.dropped_records == 0
