"""Per-source budgets and the idle timer, from outside over loopback
(issue 11, items 1, 2 and 4; PROTOCOL §8)."""

from __future__ import annotations

import asyncio

import pytest

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.ppsp import encode_request, parse_response_untrusted
from stunlike_tracker.ppsp.messages import Method, Request
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server
from stunlike_tracker.server.budgets import BudgetLimits
from stunlike_tracker.server.clock import ManualClock
from stunlike_tracker.server.endpoint import EndpointLimits
from tests.integration.hostile import RawPeer
from tests.integration.support import Pki


async def _serve(
    pki: Pki,
    budgets: BudgetLimits,
    limits: EndpointLimits | None = None,
    clock: ManualClock | None = None,
) -> RunningServer:
    settings = ServerSettings(
        cert_pem=pki.server.cert_pem,
        key_pem=pki.server.key_pem,
        host="127.0.0.1",
        port=0,
        tracker=TrackerConfig(lan_mode=True),
        limits=limits or EndpointLimits(),
        budgets=budgets,
    )
    return await start_server(settings, clock=clock)


@pytest.mark.asyncio
async def test_junk_records_do_not_keep_an_idle_association_alive(pki: Pki) -> None:
    clock = ManualClock()
    limits = EndpointLimits(idle_timeout=0.6, eviction_interval=0.1, tick=0.05)
    server = await _serve(pki, BudgetLimits(), limits, clock)
    junk = await RawPeer.open(server.address, pki.ca.cert_pem)
    alive = await RawPeer.open(server.address, pki.ca.cert_pem)
    try:
        assert await junk.handshake() and await alive.handshake()
        assert len(server.endpoint.sessions) == 2
        for n in range(15):  # 1.5 s of the tracker's time, 0.1 s a step
            junk.send_raw(b"\x17")  # one byte that looks like application data
            # An authenticated request (a CONNECT, then refused repeats) keeps
            # the other association alive; its answer says both were read.
            alive.send(encode_request(Request(Method.CONNECT, "alive", f"t{n}")))
            await asyncio.wait_for(alive.inbox.get(), 5)
            clock.advance(0.1)
        assert junk.local_address not in server.endpoint.sessions.by_address
        assert alive.local_address in server.endpoint.sessions.by_address
    finally:
        junk.close()
        alive.close()
        await server.close()


@pytest.mark.asyncio
async def test_one_source_gets_at_most_its_share_of_associations(pki: Pki) -> None:
    server = await _serve(pki, BudgetLimits(address_sessions=3, address_half_open=3))
    peers = [await RawPeer.open(server.address, pki.ca.cert_pem) for _ in range(5)]
    other = await RawPeer.open(server.address, pki.ca.cert_pem, local_host="127.0.0.2")
    try:
        done = [await p.handshake(within=1.5) for p in peers]
        assert done.count(True) == 3
        assert server.endpoint.drops["budget-address-sessions"] >= 2
        # The refused ones got nothing after their cookie: no amplification.
        for peer, ok in zip(peers, done, strict=True):
            if not ok:
                assert peer.received_datagrams == 1  # the HelloVerifyRequest only
        # Another source is not affected.
        assert await other.handshake()
        # Closing associations gives the source its budget back.
        assert len(server.endpoint.sessions) == 4
    finally:
        for p in (*peers, other):
            p.close()
        await server.close()


@pytest.mark.asyncio
async def test_a_flooding_association_is_throttled_before_decryption(pki: Pki) -> None:
    budgets = BudgetLimits(session_rate=50, session_burst=100, ban_strikes=10**9)
    server = await _serve(pki, budgets)
    flooder = await RawPeer.open(server.address, pki.ca.cert_pem)
    honest = await RawPeer.open(server.address, pki.ca.cert_pem, local_host="127.0.0.2")
    try:
        assert await flooder.handshake() and await honest.handshake()
        records = [
            d
            for n in range(2000)
            for d in flooder.seal(encode_request(Request(Method.CONNECT, "f", f"t{n}")))
        ]
        before = server.endpoint.counters["ppsp-requests"]
        for record in records:
            flooder.send_raw(record)
        await asyncio.sleep(0)  # let the loop read what arrived
        honest.send(encode_request(Request(Method.CONNECT, "honest", "h1")))
        replies = await honest.receive(5.0)
        assert replies and parse_response_untrusted(replies[0]).status == 200
        decrypted = server.endpoint.counters["ppsp-requests"] - before
        # At most the burst plus what the rate refilled meanwhile; the rest
        # (of what the kernel did not drop itself) dropped before decryption.
        assert decrypted <= 100 + 50 * 5 + 8
        # A refused association still hears 503 now and then (1/s), no more.
        assert 1 <= server.endpoint.counters["budget-overloaded-answers"] <= 8
        assert server.endpoint.drops["budget-session-rate"] >= 300
    finally:
        flooder.close()
        honest.close()
        await server.close()


@pytest.mark.asyncio
async def test_unfinished_handshakes_hold_memory_for_the_half_open_timeout_only(
    pki: Pki,
) -> None:
    clock = ManualClock()
    budgets = BudgetLimits(half_open_timeout=0.3)
    server = await _serve(pki, budgets, EndpointLimits(tick=0.05), clock)
    stalled = await RawPeer.open(server.address, pki.ca.cert_pem)
    try:
        # Send the ClientHello, answer the cookie, then go silent.
        stalled.session.start(0.0)
        for d in stalled.session.datagrams_to_send():
            stalled.send_raw(d)
        verify = await asyncio.wait_for(stalled.inbox.get(), 5)
        stalled.session.feed(verify, 0.0)
        for d in stalled.session.datagrams_to_send():
            stalled.send_raw(d)
        await asyncio.wait_for(stalled.inbox.get(), 5)  # the server's flight: it is half open
        assert server.endpoint.budgets.half_open == 1
        clock.advance(0.2)
        assert len(server.endpoint.sessions) == 1  # not before its time
        clock.advance(0.3)
        assert len(server.endpoint.sessions) == 0
        assert server.endpoint.budgets.half_open == 0
        assert server.endpoint.drops["budget-half-open-timeout"] == 1
    finally:
        stalled.close()
        await server.close()
