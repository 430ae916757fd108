"""An in-memory client ↔ server DTLS pair, for tests and benchmarks.

The pair passes datagrams between a :class:`DtlsClientSession` and the
server side exactly as the real server would: datagrams from an address
without a session go through
:meth:`DtlsServerContext.check_client_hello_untrusted` first; a session is
created only on *accept*.  An optional loss function drops datagrams; time
only moves when nothing is in flight, straight to the earliest timer
(no sleeping).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .cookies import Address
from .dtls import (
    DtlsClientContext,
    DtlsClientSession,
    DtlsServerContext,
    DtlsServerSession,
    HelloAction,
)

__all__ = ["Direction", "DtlsPair", "LossFunction", "PairStats"]

Direction = Literal["c2s", "s2c"]
LossFunction = Callable[[Direction, int, bytes], bool]
"""``(direction, index in that direction, datagram) -> True to drop it``."""


@dataclass
class PairStats:
    datagrams: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    bytes: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    lost: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    verify_requests: int = 0
    hello_sizes: list[int] = field(default_factory=list)
    verify_request_sizes: list[int] = field(default_factory=list)
    hello_drops: list[str] = field(default_factory=list)
    sessions_created: int = 0


class DtlsPair:
    """One client session and the server side that would answer it."""

    def __init__(
        self,
        client_ctx: DtlsClientContext,
        server_ctx: DtlsServerContext,
        *,
        client_addr: Address = ("198.51.100.7", 40000),
        now: float = 0.0,
        loss: LossFunction | None = None,
    ) -> None:
        self.server_ctx = server_ctx
        self.client_addr = client_addr
        self.now = now
        self.loss = loss
        self.client = DtlsClientSession(client_ctx, now=now)
        self.server: DtlsServerSession | None = None
        self.stats = PairStats()
        self._to_client: list[bytes] = []

    # -- delivery ---------------------------------------------------------

    def _lost(self, direction: Direction, datagram: bytes) -> bool:
        index = self.stats.datagrams[direction]
        self.stats.datagrams[direction] += 1
        self.stats.bytes[direction] += len(datagram)
        if self.loss is not None and self.loss(direction, index, datagram):
            self.stats.lost[direction] += 1
            return True
        return False

    def _to_server(self, datagram: bytes) -> None:
        if self.server is None:
            result = self.server_ctx.check_client_hello_untrusted(
                datagram, self.client_addr, self.now
            )
            if result.action is HelloAction.VERIFY_REQUEST:
                self.stats.verify_requests += 1
                self.stats.hello_sizes.append(len(datagram))
                self.stats.verify_request_sizes.append(len(result.verify_request))
                self._to_client.append(result.verify_request)
            elif result.action is HelloAction.ACCEPT:
                self.stats.sessions_created += 1
                self.server = DtlsServerSession(self.server_ctx, self.client_addr, now=self.now)
                self.server.feed(datagram, self.now)
            else:
                self.stats.hello_drops.append(result.reason)
            return
        self.server.feed(datagram, self.now)

    def pump(self) -> int:
        """Deliver queued datagrams both ways until neither side has more."""
        moved = 0
        while True:
            c_out = self.client.datagrams_to_send()
            s_out = self._to_client
            self._to_client = []
            if self.server is not None:
                s_out.extend(self.server.datagrams_to_send())
            if not c_out and not s_out:
                return moved
            for datagram in c_out:
                moved += 1
                if not self._lost("c2s", datagram):
                    self._to_server(datagram)
            for datagram in s_out:
                moved += 1
                if not self._lost("s2c", datagram):
                    self.client.feed(datagram, self.now)

    def next_timer(self) -> float | None:
        timers = [self.client.get_timer()]
        if self.server is not None:
            timers.append(self.server.get_timer())
        live = [t for t in timers if t is not None]
        return min(live) if live else None

    def fire_timers(self) -> None:
        self.client.handle_timer(self.now)
        if self.server is not None:
            self.server.handle_timer(self.now)

    @property
    def established(self) -> bool:
        return (
            self.client.handshake_complete
            and self.server is not None
            and self.server.handshake_complete
        )

    def handshake(self, *, max_time: float = 300.0) -> bool:
        """Start the client and run until both sides completed, one failed, or
        *max_time* seconds of pair time went by.  True when established."""
        self.client.start(self.now)
        limit = self.now + max_time
        while not self.established:
            moved = self.pump()
            if self.client.closed or (self.server is not None and self.server.closed):
                return False
            if moved or self.established:
                continue
            when = self.next_timer()
            if when is None or when > limit:
                return False
            self.now = max(self.now, when)
            self.fire_timers()
        # Let the last flight (and anything else in flight) land.
        self.pump()
        return self.established

    # -- application data -------------------------------------------------

    def client_to_server(self, message: bytes) -> list[bytes]:
        """Send *message* from the client; return what the server received."""
        self.client.send(message)
        self.pump()
        assert self.server is not None
        return self.server.receive()

    def server_to_client(self, message: bytes) -> list[bytes]:
        """Send *message* from the server; return what the client received."""
        assert self.server is not None
        self.server.send(message)
        self.pump()
        return self.client.receive()
