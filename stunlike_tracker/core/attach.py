"""ATTACH introductions in flight (PROTOCOL §6).

An ATTACH from A toward B becomes an Indication sent over B's session and
resent until B's ATTACH_ACK, or until the give-up time when A gets 503. This
is node-local bookkeeping: the indication goes out from the node that took
A's request, over B's session wherever it is.

Deadlines live in a heap (lazily invalidated) and entries are indexed by
target, so the per-datagram ``next_deadline`` and the per-peer ``targeting``
cost O(1)/O(entries of that target), not O(everything in flight).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class PendingAttach:
    indication_id: str
    swarm_id: str
    requester_id: str
    requester_session: str
    requester_node: str
    request_transaction_id: str
    request_digest: bytes
    target_id: str
    target_session: str
    target_node: str
    datagram: bytes
    started_at: float
    next_resend_at: float
    resends_done: int = 0
    # XML bytes per datagram on the path to the requester (PROTOCOL §4).
    requester_budget: int = 1200

    def deadline(self, timeout: float) -> float:
        return min(self.next_resend_at, self.started_at + timeout)


class PendingAttaches:
    def __init__(self, resend_intervals: tuple[float, ...], timeout: float) -> None:
        self._intervals = resend_intervals
        self._timeout = timeout
        self._by_id: dict[str, PendingAttach] = {}
        self._by_target: dict[str, set[str]] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def retime(self, resend_intervals: tuple[float, ...], timeout: float) -> None:
        """New intervals for introductions from now on (SIGHUP)."""
        self._intervals = resend_intervals
        self._timeout = timeout

    def pop_all(self) -> list[PendingAttach]:
        """Every introduction in flight, removed (the node is draining)."""
        everything = list(self._by_id.values())
        self._by_id.clear()
        self._by_target.clear()
        self._heap.clear()
        return everything

    def first_resend_at(self, now: float) -> float:
        return now + (self._intervals[0] if self._intervals else self._timeout)

    def add(self, pending: PendingAttach) -> None:
        self._by_id[pending.indication_id] = pending
        self._by_target.setdefault(pending.target_id, set()).add(pending.indication_id)
        heapq.heappush(self._heap, (pending.deadline(self._timeout), pending.indication_id))

    def get(self, indication_id: str) -> PendingAttach | None:
        return self._by_id.get(indication_id)

    def pop(self, indication_id: str) -> PendingAttach | None:
        pending = self._by_id.pop(indication_id, None)
        if pending is not None:
            ids = self._by_target.get(pending.target_id)
            if ids is not None:
                ids.discard(indication_id)
                if not ids:
                    del self._by_target[pending.target_id]
        return pending

    def targeting(self, peer_id: str) -> list[PendingAttach]:
        return [self._by_id[i] for i in self._by_target.get(peer_id, ())]

    def count_targeting(self, peer_id: str) -> int:
        return len(self._by_target.get(peer_id, ()))

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            when, indication_id = heap[0]
            pending = self._by_id.get(indication_id)
            if pending is not None and pending.deadline(self._timeout) == when:
                return when
            heapq.heappop(heap)  # answered or rescheduled: a stale entry
        return None

    def due(self, now: float) -> tuple[list[PendingAttach], list[PendingAttach]]:
        """(to resend now, given up) — the given-up ones are removed."""
        resend: list[PendingAttach] = []
        expired: list[PendingAttach] = []
        while True:
            when = self.next_deadline()
            if when is None or when > now:
                break
            _, indication_id = heapq.heappop(self._heap)
            pending = self._by_id[indication_id]
            if now >= pending.started_at + self._timeout:
                self.pop(indication_id)
                expired.append(pending)
                continue
            resend.append(pending)
            if pending.resends_done < len(self._intervals) - 1:
                pending.resends_done += 1
                pending.next_resend_at = now + self._intervals[pending.resends_done]
            else:
                # No resend left: wait for the give-up time.
                pending.next_resend_at = pending.started_at + self._timeout
            heapq.heappush(self._heap, (pending.deadline(self._timeout), indication_id))
        return resend, expired

    def drop_requested_by(self, peer_id: str) -> int:
        """Forget introductions ``peer_id`` asked for (it re-CONNECTed: their
        answers would go to a dead session). O(in flight), on CONNECT only."""
        mine = [i for i, p in self._by_id.items() if p.requester_id == peer_id]
        for indication_id in mine:
            self.pop(indication_id)
        return len(mine)

    def retarget(self, peer_id: str, session_id: str, node_id: str) -> list[PendingAttach]:
        """The target re-CONNECTed on a new session: send there, now."""
        moved = self.targeting(peer_id)
        for pending in moved:
            pending.target_session = session_id
            pending.target_node = node_id
        return moved
