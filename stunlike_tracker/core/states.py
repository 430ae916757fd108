"""The per-peer state machine as a table (PROTOCOL §3; h11-style).

A Peer-ID is UNKNOWN (no registration), REGISTERED (connected, in no swarm,
init timer) or TRACKING (in at least one swarm, track timer). This table says
which requests each state accepts; the handlers in ``tracker`` decide the
next state, which always follows from the peer's memberships:

    UNKNOWN    --CONNECT-->             REGISTERED (or TRACKING on re-CONNECT)
    REGISTERED --JOIN-->                TRACKING
    TRACKING   --DISCONNECT last/ALL--> REGISTERED
    any        --DISCONNECT nil-->      UNKNOWN (no tombstone)
    any        --timer-->               UNKNOWN (tombstone for one track timeout)

Requests a state refuses are answered 403 with the reason below.
"""

from __future__ import annotations

from enum import Enum

from stunlike_tracker.ppsp.messages import Method
from stunlike_tracker.ppsp.reasons import Reason
from stunlike_tracker.store.records import PeerRecord


class PeerState(Enum):
    UNKNOWN = "UNKNOWN"
    REGISTERED = "REGISTERED"
    TRACKING = "TRACKING"


def state_of(record: PeerRecord | None) -> PeerState:
    if record is None:
        return PeerState.UNKNOWN
    return PeerState.TRACKING if record.memberships else PeerState.REGISTERED


_ALL = frozenset(Method)

# state -> requests it accepts
ACCEPTS: dict[PeerState, frozenset[Method]] = {
    PeerState.UNKNOWN: frozenset({Method.CONNECT}),
    PeerState.REGISTERED: frozenset(
        {Method.CONNECT, Method.JOIN, Method.DISCONNECT, Method.ATTACH_ACK}
    ),
    PeerState.TRACKING: _ALL,
}

# (state, request) -> the 403 reason when refused
REFUSAL: dict[tuple[PeerState, Method], Reason] = {
    **{(PeerState.UNKNOWN, m): Reason.NOT_CONNECTED for m in _ALL - {Method.CONNECT}},
    (PeerState.REGISTERED, Method.FIND): Reason.NOT_JOINED,
    (PeerState.REGISTERED, Method.ATTACH): Reason.NOT_JOINED,
    # draft-07 §8.5: STAT_REPORT is a TRACKING-state message.
    (PeerState.REGISTERED, Method.STAT_REPORT): Reason.NOT_TRACKING,
}


def refusal(state: PeerState, method: Method) -> Reason | None:
    """The 403 reason if ``state`` does not accept ``method``, else None."""
    if method in ACCEPTS[state]:
        return None
    return REFUSAL[(state, method)]
