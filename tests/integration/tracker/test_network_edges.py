"""The tracker port against independent clients and hostile input (PROTOCOL §1, §5, §8)."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from pathlib import Path

import aioice
import pytest

from stunlike_tracker.server.app import RunningServer
from tests.integration.support import Pki, client_for


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def _udp_socket() -> tuple[asyncio.DatagramTransport, _Sink]:
    loop = asyncio.get_running_loop()
    sink = _Sink()
    transport, _ = await loop.create_datagram_endpoint(lambda: sink, local_addr=("127.0.0.1", 0))
    return transport, sink


@pytest.mark.asyncio
async def test_aioice_stun_client_learns_its_srflx_candidate_from_the_tracker(
    server: RunningServer,
) -> None:
    # aioice's own STUN client and srflx gathering step, on a loopback socket
    # (its host-address listing skips 127.0.0.1: FIELD-NOTES).
    loop = asyncio.get_running_loop()
    connection = aioice.Connection(ice_controlling=True)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: aioice.ice.StunProtocol(connection), local_addr=("127.0.0.1", 0)
    )
    try:
        host, port = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = aioice.Candidate(
            foundation="1",
            component=1,
            transport="udp",
            priority=1,
            host=host,
            port=port,
            type="host",
        )
        srflx, _ = await asyncio.wait_for(
            aioice.ice.server_reflexive_candidate(protocol, server.address), 10
        )
        # On loopback the address the tracker sees is the socket's own.
        assert (srflx.type, srflx.host, srflx.port) == ("srflx", host, port)
        assert server.endpoint.stun.answered >= 1
    finally:
        transport.close()
        await connection.close()


@pytest.mark.asyncio
async def test_spoofed_client_hellos_create_no_sessions(server: RunningServer, pki: Pki) -> None:
    # A real ClientHello, captured from our own client's first flight.
    transport, sink = await _udp_socket()
    from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession

    session = DtlsClientSession(DtlsClientContext(ca_pem=pki.ca.cert_pem))
    session.start(0.0)
    (hello,) = session.datagrams_to_send()
    rng = random.Random(5)
    try:
        for i in range(300):
            forged = bytearray(hello)
            # Random cookies of any length in place of a real one.
            if i % 2:
                forged[-40:-8] = rng.randbytes(32)
            transport.sendto(bytes(forged), server.address)
        # Every hello got a HelloVerifyRequest, none larger than the hello.
        for _ in range(300):
            reply = await asyncio.wait_for(sink.received.get(), 5)
            assert len(reply) <= len(hello)
        assert len(server.endpoint.sessions) == 0
        assert server.endpoint.counters["dtls-sessions-created"] == 0
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_garbage_never_crashes_or_leaks(server: RunningServer, pki: Pki) -> None:
    transport, _ = await _udp_socket()
    rng = random.Random(11)
    try:
        for i in range(2000):
            first = rng.choice([0, 1, 22, 23, 25, 64, 128, 200, 255])
            transport.sendto(bytes([first]) + rng.randbytes(rng.randrange(0, 300)), server.address)
            if i % 200 == 0:
                await asyncio.sleep(0)  # let the server read
        # the server still serves a real client afterwards
        peer = client_for(server, pki, "after-garbage")
        try:
            assert (await peer.connect()).status == 200
        finally:
            await peer.close()
        assert len(server.endpoint.sessions) <= 1
        assert sum(server.endpoint.drops.values()) + server.endpoint.stun.answered > 0
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_xml_bombs_and_oversized_requests_get_400(server: RunningServer, pki: Pki) -> None:
    from stunlike_tracker.ppsp import parse_response_untrusted

    peer = client_for(server, pki, "bomber")
    try:
        await peer.connect()
        assoc = peer._assoc
        assert assoc is not None
        answers: asyncio.Queue[bytes] = asyncio.Queue()
        assoc.on_message = answers.put_nowait
        bomb = (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<PPSPTrackerProtocol version="1.0"><Request>JOIN</Request>'
            b"<PeerID>bomber</PeerID><TransactionID>tb</TransactionID>"
            b"<SwarmID>&b;</SwarmID></PPSPTrackerProtocol>"
        )
        assoc.send(bomb)
        big = (
            b'<PPSPTrackerProtocol version="1.0"><Request>JOIN</Request><PeerID>bomber</PeerID>'
            b"<TransactionID>tbig</TransactionID><SwarmID>s</SwarmID>"
            + b"<X>"
            + b"y" * 3000
            + b"</X></PPSPTrackerProtocol>"
        )
        assoc.send(big)
        # The bomb is refused before any entity is read; it names no
        # TransactionID the codec would trust, so it is dropped and counted.
        # The oversized request is attributable: 400 with its TransactionID.
        answer = parse_response_untrusted(await asyncio.wait_for(answers.get(), 5))
        assert (answer.status, answer.transaction_id) == (400, "tbig")
        assert answer.reason == "Message Too Large"
        assert answers.empty()
        assert server.endpoint.drops["ppsp-unanswerable"] == 1
        # the association and the server are still fine
        assoc.on_message = peer._on_message
        assert (await peer.join("s")).status == 200
    finally:
        await peer.close()


def test_openssl_s_client_completes_a_handshake_with_cookie_exchange(
    pki: Pki, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required (Debian package openssl)")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.cert_pem)

    async def run() -> tuple[str, RunningServer]:
        from tests.integration.support import serve

        running = await serve(pki)
        host, port = running.address
        proc = await asyncio.create_subprocess_exec(
            "openssl",
            "s_client",
            "-dtls1_2",
            "-connect",
            f"{host}:{port}",
            "-CAfile",
            str(ca),
            "-verify_return_error",
            "-quiet",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        request = (
            b'<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request>'
            b"<PeerID>ossl</PeerID><TransactionID>t1</TransactionID></PPSPTrackerProtocol>\n"
        )
        proc.stdin.write(request)
        await proc.stdin.drain()
        out = b""
        try:
            while b"</PPSPTrackerProtocol>" not in out:
                chunk = await asyncio.wait_for(proc.stdout.read(4096), 10)
                if not chunk:
                    break
                out += chunk
        finally:
            proc.kill()
            await proc.wait()
        return out.decode(errors="replace"), running

    loop = asyncio.new_event_loop()
    try:
        text, running = loop.run_until_complete(run())
        assert running.endpoint.counters["dtls-hello-verify-sent"] >= 1
        assert running.endpoint.counters["dtls-handshakes"] == 1
        # s_client sends the line with its newline; the tracker answers it
        assert 'status="200"' in text or "SUCCESSFUL" in text, text
        loop.run_until_complete(running.close())
    finally:
        loop.close()
