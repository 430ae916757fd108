"""Random request sequences against the core keep the store consistent.

Invariants checked after every step:
* a peer is in a swarm's member set iff its record has that membership,
  in the same mode;
* a DISCONNECT nil or an expiry leaves no membership behind;
* every answer is a full response carrying the request's TransactionID.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stunlike_tracker.core.effects import Session, Transmit
from stunlike_tracker.ppsp import encode_request, parse_response_untrusted
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request
from tests.unit.core.harness import Harness, make_offer

PEERS = ["A", "B", "C"]
SWARMS = ["x", "y"]


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness()
        self.sessions: dict[str, Session] = {p: self.h.session() for p in PEERS}
        self.tokens: dict[str, str] = {}
        self.n = 0

    def _send(self, peer: str, request: Request) -> int:
        effects = self.h.raw(self.sessions[peer], encode_request(request))
        statuses = []
        for e in effects:
            if isinstance(e, Transmit) and e.session_id == self.sessions[peer].session_id:
                for d in e.datagrams:
                    if b"<Response" in d:
                        r = parse_response_untrusted(d)
                        if r.transaction_id == request.transaction_id:
                            statuses.append(r.status)
                            if r.reconnect_token:
                                self.tokens[peer] = r.reconnect_token
        if request.method is Method.ATTACH and not statuses:
            return 0  # in flight
        assert statuses, (request, effects)
        return statuses[0]

    def _tx(self) -> str:
        self.n += 1
        return f"t{self.n}"

    @rule(peer=st.sampled_from(PEERS), new_session=st.booleans(), with_token=st.booleans())
    def connect(self, peer: str, new_session: bool, with_token: bool) -> None:
        if new_session:
            self.sessions[peer] = self.h.session()
        token = self.tokens.get(peer) if with_token else None
        status = self._send(peer, Request(Method.CONNECT, peer, self._tx(), reconnect_token=token))
        assert status in (200, 401, 403)

    @rule(
        peer=st.sampled_from(PEERS),
        swarm=st.sampled_from(SWARMS),
        seed=st.booleans(),
        offer=st.booleans(),
    )
    def join(self, peer: str, swarm: str, seed: bool, offer: bool) -> None:
        mode = PeerMode.SEED if seed else PeerMode.LEECH
        req = Request(
            Method.JOIN,
            peer,
            self._tx(),
            swarm_id=swarm,
            peer_mode=mode,
            ice_offer=make_offer(f"o{self.n}") if offer else None,
        )
        assert self._send(peer, req) in (200, 401, 403)

    @rule(peer=st.sampled_from(PEERS), swarm=st.sampled_from(SWARMS))
    def find(self, peer: str, swarm: str) -> None:
        assert self._send(peer, Request(Method.FIND, peer, self._tx(), swarm_id=swarm)) in (
            200,
            401,
            403,
        )

    @rule(peer=st.sampled_from(PEERS))
    def stat(self, peer: str) -> None:
        assert self._send(peer, Request(Method.STAT_REPORT, peer, self._tx())) in (200, 401, 403)

    @rule(peer=st.sampled_from(PEERS), swarm=st.sampled_from([*SWARMS, "ALL", "nil"]))
    def disconnect(self, peer: str, swarm: str) -> None:
        status = self._send(peer, Request(Method.DISCONNECT, peer, self._tx(), swarm_id=swarm))
        assert status in (200, 401, 403)
        if swarm == "nil" and status == 200:
            assert self.h.store.get_peer(peer) is None

    @rule(peer=st.sampled_from(PEERS), other=st.sampled_from(PEERS), swarm=st.sampled_from(SWARMS))
    def attach(self, peer: str, other: str, swarm: str) -> None:
        req = Request(
            Method.ATTACH,
            peer,
            self._tx(),
            swarm_id=swarm,
            target_peer_id=other,
            ice_offer=make_offer(f"a{self.n}"),
        )
        assert self._send(peer, req) in (0, 401, 403, 404, 503)

    @rule(seconds=st.sampled_from([0.5, 5.0, 31.0, 91.0]))
    def time_passes(self, seconds: float) -> None:
        self.h.now += seconds
        self.h.tracker.on_timer(self.h.now)

    @invariant()
    def memberships_match_member_sets(self) -> None:
        store = self.h.store
        for swarm in SWARMS:
            for mode in PeerMode:
                members = set(store.sample_members(swarm, mode, 100))
                for peer in PEERS:
                    record = store.get_peer(peer)
                    m = record.membership(swarm) if record else None
                    assert (peer in members) == (m is not None and m.mode is mode)


TestCoreMachine = CoreMachine.TestCase
TestCoreMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
