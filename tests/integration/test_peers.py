"""Two Peers that know only the tracker and a swarm id connect through ATTACH
and exchange data over the encrypted channel (SPEC §6, §7; issue 4)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aioice.ice
import pytest
import pytest_asyncio

from stunlike_tracker.core.config import TrackerConfig, TurnConfig
from stunlike_tracker.peer.peer import Peer, PeerChannel
from stunlike_tracker.ppsp.messages import PeerMode
from stunlike_tracker.server.app import RunningServer
from tests.coturn import Coturn, running_coturn
from tests.integration.support import Pki, client_settings, serve


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # aioice skips 127.0.0.1 when it lists host addresses (FIELD-NOTES).
    monkeypatch.setattr(
        aioice.ice,
        "get_host_addresses",
        lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else [],
    )


class Peers:
    def __init__(self, server: RunningServer, pki: Pki) -> None:
        self.server = server
        self.pki = pki
        self.peers: list[Peer] = []

    async def start(
        self, peer_id: str, swarm: str = "movie", mode: PeerMode = PeerMode.LEECH, **kw: object
    ) -> Peer:
        peer = Peer(client_settings(self.server, self.pki), peer_id, lan_mode=True, **kw)  # type: ignore[arg-type]
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
