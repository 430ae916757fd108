"""The tracker's UDP socket: dual-stack by default, IPv4 where there is no
IPv6 (issue 15). The binding itself is exercised on loopback in
tests/integration/tracker/test_ipv6.py; here only the fallback decision."""

from __future__ import annotations

import errno
import socket
from typing import cast

import pytest

from stunlike_tracker.server.app import DUAL_STACK_HOST, IPV4_ANY, udp_socket


class _Binder:
    """Records what was asked for; IPv6 fails with ``error``."""

    def __init__(self, error: int) -> None:
        self.error = error
        self.asked: list[str] = []

    def __call__(
        self, host: str, port: int, receive_buffer: int, reuse_port: bool
    ) -> socket.socket:
        self.asked.append(host)
        if ":" in host:
            raise OSError(self.error, "no IPv6 here")
        return cast(socket.socket, object())


@pytest.mark.parametrize("error", [errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL])
def test_without_ipv6_the_default_falls_back_to_ipv4(error: int) -> None:
    binder = _Binder(error)
    udp_socket(DUAL_STACK_HOST, 3478, 1 << 20, bind=binder)
    assert binder.asked == [DUAL_STACK_HOST, IPV4_ANY]


def test_an_explicit_ipv6_host_does_not_fall_back() -> None:
    binder = _Binder(errno.EADDRNOTAVAIL)
    with pytest.raises(OSError):
        udp_socket("2001:db8::1", 3478, 1 << 20, bind=binder)
    assert binder.asked == ["2001:db8::1"]


def test_other_errors_are_not_hidden() -> None:
    binder = _Binder(errno.EADDRINUSE)
    with pytest.raises(OSError):
        udp_socket(DUAL_STACK_HOST, 3478, 1 << 20, bind=binder)
    assert binder.asked == [DUAL_STACK_HOST]
