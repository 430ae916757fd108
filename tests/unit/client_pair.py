"""An in-memory client <-> tracker harness: no sockets, no sleeps, a fake clock.

Each ``Client`` drives one ``TrackerConnection``; the ``Net`` carries its
documents to one of several tracker cores (``Tracker`` objects sharing one
``MemoryStore``, as nodes of one logical tracker share a store, PROTOCOL §9)
and the cores' answers back, with optional loss, duplication and reordering
drawn from a seeded random generator. DTLS is not modelled: an association
is a ``Session`` with a fresh id and source port, opened at once unless its
tracker is down. Time moves only when nothing is left to deliver now.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Session, Transmit
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.peer.connection import (
    AssociationWanted,
    ConnectionSettings,
    Event,
    IndicationReceived,
    Reconnected,
    RequestCompleted,
    RequestFailed,
    TrackerConnection,
)
from stunlike_tracker.ppsp.messages import Indication, Request, Response
from stunlike_tracker.store.memory import MemoryStore


@dataclass
class Link:
    """What happens to each datagram on the wire, per direction."""

    loss: float = 0.0
    duplicate: float = 0.0
    # Delivery delay is uniform in [delay, delay + jitter]: jitter reorders.
    delay: float = 0.01
    jitter: float = 0.0


@dataclass(order=True)
class _InFlight:
    at: float
    seq: int
    to_tracker: bool = field(compare=False)
    session_id: str = field(compare=False)
    data: bytes = field(compare=False)


class Client:
    def __init__(
        self, net: Net, peer_id: str, settings: ConnectionSettings | None, trackers: int
    ) -> None:
        self.net = net
        self.peer_id = peer_id
        ids = (f"{peer_id}-t{n}" for n in itertools.count())
        self.conn = TrackerConnection(
            peer_id, settings, trackers=trackers, transaction_ids=lambda: next(ids)
        )
        self.session: Session | None = None
        self.session_tracker = 0
        self.results: dict[int, RequestCompleted | RequestFailed] = {}
        self.indications: list[Indication] = []
        self.reconnected: list[Response] = []
        self.sent: list[bytes] = []  # every document put on the wire, in order

    def submit(self, request: Request, *, reconnect: bool | None = None) -> int:
        handle = self.conn.submit(request, self.net.now, reconnect=reconnect)
        self.pump()
        return handle

    def connect(self) -> int:
        handle = self.conn.submit_connect((), self.net.now)
        self.pump()
        return handle

    def pump(self) -> None:
        """Move the machine's output onto the wire and act on its events."""
        while True:
            events: list[Event] = self.conn.events()
            for data in self.conn.datagrams_to_send():
                self.sent.append(data)
                if self.session is not None:
                    self.net.put(True, self.session.session_id, data)
            if not events:
                return
            for event in events:
                self._on_event(event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, AssociationWanted):
            self.session = None
            if self.net.down[event.tracker]:
                self.conn.association_failed("no handshake", self.net.now)
            else:
                self.session = self.net.new_session(self, event.tracker)
                self.session_tracker = event.tracker
                self.conn.association_ready(self.net.now)
        elif isinstance(event, (RequestCompleted, RequestFailed)):
            assert event.handle not in self.results, "a request finished twice"
            self.results[event.handle] = event
        elif isinstance(event, IndicationReceived):
            self.indications.append(event.indication)
        elif isinstance(event, Reconnected):
            self.reconnected.append(event.response)

    def response(self, handle: int) -> Response:
        result = self.results[handle]
        assert isinstance(result, RequestCompleted), result
        return result.response


