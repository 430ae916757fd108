"""Many peers, random requests and clock steps against the core (issue 11).

Invariants, checked after every step:
* no member without a registration (every member of a swarm's mode set has
  a live record with that membership, in that mode);
* no offer is handed out twice (every offer id seen in any response is new);
* a DISCONNECT nil leaves nothing: no record, no membership, no offer, no
  tombstone;
* no state for an expired peer: once the timer has run, no record is past
  its deadline, and a peer past its deadline is never listed, even before
  the timer has run;
* the Sybil index counts only live registrations.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Session, Transmit
from stunlike_tracker.ppsp import encode_request, parse_message_untrusted
from stunlike_tracker.ppsp.messages import Method, PeerMode, PeerNum, Request, Response
from tests.unit.core.harness import Harness, make_offer

PEERS = [f"p{n}" for n in range(24)]
SWARMS = ["s0", "s1", "s2", "s3"]
SOURCES = [f"198.51.100.{n}" for n in range(1, 7)]


class ManyPeers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = TrackerConfig(max_peers_per_session=2, max_peers_per_source=8, peer_rate=0)
        self.h = Harness(config)
        self.sessions: dict[str, Session] = {}
        self.tokens: dict[str, str] = {}
        self.offers_seen: set[str] = set()
        self.n = 0

    def _session(self, peer: str) -> Session:
        if peer not in self.sessions:
            self.sessions[peer] = self.h.session(SOURCES[PEERS.index(peer) % len(SOURCES)])
        return self.sessions[peer]

    def _send(self, peer: str, request: Request) -> Response | None:
        session = self._session(peer)
        effects = self.h.raw(session, encode_request(request))
        answer: Response | None = None
        for effect in effects:
            if not isinstance(effect, Transmit):
                continue
            for datagram in effect.datagrams:
                message = parse_message_untrusted(datagram)
                if not isinstance(message, Response):
                    continue
                for info in message.peers:
                    if info.offer is not None:
                        assert info.offer.id not in self.offers_seen, info.offer.id
                        self.offers_seen.add(info.offer.id)
                    if info.peer_id is not None:
                        record = self.h.store.get_peer(info.peer_id)
                        assert record is not None and record.deadline > self.h.now
                ours = effect.session_id == session.session_id
                if ours and message.transaction_id == request.transaction_id:
                    answer = message
                    if message.reconnect_token:
                        self.tokens[peer] = message.reconnect_token
        return answer

    def _tx(self) -> str:
        self.n += 1
        return f"t{self.n}"

    @rule(peer=st.sampled_from(PEERS), new_session=st.booleans(), with_token=st.booleans())
    def connect(self, peer: str, new_session: bool, with_token: bool) -> None:
        if new_session:
            self.sessions.pop(peer, None)
        token = self.tokens.get(peer) if with_token else None
        r = self._send(peer, Request(Method.CONNECT, peer, self._tx(), reconnect_token=token))
        assert r is not None and r.status in (200, 401, 403)

    @rule(
        peer=st.sampled_from(PEERS),
        swarm=st.sampled_from(SWARMS),
        mode=st.sampled_from([None, PeerMode.SEED, PeerMode.LEECH]),
        offer=st.booleans(),
    )
    def join(self, peer: str, swarm: str, mode: PeerMode | None, offer: bool) -> None:
        before = self.h.store.get_peer(peer)
        was = before.membership(swarm) if before is not None else None
        request = Request(
            Method.JOIN,
            peer,
            self._tx(),
            swarm_id=swarm,
            peer_mode=mode,
            ice_offer=make_offer(f"o{self.n}") if offer else None,
        )
        r = self._send(peer, request)
        assert r is not None and r.status in (200, 401, 403)
        if r.status == 200:
            record = self.h.store.get_peer(peer)
            m = record.membership(swarm) if record is not None else None
            assert m is not None
            expected = mode or (was.mode if was is not None else PeerMode.LEECH)
            assert m.mode is expected

    @rule(peer=st.sampled_from(PEERS), swarm=st.sampled_from(SWARMS), want=st.integers(0, 30))
    def find(self, peer: str, swarm: str, want: int) -> None:
        request = Request(Method.FIND, peer, self._tx(), swarm_id=swarm, peer_num=PeerNum(want))
        r = self._send(peer, request)
        assert r is not None and r.status in (200, 401, 403)

    @rule(peer=st.sampled_from(PEERS))
    def stat(self, peer: str) -> None:
        r = self._send(peer, Request(Method.STAT_REPORT, peer, self._tx()))
        assert r is not None and r.status in (200, 401, 403)

    @rule(peer=st.sampled_from(PEERS), swarm=st.sampled_from([*SWARMS, "ALL", "nil"]))
    def disconnect(self, peer: str, swarm: str) -> None:
        r = self._send(peer, Request(Method.DISCONNECT, peer, self._tx(), swarm_id=swarm))
        assert r is not None and r.status in (200, 401, 403)
        if swarm == "nil" and r.status == 200:
            store = self.h.store
            assert store.get_peer(peer) is None
            assert store.get_tombstone(peer, self.h.now) is None
            assert store.offer_count(peer, self.h.now) == 0
            for s in SWARMS:
                for mode in PeerMode:
                    assert peer not in store.sample_members(s, mode, 100)

    @rule(seconds=st.sampled_from([1.0, 10.0, 29.0, 31.0, 89.0, 91.0]))
    def timer_runs(self, seconds: float) -> None:
        self.h.now += seconds
        self.h.tracker.on_timer(self.h.now)
        for peer in PEERS:
            record = self.h.store.get_peer(peer)
            assert record is None or record.deadline > self.h.now
            if record is None:  # expired or gone: no offer of it is left either
                assert self.h.store.offer_count(peer, self.h.now) == 0

    @rule(seconds=st.sampled_from([1.0, 31.0, 91.0]))
    def clock_runs_ahead_of_the_timer(self, seconds: float) -> None:
        self.h.now += seconds  # requests now arrive before the next tick

    @invariant()
    def no_member_without_a_registration(self) -> None:
        store = self.h.store
        for swarm in SWARMS:
            for mode in PeerMode:
                for peer in store.sample_members(swarm, mode, 100):
                    record = store.get_peer(peer)
                    m = record.membership(swarm) if record is not None else None
                    assert m is not None and m.mode is mode, (swarm, mode, peer)

    @invariant()
    def sybil_index_counts_only_registrations(self) -> None:
        assert len(self.h.tracker.registrations) <= self.h.store.peer_count()


TestManyPeers = ManyPeers.TestCase
TestManyPeers.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
