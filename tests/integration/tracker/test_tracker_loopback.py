"""A real tracker and real clients over DTLS on loopback (PROTOCOL §3, §4, §8)."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp.messages import AddressType, PeerMode
from stunlike_tracker.server.app import RunningServer
from tests.integration.support import Pki, client_for, serve


@pytest.mark.asyncio
async def test_every_request_over_dtls(server: RunningServer, pki: Pki) -> None:
    seed = client_for(server, pki, "seed-1")
    leech = client_for(server, pki, "leech-1")
    try:
        r = await seed.connect()
        assert r.status == 200 and r.keep_alive == 25 and r.reconnect_token
        reflexive = r.peers[0].addresses[0]
        assert reflexive.type is AddressType.REFLEXIVE
        assert (reflexive.ip, reflexive.port) == seed.local_address
        await seed.join("swarm", PeerMode.SEED)
        await leech.connect()
        r = await leech.join("swarm")
        assert [p.peer_id for p in r.peers] == ["seed-1"]
        r = await leech.find("swarm")
        assert [p.peer_id for p in r.peers] == ["seed-1"]
        assert (await leech.stat_report()).status == 200
        assert (await leech.disconnect("swarm")).status == 200
        assert (await seed.disconnect("nil")).status == 200
        assert server.tracker.store.get_peer("seed-1") is None
    finally:
        await seed.close()
        await leech.close()


@pytest.mark.asyncio
async def test_reconnect_after_socket_change_restores_swarms(
    server: RunningServer, pki: Pki
) -> None:
    peer = client_for(server, pki, "mover")
    try:
        await peer.connect()
        await peer.join("a")
        await peer.join("b", PeerMode.SEED)
        before = peer.local_address
        r = await peer.reconnect()  # new socket, new DTLS session, new NAT mapping
        assert peer.local_address != before
        assert sorted(r.swarm_ids) == ["a", "b"]
        record = server.tracker.store.get_peer("mover")
        assert record is not None and record.reflexive.port == peer.local_address[1]  # type: ignore[index]
        assert (await peer.find("a")).status == 200
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_wrong_state_requests_get_403(server: RunningServer, pki: Pki) -> None:
    peer = client_for(server, pki, "p")
    try:
        await peer.connect()
        from stunlike_tracker.peer.client import TrackerError

        with pytest.raises(TrackerError) as info:
            await peer.find("nowhere")
        assert info.value.status == 403
        with pytest.raises(TrackerError) as info:
            await peer.stat_report()
        assert info.value.status == 403
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_mutual_mode_names_the_peer(pki: Pki) -> None:
    running = await serve(pki, mutual=True)
    good = client_for(running, pki, "alice", cert=pki.peer("alice"))
    liar = client_for(running, pki, "bob", cert=pki.peer("alice"))
    try:
        r = await good.connect()
        assert r.status == 200 and r.reconnect_token is None
        from stunlike_tracker.peer.client import TrackerError

        with pytest.raises(TrackerError) as info:
            await liar.connect()
        assert info.value.status == 401
    finally:
        await good.close()
        await liar.close()
        await running.close()


@pytest.mark.asyncio
async def test_full_budget_responses_fit_one_datagram_each(server: RunningServer, pki: Pki) -> None:
    """PROTOCOL §4: a 1200-byte XML response must not need IP fragmentation."""
    from stunlike_tracker.ppsp.messages import PeerNum

    seeds = [
        client_for(server, pki, f"seed-with-a-rather-long-peer-identifier-{i:02d}")
        for i in range(30)
    ]
    leech = client_for(server, pki, "leech")
    sizes: list[int] = []
    try:
        for seed in seeds:
            await seed.connect()
            await seed.join("big", PeerMode.SEED)
        await leech.connect()
        await leech.join("big", peer_num=PeerNum(0))
        assoc = leech._assoc
        assert assoc is not None and assoc.transport is not None
        original = assoc.datagram_received

        def spy(data: bytes, addr: tuple[str, int]) -> None:
            sizes.append(len(data))
            original(data, addr)

        assoc.datagram_received = spy  # type: ignore[method-assign]
        r = await leech.find("big", peer_num=PeerNum(30))
        assert len(r.peers) == 30
        assert sizes and max(sizes) <= 1240
        # ... and the server's DTLS session carries a full budget in one record
        (entry,) = [
            e for e in server.endpoint.sessions.by_id.values() if e.address == leech.local_address
        ]
        assert entry.dtls.max_message_size >= server.tracker.config.datagram_budget
    finally:
        for seed in seeds:
            await seed.close()
        await leech.close()


@pytest.mark.asyncio
async def test_lost_association_reconnects_by_itself(server: RunningServer, pki: Pki) -> None:
    """The NAT mapping or the socket is gone: the next request re-CONNECTs
    from a new socket and the swarms come back (PROTOCOL §3 re-CONNECT)."""
    peer = client_for(server, pki, "roamer")
    try:
        await peer.connect()
        await peer.join("x", PeerMode.SEED)
        before = peer.local_address
        assoc = peer._assoc
        assert assoc is not None and assoc.transport is not None
        assoc.transport.close()  # the socket dies under the client
        r = await peer.find("x")
        assert r.status == 200
        assert peer.reconnects == 1 and peer.local_address != before
        record = server.tracker.store.get_peer("roamer")
        assert record is not None and record.swarm_ids == ("x",)
    finally:
        await peer.close()


@pytest.mark.asyncio
async def test_reconnect_to_a_restarted_tracker_rejoins_swarms(pki: Pki) -> None:
    """A tracker that lost its memory: the client re-JOINs what it was in."""
    from tests.integration.support import client_settings

    first = await serve(pki)
    peer = client_for(first, pki, "survivor")
    try:
        await peer.connect()
        await peer.join("a")
        await peer.join("b", PeerMode.SEED)
        await first.close()
        second = await serve(pki)
        try:
            peer.settings = client_settings(second, pki)
            r = await peer.reconnect()
            assert r.swarm_ids == ()  # the new tracker knew nothing ...
            record = second.tracker.store.get_peer("survivor")
            assert record is not None  # ... and the client joined again
            assert {m.swarm_id: m.mode for m in record.memberships} == {
                "a": PeerMode.LEECH,
                "b": PeerMode.SEED,
            }
        finally:
            await peer.close()
            await second.close()
    finally:
        await peer.close()