class Net:
    def __init__(
        self,
        *,
        trackers: int = 1,
        config: TrackerConfig | None = None,
        up: Link | None = None,
        down: Link | None = None,
        seed: int = 1,
    ) -> None:
        self.now = 1000.0
        self.rng = random.Random(seed)
        self.store = MemoryStore(random.Random(seed))
        tokens = itertools.count()
        self.trackers = [
            Tracker(self.store, config, token_factory=lambda: f"tk{next(tokens)}")
            for _ in range(trackers)
        ]
        self.down = [False] * trackers
        self.uplink = up or Link()
        self.downlink = down or Link()
        self.clients: list[Client] = []
        self._sessions: dict[str, tuple[Client, Session, int]] = {}
        self._wire: list[_InFlight] = []
        self._seq = itertools.count()
        self._ports = itertools.count(40000)
        self._next_tick = self.now + 1.0
        self.executed = 0  # requests the tracker cores were handed
        # Drop the next N datagrams toward clients (a deterministic loss).
        self.drop_to_clients = 0

    def client(
        self, peer_id: str, settings: ConnectionSettings | None = None, trackers: int | None = None
    ) -> Client:
        client = Client(self, peer_id, settings, trackers or len(self.trackers))
        self.clients.append(client)
        return client

    def new_session(self, client: Client, tracker: int) -> Session:
        port = next(self._ports)
        session = Session(f"n{tracker}-s{port}", ("198.51.100.7", port), node_id=f"n{tracker}")
        self._sessions[session.session_id] = (client, session, tracker)
        return session

    def stop_tracker(self, index: int) -> None:
        """The node stops answering (its datagrams and new handshakes vanish)."""
        self.down[index] = True

    def put(self, to_tracker: bool, session_id: str, data: bytes) -> None:
        if not to_tracker and self.drop_to_clients > 0:
            self.drop_to_clients -= 1
            return
        link = self.uplink if to_tracker else self.downlink
        copies = 2 if self.rng.random() < link.duplicate else 1
        for _ in range(copies):
            if self.rng.random() < link.loss:
                continue
            at = self.now + link.delay + self.rng.random() * link.jitter
            heapq.heappush(self._wire, _InFlight(at, next(self._seq), to_tracker, session_id, data))

    def _deliver(self, item: _InFlight) -> None:
        known = self._sessions.get(item.session_id)
        if known is None:
            return
        client, session, tracker = known
        if self.down[tracker]:
            return
        if item.to_tracker:
            self.executed += 1
            self._effects(self.trackers[tracker].handle_datagram(item.data, session, self.now))
            return
        if client.session is not None and client.session.session_id == item.session_id:
            client.conn.receive(item.data, self.now)
            client.pump()

    def _effects(self, effects: Sequence[object]) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                for data in effect.datagrams:
                    self.put(False, effect.session_id, data)

    def _next_time(self) -> float:
        times = [self._next_tick]
        if self._wire:
            times.append(self._wire[0].at)
        for client in self.clients:
            deadline = client.conn.next_timer()
            if deadline is not None:
                times.append(deadline)
        for tracker in self.trackers:
            deadline = tracker.next_timer()
            if deadline is not None:
                times.append(deadline)
        return min(times)

    def step(self) -> None:
        self.now = max(self.now, self._next_time())
        while self._wire and self._wire[0].at <= self.now:
            self._deliver(heapq.heappop(self._wire))
        for index, tracker in enumerate(self.trackers):
            deadline = tracker.next_timer()
            ticked = self.now >= self._next_tick
            if not self.down[index] and (ticked or (deadline is not None and deadline <= self.now)):
                self._effects(tracker.on_timer(self.now))
        if self.now >= self._next_tick:
            self._next_tick = self.now + 1.0
        for client in self.clients:
            deadline = client.conn.next_timer()
            if deadline is not None and deadline <= self.now:
                client.conn.on_timer(self.now)
            client.pump()

    def run_until_done(self, client: Client, handle: int, within: float = 120.0) -> None:
        limit = self.now + within
        while handle not in client.results:
            assert self.now < limit, f"request {handle} not finished within {within} s"
            self.step()

    def run_for(self, seconds: float) -> None:
        limit = self.now + seconds
        while self.now < limit:
            self.step()
