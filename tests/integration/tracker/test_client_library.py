"""The tracker client library against a real tracker on loopback (PROTOCOL §3, §4, §6)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import TrackerClient, TrackerUnreachable
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress, PeerMode
from stunlike_tracker.server.app import RunningServer
from stunlike_tracker.server.clock import ManualClock
from tests.integration.support import Pki, client_for, client_settings, serve


def _offer(offer_id: str) -> IceOffer:
    host = PeerAddress(AddrType.IPV4, "127.0.0.1", 40000, AddressType.HOST, 2130706431, "1")
    return IceOffer(offer_id, "ufrag", "p" * 22, None, (host,))


@pytest.mark.asyncio
async def test_two_peers_attaching_each_other_at_once_both_get_200(
    server: RunningServer, pki: Pki
) -> None:
    """Each ATTACH waits for the other side's ATTACH_ACK; those acks must not
    queue behind our own outstanding ATTACH (that ends in 503 after 5 s)."""
    a = client_for(server, pki, "a")
    b = client_for(server, pki, "b")
    try:
        for client in (a, b):
            await client.connect()
            await client.join("s")
        started = time.monotonic()
        ra, rb = await asyncio.wait_for(
            asyncio.gather(a.attach("s", "b", _offer("a-1")), b.attach("s", "a", _offer("b-1"))),
            4.0,
        )
        assert (ra.status, rb.status) == (200, 200)
        assert time.monotonic() - started < 2.0
        assert a.indications.get_nowait().peer.peer_id == "b"
        assert b.indications.get_nowait().peer.peer_id == "a"
    finally:
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_a_resent_indication_is_acknowledged_again_but_queued_once(
    server: RunningServer, pki: Pki
) -> None:
    requester = client_for(server, pki, "requester")
    target = client_for(server, pki, "target")
    try:
        for client in (requester, target):
            await client.connect()
            await client.join("s")
        assoc = target._assoc
        assert assoc is not None
        original = assoc.send
        lost = [2]

        def lossy(data: bytes) -> None:
            if b"ATTACH_ACK" in data and lost[0]:
                lost[0] -= 1  # the first two acknowledgements are lost
                return
            original(data)

        assoc.send = lossy  # type: ignore[method-assign]
        # The tracker resends the indication (+0.5, +1.5 s) until acknowledged.
        response = await requester.attach("s", "target", _offer("r-1"))
        assert response.status == 200 and lost == [0]
        assert target.indications.qsize() == 1
    finally:
        await requester.close()
        await target.close()


@pytest.mark.asyncio
async def test_an_expired_registration_is_restored_on_the_next_request(pki: Pki) -> None:
    """``403 Not Connected``: re-CONNECT with the token, the tombstone restores
    the swarms, the request is retried (here after the track timer fired)."""
    # A keep-alive period far beyond the track timer: the client misses it.
    clock = ManualClock()
    config = TrackerConfig(lan_mode=True, keep_alive=600)
    server = await serve(pki, config, clock=clock)
    peer = client_for(server, pki, "sleeper")
    try:
        await peer.connect()
        await peer.join("x", PeerMode.SEED)
        clock.advance(config.track_timeout + 1)
        assert server.tracker.store.get_peer("sleeper") is None
        response = await peer.find("x")
        assert response.status == 200 and peer.reconnects == 1
        record = server.tracker.store.get_peer("sleeper")
        assert record is not None and record.swarm_ids == ("x",)
        # REGISTERED (no swarm) past the init timer: the same recovery.
        await peer.disconnect("x")
        clock.advance(config.init_timeout + 1)
        assert server.tracker.store.get_peer("sleeper") is None
        assert (await peer.join("y")).status == 200
        assert peer.reconnects == 2
    finally:
        await peer.close()
        await server.close()


@pytest.mark.asyncio
async def test_mutual_mode_client_reconnects_by_itself(pki: Pki) -> None:
    server = await serve(pki, mutual=True)
    peer = client_for(server, pki, "alice", cert=pki.peer("alice"))
    try:
        await peer.connect()
        assert peer.reconnect_token is None  # mutual mode issues none
        await peer.join("x")
        assoc = peer._assoc
        assert assoc is not None and assoc.transport is not None
        assoc.transport.close()  # the socket dies under the client
        assert (await peer.find("x")).status == 200
        assert peer.reconnects == 1
    finally:
        await peer.close()
        await server.close()


@pytest.mark.asyncio
async def test_tracker_given_by_name(server: RunningServer, pki: Pki) -> None:
    settings = client_settings(server, pki)
    settings = replace(settings, tracker=("localhost", server.address[1]), handshake_timeout=3.0)
    peer = TrackerClient(settings, "named")
    try:
        assert (await peer.connect()).status == 200
        assert peer.tracker_address == server.address
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_a_socket_that_cannot_be_opened_is_unreachable(
    server: RunningServer, pki: Pki
) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this host: bind() fails.
    settings = replace(client_settings(server, pki), local_host="192.0.2.1")
    peer = TrackerClient(settings, "nowhere")
    try:
        with pytest.raises(TrackerUnreachable):
            await peer.connect()
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_close_with_leave_does_not_reconnect_to_say_goodbye(
    server: RunningServer, pki: Pki
) -> None:
    peer = client_for(server, pki, "leaver")
    await peer.connect()
    await peer.join("x")
    assoc = peer._assoc
    assert assoc is not None and assoc.transport is not None
    assoc.transport.close()  # the association is gone
    await asyncio.wait_for(peer.close(leave=True), 2.0)
    assert peer.reconnects == 0
    assert len(server.endpoint.sessions) == 1  # no new session was opened
