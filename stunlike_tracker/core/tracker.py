"""The tracker core: PPSP requests in, effects out (PROTOCOL §3, §4, §6).

Theory of operation
-------------------
``handle_datagram(data, session, now)`` parses one request datagram and
returns effects (datagrams to transmit over sessions). ``on_timer(now)``
fires peer timers, resends ATTACH indications and purges the store;
``next_timer()`` says when it next needs calling. Nothing here reads a clock
or touches a socket: the server owns both. All state lives in the store,
except ATTACH indications in flight (node-local, see ``attach``).

Order of checks for a request (PROTOCOL §4, §8):
1. mutual mode: the certificate's Peer-ID must be the request's (401);
2. the response cache, bound to the session that asked: same TransactionID
   and bytes → the cached datagrams again (nothing re-executed; an ATTACH
   still in flight is absorbed), other bytes → 400;
3. ownership: a Peer-ID is served only over the session that CONNECTed it
   (401), CONNECT itself decides between new, re-CONNECT and 403;
4. the state table (``states``) → 403 with the reason;
5. the handler. Answers to attributable requests are cached.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import sys
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from stunlike_tracker.core.addresses import (
    host_addresses,
    ice_priority,
    is_ipv6_path,
    is_tracker_address,
    nat_class,
    reflexive_address,
)
from stunlike_tracker.core.attach import PendingAttach, PendingAttaches
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import (
    AckRelayed,
    Effect,
    PeerExpired,
    RequestDropped,
    Session,
    Transmit,
)
from stunlike_tracker.core.listings import ListingCache
from stunlike_tracker.core.ratelimit import RateLimiter
from stunlike_tracker.core.selection import Preferences, chunk_ranges_of, select_peers
from stunlike_tracker.core.states import PeerState, refusal, state_of
from stunlike_tracker.core.sybil import RegistrationIndex, source_key
from stunlike_tracker.core.turn import turn_servers
from stunlike_tracker.ice.candidates import sanitize_offer
from stunlike_tracker.ppsp import (
    PpspError,
    encode_indication,
    encode_response,
    encode_response_datagrams,
    parse_request_untrusted,
)
from stunlike_tracker.ppsp.encode import bare_response, peer_info_xml
from stunlike_tracker.ppsp.messages import (
    SWARM_ALL,
    SWARM_NIL,
    AddressType,
    ContentMap,
    IceOffer,
    Indication,
    Method,
    NatAbility,
    Part,
    PeerAddress,
    PeerInfo,
    PeerMode,
    Request,
    Response,
    Status,
    StreamStatistics,
    TurnServer,
)
from stunlike_tracker.ppsp.reasons import Reason
from stunlike_tracker.store.contract import TrackerStore
from stunlike_tracker.store.records import (
    CachedResponse,
    Membership,
    OfferGrant,
    PeerRecord,
)


def _document_skeleton() -> int:
    """Bytes of a response part or an indication besides its one PeerInfo, at
    the most (64-character ids, 5-digit Part numbers): what a PeerInfo must
    leave free of the datagram budget."""
    longest = "x" * 64
    part = Response(
        status=Status.OK,
        transaction_id=longest,
        reason=Reason.OK,
        swarm_ids=(longest,),
        part=Part(65534, 65535),
        peers=(PeerInfo(peer_id="p"),),
    )
    indication = Indication(
        transaction_id=longest, swarm_id=longest, offer_id=longest, peer=PeerInfo(peer_id="p")
    )
    bare_info = len(peer_info_xml(PeerInfo(peer_id="p")).encode())
    return max(len(encode_response(part)), len(encode_indication(indication))) - bare_info


_DOCUMENT_SKELETON = _document_skeleton()

# Method names as plain strings, looked up without the enum's ``.value``
# descriptor (a Python-level call on every request).
_METHOD_NAMES: dict[str, str] = {m: m.value for m in Method}

# How many expired peers one timer tick retires at most (bounded work).
_EXPIRE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Introduction:
    """One ATTACH's outcome, for the status page (wall-clock ``at``)."""

    at: float
    swarm_id: str
    requester_id: str
    target_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Answer:
    """A handler's result: a response, or nothing yet (ATTACH in flight)."""

    response: Response | None
    effects: tuple[Effect, ...] = ()
    cache: bool = True
    # ``response.peers`` already encoded (``peer_info_xml`` bytes), when known.
    encoded_peers: tuple[bytes, ...] | None = None


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _least_needed(candidates: tuple[PeerAddress, ...]) -> PeerAddress:
    """The candidate to drop first when an offer must shrink: the lowest
    priority one of a type that has others, so that host, reflexive and
    relayed candidates each survive as long as possible (a relayed one is
    what the hardest NAT pairs need, though its priority is the lowest)."""
    counts = Counter(c.type for c in candidates)
    spare = [c for c in candidates if counts[c.type] > 1] or list(candidates)
    return min(spare, key=lambda c: c.priority or 0)


