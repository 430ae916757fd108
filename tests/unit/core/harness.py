"""An in-memory harness for the tracker core: requests in, parsed answers out."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Effect, Session, Transmit
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import (
    encode_request,
    merge_response_parts,
    parse_indication_untrusted,
    parse_message_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Indication,
    Method,
    PeerAddress,
    PeerMode,
    Request,
    Response,
)
from stunlike_tracker.store.memory import MemoryStore


def candidate(ip: str, port: int, kind: AddressType = AddressType.HOST) -> PeerAddress:
    return PeerAddress(AddrType.IPV4, ip, port, kind, 2130706431, "1")


def make_offer(offer_id: str, ip: str = "203.0.113.9", port: int = 5000) -> IceOffer:
    return IceOffer(
        id=offer_id,
        ufrag="uf" + offer_id,
        pwd="p" * 22,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=(candidate(ip, port),),
    )


@dataclass
class Harness:
    config: TrackerConfig = field(default_factory=TrackerConfig)
    now: float = 1000.0

    def __post_init__(self) -> None:
        self.store = MemoryStore(random.Random(3))
        counter = itertools.count()
        self.tracker = Tracker(self.store, self.config, token_factory=lambda: f"tk{next(counter)}")
        self._tx = itertools.count()
        self._sessions = itertools.count()

    def session(
        self, ip: str = "198.51.100.7", port: int | None = None, identity: str | None = None
    ) -> Session:
        n = next(self._sessions)
        return Session(f"sess{n}", (ip, port if port is not None else 40000 + n), identity)

    def txid(self) -> str:
        return f"t{next(self._tx)}"

    def raw(self, session: Session, data: bytes) -> list[Effect]:
        return self.tracker.handle_datagram(data, session, self.now)

    def send(self, session: Session, request: Request) -> Response:
        """Send one request; return the (merged) response to that session."""
        effects = self.raw(session, encode_request(request))
        return self.response_in(effects, session)

    @staticmethod
    def response_in(effects: list[Effect], session: Session) -> Response:
        parts = [
            parse_response_untrusted(d)
            for e in effects
            if isinstance(e, Transmit) and e.session_id == session.session_id
            for d in e.datagrams
            if isinstance(parse_message_untrusted(d), Response)
        ]
        assert parts, f"no response in {effects}"
        return merge_response_parts(parts)

    @staticmethod
    def indications_in(effects: list[Effect], session: Session) -> list[Indication]:
        return [
            parse_indication_untrusted(d)
            for e in effects
            if isinstance(e, Transmit) and e.session_id == session.session_id
            for d in e.datagrams
            if isinstance(parse_message_untrusted(d), Indication)
        ]

    # request builders --------------------------------------------------
    def connect(
        self, session: Session, peer_id: str, token: str | None = None, **kw: object
    ) -> Response:
        return self.send(
            session,
            Request(Method.CONNECT, peer_id, self.txid(), reconnect_token=token, **kw),  # type: ignore[arg-type]
        )

    def join(
        self,
        session: Session,
        peer_id: str,
        swarm: str,
        mode: PeerMode = PeerMode.LEECH,
        **kw: object,
    ) -> Response:
        return self.send(
            session,
            Request(Method.JOIN, peer_id, self.txid(), swarm_id=swarm, peer_mode=mode, **kw),  # type: ignore[arg-type]
        )

    def find(self, session: Session, peer_id: str, swarm: str, **kw: object) -> Response:
        return self.send(session, Request(Method.FIND, peer_id, self.txid(), swarm_id=swarm, **kw))  # type: ignore[arg-type]

    def disconnect(self, session: Session, peer_id: str, swarm: str) -> Response:
        return self.send(session, Request(Method.DISCONNECT, peer_id, self.txid(), swarm_id=swarm))

    def stat(self, session: Session, peer_id: str, **kw: object) -> Response:
        return self.send(session, Request(Method.STAT_REPORT, peer_id, self.txid(), **kw))  # type: ignore[arg-type]

    def connected(self, peer_id: str, **session_kw: object) -> tuple[Session, str]:
        """A connected peer: its session and ReconnectToken."""
        s = self.session(**session_kw)  # type: ignore[arg-type]
        r = self.connect(s, peer_id)
        assert r.status == 200, r
        assert r.reconnect_token is not None
        return s, r.reconnect_token
