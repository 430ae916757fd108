"""IPv6 end to end on the tracker side (issue 15, PROTOCOL §4, §5): the dual-stack
socket, STUN's 52-byte answer, PPSP over DTLS over IPv6 with ``ipv6``
reflexive addresses, IPv4 and IPv6 peers in one swarm, and every datagram to
an IPv6 peer within the 1,232-byte UDP payload of IPv6's minimum MTU.

Runs on loopback (``::1`` and ``127.0.0.1``); skipped only on a machine
without IPv6 at all.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import TrackerClient
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    PeerMode,
    PeerNum,
)
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server
from stunlike_tracker.server.endpoint import IPV6_UDP_PAYLOAD
from stunlike_tracker.stun import (
    ATTR_XOR_MAPPED_ADDRESS,
    decode_xor_mapped_address_untrusted,
    parse_message_untrusted,
)
from tests.integration.support import Pki, client_settings


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_ipv6(), reason="this machine has no IPv6")


@pytest_asyncio.fixture
async def dual(pki: Pki) -> AsyncIterator[RunningServer]:
    """A tracker on the default host: one dual-stack ``::`` socket."""
    settings = ServerSettings(
        cert_pem=pki.server.cert_pem,
        key_pem=pki.server.key_pem,
        port=0,
        tracker=TrackerConfig(lan_mode=True),
    )
    running = await start_server(settings)
    yield running
    await running.close()


def _client(server: RunningServer, pki: Pki, peer_id: str, *, ipv6: bool) -> TrackerClient:
    port = server.address[1]
    settings = client_settings(server, pki)
    if ipv6:
        settings = replace(settings, tracker=("::1", port), local_host="::1")
    else:
        settings = replace(settings, tracker=("127.0.0.1", port), local_host="127.0.0.1")
    return TrackerClient(settings, peer_id)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


def test_serve_binds_dual_stack_by_default() -> None:
    assert ServerSettings(b"", b"").host == "::"


@pytest.mark.asyncio
async def test_the_default_socket_is_dual_stack(dual: RunningServer) -> None:
    sock = dual.transport.get_extra_info("socket")
    assert sock.family == socket.AF_INET6 and dual.address[0] == "::"
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


@pytest.mark.parametrize(
    ("family", "host", "size"),
    [(socket.AF_INET6, "::1", 52), (socket.AF_INET, "127.0.0.1", 40)],
)
@pytest.mark.asyncio
async def test_a_bare_binding_request_is_answered_over_both_families(
    dual: RunningServer, family: int, host: str, size: int
) -> None:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(
        _Collect, local_addr=(host, 0), family=family
    )
    try:
        tid = os.urandom(12)
        transport.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, (host, dual.address[1]))
        answer = await asyncio.wait_for(sink.received.get(), 5)
        assert len(answer) == size  # PROTOCOL §5: 52 bytes for a bare request from IPv6
        mapped = parse_message_untrusted(answer).get(ATTR_XOR_MAPPED_ADDRESS) or b""
        own = transport.get_extra_info("sockname")
        assert decode_xor_mapped_address_untrusted(mapped, tid) == (host, own[1])
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_ipv4_and_ipv6_peers_in_one_swarm(dual: RunningServer, pki: Pki) -> None:
    six = _client(dual, pki, "six", ipv6=True)
    four = _client(dual, pki, "four", ipv6=False)
    try:
        r6 = await six.connect()
        r4 = await four.connect()
        (seen6,) = r6.peers[0].addresses
        (seen4,) = r4.peers[0].addresses
        assert (seen6.addr_type, seen6.ip, seen6.type) == (
            AddrType.IPV6,
            "::1",
            AddressType.REFLEXIVE,
        )
        assert (seen4.addr_type, seen4.ip) == (AddrType.IPV4, "127.0.0.1")  # not ::ffff:...
        await six.join("mixed", PeerMode.SEED)
        await four.join("mixed", PeerMode.SEED)
        listed_to_four = {p.peer_id: p for p in (await four.find("mixed")).peers}
        listed_to_six = {p.peer_id: p for p in (await six.find("mixed")).peers}
        assert listed_to_four["six"].addresses[0].addr_type is AddrType.IPV6
        assert listed_to_six["four"].addresses[0].addr_type is AddrType.IPV4
    finally:
        await six.close()
        await four.close()


@pytest.mark.asyncio
async def test_the_datagram_budget_follows_the_path(pki: Pki) -> None:
    # An operator raised the budget to 1,400 bytes for its IPv4 peers: IPv6
    # peers still get at most 1,232 bytes of UDP payload per datagram,
    # handshake flights and multi-part answers alike (PROTOCOL §4).
    settings = ServerSettings(
        cert_pem=pki.server.cert_pem,
        key_pem=pki.server.key_pem,
        port=0,
        tracker=TrackerConfig(lan_mode=True, datagram_budget=1400, max_source_share=1.0),
    )
    server = await start_server(settings)
    sent: list[tuple[int, str]] = []
    everything: list[tuple[int, str]] = []
    endpoint = server.endpoint
    original = endpoint._sendto

    def spy(data: bytes, address: tuple[str, int]) -> None:
        sent.append((len(data), address[0]))
        everything.append((len(data), address[0]))
        original(data, address)

    endpoint._sendto = spy  # type: ignore[method-assign]
    seeds = [_client(server, pki, f"seed-{i:02d}", ipv6=i % 2 == 0) for i in range(24)]
    six = _client(server, pki, "leech-six", ipv6=True)
    four = _client(server, pki, "leech-four", ipv6=False)
    try:
        for seed in seeds:
            await seed.connect()
            await seed.join("big", PeerMode.SEED)
        for leech in (six, four):
            await leech.connect()
            await leech.join("big", peer_num=PeerNum(0))
            sent.clear()
            found = await leech.find("big", peer_num=PeerNum(24))
            assert len(found.peers) == 24
            (host,) = {host for _, host in sent}
            sizes = [size for size, _ in sent]
            assert len(sizes) > 1  # a multi-part answer
            if leech is six:
                assert host == "::1" and max(sizes) <= IPV6_UDP_PAYLOAD
            else:
                assert host == "::ffff:127.0.0.1" and max(sizes) > IPV6_UDP_PAYLOAD
        to_six = [size for size, host in everything if host == "::1"]
        assert len(to_six) > len(seeds) and max(to_six) <= IPV6_UDP_PAYLOAD
    finally:
        for client in (*seeds, six, four):
            await client.close()
        await server.close()
