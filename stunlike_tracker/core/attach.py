"""ATTACH introductions in flight (SPEC §6).

An ATTACH from A toward B becomes an Indication sent over B's session and
resent until B's ATTACH_ACK, or until the give-up time when A gets 503. This
is node-local bookkeeping: the indication goes out from the node that took
A's request, over B's session wherever it is.
"""

from __future__ import annotations

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


class PendingAttaches:
    def __init__(self, resend_intervals: tuple[float, ...], timeout: float) -> None:
        self._intervals = resend_intervals
        self._timeout = timeout
        self._by_id: dict[str, PendingAttach] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def first_resend_at(self, now: float) -> float:
        return now + (self._intervals[0] if self._intervals else self._timeout)

    def add(self, pending: PendingAttach) -> None:
        self._by_id[pending.indication_id] = pending

    def pop(self, indication_id: str) -> PendingAttach | None:
        return self._by_id.pop(indication_id, None)

    def targeting(self, peer_id: str) -> list[PendingAttach]:
        return [p for p in self._by_id.values() if p.target_id == peer_id]

    def next_deadline(self) -> float | None:
        if not self._by_id:
            return None
        return min(
            min(p.next_resend_at, p.started_at + self._timeout) for p in self._by_id.values()
        )

    def due(self, now: float) -> tuple[list[PendingAttach], list[PendingAttach]]:
        """(to resend now, given up) — the given-up ones are removed."""
        resend: list[PendingAttach] = []
        expired: list[PendingAttach] = []
        for pending in list(self._by_id.values()):
            if now >= pending.started_at + self._timeout:
                del self._by_id[pending.indication_id]
                expired.append(pending)
            elif now >= pending.next_resend_at:
                resend.append(pending)
                if pending.resends_done < len(self._intervals) - 1:
                    pending.resends_done += 1
                    pending.next_resend_at = now + self._intervals[pending.resends_done]
                else:
                    # No resend left: wait for the give-up time.
                    pending.next_resend_at = pending.started_at + self._timeout
        return resend, expired
