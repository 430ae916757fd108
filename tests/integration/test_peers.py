"""Two Peers that know only the tracker and a swarm id connect through ATTACH
and exchange data over the encrypted channel (PROTOCOL §6, §7; issue 4)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from stunlike_tracker.core.config import TrackerConfig, TurnConfig
from stunlike_tracker.peer import peer as peer_module
from stunlike_tracker.peer.peer import Peer, PeerChannel
from stunlike_tracker.ppsp.messages import (
    IceOffer,
    Indication,
    Method,
    PeerInfo,
    PeerMode,
    Request,
    Response,
)
from stunlike_tracker.server.app import RunningServer
from tests.coturn import Coturn, running_coturn
from tests.integration.support import Pki, client_settings, serve


class Peers:
    def __init__(self, server: RunningServer, pki: Pki) -> None:
        self.server = server
        self.pki = pki
        self.peers: list[Peer] = []

    async def start(
        self, peer_id: str, swarm: str = "movie", mode: PeerMode = PeerMode.LEECH, **kw: object
    ) -> Peer:
        peer = Peer(
            client_settings(self.server, self.pki),
            peer_id,
            lan_mode=True,
            host_addresses=("127.0.0.1",),
            **kw,  # type: ignore[arg-type]
        )
        self.peers.append(peer)
        await peer.start()
        await peer.join(swarm, mode)
        return peer

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


@pytest_asyncio.fixture
async def peers(server: RunningServer, pki: Pki) -> AsyncIterator[Peers]:
    group = Peers(server, pki)
    yield group
    await group.close()


async def first_incoming(peer: Peer) -> PeerChannel:
    async for channel in peer.incoming():
        return channel
    raise AssertionError("no incoming channel")


async def exchange(a: PeerChannel, b: PeerChannel) -> None:
    await a.send(b"hello from " + a.peer_id.encode())
    assert await b.recv() == b"hello from " + a.peer_id.encode()
    await b.send(b"and back")
    assert await a.recv() == b"and back"


@pytest.mark.asyncio
async def test_offer_consumed_path(peers: Peers) -> None:
    seeder = await peers.start("seeder", mode=PeerMode.SEED)
    leecher = await peers.start("leecher")
    info = leecher.known["seeder"]
    assert info.offer is not None  # an offer of the seeder came with the JOIN
    started = time.monotonic()
    out, inc = await asyncio.gather(leecher.connect("seeder"), first_incoming(seeder))
    first_byte = time.monotonic()
    await exchange(out, inc)
    print(f"connect()->open {1000 * (first_byte - started):.0f} ms")
    assert inc.peer_id == "leecher" and out.peer_id == "seeder"
    assert out.channel.ice_role == "controlled" and inc.channel.ice_role == "controlling"


@pytest.mark.asyncio
async def test_reverse_attach_path(peers: Peers) -> None:
    seeder = await peers.start("seeder", mode=PeerMode.SEED, pool_size=1)
    leecher = await peers.start("leecher")
    # Use up the seeder's only offer elsewhere: the leecher must take the reverse path.
    leecher.known["seeder"] = replace(leecher.known["seeder"], offer=None)
    out, inc = await asyncio.gather(leecher.connect("seeder"), first_incoming(seeder))
    await exchange(out, inc)
    assert out.channel.ice_role == "controlling"  # we made the offer this time


@pytest.mark.asyncio
async def test_concurrent_third_peer_gets_its_own_offer(peers: Peers) -> None:
    seeder = await peers.start("seeder", mode=PeerMode.SEED, pool_size=2)
    one = await peers.start("one")
    two = await peers.start("two")
    offers = {one.known["seeder"].offer, two.known["seeder"].offer}
    assert None not in offers and len(offers) == 2
    incoming: list[PeerChannel] = []

    async def collect() -> None:
        async for channel in seeder.incoming():
            incoming.append(channel)
            if len(incoming) == 2:
                return

    a, b, _ = await asyncio.gather(one.connect("seeder"), two.connect("seeder"), collect())
    by_peer = {c.peer_id: c for c in incoming}
    await exchange(a, by_peer["one"])
    await exchange(b, by_peer["two"])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    if shutil.which("turnserver") is None:
        pytest.fail("coturn's turnserver is required (Debian package coturn)")
    with running_coturn(tmp_path) as relay:
        yield relay


@pytest.mark.asyncio
async def test_relay_only_through_coturn_with_tracker_credentials(pki: Pki, coturn: Coturn) -> None:
    turn = TurnConfig((coturn.uri,), (coturn.secret.encode(),), 600)
    server = await serve(pki, TrackerConfig(lan_mode=True, turn=turn))
    group = Peers(server, pki)
    try:
        seeder = await group.start("seeder", mode=PeerMode.SEED, relay_only=True)
        leecher = await group.start("leecher", relay_only=True)
        offer = leecher.known["seeder"].offer
        assert offer is not None and {c.type for c in offer.candidates} == {"RELAYED"}
        out, inc = await asyncio.gather(leecher.connect("seeder"), first_incoming(seeder))
        await exchange(out, inc)
        assert out.selected_pair_types() is not None
        assert "relay" in (out.selected_pair_types() or ())
    finally:
        await group.close()
        await server.close()
        # aioice deletes TURN allocations in fire-and-forget tasks: let them end
        # before the loop closes.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_a_replaced_offer_stays_answerable(peers: Peers) -> None:
    """The tracker hands an offer out for 120 s and the grant lasts 120 s more:
    an offer replaced in the pool (after 90 s) must still work."""
    clock = FakeClock()
    seeder = await peers.start("seeder", mode=PeerMode.SEED, pool_size=1, clock=clock)
    leecher = await peers.start("leecher", connect_timeout=5.0)
    offer = leecher.known["seeder"].offer
    assert offer is not None
    clock.now += peer_module.OFFER_REFRESH_AFTER + 1  # past the refresh, within the keep
    await seeder.refresh_offers()
    assert set(seeder._published) - {offer.id}, "the seeder's offer was replaced"
    assert seeder._published[offer.id].retired
    out, inc = await asyncio.gather(leecher.connect("seeder"), first_incoming(seeder))
    await exchange(out, inc)
    assert offer.id not in seeder._published  # answered through the kept offer


@pytest.mark.asyncio
async def test_an_answer_to_a_closed_offer_takes_the_reverse_path(peers: Peers) -> None:
    seeder = await peers.start("seeder", mode=PeerMode.SEED, pool_size=1)
    leecher = await peers.start("leecher", connect_timeout=5.0)
    offer = leecher.known["seeder"].offer
    assert offer is not None
    await seeder._discard(offer.id)  # as if closed long ago
    out, inc = await asyncio.gather(leecher.connect("seeder"), first_incoming(seeder))
    await exchange(out, inc)
    assert out.channel.ice_role == "controlled"  # we answered the seeder's fresh offer


@pytest.mark.asyncio
async def test_a_reconnect_publishes_the_pool_again(peers: Peers, server: RunningServer) -> None:
    seeder = await peers.start("seeder", mode=PeerMode.SEED, pool_size=2)
    store = server.tracker.store
    assert store.offer_count("seeder", time.monotonic()) == 2
    await seeder.client.reconnect()  # the tracker drops the unused offers
    await seeder._top_up()  # waits for the top-up the re-CONNECT started
    assert store.offer_count("seeder", time.monotonic()) == 2


@pytest.mark.asyncio
async def test_join_and_find_ask_for_the_default_peer_count(peers: Peers) -> None:
    await peers.start("seeder", mode=PeerMode.SEED)
    leecher = await peers.start("leecher")
    sent: list[Request] = []
    original = leecher.client.request

    async def spy(request: Request, *, reconnect: bool | None = None) -> Response:
        sent.append(request)
        return await original(request, reconnect=reconnect)

    leecher.client.request = spy  # type: ignore[method-assign]
    await leecher.join("other")
    await leecher.find()
    peer_nums = [(r.method, r.peer_num) for r in sent if r.method in (Method.JOIN, Method.FIND)]
    assert peer_nums == [(Method.JOIN, None), (Method.FIND, None)]


@pytest.mark.asyncio
async def test_concurrent_introductions_are_capped(
    server: RunningServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    peer = Peer(client_settings(server, pki), "busy", lan_mode=True, host_addresses=("127.0.0.1",))
    started: list[str] = []
    release = asyncio.Event()

    async def slow(indication: Indication) -> None:
        started.append(indication.transaction_id)
        await release.wait()
        return None

    peer._answer_reverse = slow  # type: ignore[method-assign]
    offer = IceOffer("o-1", "ufrag", "p" * 22)
    answered: asyncio.Future[Indication] = asyncio.get_running_loop().create_future()
    peer._awaiting_answer["mine"] = answered
    for i in range(10):
        peer.client.indications.put_nowait(Indication(f"i{i}", "s", PeerInfo(f"p{i}", offer=offer)))
    # Then the answer to an offer of ours: once it is through, so are the ten.
    peer.client.indications.put_nowait(Indication("a", "s", PeerInfo("q", offer=offer), "mine"))
    caplog.set_level(logging.INFO, logger="stunlike_tracker.peer.peer")
    peer._spawn(peer._indications())
    try:
        await asyncio.wait_for(answered, 2.0)
        assert len(started) == 8
        assert sum("dropped" in r.getMessage() for r in caplog.records) == 2
    finally:
        release.set()
        await peer.close(leave=False)


@pytest.mark.asyncio
async def test_incoming_ends_when_the_peer_closes(server: RunningServer, pki: Pki) -> None:
    peer = Peer(
        client_settings(server, pki), "lonely", lan_mode=True, host_addresses=("127.0.0.1",)
    )
    await peer.start()
    await peer.join("quiet", PeerMode.SEED)

    async def consume() -> int:
        return len([channel async for channel in peer.incoming()])

    consumer = asyncio.ensure_future(consume())
    await peer.close()
    assert await asyncio.wait_for(consumer, 5) == 0
