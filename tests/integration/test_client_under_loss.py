"""Clients through a lossy, reordering UDP relay to a real tracker (issue 11
item 5): DTLS handshakes retransmit their flights (RFC 6347 §4.2.4), requests
their byte-identical datagrams (PROTOCOL §4), and each request completes once."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace

import pytest

from stunlike_tracker.peer.client import TrackerClient, TrackerError
from stunlike_tracker.ppsp.messages import PeerMode
from tests.integration.support import Pki, client_settings, serve

Address = tuple[str, int]


class LossyRelay:
    """Forwards datagrams between clients and a tracker, dropping ``loss`` of
    them each way and delaying each by a random 0-``jitter`` s (reordering).
    Each client gets its own upstream socket, so the tracker sees distinct
    sources, as behind distinct NAT mappings."""

    def __init__(self, tracker: Address, loss: float, jitter: float, seed: int) -> None:
        self.tracker = tracker
        self.loss = loss
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.front: asyncio.DatagramTransport | None = None
        self.upstreams: dict[Address, asyncio.DatagramTransport] = {}
        self.forwarded = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    async def start(self) -> Address:
        loop = asyncio.get_running_loop()
        relay = self

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                task = loop.create_task(relay._from_client(data, (addr[0], addr[1])))
                relay.tasks.add(task)
                task.add_done_callback(relay.tasks.discard)

        transport, _ = await loop.create_datagram_endpoint(Front, local_addr=("127.0.0.1", 0))
        self.front = transport
        name = transport.get_extra_info("sockname")
        return (name[0], name[1])

    def _later(self, send: asyncio.DatagramTransport, data: bytes, to: Address | None) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        delay = self.rng.random() * self.jitter
        asyncio.get_running_loop().call_later(delay, send.sendto, data, to)

    async def _from_client(self, data: bytes, client: Address) -> None:
        upstream = self.upstreams.get(client)
        if upstream is None:
            loop = asyncio.get_running_loop()
            relay = self

            class Back(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    assert relay.front is not None
                    relay._later(relay.front, data, client)

            upstream, _ = await loop.create_datagram_endpoint(
                Back, local_addr=("127.0.0.1", 0), remote_addr=self.tracker
            )
            if client in self.upstreams:  # created meanwhile
                upstream.close()
                upstream = self.upstreams[client]
            self.upstreams[client] = upstream
        self._later(upstream, data, None)

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()
        if self.front is not None:
            self.front.close()


@pytest.mark.asyncio
async def test_twenty_clients_through_thirty_percent_loss(pki: Pki) -> None:
    server = await serve(pki)
    relay = LossyRelay(server.address, loss=0.3, jitter=0.05, seed=20025)
    address = await relay.start()
    settings = replace(client_settings(server, pki), tracker=address)
    clients = [TrackerClient(settings, f"lossy-{n:02d}") for n in range(20)]
    outcomes: dict[str, list[int]] = {}

    async def run(client: TrackerClient) -> None:
        statuses = outcomes.setdefault(client.peer_id, [])
        try:
            statuses.append((await client.connect()).status)
            statuses.append((await client.join("s", PeerMode.SEED)).status)
            statuses.append((await client.find("s")).status)
            statuses.append((await client.stat_report()).status)
        except TrackerError as error:
            statuses.append(error.status or 0)
            print(client.peer_id, error)

    started = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(run(c) for c in clients)), 240)
        elapsed = time.monotonic() - started
        connected = [p for p, s in outcomes.items() if s and s[0] == 200]
        complete = [p for p, s in outcomes.items() if s == [200, 200, 200, 200]]
        reconnects = sum(c.reconnects for c in clients)
        print(
            f"30% loss: {len(connected)}/20 connected, {len(complete)}/20 all 4 requests,"
            f" {reconnects} re-CONNECTs, {elapsed:.1f} s;"
            f" relay forwarded {relay.forwarded}, dropped {relay.dropped}"
        )
        assert len(connected) >= 19
        # Every request of a connected client completed, each exactly once:
        # one membership per peer, and no request needed a new association
        # (which would retry it under a fresh TransactionID).
        assert sorted(complete) == sorted(connected)
        assert reconnects == 0
        store = server.tracker.store
        for peer_id in connected:
            record = store.get_peer(peer_id)
            assert record is not None and record.swarm_ids == ("s",)
        assert store.member_count("s") == len(connected)
    finally:
        for client in clients:
            await client.close()
        relay.close()
        await server.close()


class AnswerEater(LossyRelay):
    """No random loss: drops the first ``count`` application-data records
    toward the client (the answers), handshake records pass."""

    def __init__(self, tracker: Address, count: int) -> None:
        super().__init__(tracker, loss=0.0, jitter=0.0, seed=0)
        self.count = count

    def _later(self, send: asyncio.DatagramTransport, data: bytes, to: Address | None) -> None:
        if to is not None and data[:1] == b"\x17" and self.count > 0:
            self.count -= 1
            self.dropped += 1
            return
        super()._later(send, data, to)


@pytest.mark.asyncio
async def test_lost_connect_answers_are_retried_on_the_same_association(pki: Pki) -> None:
    """Issue 11 item 6: every answer of the first round of 5 tries is lost.
    The byte-identical CONNECT goes out again on the same association, the
    tracker's response cache answers it, and no new association (which the
    tracker would refuse for want of the token) is opened."""
    server = await serve(pki)
    relay = AnswerEater(server.address, count=5)
    address = await relay.start()
    client = TrackerClient(replace(client_settings(server, pki), tracker=address), "unlucky")
    try:
        response = await asyncio.wait_for(client.connect(), 30)
        assert response.status == 200 and response.reconnect_token is not None
        assert relay.dropped == 5
        assert len(relay.upstreams) == 1  # one socket, one association
        assert server.endpoint.counters["dtls-sessions-created"] == 1
        assert (await client.join("s")).status == 200
    finally:
        await client.close()
        relay.close()
        await server.close()
