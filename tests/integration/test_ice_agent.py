"""The peer's ICE agent answers a check for an In-Progress pair with a
triggered check at once (RFC 8445 §7.3.1.4), where plain aioice waits for
its 500 ms retransmission.

Two agents on loopback talk through a forwarder that stands for a NAT which
has not yet seen the controlled agent's peer: it drops that agent's first
check, then forwards everything both ways.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aioice
import pytest
from aioice import stun

from stunlike_tracker.peer.ice_agent import TriggeredChecks

Addr = tuple[str, int]


class _Forwarder(asyncio.DatagramProtocol):
    """Forwards between agent ``a`` and agent ``b`` (each sees the other at
    the forwarder's address); drops ``a``'s first Binding request."""

    def __init__(self, drop_first_of: tuple[str, ...] = ("a",)) -> None:
        self.drop_first_of = drop_first_of
        self.dropped: set[str] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.a: Addr | None = None
        self.b: Addr | None = None
        self.log: list[tuple[str, bytes]] = []  # (sender, transaction id) of requests
        self.first_dropped = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        assert self.transport is not None
        sender, target = ("a", self.b) if addr == self.a else ("b", self.a)
        try:
            message = stun.parse_message(data)
        except ValueError:
            message = None
        if message is not None and message.message_class == stun.Class.REQUEST:
            self.log.append((sender, message.transaction_id))
            if sender in self.drop_first_of and sender not in self.dropped:
                self.dropped.add(sender)
                if sender == "a":
                    self.first_dropped.set()
                return
        if target is not None:
            self.transport.sendto(data, target)


async def _gather_loopback(agent: aioice.Connection) -> None:
    # gather_candidates() skips loopback addresses; gather one host
    # candidate on 127.0.0.1 through the agent's own per-address gathering.
    agent._local_candidates_start = True
    agent._local_candidates += await agent.get_component_candidates(1, ["127.0.0.1"])
    agent._local_candidates_end = True


def _candidate_at(addr: Addr) -> aioice.Candidate:
    return aioice.Candidate(
        foundation="fwd", component=1, transport="udp", priority=2130706431,
        host=addr[0], port=addr[1], type="host",
    )  # fmt: skip


async def _connect_through_forwarder(
    agent_class: Any, drop_first_of: tuple[str, ...] = ("a",)
) -> tuple[_Forwarder, Any, Any]:
    loop = asyncio.get_running_loop()
    transport, fwd = await loop.create_datagram_endpoint(
        lambda: _Forwarder(drop_first_of), local_addr=("127.0.0.1", 0)
    )
    fwd_addr = transport.get_extra_info("sockname")[:2]
    a = agent_class(ice_controlling=False, use_ipv6=False)
    b = agent_class(ice_controlling=True, use_ipv6=False)
    try:
        for agent in (a, b):
            await _gather_loopback(agent)
        fwd.a = a.local_candidates[0].host, a.local_candidates[0].port
        fwd.b = b.local_candidates[0].host, b.local_candidates[0].port
        for agent, other in ((a, b), (b, a)):
            agent.remote_username, agent.remote_password = (
                other.local_username,
                other.local_password,
            )
            await agent.add_remote_candidate(_candidate_at(fwd_addr))
            await agent.add_remote_candidate(None)
        a_connect = asyncio.create_task(a.connect())
        # The controlled agent's first check is lost before the controlling
        # agent starts: its pair is In-Progress when the remote check arrives.
        await asyncio.wait_for(fwd.first_dropped.wait(), 5)
        async with asyncio.timeout(10):
            await asyncio.gather(a_connect, b.connect())
        return fwd, a, b
    finally:
        await a.close()
        await b.close()
        transport.close()


def _reaction_to_first_remote_check(log: list[tuple[str, bytes]]) -> tuple[bytes, list[bytes]]:
    """``a``'s first request after ``b``'s first one, and ``a``'s earlier ones."""
    first_b = next(i for i, (who, _) in enumerate(log) if who == "b")
    earlier = [tid for who, tid in log[:first_b] if who == "a"]
    after = next(tid for who, tid in log[first_b:] if who == "a")
    return after, earlier


@pytest.mark.asyncio
async def test_a_check_for_an_in_progress_pair_triggers_a_new_check_at_once() -> None:
    fwd, a, _ = await _connect_through_forwarder(TriggeredChecks)
    after, earlier = _reaction_to_first_remote_check(fwd.log)
    # A new transaction (the triggered check), not a retransmission of the
    # dropped one: aioice retransmits with the same transaction ID.
    assert earlier and after not in earlier
    assert a.triggered_restarts == 1


@pytest.mark.asyncio
async def test_plain_aioice_waits_for_its_retransmission() -> None:
    # The forwarder really drops the first check and plain aioice really
    # lacks the behaviour: its next request is the same transaction again.
    fwd, _, _ = await _connect_through_forwarder(aioice.Connection)
    after, earlier = _reaction_to_first_remote_check(fwd.log)
    assert after in earlier


@pytest.mark.asyncio
async def test_checks_crossing_in_flight_restart_each_pair_once() -> None:
    # Both first checks are lost, so both retransmissions cross while each
    # side's own check is In-Progress. Restarting on every arriving check
    # would cancel both sides' checks for ever; each pair restarts once and
    # the agents connect.
    _, a, b = await _connect_through_forwarder(TriggeredChecks, drop_first_of=("a", "b"))
    assert a.triggered_restarts <= 1
    assert b.triggered_restarts <= 1
