"""A late copy of the ClientHello that opened an association (reordered or
retransmitted under loss) must not replace the finished association
(RFC 6347 §4.2.8); a new hello from the same address still does."""

from __future__ import annotations

import asyncio

import pytest

from stunlike_tracker.ppsp import encode_request, parse_response_untrusted
from stunlike_tracker.ppsp.messages import Method, Request
from stunlike_tracker.server.app import RunningServer
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession
from tests.integration.support import Pki


class _Raw(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def _handshake(
    server: RunningServer, pki: Pki, transport: asyncio.DatagramTransport, raw: _Raw
) -> tuple[DtlsClientSession, list[bytes]]:
    session = DtlsClientSession(DtlsClientContext(ca_pem=pki.ca.cert_pem))
    sent: list[bytes] = []
    loop = asyncio.get_running_loop()
    session.start(loop.time())
    while not session.handshake_complete:
        for datagram in session.datagrams_to_send():
            sent.append(datagram)
            transport.sendto(datagram, server.address)
        session.feed(await asyncio.wait_for(raw.received.get(), 5), loop.time())
    for datagram in session.datagrams_to_send():
        transport.sendto(datagram, server.address)
    return session, sent


async def _connect(
    session: DtlsClientSession,
    transport: asyncio.DatagramTransport,
    raw: _Raw,
    server: RunningServer,
    txid: str,
) -> int:
    session.send(encode_request(Request(Method.CONNECT, "late", txid)))
    for datagram in session.datagrams_to_send():
        transport.sendto(datagram, server.address)
    loop = asyncio.get_running_loop()
    while True:
        session.feed(await asyncio.wait_for(raw.received.get(), 5), loop.time())
        messages = session.receive()
        if messages:
            return parse_response_untrusted(messages[0]).status


@pytest.mark.asyncio
async def test_a_late_opening_hello_leaves_the_association_alone(
    server: RunningServer, pki: Pki
) -> None:
    loop = asyncio.get_running_loop()
    transport, raw = await loop.create_datagram_endpoint(_Raw, local_addr=("127.0.0.1", 0))
    try:
        session, sent = await _handshake(server, pki, transport, raw)
        # sent[1] is the ClientHello with the cookie, the one that opened it.
        assert sent[1][0] == 22 and sent[1][13] == 1
        transport.sendto(sent[1], server.address)  # arrives late, after the handshake
        assert await _connect(session, transport, raw, server, "t1") == 200
        assert server.endpoint.drops["dtls-hello-retransmitted"] == 1
        assert server.endpoint.counters["dtls-sessions-created"] == 1
    finally:
        transport.close()
