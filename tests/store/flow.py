"""The tracker core over a store backend, as the server drives it: memory
directly; a shared store through ``SharedStoreDriver`` (load, core, commit),
with several nodes (one core each) sharing it. No sockets, no DTLS."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field, replace

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import AckRelayed, Effect, Session, Transmit
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request, Response
from stunlike_tracker.server.shared import SharedStoreDriver, idle_overlay
from stunlike_tracker.store.memory import MemoryStore
from stunlike_tracker.store.redis import RedisStore, connect
from tests.unit.core.harness import Harness


@dataclass
class Flow:
    backend: str
    url: str = ""
    nodes: int = 1
    config: TrackerConfig = field(default_factory=TrackerConfig)
    now: float = 1_000_000.0

    def __post_init__(self) -> None:
        counter = itertools.count()
        self.trackers: list[Tracker] = []
        self.drivers: list[SharedStoreDriver | None] = []
        self.stores: list[RedisStore] = []
        memory = MemoryStore(random.Random(5))
        for n in range(self.nodes):
            config = replace(self.config, node_id=f"node{n}")
            tracker = Tracker(memory, config, token_factory=lambda: f"tk{next(counter)}")
            self.trackers.append(tracker)
            if self.backend == "memory":
                self.drivers.append(None)
                continue
            store = RedisStore(connect(self.url), tombstone_ttl=config.track_timeout)
            self.stores.append(store)
            tracker.store = idle_overlay(0.0)
            self.drivers.append(
                SharedStoreDriver(tracker, store, lambda _e: None, lambda: self.now)
            )
        self._tx = itertools.count()
        self._sessions = itertools.count()
        self.outbox: list[Effect] = []

    async def close(self) -> None:
        for store in self.stores:
            await store.close()

    def session(self, node: int = 0, ip: str = "198.51.100.7") -> Session:
        """A session on ``node`` (the memory store is one node: always 0)."""
        node = node if self.backend != "memory" else 0
        n = next(self._sessions)
        return Session(f"node{node}:s{n}", (ip, 40000 + n), None, f"node{node}")

    def txid(self) -> str:
        return f"t{next(self._tx)}"

    @staticmethod
    def node_of(session: Session) -> int:
        return int(session.node_id.removeprefix("node"))

    async def raw(self, session: Session, data: bytes, via: int | None = None) -> list[Effect]:
        """Serve ``data`` from ``session`` on its node (or on node ``via``)."""
        node = self.node_of(session) if via is None else min(via, self.nodes - 1)
        driver = self.drivers[node]
        if driver is None:
            effects = self.trackers[node].handle_datagram(data, session, self.now)
        else:
            effects = await driver.serve(data, session)
        return await self._relay(effects)

    async def _relay(self, effects: list[Effect]) -> list[Effect]:
        """Deliver relayed ATTACH_ACKs to their node, like the node bus does."""
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, AckRelayed):
                driver = self.drivers[int(effect.node_id.removeprefix("node"))]
                assert driver is not None
                out += await driver.remote_ack(effect.indication_id, effect.peer_id)
            else:
                out.append(effect)
        return out

    async def tick(self, node: int = 0) -> list[Effect]:
        node = min(node, self.nodes - 1)
        driver = self.drivers[node]
        if driver is None:
            return self.trackers[node].on_timer(self.now)
        return await driver.tick(sweep=True)

    async def send(self, session: Session, request: Request) -> Response:
        return Harness.response_in(await self.raw(session, encode_request(request)), session)

    async def connect(self, session: Session, peer_id: str, token: str | None = None) -> Response:
        return await self.send(
            session, Request(Method.CONNECT, peer_id, self.txid(), reconnect_token=token)
        )

    async def connected(self, peer_id: str, node: int = 0) -> tuple[Session, str]:
        s = self.session(node)
        r = await self.connect(s, peer_id)
        assert r.status == 200, r
        assert r.reconnect_token is not None
        return s, r.reconnect_token

    async def join(
        self,
        session: Session,
        peer_id: str,
        swarm: str,
        mode: PeerMode = PeerMode.LEECH,
        **kw: object,
    ) -> Response:
        request = Request(Method.JOIN, peer_id, self.txid(), swarm_id=swarm, peer_mode=mode, **kw)  # type: ignore[arg-type]
        return await self.send(session, request)

    async def find(self, session: Session, peer_id: str, swarm: str, **kw: object) -> Response:
        request = Request(Method.FIND, peer_id, self.txid(), swarm_id=swarm, **kw)  # type: ignore[arg-type]
        return await self.send(session, request)

    async def stat(self, session: Session, peer_id: str, **kw: object) -> Response:
        return await self.send(session, Request(Method.STAT_REPORT, peer_id, self.txid(), **kw))  # type: ignore[arg-type]

    async def disconnect(self, session: Session, peer_id: str, swarm: str) -> Response:
        return await self.send(
            session, Request(Method.DISCONNECT, peer_id, self.txid(), swarm_id=swarm)
        )

    @staticmethod
    def transmits_to(effects: list[Effect], session: Session) -> list[bytes]:
        return [
            d
            for e in effects
            if isinstance(e, Transmit) and e.session_id == session.session_id
            for d in e.datagrams
        ]
