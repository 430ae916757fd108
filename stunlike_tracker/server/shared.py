"""Serving PPSP requests over a shared store: many nodes, one tracker (PROTOCOL §9).

With the embedded memory store the endpoint calls the core directly. With a
shared store every request goes through ``SharedStoreDriver``:

    plan (from the parsed request) -> await store.load (round trip 1)
    -> the core, synchronously, on the returned overlay
    -> await store.commit (round trip 2) -> effects are sent

Requests of one DTLS association run one after another, in arrival order.
When the store does not answer, the request gets 503 (never a guess, never
a hang) and the node logs the outage once, and its recovery once. Effects
for sessions on other nodes (an ATTACH indication toward a peer whose
association lives elsewhere, a relayed ATTACH_ACK) travel over ``NodeBus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis

from stunlike_tracker.core.effects import AckRelayed, Effect, RequestDropped, Session, Transmit
from stunlike_tracker.core.selection import _OVERSAMPLE, chunk_ranges_of
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import PpspError, encode_response, parse_request_untrusted
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request, Response, Status
from stunlike_tracker.store.contract import SharedStore
from stunlike_tracker.store.overlay import Loaded, LoadPlan, Overlay
from stunlike_tracker.store.redis import StoreUnavailable

log = logging.getLogger(__name__)

# A conflict (the record changed between load and commit) is retried this often.
_ATTEMPTS = 3


def plan_for(request: Request, tracker: Tracker, owned: bool) -> LoadPlan:
    """What the core may read for ``request`` (mirrors ``select_peers``)."""
    config = tracker.config
    sample = 0
    method = request.method
    lists_peers = method is Method.FIND or (
        method is Method.JOIN
        and (
            (request.peer_mode or PeerMode.LEECH) is PeerMode.LEECH or request.peer_num is not None
        )
    )
    if lists_peers:
        count = request.peer_num.count if request.peer_num else None
        want = max(0, min(config.default_peer_num if count is None else count, config.max_peer_num))
        ranked = bool(chunk_ranges_of(request.content)) or (
            request.peer_num is not None and request.peer_num.ability_nat is not None
        )
        sample = (want * _OVERSAMPLE if ranked else want) + 1 if want else 0
    attach = method is Method.ATTACH
    return LoadPlan(
        peer_id=request.peer_id,
        transaction_id=request.transaction_id,
        method=method,
        swarm_id=request.swarm_id if (lists_peers or attach) else None,
        sample=sample,
        take_offers=owned,
        target_id=request.target_peer_id if attach else None,
        offer_id=request.offer_id if attach else None,
        indication_id=request.indication_id if method is Method.ATTACH_ACK else None,
    )


def idle_overlay(now: float, loaded: Loaded | None = None) -> Overlay:
    """An overlay for work that is no request (timers, relayed acks)."""
    return Overlay(LoadPlan("", "", Method.CONNECT), loaded or Loaded(), now)


def pubsub_client(url: str) -> Redis:
    """A plain connection for the node bus. On Redis Cluster, PUBLISH reaches
    subscribers on every cluster node, so the seed node serves."""
    parts = urlsplit(url)
    if parts.scheme.endswith("+cluster"):
        scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
        url = urlunsplit((scheme, parts.netloc, "", "", ""))
    return Redis.from_url(url, decode_responses=True, socket_connect_timeout=2.0)


class NodeBus:
    """Redis pub/sub between the nodes of one tracker: each node listens on
    its own channel for datagrams to send over its sessions and for relayed
    ATTACH_ACKs."""

    def __init__(self, client: Redis, node_id: str, prefix: str = "stunlike:node:") -> None:
        self.client = client
        self.node_id = node_id
        self.prefix = prefix
        self.handler: Callable[[dict[str, Any]], None] = lambda _m: None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.counters: Counter[str] = Counter()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await self.ready.wait()

    async def _listen(self) -> None:
        down = False
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.prefix + self.node_id)
                    if down:
                        log.warning("node bus: reconnected to Redis")
                        down = False
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self.handler(json.loads(message["data"]))
                        except Exception:
                            self.counters["bus-bad-message"] += 1
                            log.exception("node bus: message not handled")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.ready.set()
                if not down:
                    log.warning("node bus: Redis unreachable (%s); retrying", error)
                    down = True
                await asyncio.sleep(0.5)

    def publish(self, node_id: str, message: dict[str, Any]) -> None:
        async def send() -> None:
            try:
                await self.client.publish(self.prefix + node_id, json.dumps(message))
            except Exception:
                self.counters["bus-publish-failed"] += 1

        task = asyncio.create_task(send())
        _keep(task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()


_background: set[asyncio.Task[Any]] = set()


def _keep(task: asyncio.Task[Any]) -> None:
    _background.add(task)
    task.add_done_callback(_background.discard)


class SharedStoreDriver:
    def __init__(
        self,
        tracker: Tracker,
        store: SharedStore,
        apply: Callable[[list[Effect]], None],
        clock: Callable[[], float],
        bus: NodeBus | None = None,
        sweep_interval: float = 0.5,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.apply = apply
        self.clock = clock
        self.bus = bus
        self.sweep_interval = sweep_interval
        self.node_id = tracker.config.node_id
        self.counters: Counter[str] = Counter()
        # Sessions that CONNECTed here, and as whom (guards taking offers).
        self.owners: dict[str, str] = {}
        self._tails: dict[str, asyncio.Future[None]] = {}
        self._timer_task: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self.store_down = False
        if bus is not None:
            bus.handler = self._on_bus

    # ------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------
    def submit(self, data: bytes, session: Session) -> None:
        """Serve one decrypted request; one association's requests in order."""
        previous = self._tails.get(session.session_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[session.session_id] = done
        task = asyncio.create_task(self._serve_after(previous, data, session, done))
        _keep(task)

    async def _serve_after(
        self,
        previous: asyncio.Future[None] | None,
        data: bytes,
        session: Session,
        done: asyncio.Future[None],
    ) -> None:
        try:
            if previous is not None:
                await previous
            effects = await self.serve(data, session)
            self.apply(effects)
        except Exception:
            self.counters["shared-serve-error"] += 1
            log.exception("request failed")
        finally:
            done.set_result(None)
            if self._tails.get(session.session_id) is done:
                del self._tails[session.session_id]

    async def serve(self, data: bytes, session: Session) -> list[Effect]:
        tracker = self.tracker
        now = self.clock()
        try:
            request = parse_request_untrusted(data, max_size=tracker.config.max_request_size)
        except PpspError:
            return tracker.handle_datagram(data, session, now)  # answered without the store
        owned = self.owners.get(session.session_id) == request.peer_id
        plan = plan_for(request, tracker, owned)
        try:
            for _attempt in range(_ATTEMPTS):
                overlay = await self.store.load(plan, now)
                effects = self._core(overlay, partial(tracker.handle_datagram, data, session, now))
                if await self.store.commit(overlay):
                    self._store_up()
                    record = overlay.final_record
                    if record is not None and record.session_id == session.session_id:
                        self.owners[session.session_id] = record.peer_id
                    return effects
                self.counters["store-conflict-retries"] += 1
                now = self.clock()
            return self._refuse(session, request, "Store Busy")
        except StoreUnavailable as error:
            self._store_down(error)
            return self._refuse(session, request, "Store Unavailable")

    def _core(self, overlay: Overlay, run: Callable[[], list[Effect]]) -> list[Effect]:
        tracker = self.tracker
        base = tracker.store
        tracker.store = overlay
        try:
            return run()
        finally:
            tracker.store = base

    def _refuse(self, session: Session, request: Request, reason: str) -> list[Effect]:
        """PROTOCOL §2: 503 when the tracker cannot serve now; never cached."""
        self.counters["store-unavailable-503"] += 1
        response = Response(Status.OVERLOADED, request.transaction_id, reason)
        return [Transmit(session.session_id, (encode_response(response),), session.node_id)]

    def _store_down(self, error: Exception) -> None:
        if not self.store_down:
            self.store_down = True
            log.warning("store unreachable, answering 503 until it is back: %s", error)

    def _store_up(self) -> None:
        if self.store_down:
            self.store_down = False
            log.warning("store reachable again")

    def forget_session(self, session_id: str) -> None:
        self.owners.pop(session_id, None)

    # ------------------------------------------------------------------
    # timers: ATTACH resends, peer expiry (any node may expire any peer)
    # ------------------------------------------------------------------
    def timer(self) -> None:
        if self._timer_task is None or self._timer_task.done():
            self._timer_task = asyncio.create_task(self._apply_after(self.tick()))

    async def _apply_after(self, work: Awaitable[list[Effect]]) -> None:
        try:
            self.apply(await work)
        except Exception:
            self.counters["shared-timer-error"] += 1
            log.exception("timer work failed")

    async def tick(self, sweep: bool | None = None) -> list[Effect]:
        """ATTACH resends and give-ups, and (every ``sweep_interval``) the
        expiry sweep."""
        now = self.clock()
        expired: tuple[Any, ...] = ()
        if sweep is None:
            sweep = now - self._last_sweep >= self.sweep_interval
        try:
            if sweep:
                self._last_sweep = now
                expired = tuple(await self.store.sweep(now))
                self._store_up()
        except StoreUnavailable as error:
            self._store_down(error)
        overlay = idle_overlay(now, Loaded(expired=expired))
        effects = self._core(overlay, lambda: self.tracker.on_timer(now))
        await self._commit_quietly(overlay)
        return effects

    async def _commit_quietly(self, overlay: Overlay) -> None:
        try:
            await self.store.commit(overlay)
        except StoreUnavailable as error:
            self._store_down(error)

    # ------------------------------------------------------------------
    # other nodes
    # ------------------------------------------------------------------
    def forward(self, effect: Effect) -> bool:
        """Send an effect meant for another node; False if there is no bus."""
        if self.bus is None:
            return False
        if isinstance(effect, Transmit):
            self.bus.publish(
                effect.node_id,
                {"t": "tx", "s": effect.session_id, "d": [d.hex() for d in effect.datagrams]},
            )
        elif isinstance(effect, AckRelayed):
            self.bus.publish(
                effect.node_id, {"t": "ack", "i": effect.indication_id, "p": effect.peer_id}
            )
        return True

    def _on_bus(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "tx":
            datagrams = tuple(bytes.fromhex(d) for d in message["d"])
            self.apply([Transmit(str(message["s"]), datagrams, self.node_id)])
        elif kind == "ack":
            work = self.remote_ack(str(message["i"]), str(message["p"]))
            _keep(asyncio.create_task(self._apply_after(work)))
        else:
            self.apply([RequestDropped("bus-unknown-message")])

    async def remote_ack(self, indication_id: str, peer_id: str) -> list[Effect]:
        now = self.clock()
        overlay = idle_overlay(now)
        effects = self._core(
            overlay, lambda: self.tracker.on_remote_ack(indication_id, peer_id, now)
        )
        await self._commit_quietly(overlay)
        return effects

    async def idle(self) -> None:
        """Wait until every request submitted so far is served (tests)."""
        while self._tails:
            await asyncio.gather(*self._tails.values())
