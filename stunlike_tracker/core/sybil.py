"""Sybil limits (PROTOCOL §8): how many Peer-IDs one DTLS association and one
source address may hold, and how much of a peer list one source may fill.

Node-local and pure. A DTLS association lives on one node, so the count per
association is exact; the count per source is per node (a source spread
over several nodes gets each node's cap).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def source_key(ip: str, ipv6_prefix: int = 64) -> str:
    """One source for budgets and Sybil limits: the IPv4 address (an
    IPv4-mapped IPv6 address counts as its IPv4 address) or the IPv6
    /``ipv6_prefix`` (one subscriber usually holds a whole /64)."""
    if ":" not in ip:
        return ip
    try:
        parsed = ipaddress.IPv6Address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, ipv6_prefix), strict=False))


# The Peer-IDs under one association or source: one Peer-ID alone (the usual
# case: a set of one costs ~200 bytes more) or a set of them.
_Ids = str | set[str]


def _ids_add(table: dict[str, _Ids], key: str, peer_id: str) -> None:
    ids = table.get(key)
    if ids is None:
        table[key] = peer_id
    elif isinstance(ids, str):
        if ids != peer_id:
            table[key] = {ids, peer_id}
    else:
        ids.add(peer_id)


def _ids_discard(table: dict[str, _Ids], key: str, peer_id: str) -> None:
    ids = table.get(key)
    if ids is None:
        return
    if isinstance(ids, str):
        if ids == peer_id:
            del table[key]
        return
    ids.discard(peer_id)
    if len(ids) == 1:
        table[key] = next(iter(ids))
    elif not ids:
        del table[key]


class RegistrationIndex:
    """Peer-IDs registered per association and per source, on this node.

    Each entry carries the peer's deadline as of its last request here (the
    requests of an association all reach the node holding it), so counting
    needs no store read, and an entry whose peer expired, or moved to
    another node, stops counting once its deadline has passed.
    """

    __slots__ = ("_by_session", "_by_source", "_where")

    def __init__(self) -> None:
        self._by_session: dict[str, _Ids] = {}
        self._by_source: dict[str, _Ids] = {}
        self._where: dict[str, tuple[str, str, float]] = {}  # peer -> (session, source, deadline)

    def __len__(self) -> int:
        return len(self._where)

    def add(self, peer_id: str, session_id: str, source: str, deadline: float) -> None:
        self.remove(peer_id)
        self._where[peer_id] = (session_id, source, deadline)
        _ids_add(self._by_session, session_id, peer_id)
        _ids_add(self._by_source, source, peer_id)

    def touch(self, peer_id: str, session_id: str, deadline: float) -> None:
        """The peer's deadline after a request over ``session_id``."""
        where = self._where.get(peer_id)
        if where is not None and where[0] == session_id:
            self._where[peer_id] = (where[0], where[1], deadline)

    def remove(self, peer_id: str) -> None:
        where = self._where.pop(peer_id, None)
        if where is None:
            return
        session_id, source, _ = where
        _ids_discard(self._by_session, session_id, peer_id)
        _ids_discard(self._by_source, source, peer_id)

    def on_session(self, session_id: str, other_than: str, now: float, cap: int = 0) -> int:
        """Live Peer-IDs of the association besides ``other_than``; with
        ``cap``, a figure below it may count expired entries not yet pruned
        (it is compared with ``cap`` only, so this never changes a verdict)."""
        return self._count(self._by_session.get(session_id), other_than, now, cap)

    def from_source(self, source: str, other_than: str, now: float, cap: int = 0) -> int:
        """The same per source (``cap`` as in :meth:`on_session`)."""
        return self._count(self._by_source.get(source), other_than, now, cap)

    def prune(self, now: float) -> None:
        """Forget entries past their deadline (bounded memory)."""
        for peer_id in [p for p, w in self._where.items() if w[2] <= now]:
            self.remove(peer_id)

    def _count(self, ids: _Ids | None, other_than: str, now: float, cap: int) -> int:
        if not ids:
            return 0
        if isinstance(ids, str):
            members: tuple[str, ...] = (ids,)
        elif len(ids) < cap:
            # At most len(ids) are live: below the cap whatever has expired,
            # so the O(len) scan for stale entries is left to prune().
            return len(ids) - (other_than in ids)
        else:
            members = tuple(ids)
        live = 0
        for peer_id in members:
            if self._where[peer_id][2] <= now:
                self.remove(peer_id)
            elif peer_id != other_than:
                live += 1
        return live


def spread_by_source(
    ranked: Iterable[T], source_of: Callable[[T], str], want: int, per_source: int
) -> tuple[list[T], list[T]]:
    """Take up to ``want`` items in order, at most ``per_source`` from one
    source; return (taken, held back). The caller tops the list up from the
    held-back ones only when nothing else is left, so one source fills at
    most ``per_source`` places while other sources have peers to offer."""
    taken: list[T] = []
    held: list[T] = []
    counts: dict[str, int] = {}
    for item in ranked:
        if len(taken) >= want:
            break
        source = source_of(item)
        if counts.get(source, 0) >= per_source:
            held.append(item)
            continue
        counts[source] = counts.get(source, 0) + 1
        taken.append(item)
    return taken, held
