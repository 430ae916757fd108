"""The peer's ICE agent: aioice's ``Connection`` with RFC 8445 §7.3.1.4
triggered checks for pairs whose own check is In-Progress.

aioice (0.13) answers an incoming check and starts a triggered check only
for a pair that is Frozen, Waiting or Failed. When the pair's own check is
already In-Progress — typically because its first request was dropped by the
remote NAT, which had not yet seen any packet from us — aioice lets that
transaction run on, so the pair succeeds only at the next retransmission,
500 ms later (RTO 0.5 s). In the lab that cost every pair of endpoint-
independent NATs (restricted and port-restricted cone) ~530 ms instead of
one round trip.

RFC 8445 §7.3.1.4: "If the state of that pair is In-Progress, the agent
cancels the In-Progress transaction [...] and then [...] puts the pair in
the Waiting state and creates a triggered check". :class:`TriggeredChecks`
does exactly that: the incoming check proves that the path from the remote
to us is open *now*, and our NAT has just forwarded it, so a new request on
the reverse path crosses both NATs. The cancelled transaction is dropped
altogether (the RFC lets it wait for a late response; the triggered check,
sent at once to the same address, gets its own). Because of that, a pair is
restarted at most once: when both agents' checks are in flight at the same
time, each one's check reaches the other while its own is In-Progress, and
restarting on every arrival would cancel both sides' checks for ever (seen
between two relayed candidates, where both checks cross on one TURN server).

:func:`install` makes aiortc create this agent for every RTCPeerConnection
of the process; it is called once, where the peer builds its channel.

The agent also remembers the candidate types of the pair it nominated, and
:func:`selected_pair_types` finds it by its local ICE username fragment
(which the channel reads from its public local description): aiortc has no
public accessor for the selected pair.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import Any

import aioice
import aiortc.rtcicetransport
from aioice import stun
from aioice.ice import CandidatePair, StunProtocol, TransportPolicy

HOST_ADDRESSES: ContextVar[tuple[str, ...] | None] = ContextVar(
    "stunlike_host_addresses", default=None
)
"""Local IP addresses to gather host candidates on, for agents created in
this context (None: every interface aioice lists, which skips loopback).
aiortc builds the agent itself, so the channel passes the choice this way."""


class TriggeredChecks(aioice.Connection):
    """aioice's ICE agent, plus RFC 8445 §7.3.1.4 for In-Progress pairs."""

    triggered_restarts: int
    """Checks cancelled and re-sent because the remote's check arrived first."""

    selected_types: tuple[str, str] | None
    """(local, remote) candidate types of the first nominated pair."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.triggered_restarts = 0
        self.selected_types = None
        self._restarted: set[int] = set()  # id() of pairs already restarted once
        self._host_addresses = HOST_ADDRESSES.get()
        _AGENTS[self.local_username] = self

    async def gather_candidates(self) -> None:
        if self._host_addresses is None:
            return await super().gather_candidates()
        # aioice's own gathering on the configured addresses instead of the
        # interfaces it lists (it leaves out 127.0.0.1, which a single-host
        # LAN setup needs). Host candidates are not used with the relay
        # transport policy (RFC 9429 §3.5.3), as in aioice.
        if not self._local_candidates_start:
            self._local_candidates_start = True
            relay_only = self._transport_policy != TransportPolicy.ALL
            addresses = [] if relay_only else list(self._host_addresses)
            for component in self._components:
                self._local_candidates += await self.get_component_candidates(
                    component=component, addresses=addresses
                )
            self._local_candidates_end = True

    def check_complete(self, pair: CandidatePair) -> None:
        succeeded = pair.state == CandidatePair.State.SUCCEEDED
        if self.selected_types is None and pair.nominated and succeeded:
            local, remote = pair.local_candidate.type, pair.remote_candidate.type
            self.selected_types = (str(local), str(remote))
        super().check_complete(pair)

    def check_incoming(
        self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol
    ) -> None:
        pair = self._in_progress_pair(addr, protocol)
        if pair is not None and pair.task is not None and id(pair) not in self._restarted:
            # RFC 8445 §7.3.1.4: cancel the In-Progress transaction, put the
            # pair back to Waiting; aioice's own handling below then starts
            # the triggered check at once (it starts every Waiting pair).
            self._restarted.add(id(pair))
            pair.task.cancel()
            pair.task = None
            self.check_state(pair, CandidatePair.State.WAITING)
            self.triggered_restarts += 1
        super().check_incoming(message, addr, protocol)

    def _in_progress_pair(
        self, addr: tuple[str, int], protocol: StunProtocol
    ) -> CandidatePair | None:
        # A lite remote gets a second (nominating) request on success: never
        # cut that one short. Against a full agent every check nominates
        # (aioice uses aggressive nomination), so there is no second phase.
        if self.remote_is_lite:
            return None
        for pair in self._check_list:
            if (
                pair.protocol is protocol
                and pair.remote_addr == (addr[0], addr[1])
                and pair.state == CandidatePair.State.IN_PROGRESS
            ):
                return pair
        return None


# Live agents by local ICE username fragment (weak: an agent goes with its connection).
_AGENTS: weakref.WeakValueDictionary[str, TriggeredChecks] = weakref.WeakValueDictionary()


def selected_pair_types(local_ufrag: str) -> tuple[str, str] | None:
    """The nominated pair's candidate types of the agent using ``local_ufrag``."""
    agent = _AGENTS.get(local_ufrag)
    return agent.selected_types if agent is not None else None


def install() -> None:
    """Make aiortc build :class:`TriggeredChecks` agents (idempotent).

    aiortc's ``RTCIceGatherer`` creates its agent with the name
    ``Connection`` from its own module; rebinding that name is the one place
    the peer changes aiortc's behaviour.
    """
    setattr(aiortc.rtcicetransport, "Connection", TriggeredChecks)  # noqa: B010
