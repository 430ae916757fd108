"""A peer: tracker client + ICE offers + peer-to-peer channels (PROTOCOL §6, §7).

The peer keeps a small pool of published offers at the tracker (one in its
JOIN, the rest in STAT_REPORTs). An offer is replaced after 90 s, before the
tracker's 120 s offer lifetime runs out, but its ICE agent stays open until
240 s after publication: the tracker may hand it out until 120 s, and the
requester may answer it for 120 s more (the grant). After a re-CONNECT the
tracker has dropped our unused offers, so the pool is published again.

Two ways to a channel, as PROTOCOL §6 describes:

* ``connect(B)`` with one of B's offers (handed to us in a JOIN/FIND peer
  list): answer it, ATTACH the answer with the OfferID; B accepts it. B made
  the offer, so B is ICE-controlling.
* ``connect(B)`` without an offer: ATTACH our own fresh offer; B answers it
  with an ATTACH of its own that names our offer id; we accept. We are
  controlling.

Channels that other peers open toward us come out of ``incoming()``; at
most 8 introductions are worked on at once, more are dropped. An answer that
names an offer we no longer hold is not dropped: we take the reverse path
toward its sender (and its ``connect()`` takes the channel that results).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from stunlike_tracker.peer.channel import (
    ChannelError,
    IceServers,
    P2PChannel,
    PendingAnswer,
    PendingOffer,
    answer_offer,
    create_offer,
)
from stunlike_tracker.peer.client import ClientSettings, TrackerClient, TrackerError
from stunlike_tracker.ppsp.messages import Indication, PeerInfo, PeerMode, Response, Status

log = logging.getLogger(__name__)

# The tracker drops unused offers after 120 s (docs/PROTOCOL.md); replace ours
# well before that ...
OFFER_REFRESH_AFTER = 90.0
# ... but keep each open until the tracker's offer lifetime plus the grant's
# (120 s + 120 s): until then a requester may still answer it.
OFFER_KEEP_FOR = 240.0
# Introductions (ICE agent + task each) worked on at once; more are dropped.
MAX_INTRODUCTIONS = 8
# Our reverse-path offer ids remembered after we stopped waiting for an answer.
_SPENT_REVERSE = 256


class PeerError(Exception):
    """connect() could not produce a channel."""


@dataclass
class PeerChannel:
    """An open channel to ``peer_id`` (see ``P2PChannel``)."""

    peer_id: str
    channel: P2PChannel
    connect_ms: float | None = None

    async def send(self, data: bytes) -> None:
        await self.channel.send(data)

    async def recv(self) -> bytes:
        return await self.channel.recv()

    async def close(self) -> None:
        await self.channel.close()

    def selected_pair_types(self) -> tuple[str, str] | None:
        return self.channel.selected_pair_types()


@dataclass
class _Published:
    pending: PendingOffer
    created: float
    # No longer counted in the pool (replaced, or dropped by the tracker on a
    # re-CONNECT), but still answerable until OFFER_KEEP_FOR.
    retired: bool = False


class Peer:
    def __init__(
        self,
        settings: ClientSettings,
        peer_id: str | None = None,
        *,
        lan_mode: bool = False,
        relay_only: bool = False,
        host_addresses: tuple[str, ...] | None = None,
        pool_size: int = 2,
        connect_timeout: float = 15.0,
        offer_refresh_after: float = OFFER_REFRESH_AFTER,
        offer_keep_for: float = OFFER_KEEP_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.peer_id = peer_id or f"peer-{secrets.token_hex(6)}"
        self._clock = clock
        self.client = TrackerClient(settings, self.peer_id, clock=clock)
        self.offer_refresh_after = offer_refresh_after
        self.offer_keep_for = offer_keep_for
        self.lan_mode = lan_mode
        self.relay_only = relay_only
        self.host_addresses = host_addresses
        self.pool_size = max(1, pool_size)
        self.connect_timeout = connect_timeout
        self.swarm: str | None = None
        self.mode: PeerMode | None = None
        self.known: dict[str, PeerInfo] = {}
        self._servers: IceServers | None = None
        self._published: dict[str, _Published] = {}
        self._awaiting_answer: dict[str, asyncio.Future[Indication]] = {}
        self._spent: OrderedDict[str, None] = OrderedDict()
        # connect() with B's offer also takes a channel B opens by the reverse path.
        self._dialing: dict[str, asyncio.Future[P2PChannel]] = {}
        self._introductions = asyncio.Semaphore(MAX_INTRODUCTIONS)
        # None is the end-of-stream mark that close() puts in.
        self._incoming: asyncio.Queue[PeerChannel | None] = asyncio.Queue()
        self._channels: list[P2PChannel] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool_lock = asyncio.Lock()
        self._closed = False

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------
    @property
    def servers(self) -> IceServers:
        if self._servers is None:
            raise PeerError("start() the peer first")
        return self._servers

    async def start(self) -> Response:
        self.client.on_reconnect = self._on_reconnect
        response = await self.client.connect()
        host, port = self.client.tracker_address or self.client.settings.tracker
        turn = response.turn_servers[0] if response.turn_servers else None
        if self.relay_only and turn is None:
            raise PeerError("relay-only needs TURN credentials, and the tracker gave none")
        self._servers = IceServers(
            stun=(host, port),
            turn=turn,
            relay_only=self.relay_only,
            lan_mode=self.lan_mode,
            host_addresses=self.host_addresses,
        )
        self._spawn(self._indications())
        self._spawn(self._refresh_offers())
        return response

    async def close(self, *, leave: bool = True) -> None:
        self._closed = True
        self._incoming.put_nowait(None)  # ends every incoming() loop
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for published in self._published.values():
            await published.pending.close()
        self._published.clear()
        for channel in self._channels:
            with contextlib.suppress(ChannelError):
                await channel.close(linger=0)
        self._channels.clear()
        await self.client.close(leave=leave)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------
    # swarm
    # ------------------------------------------------------------------
    async def join(self, swarm_id: str, mode: PeerMode = PeerMode.LEECH) -> Response:
        first = await self._new_offer()
        try:
            response = await self.client.join(swarm_id, mode, ice_offer=first.pending.offer)
        except BaseException:
            await self._discard(first.pending.offer.id)
            raise
        self.swarm, self.mode = swarm_id, mode
        self._remember(response)
        await self._top_up()
        return response

    async def find(self, swarm_id: str | None = None) -> Response:
        swarm = swarm_id or self.swarm
        if swarm is None:
            raise PeerError("join a swarm first")
        # The default PeerNum (10): each listed peer's offer is handed to us alone.
        response = await self.client.find(swarm)
        self._remember(response)
        return response

    def _remember(self, response: Response) -> None:
        for info in response.peers:
            peer_id = info.peer_id
            if peer_id is None:
                continue
            previous = self.known.get(peer_id)
            # Keep an offer we hold until it is used, even if this list has none.
            if info.offer is None and previous is not None and previous.offer is not None:
                info = replace(info, offer=previous.offer)
            self.known[peer_id] = info

    # ------------------------------------------------------------------
    # offers
    # ------------------------------------------------------------------
    def _offer_id(self) -> str:
        return f"{self.peer_id[:40]}-{secrets.token_hex(6)}"

    async def _new_offer(self) -> _Published:
        pending = await create_offer(self._offer_id(), self.servers)
        published = _Published(pending, self._clock())
        self._published[pending.offer.id] = published
        return published

    async def _discard(self, offer_id: str) -> None:
        published = self._published.pop(offer_id, None)
        if published is not None:
            await published.pending.close()

    def _pool(self) -> int:
        return sum(not p.retired for p in self._published.values())

    async def _top_up(self) -> None:
        """Publish offers (one per STAT_REPORT) until the pool is full."""
        if self.swarm is None:
            return
        async with self._pool_lock:
            while self._pool() < self.pool_size and not self._closed:
                published = await self._new_offer()
                try:
                    await self.client.stat_report(ice_offer=published.pending.offer)
                except TrackerError:
                    await self._discard(published.pending.offer.id)
                    return
                # Lifetimes count from when the tracker has it, not from gathering.
                published.created = self._clock()

    async def _refresh_offers(self) -> None:
        # A short tick, so offers retire close to offer_refresh_after and the
        # pool is topped up before the tracker's 120 s lifetime runs out.
        while not self._closed:
            await asyncio.sleep(self.offer_refresh_after / 9)
            await self.refresh_offers()

    async def refresh_offers(self) -> None:
        """Retire offers older than ``offer_refresh_after``, close those older
        than ``offer_keep_for``, and top the pool up (the background tick
        calls this; so may a test that moved its clock)."""
        now = self._clock()
        for offer_id, published in list(self._published.items()):
            if now - published.created > self.offer_keep_for:
                await self._discard(offer_id)
            elif now - published.created > self.offer_refresh_after:
                published.retired = True
        with contextlib.suppress(TrackerError, ChannelError):
            await self._top_up()

    def _on_reconnect(self, response: Response) -> None:
        """The tracker dropped our unused offers: publish a fresh pool. After
        a failover the new tracker is also our STUN server (PROTOCOL §5)."""
        address = self.client.tracker_address
        if self._servers is not None and address is not None:
            turn = response.turn_servers[0] if response.turn_servers else self._servers.turn
            self._servers = replace(self._servers, stun=address, turn=turn)
        for published in self._published.values():
            published.retired = True
        self._spawn(self._top_up_quietly())

    async def _top_up_quietly(self) -> None:
        with contextlib.suppress(TrackerError, ChannelError):
            await self._top_up()

    # ------------------------------------------------------------------
    # channels
    # ------------------------------------------------------------------
    async def incoming(self) -> AsyncIterator[PeerChannel]:
        """Channels other peers open toward us, until close()."""
        while True:
            channel = await self._incoming.get()
            if channel is None:
                self._incoming.put_nowait(None)  # for any other consumer
                return
            yield channel

    def _keep(self, channel: P2PChannel) -> None:
        """Remember open channels so close() can close them."""
        self._channels = [c for c in self._channels if not c.closed]
        self._channels.append(channel)

    async def connect(self, peer_id: str) -> PeerChannel:
        """Open a channel to ``peer_id`` (a peer of our swarm) through the tracker."""
        swarm = self.swarm
        if swarm is None:
            raise PeerError("join a swarm first")
        started = self._clock()
        info = self.known.get(peer_id)
        if info is None:
            await self.find(swarm)
            info = self.known.get(peer_id)
        if info is None:
            raise PeerError(f"{peer_id} is not in swarm {swarm}")
        offer = info.offer
        self.known[peer_id] = replace(info, offer=None)  # an offer is answered once
        channel: P2PChannel | None = None
        if offer is not None:
            try:
                answer, pending = await answer_offer(
                    offer, self._offer_id(), self.servers, connect_timeout=self.connect_timeout
                )
            except ChannelError as error:  # an unusable offer, or gathering failed
                raise PeerError(f"cannot answer {peer_id}'s offer: {error}") from None
            # If B no longer holds that offer, B answers by the reverse path.
            reverse: asyncio.Future[P2PChannel] = asyncio.get_running_loop().create_future()
            self._dialing[peer_id] = reverse
            try:
                await self.client.attach(swarm, peer_id, answer, offer_id=offer.id)
                channel = await _first_channel(pending, reverse)
            except TrackerError as error:
                await pending.close()
                if error.status != Status.NOT_FOUND:
                    raise PeerError(f"ATTACH to {peer_id} failed: {error}") from None
                # The offer was stale: fall through to the reverse path.
            except ChannelError as error:
                await pending.close()
                raise PeerError(f"no channel to {peer_id}: {error}") from None
            except BaseException:  # cancelled: release the ICE agent
                await pending.close()
                raise
            finally:
                if self._dialing.get(peer_id) is reverse:
                    del self._dialing[peer_id]
        if channel is None:
            channel = await self._connect_reverse(swarm, peer_id)
        elapsed = (self._clock() - started) * 1000
        self._keep(channel)
        return PeerChannel(peer_id, channel, elapsed)

    async def _connect_reverse(self, swarm: str, peer_id: str) -> P2PChannel:
        try:
            pending = await create_offer(self._offer_id(), self.servers)
        except ChannelError as error:  # gathering failed (no relay in relay-only, ...)
            raise PeerError(f"no offer for {peer_id}: {error}") from None
        offer_id = pending.offer.id
        answered: asyncio.Future[Indication] = asyncio.get_running_loop().create_future()
        self._awaiting_answer[offer_id] = answered
        try:
            await self.client.attach(swarm, peer_id, pending.offer)
            indication = await asyncio.wait_for(answered, self.connect_timeout)
            assert indication.peer.offer is not None
            return await pending.accept_answer(
                indication.peer.offer, connect_timeout=self.connect_timeout
            )
        except (TrackerError, ChannelError, TimeoutError) as error:
            await pending.close()
            raise PeerError(
                f"no channel to {peer_id}: {str(error) or type(error).__name__}"
            ) from None
        except BaseException:  # cancelled: release the ICE agent
            await pending.close()
            raise
        finally:
            self._awaiting_answer.pop(offer_id, None)
            self._spent[offer_id] = None  # a late answer to it is dropped
            if len(self._spent) > _SPENT_REVERSE:
                self._spent.popitem(last=False)

    async def _indications(self) -> None:
        while not self._closed:
            indication = await self.client.indications.get()
            offer_id = indication.offer_id
            if offer_id is not None and offer_id in self._awaiting_answer:
                future = self._awaiting_answer[offer_id]
                if not future.done() and indication.peer.offer is not None:
                    future.set_result(indication)  # the answer to our reverse offer
                continue
            if self._introductions.locked():
                log.info(
                    "%d introductions in progress: dropped one from %s",
                    MAX_INTRODUCTIONS,
                    indication.peer.peer_id,
                )
                continue
            await self._introductions.acquire()
            self._spawn(self._introduce(indication))

    async def _introduce(self, indication: Indication) -> None:
        try:
            await self._on_indication(indication)
        finally:
            self._introductions.release()

    async def _on_indication(self, indication: Indication) -> None:
        remote = indication.peer
        if remote.peer_id is None or remote.offer is None:
            return
        offer_id = indication.offer_id
        try:
            if offer_id is None:
                channel = await self._answer_reverse(indication)
            elif offer_id in self._published:
                channel = await self._accept(offer_id, indication)
            elif offer_id in self._spent:
                log.info("late answer from %s to our offer %s", remote.peer_id, offer_id)
                return
            else:
                # An answer to an offer we closed: offer ourselves by the reverse path.
                channel = await self._connect_reverse(indication.swarm_id, remote.peer_id)
        except (ChannelError, TrackerError, PeerError) as error:
            log.info("introduction from %s failed: %s", remote.peer_id, error)
            return
        if channel is None:
            return
        self._keep(channel)
        dialing = self._dialing.get(remote.peer_id)
        if offer_id is None and dialing is not None and not dialing.done():
            dialing.set_result(channel)  # our connect() to this peer takes it
        else:
            await self._incoming.put(PeerChannel(remote.peer_id, channel))

    async def _accept(self, offer_id: str, indication: Indication) -> P2PChannel | None:
        """Someone answered one of our published offers."""
        published = self._published.pop(offer_id, None)
        if published is None or indication.peer.offer is None:
            return None
        self._spawn(self._top_up_quietly())
        try:
            return await published.pending.accept_answer(
                indication.peer.offer, connect_timeout=self.connect_timeout
            )
        except BaseException:  # an unusable answer must not leak the agent
            await published.pending.close()
            raise

    async def _answer_reverse(self, indication: Indication) -> P2PChannel | None:
        """Someone sent us their own offer: answer it with an ATTACH of ours."""
        remote = indication.peer
        if remote.offer is None or remote.peer_id is None:
            return None
        answer, pending = await answer_offer(
            remote.offer, self._offer_id(), self.servers, connect_timeout=self.connect_timeout
        )
        try:
            await self.client.attach(
                indication.swarm_id, remote.peer_id, answer, offer_id=remote.offer.id
            )
            return await pending
        except BaseException:
            await pending.close()
            raise


async def _first_channel(pending: PendingAnswer, reverse: asyncio.Future[P2PChannel]) -> P2PChannel:
    """The channel our answer opens, or else the one the other side opens by
    the reverse path, whichever comes first (the other attempt is closed)."""

    async def answered() -> P2PChannel:
        return await pending

    waiter = asyncio.ensure_future(answered())
    try:
        await asyncio.wait({waiter, reverse}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done():
            waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError, ChannelError):
        await waiter
    if not waiter.cancelled() and waiter.exception() is None:
        if reverse.done():  # both opened at once: keep ours
            with contextlib.suppress(ChannelError):
                await reverse.result().close(linger=0)
        return waiter.result()
    if reverse.done():
        await pending.close()
        return reverse.result()
    return waiter.result()  # raises our attempt's ChannelError
