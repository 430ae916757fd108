"""Unit and property tests open no network socket (issue 9: tests by kind).

An audit hook (PEP 578; nothing is patched) sees every socket the process
creates, binds, connects or sends from. While a test of ``tests/unit`` or
``tests/property`` runs, an AF_INET/AF_INET6 socket, or a bind/connect/send
on any socket, is refused on the spot and fails the test, even if the code
under test swallows the error. AF_UNIX socket pairs (the event loop's own
wake-up pipe) stay allowed. Tests that need the network live in
``tests/integration`` (loopback) or ``tests/lab`` (namespaces).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

_NETWORK_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
_NETWORK_EVENTS = frozenset(
    {"socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}
)


class SocketOpened(RuntimeError):
    """A unit or property test touched the network."""


class _Guard:
    def __init__(self) -> None:
        self.active = False
        self.violations: list[str] = []

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.__new__":
            family = args[1]
            if family not in _NETWORK_FAMILIES:
                return
        elif event not in _NETWORK_EVENTS:
            return
        detail = f"{event}{args[1:]!r}"
        self.violations.append(detail)
        raise SocketOpened(f"a unit/property test opened a socket: {detail}")


_GUARD = _Guard()
sys.addaudithook(_GUARD.hook)


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    """Autouse in tests/unit and tests/property (see their conftest.py)."""
    _GUARD.violations.clear()
    _GUARD.active = True
    try:
        yield
    finally:
        _GUARD.active = False
    if _GUARD.violations:
        pytest.fail("opened a socket: " + "; ".join(_GUARD.violations), pytrace=False)


@contextlib.contextmanager
def refused_socket() -> Iterator[None]:
    """For the guard's own tests: the network use inside must be refused;
    it is then not held against the test."""
    before = len(_GUARD.violations)
    with pytest.raises(SocketOpened):
        yield
    assert len(_GUARD.violations) > before
    del _GUARD.violations[before:]
