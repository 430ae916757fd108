"""The guard of tests/unit and tests/property refuses network sockets."""

from __future__ import annotations

import asyncio
import socket

from tests.no_sockets import refused_socket


def test_a_udp_socket_is_refused() -> None:
    with refused_socket():
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def test_an_ipv6_socket_is_refused() -> None:
    with refused_socket():
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)


def test_an_event_loop_endpoint_is_refused() -> None:
    async def open_endpoint() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))

    with refused_socket():
        asyncio.run(open_endpoint())


def test_a_local_socket_pair_is_allowed() -> None:
    # The event loop's own wake-up channel; no network involved.
    first, second = socket.socketpair()
    first.close()
    second.close()
