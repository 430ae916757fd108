"""The server's table of DTLS associations, by address and by session id."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from stunlike_tracker.core.effects import Session
from stunlike_tracker.transport.dtls import DtlsServerSession

Address = tuple[str, int]


@dataclass(slots=True, eq=False)
class SessionEntry:
    session_id: str
    address: Address
    dtls: DtlsServerSession
    last_activity: float
    # The core's view of this association, built once the handshake is done.
    core_session: Session | None = None
    # hash() of the handshake message of the ClientHello that opened it
    # (record header stripped): a late copy of it is a retransmission, not a
    # restart. The hash (keyed SipHash, 64 bits) rather than the ~200-300
    # bytes, kept for the whole life of the association.
    opening_hello: int = 0


class SessionTable:
    def __init__(self, node_id: str, max_sessions: int) -> None:
        self._node_id = node_id
        self.max_sessions = max_sessions
        self._ids = itertools.count(1)
        self.by_address: dict[Address, SessionEntry] = {}
        self.by_id: dict[str, SessionEntry] = {}

    def __len__(self) -> int:
        return len(self.by_address)

    @property
    def full(self) -> bool:
        return len(self.by_address) >= self.max_sessions

    def add(self, address: Address, dtls: DtlsServerSession, now: float) -> SessionEntry:
        entry = SessionEntry(f"{self._node_id}:{next(self._ids)}", address, dtls, now)
        self.by_address[address] = entry
        self.by_id[entry.session_id] = entry
        return entry

    def remove(self, entry: SessionEntry) -> None:
        if self.by_address.get(entry.address) is entry:
            del self.by_address[entry.address]
        self.by_id.pop(entry.session_id, None)

    def idle(self, now: float, idle_timeout: float, handshake_timeout: float) -> list[SessionEntry]:
        """Sessions to evict: closed, silent too long, or stuck in the handshake."""
        stale = []
        for entry in self.by_address.values():
            limit = idle_timeout if entry.dtls.handshake_complete else handshake_timeout
            if entry.dtls.closed or now - entry.last_activity > limit:
                stale.append(entry)
        return stale