def _typed_candidates(offer: IceOffer, config: TrackerConfig) -> IceOffer:
    """PROTOCOL §2.1: every address in a response carries a type and a priority.
    An offer candidate without a type is a HOST one, one without a priority
    gets its type's RFC 8445 priority; candidates naming the tracker itself
    are dropped (PROTOCOL §8)."""
    typed = []
    changed = False
    for c in offer.candidates:
        if is_tracker_address(c, config.tracker_addresses, lan_mode=config.lan_mode):
            changed = True
            continue
        if c.type is None or c.priority is None:
            kind = c.type or AddressType.HOST
            c = replace(c, type=kind, priority=c.priority or ice_priority(kind))
            changed = True
        typed.append(c)
    return replace(offer, candidates=tuple(typed)) if changed else offer


def _same(presented: bytes, stored: bytes | None) -> bool:
    return stored is not None and hmac.compare_digest(presented, stored)


def _new_token() -> str:
    return secrets.token_urlsafe(24)


class Tracker:
    def __init__(
        self,
        store: TrackerStore,
        config: TrackerConfig | None = None,
        *,
        token_factory: Callable[[], str] = _new_token,
    ) -> None:
        self.store = store
        self.config = config or TrackerConfig()
        self._token = token_factory
        self.rate_limiter = RateLimiter(self.config.peer_rate, self.config.peer_burst)
        self._last_prune = 0.0
        self.attaches = PendingAttaches(
            self.config.attach_resend_intervals, self.config.attach_timeout
        )
        # PROTOCOL §8 Sybil limits: Peer-IDs per association and per source (node-local).
        self.registrations = RegistrationIndex()
        # Encoded PeerInfo of peers listed without an offer (bounded).
        self.listings = ListingCache(self.config.listing_cache_entries)
        # Plain counters read by the metrics exporter at scrape time: answers
        # by (request, status), cache replays, the last request's method and
        # Peer-ID (for the server's latency histogram and debug log).
        self.answers: Counter[tuple[str, int]] = Counter()
        self.replays = 0
        self.last_method = ""
        self.last_peer_id = ""
        self.recent_introductions: deque[Introduction] = deque(maxlen=50)
        # SIGTERM: no new introductions (PROTOCOL §6 answers them 503).
        self.draining = False

    def reconfigure(self, config: TrackerConfig) -> None:
        """New limits, allow-list and TURN secrets (SIGHUP); state is kept."""
        self.config = config
        self.rate_limiter.rate = config.peer_rate
        self.rate_limiter.burst = config.peer_burst
        self.listings.max_entries = config.listing_cache_entries
        self.attaches.retime(config.attach_resend_intervals, config.attach_timeout)

    def drain(self, now: float) -> list[Effect]:
        """Stop introducing: every pending ATTACH is answered 503 now, and
        new ones are refused with 503 until the node stops."""
        self.draining = True
        effects: list[Effect] = []
        for pending in self.attaches.pop_all():
            effects += self._finish_attach(pending, Reason.SHUTTING_DOWN, now)
        return effects

    # ------------------------------------------------------------------
    # entry points
    # ------------------------------------------------------------------
    def answer_overloaded(self, data: bytes, session: Session) -> list[Effect]:
        """``503 Rate Limited`` for a request the server's per-association
        budget refused (PROTOCOL.md §8): parsed for its TransactionID, never
        executed nor cached, so a retransmission later is served."""
        try:
            request = parse_request_untrusted(data, max_size=self.config.max_request_size)
        except PpspError:
            return []
        return self._reply(session, request, Reason.RATE_LIMITED)

    def handle_datagram(self, data: bytes, session: Session, now: float) -> list[Effect]:
        try:
            request = parse_request_untrusted(data, max_size=self.config.max_request_size)
        except PpspError as error:
            response = error.to_response()
            self.last_method = "invalid"
            if response is None:
                # Unattributable: never answer (ARCHITECTURE habit 4).
                return [RequestDropped("ppsp-unanswerable", error.reason)]
            self.answers["invalid", response.status] += 1
            return [Transmit(session.session_id, (encode_response(response),), session.node_id)]
        self.last_method = _METHOD_NAMES[request.method]
        self.last_peer_id = request.peer_id
        try:
            return self.handle_request(request, data, session, now)
        except Exception:  # a bug or a store failure: 500, never details (PROTOCOL §2)
            reply = self._reply(session, request, Reason.INTERNAL_ERROR)
            return [*reply, RequestDropped("internal-error", traceback.format_exc())]

    def handle_request(
        self, request: Request, raw: bytes, session: Session, now: float
    ) -> list[Effect]:
        config = self.config
        if config.identity_mode == "mutual" and session.identity != request.peer_id:
            return self._reply(session, request, Reason.PEER_ID_NOT_CERTIFIED)

        digest = _digest(raw)
        cached = self.store.cache_get(request.peer_id, request.transaction_id, now)
        if cached is not None and cached.session_id == session.session_id:
            if not hmac.compare_digest(cached.request_digest, digest):
                return self._reply(session, request, Reason.TRANSACTION_ID_REUSED)
            if cached.datagrams is None:
                return []  # still being processed: the retransmission is absorbed
            self.replays += 1
            return [Transmit(session.session_id, cached.datagrams, session.node_id)]

        # PROTOCOL §8 per-peer rate limit, counted per DTLS association (a peer
        # talks over one): keyed by the claimed Peer-ID, anyone could spend
        # another peer's budget. Not cached, so a later retry can pass.
        if not self.rate_limiter.allow(session.session_id, now):
            return self._reply(session, request, Reason.RATE_LIMITED)

        # PROTOCOL §3: a peer whose timer has run out is gone, whether or not the
        # tick has retired it yet: retire it now, then serve the request as
        # one from an unknown peer.
        record, expired = self._live_peer(request.peer_id, now)
        if request.method is Method.CONNECT:
            answer = self._connect(request, record, session, now)
            answer = replace(answer, effects=(*expired, *answer.effects))
        elif record is None:
            unknown = refusal(PeerState.UNKNOWN, request.method) or Reason.NOT_CONNECTED
            return [*self._reply(session, request, unknown), *expired]
        elif record.session_id != session.session_id:
            return self._reply(session, request, Reason.PEER_ID_NOT_OWNED)
        else:
            reason = refusal(state_of(record), request.method)
            if reason is not None:
                answer = _Answer(self._error(request, reason))
            elif (
                request.method is Method.STAT_REPORT
                and request.stats is None
                and request.ice_offer is None
            ):
                return self._keep_alive(request, record, session, digest, now)
            else:
                answer = self._dispatch(request, record, session, digest, now)

        effects: list[Effect] = list(answer.effects)
        final = self.store.get_peer(request.peer_id)
        if final is not None:  # the Sybil index follows the peer's timer
            self.registrations.touch(request.peer_id, session.session_id, final.deadline)
        if answer.response is None:
            if answer.cache:
                self._cache(request, session, digest, None, now)
            return effects
        self.answers[_METHOD_NAMES[request.method], answer.response.status] += 1
        datagrams = tuple(
            encode_response_datagrams(answer.response, self._budget(session), answer.encoded_peers)
        )
        if answer.cache:
            self._cache(request, session, digest, datagrams, now)
        effects.insert(0, Transmit(session.session_id, datagrams, session.node_id, answer.response))
        return effects

    def next_timer(self) -> float | None:
        """When ``on_timer`` must run for ATTACH resends; peer timers and purging
        are driven by the server's periodic tick."""
        return self.attaches.next_deadline()

    def on_timer(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        # Expiry first: an indication toward a peer that has just expired is
        # ended (404 Target Gone), not resent.
        for peer_id in self.store.expired_peers(now, _EXPIRE_BATCH):
            effects += self._expire(peer_id, now)
        resend, expired = self.attaches.due(now)
        for pending in resend:
            effects.append(
                Transmit(pending.target_session, (pending.datagram,), pending.target_node)
            )
        for pending in expired:
            effects += self._finish_attach(pending, Reason.TARGET_DID_NOT_ACKNOWLEDGE, now)
        self.store.purge(now)
        if now - self._last_prune >= 10.0:
            self._last_prune = now
            self.rate_limiter.prune(now)
            self.registrations.prune(now)
        return effects

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    @staticmethod
    def _error(request: Request, reason: Reason) -> Response:
        return Response(status=reason.status, transaction_id=request.transaction_id, reason=reason)

    def _reply(self, session: Session, request: Request, reason: Reason) -> list[Effect]:
        self.answers[_METHOD_NAMES[request.method], reason.status] += 1
        """An uncached answer (the request is not attributable to the peer)."""
        data = encode_response(self._error(request, reason))
        return [Transmit(session.session_id, (data,), session.node_id)]

    def _budget(self, session: Session) -> int:
        """XML bytes per datagram on the path to ``session`` (PROTOCOL §4)."""
        if is_ipv6_path(session.address):
            return min(self.config.datagram_budget, self.config.ipv6_datagram_budget)
        return self.config.datagram_budget

    def _cache(
        self,
        request: Request,
        session: Session,
        digest: bytes,
        datagrams: tuple[bytes, ...] | None,
        now: float,
    ) -> None:
        self.store.cache_put(
            request.peer_id,
            request.transaction_id,
            CachedResponse(session.session_id, digest, datagrams),
            now + self.config.response_cache_ttl,
        )

    @staticmethod
    def _ok(
        request: Request,
        *,
        peers: tuple[PeerInfo, ...] = (),
        swarm_ids: tuple[str, ...] = (),
        keep_alive: int | None = None,
        turn_servers: tuple[TurnServer, ...] = (),
        reconnect_token: str | None = None,
    ) -> Response:
        return Response(
            status=Status.OK,
            transaction_id=request.transaction_id,
            reason=Reason.OK,
            peers=peers,
            swarm_ids=swarm_ids,
            keep_alive=keep_alive,
            turn_servers=turn_servers,
            reconnect_token=reconnect_token,
        )

    def _dispatch(
        self, request: Request, record: PeerRecord, session: Session, digest: bytes, now: float
    ) -> _Answer:
        method = request.method
        if method is Method.JOIN:
            return self._join(request, record, now)
        if method is Method.FIND:
            return self._find(request, record, now)
        if method is Method.STAT_REPORT:
            return self._stat_report(request, record, now)
        if method is Method.DISCONNECT:
            return self._disconnect(request, record, now)
        if method is Method.ATTACH:
            return self._attach(request, record, session, digest, now)
        if method is Method.ATTACH_ACK:
            return self._attach_ack(request, record, now)
        raise AssertionError(f"unhandled method {method}")  # pragma: no cover

    def _renew(self, record: PeerRecord, now: float) -> PeerRecord:
        """Restart the peer's timer: the track timer in TRACKING. In
        REGISTERED the init timer runs from CONNECT (or from leaving the
        last swarm) and nothing else renews it (PROTOCOL §3), so a peer that
        never joins is retired after ``init_timeout`` whatever it sends."""
        if record.memberships:
            return record.with_deadline(now + self.config.track_timeout)
        return record

    def _start_init_timer(self, record: PeerRecord, now: float) -> PeerRecord:
        return record.with_deadline(now + self.config.init_timeout)

    def _live_peer(self, peer_id: str, now: float) -> tuple[PeerRecord | None, list[Effect]]:
        """The peer's registration if its timer has not run out; an expired
        one is retired on the spot (with its effects)."""
        record = self.store.get_peer(peer_id)
        if record is None or record.deadline > now:
            return record, []
        return None, self._expire(peer_id, now)

    def _clean_offer(self, record: PeerRecord, mode: PeerMode, offer: IceOffer) -> IceOffer | None:
        """PROTOCOL §8 hygiene and caps, then trimmed (lowest priority candidates
        first) until the peer's PeerInfo carrying it fits one datagram."""
        clean = sanitize_offer(
            _typed_candidates(offer, self.config),
            lan_mode=self.config.lan_mode,
            max_candidates=self.config.max_candidates_per_offer,
        )
        # The smallest path's budget: an offer goes to IPv4 and IPv6 peers.
        limit = min(self.config.datagram_budget, self.config.ipv6_datagram_budget)
        limit -= _DOCUMENT_SKELETON
        while True:
            info = PeerInfo(record.peer_id, mode, (record.reflexive,), clean)
            if len(peer_info_xml(info).encode()) <= limit:
                return clean
            if not clean.candidates:
                return None  # credentials alone are too large: not usable
            worst = _least_needed(clean.candidates)
            clean = replace(clean, candidates=tuple(c for c in clean.candidates if c is not worst))

    def _peer_info(self, record: PeerRecord, mode: PeerMode, offer: IceOffer | None) -> PeerInfo:
        """How a peer is listed: its REFLEXIVE address, then either its offer or
        the HOST addresses it declared (the offer carries its own)."""
        reflexive = record.reflexive
        lead = (reflexive,) if reflexive.type is AddressType.REFLEXIVE else ()  # PROTOCOL §14.3
        if offer is not None:
            return PeerInfo(record.peer_id, mode, lead, offer)
        return PeerInfo(record.peer_id, mode, (*lead, *record.host_addresses))

    def _publish_offer(self, record: PeerRecord, offer: IceOffer | None, now: float) -> None:
        if offer is None:
            return
        mode = PeerMode.SEED  # the longest PeerMode text, for the size check
        clean = self._clean_offer(record, mode, offer)
        if clean is not None:
            self.store.push_offer(
                record.peer_id, clean, now + self.config.offer_ttl, self.config.offers_per_peer
            )
            # A relayed candidate makes the peer reachable through TURN (PROTOCOL §2.1).
            ability = nat_class(record.reflexive, record.host_addresses, clean.candidates)
            if record.nat_ability is not NatAbility.NO_NAT and ability is NatAbility.TURN:
                current = self.store.get_peer(record.peer_id) or record
                self.store.put_peer(replace(current, nat_ability=ability))

    def _want(self, request: Request) -> int:
        count = request.peer_num.count if request.peer_num else None
        if count is None:
            count = self.config.default_peer_num
        return max(0, min(count, self.config.max_peer_num))

    def _swarm_allowed(self, swarm_id: str) -> bool:
        allowed = self.config.allowed_swarms
        return allowed is None or swarm_id in allowed

    # ------------------------------------------------------------------
    # CONNECT / re-CONNECT (PROTOCOL §3, §8)
    # ------------------------------------------------------------------
    def _connect(
        self, request: Request, record: PeerRecord | None, session: Session, now: float
    ) -> _Answer:
        if record is not None and record.session_id == session.session_id:
            return _Answer(self._error(request, Reason.ALREADY_CONNECTED))
        previous = record or self.store.get_tombstone(request.peer_id, now)
        kept_token_hash: bytes | None = None
        if previous is not None and self.config.identity_mode == "open":
            token = request.reconnect_token
            presented = _digest(token.encode()) if token is not None else b""
            current_ok = _same(presented, previous.token_hash)
            if not (current_ok or _same(presented, previous.previous_token_hash)):
                reason = (
                    Reason.RECONNECT_TOKEN_REQUIRED if token is None else Reason.BAD_RECONNECT_TOKEN
                )
                return _Answer(self._error(request, reason), cache=False)
            # Presenting the newest token proves its answer arrived: the one
            # before it retires. Otherwise the client never saw the newest.
            kept_token_hash = previous.token_hash if current_ok else previous.previous_token_hash

        refused = self._sybil_refusal(request.peer_id, session, now)
        if refused is not None:
            return _Answer(self._error(request, refused), cache=False)

        token = self._token() if self.config.identity_mode == "open" else None
        reflexive = reflexive_address(session.address)
        if session.transport != "udp":
            # PROTOCOL §14.3: a TCP source is no UDP candidate; it is kept for
            # the per-source caps but never listed.
            reflexive = replace(reflexive, type=AddressType.PROXY)
        hosts = host_addresses(
            request.addresses,
            lan_mode=self.config.lan_mode,
            tracker_addresses=self.config.tracker_addresses,
        )
        hosts = hosts[: self.config.max_host_addresses]
        restored = tuple(
            m
            for m in (previous.memberships if previous is not None else ())
            if self._swarm_allowed(m.swarm_id)
        )
        new = PeerRecord(
            peer_id=request.peer_id,
            session_id=session.session_id,
            reflexive=reflexive,
            connected_at=now,
            deadline=now,
            host_addresses=hosts,
            nat_ability=nat_class(reflexive, request.addresses[: self.config.max_host_addresses]),
            token_hash=_digest(token.encode()) if token is not None else None,
            previous_token_hash=kept_token_hash,
            node_id=session.node_id,
            memberships=restored,
            stream_stats=previous.stream_stats if previous is not None else (),
            content_maps=previous.content_maps if previous is not None else (),
        )
        # Offers were gathered from the old socket: they are stale now.
        self.store.clear_offers(request.peer_id)
        for membership in restored:
            self.store.add_member(membership.swarm_id, request.peer_id, membership.mode)
        if restored:
            new = self._renew(new, now)
        elif record is not None:
            new = replace(new, deadline=record.deadline)  # PROTOCOL §3: timers kept
        else:
            new = self._start_init_timer(new, now)
        self.store.put_peer(new)
        self.store.delete_tombstone(request.peer_id)
        self.registrations.add(
            request.peer_id, session.session_id, source_key(reflexive.ip), new.deadline
        )

        turn = turn_servers(self.config.turn, request.peer_id, now) if self.config.turn else ()
        response = self._ok(
            request,
            peers=(
                (PeerInfo(addresses=(reflexive,)),)
                if reflexive.type is AddressType.REFLEXIVE
                else ()
            ),
            keep_alive=self.config.keep_alive,
            turn_servers=turn,
            reconnect_token=token,
        )
        room = self._budget(session)
        response = replace(response, swarm_ids=self._fitting_swarm_ids(response, restored, room))
        # Its own ATTACHes in flight are dropped: their answers would go to the
        # old session, and they would block the retry as Target Busy.
        self.attaches.drop_requested_by(request.peer_id)
        # Introductions on their way to this peer follow it to its new session.
        resend = tuple(
            Transmit(p.target_session, (p.datagram,), p.target_node)
            for p in self.attaches.retarget(request.peer_id, session.session_id, session.node_id)
        )
        return _Answer(response, effects=resend)

    def _sybil_refusal(self, peer_id: str, session: Session, now: float) -> Reason | None:
        """PROTOCOL §8: a cap on Peer-IDs per DTLS association and per source
        address (mutual mode: one Peer-ID per certificate already). Only
        registrations still live count."""
        config = self.config
        index = self.registrations
        cap = config.max_peers_per_session
        if index.on_session(session.session_id, peer_id, now, cap) >= cap:
            return Reason.TOO_MANY_PEER_IDS_ON_ASSOCIATION
        source = source_key(session.address[0])
        cap = config.max_peers_per_source
        if index.from_source(source, peer_id, now, cap) >= cap:
            return Reason.TOO_MANY_PEER_IDS_FROM_ADDRESS
        return None

    @staticmethod
    def _fitting_swarm_ids(
        response: Response, restored: tuple[Membership, ...], budget: int
    ) -> tuple[str, ...]:
        """The restored swarms that fit the datagram budget (all are restored;
        the list is what the CONNECT response can carry, PROTOCOL §4)."""
        room = budget - len(encode_response(response))
        listed = []
        for membership in restored:
            room -= len(membership.swarm_id) + len("<SwarmID></SwarmID>")
            if room < 0:
                break
            listed.append(membership.swarm_id)
        return tuple(listed)

    # ------------------------------------------------------------------
    # JOIN / FIND (PROTOCOL §3, §6)
    # ------------------------------------------------------------------
    def _join(self, request: Request, record: PeerRecord, now: float) -> _Answer:
        swarm_id = request.swarm_id
        assert swarm_id is not None  # the codec requires it for JOIN
        if not self._swarm_allowed(swarm_id):
            return _Answer(self._error(request, Reason.UNKNOWN_SWARM))
        existing = record.membership(swarm_id)
        # An omitted PeerMode keeps the current one on a re-JOIN (a SEED
        # refreshing its start point stays a SEED); a first JOIN is LEECH.
        mode = request.peer_mode or (existing.mode if existing is not None else PeerMode.LEECH)
        if existing is None and len(record.memberships) >= self.config.max_swarms_per_peer:
            return _Answer(self._error(request, Reason.TOO_MANY_SWARMS))
        content = request.content[: self.config.max_content_entries]
        if existing is not None and not content:
            content = existing.content
        membership = Membership(
            # One string per swarm, not one per member (the parser makes a
            # new one for every request).
            swarm_id=sys.intern(swarm_id),
            mode=mode,
            content=content,
            joined_at=existing.joined_at if existing is not None else now,
        )
        others = tuple(m for m in record.memberships if m.swarm_id != swarm_id)
        record = self._renew(replace(record, memberships=(*others, membership)), now)
        self.store.add_member(swarm_id, record.peer_id, mode)
        self.store.put_peer(record)
        self._publish_offer(record, request.ice_offer, now)

        peers: tuple[PeerInfo, ...] = ()
        encoded: tuple[bytes, ...] | None = None
        if mode is PeerMode.LEECH or request.peer_num is not None:
            peers, encoded = self._peer_list(request, record, swarm_id, mode, now)
        response = self._ok(request, swarm_ids=(swarm_id,), peers=peers)
        return _Answer(response, encoded_peers=encoded)

    def _find(self, request: Request, record: PeerRecord, now: float) -> _Answer:
        swarm_id = request.swarm_id
        assert swarm_id is not None
        membership = record.membership(swarm_id)
        if membership is None:
            return _Answer(self._error(request, Reason.NOT_JOINED))
        record = self._renew(record, now)
        self.store.put_peer(record)
        peers, encoded = self._peer_list(request, record, swarm_id, membership.mode, now)
        response = self._ok(request, swarm_ids=(swarm_id,), peers=peers)
        return _Answer(response, encoded_peers=encoded)

    def _peer_list(
        self, request: Request, record: PeerRecord, swarm_id: str, mode: PeerMode, now: float
    ) -> tuple[tuple[PeerInfo, ...], tuple[bytes, ...]]:
        """The listed peers, and each one's encoded PeerInfo."""
        prefs = Preferences(
            requester_mode=mode,
            chunk_ranges=chunk_ranges_of(request.content),
            nat=request.peer_num.ability_nat if request.peer_num else None,
        )
        want = self._want(request)
        per_source = max(1, math.ceil(want * self.config.max_source_share))
        chosen = select_peers(self.store, swarm_id, record.peer_id, want, prefs, now, per_source)
        infos = []
        encoded = []
        listing = self.listings.listing
        take_offer = self.store.take_offer
        for other, membership in chosen:
            offer = take_offer(other.peer_id, now)
            if offer is None:
                info, data = listing(other, membership.mode)
            else:
                # The offer is now this requester's alone (PROTOCOL §6).
                self.store.put_grant(
                    OfferGrant(other.peer_id, offer.id, record.peer_id),
                    now + self.config.offer_ttl,
                )
                info = self._peer_info(other, membership.mode, offer)
                data = peer_info_xml(info).encode("utf-8")
            infos.append(info)
            encoded.append(data)
        return tuple(infos), tuple(encoded)

    # ------------------------------------------------------------------
    # STAT_REPORT (PROTOCOL §3, draft-07 §8.5)
    # ------------------------------------------------------------------
    def _stat_report(self, request: Request, record: PeerRecord, now: float) -> _Answer:
        if request.stats:
            joined = set(record.swarm_ids)
            stream = {s.swarm_id: s for s in record.stream_stats}
            maps = {(sid, rep.id): rep for sid, rep in record.content_maps}
            for stat in request.stats:
                if stat.swarm_id not in joined:
                    continue  # statistics for swarms the peer is not in are ignored
                if isinstance(stat, StreamStatistics):
                    stream[stat.swarm_id] = stat
                elif isinstance(stat, ContentMap):
                    for rep in stat.representations:
                        maps[(stat.swarm_id, rep.id)] = rep
            limit = self.config.max_content_entries
            kept_maps = list(maps.items())[-limit:]
            record = replace(
                record,
                stream_stats=tuple(stream.values())[-limit:],
                content_maps=tuple((sid, rep) for (sid, _), rep in kept_maps),
            )
        self.store.put_peer(self._renew(record, now))
        self._publish_offer(record, request.ice_offer, now)
        return _Answer(self._ok(request))

    def _keep_alive(
        self, request: Request, record: PeerRecord, session: Session, digest: bytes, now: float
    ) -> list[Effect]:
        """A STAT_REPORT with neither statistics nor an offer, from a TRACKING
        peer: what ``_stat_report`` and ``handle_request`` do for it (the
        timer restarts, the Sybil index follows, the bare 200 is cached),
        with the answer built from a template instead of a Response."""
        record = self._renew(record, now)
        self.store.put_peer(record)
        self.registrations.touch(record.peer_id, session.session_id, record.deadline)
        self.answers["STAT_REPORT", Status.OK] += 1
        datagrams = (bare_response(Status.OK, Reason.OK, request.transaction_id),)
        self._cache(request, session, digest, datagrams, now)
        return [Transmit(session.session_id, datagrams, session.node_id)]

    # ------------------------------------------------------------------
    # DISCONNECT (PROTOCOL §3, draft-07 §8.2)
    # ------------------------------------------------------------------
    def _disconnect(self, request: Request, record: PeerRecord, now: float) -> _Answer:
        swarm_id = request.swarm_id
        if swarm_id == SWARM_NIL:
            gone = self._forget(record, now)
            self.store.delete_tombstone(record.peer_id)
            return _Answer(self._ok(request), effects=tuple(gone))
        if swarm_id == SWARM_ALL:
            leaving = record.swarm_ids
        elif swarm_id is None or record.membership(swarm_id) is None:
            return _Answer(self._error(request, Reason.NOT_JOINED))
        else:
            leaving = (swarm_id,)
        for sid in leaving:
            self.store.remove_member(sid, record.peer_id)
        was_tracking = bool(record.memberships)
        record = replace(
            record,
            memberships=tuple(m for m in record.memberships if m.swarm_id not in leaving),
            stream_stats=tuple(x for x in record.stream_stats if x.swarm_id not in leaving),
            content_maps=tuple(x for x in record.content_maps if x[0] not in leaving),
        )
        if record.memberships:
            record = self._renew(record, now)
        elif was_tracking:
            record = self._start_init_timer(record, now)  # TRACKING -> REGISTERED
        # else: DISCONNECT ALL in REGISTERED, the init timer keeps running.
        self.store.put_peer(record)
        gone = self._end_attaches(record.peer_id, now, swarms=set(leaving))
        return _Answer(self._ok(request), effects=tuple(gone))

    def _forget(self, record: PeerRecord, now: float) -> list[Effect]:
        """Remove a peer from every swarm and its registration; introductions
        on their way to it end with 404 (PROTOCOL §6: "404 if B is gone")."""
        for sid in record.swarm_ids:
            self.store.remove_member(sid, record.peer_id)
        self.store.clear_offers(record.peer_id)
        self.store.delete_peer(record.peer_id)
        self.registrations.remove(record.peer_id)
        self.listings.forget(record.peer_id)
        return self._end_attaches(record.peer_id, now)

    def _end_attaches(
        self, peer_id: str, now: float, swarms: set[str] | None = None
    ) -> list[Effect]:
        effects: list[Effect] = []
        for pending in self.attaches.targeting(peer_id):
            if swarms is None or pending.swarm_id in swarms:
                self.attaches.pop(pending.indication_id)
                effects += self._finish_attach(pending, Reason.TARGET_GONE, now)
        return effects

    def _expire(self, peer_id: str, now: float) -> list[Effect]:
        record = self.store.get_peer(peer_id)
        if record is None or record.deadline > now:
            return []
        effects: list[Effect] = [PeerExpired(peer_id, record.session_id)]
        effects += self._forget(record, now)
        # PROTOCOL §3: a re-CONNECT within one track timeout restores everything.
        self.store.put_tombstone(record, now + self.config.track_timeout)
        return effects

    # ------------------------------------------------------------------
    # ATTACH / ATTACH_ACK (PROTOCOL §6)
    # ------------------------------------------------------------------
    def _attach(
        self, request: Request, record: PeerRecord, session: Session, digest: bytes, now: float
    ) -> _Answer:
        swarm_id, target_id = request.swarm_id, request.target_peer_id
        assert swarm_id is not None and target_id is not None  # required by the codec
        own = record.membership(swarm_id)
        if own is None:
            return _Answer(self._error(request, Reason.NOT_JOINED))
        if target_id == record.peer_id:
            return _Answer(self._error(request, Reason.CANNOT_ATTACH_TO_SELF))
        if self.draining:
            return _Answer(self._error(request, Reason.SHUTTING_DOWN), cache=False)
        target, expired = self._live_peer(target_id, now)
        if target is None or target.membership(swarm_id) is None:
            error = self._error(request, Reason.TARGET_NOT_FOUND)
            return _Answer(error, effects=tuple(expired))
        in_flight = self.attaches.targeting(target_id)
        if len(in_flight) >= self.config.max_attaches_per_target or any(
            p.requester_id == record.peer_id for p in in_flight
        ):
            # Bounded introductions toward one peer (PROTOCOL §8); not cached.
            return _Answer(self._error(request, Reason.TARGET_BUSY), cache=False)
        if request.offer_id is not None:
            grant = self.store.take_grant(target_id, request.offer_id, record.peer_id, now)
            if grant is None:
                return _Answer(self._error(request, Reason.OFFER_NOT_FOUND))
        offer = request.ice_offer
        if offer is not None:
            offer = self._clean_offer(record, own.mode, offer)
        indication = Indication(
            transaction_id=self._token(),
            swarm_id=swarm_id,
            offer_id=request.offer_id,
            peer=self._peer_info(record, own.mode, offer),
        )
        if offer is not None and request.offer_id is None:
            # A fresh offer (the reverse path): only the target may answer it.
            self.store.put_grant(
                OfferGrant(record.peer_id, offer.id, target_id), now + self.config.offer_ttl
            )
        datagram = encode_indication(indication)
        self.attaches.add(
            PendingAttach(
                indication_id=indication.transaction_id,
                swarm_id=swarm_id,
                requester_id=record.peer_id,
                requester_session=session.session_id,
                requester_node=session.node_id,
                request_transaction_id=request.transaction_id,
                request_digest=digest,
                target_id=target_id,
                target_session=target.session_id,
                target_node=target.node_id,
                datagram=datagram,
                started_at=now,
                next_resend_at=self.attaches.first_resend_at(now),
                requester_budget=self._budget(session),
            )
        )
        if target.node_id != session.node_id:
            # Its ATTACH_ACK arrives at the target's node: relayed here (PROTOCOL §9).
            self.store.put_indication(
                target_id,
                indication.transaction_id,
                session.node_id,
                now + self.config.attach_timeout,
            )
        self.store.put_peer(self._renew(record, now))
        send = Transmit(target.session_id, (datagram,), target.node_id)
        return _Answer(None, effects=(send,))

    def _attach_ack(self, request: Request, record: PeerRecord, now: float) -> _Answer:
        pending = self.attaches.get(request.indication_id or "")
        if pending is None and request.indication_id is not None:
            origin = self.store.take_indication(record.peer_id, request.indication_id, now)
            if origin is not None:
                self.store.put_peer(self._renew(record, now))
                relay = AckRelayed(origin, request.indication_id, record.peer_id)
                return _Answer(self._ok(request), effects=(relay,))
        if pending is None or pending.target_id != record.peer_id:
            return _Answer(self._error(request, Reason.INDICATION_NOT_FOUND))
        self.attaches.pop(pending.indication_id)
        self.store.put_peer(self._renew(record, now))
        effects = self._finish_attach(pending, Reason.OK, now)
        return _Answer(self._ok(request), effects=tuple(effects))

    def on_remote_ack(self, indication_id: str, peer_id: str, now: float) -> list[Effect]:
        """Another node received ``peer_id``'s ATTACH_ACK for an ATTACH taken
        here (``AckRelayed``): the requester gets its 200."""
        pending = self.attaches.get(indication_id)
        if pending is None or pending.target_id != peer_id:
            return []
        self.attaches.pop(indication_id)
        return self._finish_attach(pending, Reason.OK, now)

    def _finish_attach(self, pending: PendingAttach, reason: Reason, now: float) -> list[Effect]:
        """Answer the requester of an ATTACH, and cache that answer."""
        status = reason.status
        self.answers["ATTACH", status] += 1
        self.recent_introductions.append(
            Introduction(
                now, pending.swarm_id, pending.requester_id, pending.target_id, status, reason
            )
        )
        response = Response(
            status=reason.status,
            transaction_id=pending.request_transaction_id,
            reason=reason,
            swarm_ids=(pending.swarm_id,) if reason is Reason.OK else (),
        )
        datagrams = tuple(encode_response_datagrams(response, pending.requester_budget))
        self.store.cache_put(
            pending.requester_id,
            pending.request_transaction_id,
            CachedResponse(pending.requester_session, pending.request_digest, datagrams),
            now + self.config.response_cache_ttl,
        )
        return [Transmit(pending.requester_session, datagrams, pending.requester_node, response)]


__all__ = ["Introduction", "PeerState", "Tracker"]
