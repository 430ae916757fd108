"""The tracker client as a pure state machine (PROTOCOL §3, §4, §6, §8).

Theory of operation
-------------------
``TrackerConnection`` is the client side of the PPSP tracker protocol with
no sockets, no DTLS, no asyncio and no clock: like aioquic's
``QuicConnection``, the shell around it

* submits work (``submit_connect``, ``submit``) and gets a handle back;
* sends every document ``datagrams_to_send()`` returns over the current
  DTLS association, and feeds every decrypted document to ``receive``;
* keeps one timer armed at ``next_timer()`` and calls ``on_timer``;
* reads ``events()``: a request finished (``RequestCompleted`` /
  ``RequestFailed``), an indication arrived (``IndicationReceived``), the
  client re-CONNECTed (``Reconnected``), or the machine wants a new DTLS
  association to tracker number N (``AssociationWanted``), which the shell
  answers with ``association_ready`` or ``association_failed``; a session
  that dies later is reported with ``association_lost``.

The transaction rules (PROTOCOL §4): every request gets a fresh random
TransactionID; one request is outstanding at a time (the others queue), and
it is resent byte-identical at RTO 0.5 s doubling, 5 tries. When a round of
tries goes unanswered the same bytes go out for another round on the same
association (the tracker's response cache answers a request it already
executed, so nothing runs twice) before the association is given up. A
first CONNECT (no ReconnectToken yet) gets more rounds: if its answer is
lost, a CONNECT from a new association would be refused for want of the
token it carried. Multi-part responses are merged once every part arrived,
or ``part_grace`` after the first part (any part alone is usable).

Indications (PROTOCOL §6) are acknowledged at once with an ATTACH_ACK beside the
outstanding request (the other side may be waiting for ours while we wait
for theirs), each with its own byte-identical retransmission; a repeated
indication is acknowledged again but reported once.

Recovery (PROTOCOL §3 re-CONNECT, §8): once connected, a request that gets no
answer, or ``401 PeerID Not Owned`` (our association was replaced), leads
to a new association and a re-CONNECT with the ReconnectToken (open mode;
the certificate proves the Peer-ID in mutual mode); ``403 Not Connected``
(our registration expired) leads to a re-CONNECT over the same association.
The request is then retried once with a fresh TransactionID. "No answer"
moves to the next configured tracker (failover, PROTOCOL §9): the shared store
there restores every swarm; swarms the response does not list are joined
again. A keep-alive STAT_REPORT goes out every KeepAlive seconds while the
peer is in a swarm.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

from stunlike_tracker.ppsp import (
    PpspError,
    encode_request,
    merge_response_parts,
    parse_message_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    SWARM_ALL,
    SWARM_NIL,
    Indication,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    Response,
    Status,
)
from stunlike_tracker.ppsp.reasons import Reason


@dataclass(frozen=True)
class ConnectionSettings:
    rto: float = field(
        default=0.5, metadata={"doc": "first retransmission timeout, s (PROTOCOL §4)"}
    )
    tries: int = field(default=5, metadata={"doc": "sends of one request per round (PROTOCOL §4)"})
    rounds: int = field(
        default=2,
        metadata={"doc": "rounds of byte-identical tries on one association before a new one"},
    )
    first_connect_rounds: int = field(
        default=3,
        metadata={
            "doc": "rounds for a CONNECT without ReconnectToken (stays within the cache TTL)"
        },
    )
    part_grace: float = field(
        default=0.3, metadata={"doc": "wait for missing parts of a multi-part response, s"}
    )
    auto_reconnect: bool = field(
        default=True, metadata={"doc": "re-CONNECT by itself when the association is lost"}
    )
    association_attempts: int = field(
        default=2, metadata={"doc": "handshake attempts per configured tracker when recovering"}
    )
    keep_alives: bool = field(
        default=True, metadata={"doc": "send a STAT_REPORT every KeepAlive s while in a swarm"}
    )
    default_keep_alive: float = field(
        default=25.0, metadata={"doc": "keep-alive period when the tracker gives none, s"}
    )
    seen_indications: int = field(
        default=1024, metadata={"doc": "indication TransactionIDs remembered to report once"}
    )


# ----------------------------------------------------------------------
# events
# ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestCompleted:
    """Work submitted under ``handle`` got this (merged) response."""

    handle: int
    response: Response


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """Work submitted under ``handle`` failed: no answer (``response`` None),
    or the tracker refused a CONNECT."""

    handle: int
    message: str
    response: Response | None = None


@dataclass(frozen=True, slots=True)
class IndicationReceived:
    indication: Indication


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A re-CONNECT succeeded; the tracker dropped our unused ICE offers."""

    response: Response


@dataclass(frozen=True, slots=True)
class AssociationWanted:
    """Close the current association (if any) and open one to this tracker
    (an index into the shell's tracker list)."""

    tracker: int


Event = RequestCompleted | RequestFailed | IndicationReceived | Reconnected | AssociationWanted


# ----------------------------------------------------------------------
# internals
# ----------------------------------------------------------------------
class _NoAnswer(Exception):
    """The tracker did not answer (or no association could be had)."""


class _Refused(Exception):
    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True, slots=True)
class _Send:
    request: Request
    rounds: int


@dataclass(frozen=True, slots=True)
class _NewAssociation:
    next_tracker: bool


_Step = _Send | _NewAssociation
_Job = Generator[_Step, Response | None, Response]


@dataclass
class _Exchange:
    """One request on the wire: its bytes, retransmission state and parts."""

    method: str
    transaction_id: str
    data: bytes
    deadline: float
    rto: float
    tries_left: int
    rounds_left: int
    parts: dict[int, Response] = field(default_factory=dict)
    count: int | None = None
    sent: int = 1


@dataclass
class _Work:
    handle: int | None  # None: the machine's own (keep-alive)
    job: _Job


def new_transaction_id() -> str:
    return secrets.token_hex(8)


class TrackerConnection:
    def __init__(
        self,
        peer_id: str,
        settings: ConnectionSettings | None = None,
        *,
        trackers: int = 1,
        transaction_ids: Callable[[], str] = new_transaction_id,
    ) -> None:
        self.peer_id = peer_id
        self.settings = settings or ConnectionSettings()
        self.trackers = max(1, trackers)
        self._new_id = transaction_ids
        # Registration, as the tracker told us.
        self.reconnect_token: str | None = None
        self.keep_alive: int | None = None
        self.reflexive: PeerAddress | None = None
        self.last_connect: Response | None = None
        self.reconnects = 0
        # Swarms we joined, with mode and start point, to join again after a
        # re-CONNECT that did not restore them (a tracker that lost its state).
        self.joined: dict[str, tuple[PeerMode, tuple[Representation, ...]]] = {}
        self.addresses: tuple[PeerAddress, ...] = ()
        # The tracker (index) of the current or wanted association.
        self.tracker = 0
        self.associated = False
        self.closed = False
        self._opening = False
        self._attempts_left = 0
        self._queue: deque[_Work] = deque()
        self._work: _Work | None = None
        self._exchange: _Exchange | None = None
        self._acks: dict[str, _Exchange] = {}  # by the indication's TransactionID
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._outbox: list[bytes] = []
        self._events: list[Event] = []
        self._handles = 0
        self._keepalive_at: float | None = None

    # ------------------------------------------------------------------
    # the shell's side
    # ------------------------------------------------------------------
    def datagrams_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        deadlines = [e.deadline for e in self._acks.values()]
        if self._exchange is not None:
            deadlines.append(self._exchange.deadline)
        if self._keepalive_at is not None:
            deadlines.append(self._keepalive_at)
        return min(deadlines, default=None)

    def on_timer(self, now: float) -> None:
        for key, ack in list(self._acks.items()):
            if ack.deadline <= now and not self._retransmit(ack, now):
                del self._acks[key]  # the tracker resends the indication if it cares
        exchange = self._exchange
        if exchange is not None and exchange.deadline <= now:
            if exchange.parts:
                self._finish_exchange(now)  # part_grace is over: merge what came
            elif not self._retransmit(exchange, now):
                self._exchange = None
                self._throw(
                    _NoAnswer(f"no answer to {exchange.method} after {exchange.sent} tries"), now
                )
        if self._keepalive_at is not None and self._keepalive_at <= now:
            self._keepalive_at = now + self._keepalive_period()
            idle = self._work is None and not self._queue and not self.closed
            if self.joined and idle and self.settings.keep_alives:
                keep_alive = Request(Method.STAT_REPORT, self.peer_id, "")
                self._enqueue(None, self._request_job(keep_alive, True), now)

    def association_ready(self, now: float) -> None:
        """The association asked for with ``AssociationWanted`` is up."""
        self._opening = False
        self.associated = True
        self._resume(None, now)

    def association_failed(self, reason: str, now: float) -> None:
        """The association asked for could not be opened: try the next
        tracker, within the attempts left."""
        self._opening = False
        self.associated = False
        self._attempts_left -= 1
        if self._attempts_left > 0 and not self.closed:
            self.tracker = (self.tracker + 1) % self.trackers
            self._want_association()
            return
        self._throw(_NoAnswer(reason), now)

    def association_lost(self, reason: str, now: float) -> None:
        """The current association died (tracker closed it, socket error)."""
        if not self.associated:
            return
        self.associated = False
        self._acks.clear()
        if self._exchange is not None:
            self._exchange = None
            self._throw(_NoAnswer(f"association lost: {reason}"), now)

    def receive(self, data: bytes, now: float) -> None:
        """One decrypted document from the tracker."""
        try:
            message = parse_message_untrusted(data)
        except PpspError:
            return
        if isinstance(message, Indication):
            self._on_indication(message, now)
        elif isinstance(message, Response):
            self._on_response(message, now)

    def close(self, now: float) -> None:
        """Stop: queued and outstanding work fails; nothing is sent again."""
        self.closed = True
        self._keepalive_at = None
        self._acks.clear()
        self._exchange = None
        while self._queue:
            work = self._queue.popleft()
            work.job.close()
            self._report(work, RequestFailed(work.handle or 0, "the client is closed"))
        if self._work is not None:
            self._throw(_NoAnswer("the client is closed"), now)

    # ------------------------------------------------------------------
    # the application's side
    # ------------------------------------------------------------------
    def submit_connect(self, addresses: tuple[PeerAddress, ...], now: float) -> int:
        """CONNECT (opening an association first when there is none)."""
        self.addresses = addresses
        return self._enqueue_new(self._connect_job(), now)

    def submit_reconnect(self, now: float) -> int:
        """re-CONNECT from a new association (new DTLS session, new NAT mapping)."""
        return self._enqueue_new(self._reconnect_job(), now)

    def submit(self, request: Request, now: float, *, reconnect: bool | None = None) -> int:
        """Any other request (its TransactionID is replaced by a fresh one)."""
        allow = self.settings.auto_reconnect if reconnect is None else reconnect
        return self._enqueue_new(self._request_job(request, allow), now)

    @property
    def swarms(self) -> set[str]:
        return set(self.joined)

    # ------------------------------------------------------------------
    # jobs: generators that yield what to send, get the responses back
    # ------------------------------------------------------------------
    def _connect_job(self) -> _Job:
        if not self.associated:
            yield _NewAssociation(next_tracker=False)
        for attempt in range(self.trackers):
            try:
                if attempt:
                    yield _NewAssociation(next_tracker=True)
                return (yield from self._connect_steps())
            except _NoAnswer:
                if attempt == self.trackers - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _reconnect_job(self) -> _Job:
        return (yield from self._reconnect(new_association=True, next_tracker=False))

    def _request_job(self, request: Request, allow: bool) -> _Job:
        # A closed client never registers again behind its owner's back.
        allow = allow and not self.closed and self.last_connect is not None
        try:
            response = yield from self._ask(self._send(request))
        except _NoAnswer:
            if not allow:
                raise
            yield from self._reconnect(new_association=True, next_tracker=True)
            response = yield from self._ask(self._send(_retried(request)))
        else:
            if allow and _is(response, Reason.PEER_ID_NOT_OWNED):
                # Our association was replaced (a NAT rebinding on our side).
                yield from self._reconnect(new_association=True, next_tracker=False)
                response = yield from self._ask(self._send(_retried(request)))
            elif allow and _is(response, Reason.NOT_CONNECTED):
                # Our registration expired: the token restores it (tombstone).
                yield from self._reconnect(new_association=False, next_tracker=False)
                response = yield from self._ask(self._send(_retried(request)))
        self._note(request, response)
        return response

    def _reconnect(
        self, *, new_association: bool, next_tracker: bool
    ) -> Generator[_Step, Response | None, Response]:
        if self.closed:
            raise _NoAnswer("the client is closed")
        if new_association or not self.associated:
            yield _NewAssociation(next_tracker=next_tracker)
        self.reconnects += 1
        response = yield from self._connect_steps()
        self._events.append(Reconnected(response))
        return response

    def _connect_steps(self) -> Generator[_Step, Response | None, Response]:
        response = yield from self._ask(self._connect_request())
        if _is(response, Reason.ALREADY_CONNECTED) and self.last_connect is None:
            # Our first CONNECT ran, but its answer (and token) outlived the
            # response cache unseen: leave and register again on this session.
            nil = Request(Method.DISCONNECT, self.peer_id, "", swarm_id=SWARM_NIL)
            yield from self._ask(self._send(nil))
            response = yield from self._ask(self._connect_request())
        if response.status != Status.OK:
            raise _Refused(
                f"CONNECT failed: {response.status} {response.status_text} ({response.reason})",
                response,
            )
        self.last_connect = response
        if response.reconnect_token is not None:
            self.reconnect_token = response.reconnect_token
        self.keep_alive = response.keep_alive
        for info in response.peers:
            for address in info.addresses:
                self.reflexive = address
        for swarm_id in [s for s in self.joined if s not in response.swarm_ids]:
            mode, content = self.joined[swarm_id]
            join = Request(
                Method.JOIN,
                self.peer_id,
                "",
                swarm_id=swarm_id,
                peer_mode=mode,
                peer_num=PeerNum(0),
                content=content,
            )
            joined = yield from self._ask(self._send(join))
            if joined.status != Status.OK:
                del self.joined[swarm_id]
        return response

    @staticmethod
    def _ask(send: _Send) -> Generator[_Step, Response | None, Response]:
        response = yield send
        assert response is not None  # a _Send is resumed with its response
        return response

    def _connect_request(self) -> _Send:
        request = Request(
            Method.CONNECT,
            self.peer_id,
            self._new_id(),
            addresses=self.addresses,
            reconnect_token=self.reconnect_token,
        )
        rounds = self.settings.rounds
        if self.reconnect_token is None:
            rounds = max(rounds, self.settings.first_connect_rounds)
        return _Send(request, rounds)

    def _send(self, request: Request) -> _Send:
        return _Send(replace(request, transaction_id=self._new_id()), self.settings.rounds)

    def _note(self, request: Request, response: Response) -> None:
        """What a successful request changes in the registration."""
        if response.status != Status.OK:
            return
        method, swarm_id = request.method, request.swarm_id
        if method is Method.JOIN and swarm_id is not None:
            self.joined[swarm_id] = (request.peer_mode or PeerMode.LEECH, request.content)
        elif method is Method.DISCONNECT and swarm_id is not None:
            if swarm_id in (SWARM_ALL, SWARM_NIL):
                self.joined.clear()
            else:
                self.joined.pop(swarm_id, None)
            if swarm_id == SWARM_NIL:
                # We left the system: nothing to recover until CONNECT again.
                self.reconnect_token = None
                self.last_connect = None
                self._keepalive_at = None

    # ------------------------------------------------------------------
    # driving the jobs
    # ------------------------------------------------------------------
    def _enqueue_new(self, job: _Job, now: float) -> int:
        self._handles += 1
        self._enqueue(self._handles, job, now)
        return self._handles

    def _enqueue(self, handle: int | None, job: _Job, now: float) -> None:
        work = _Work(handle, job)
        if self.closed:
            job.close()
            self._report(work, RequestFailed(handle or 0, "the client is closed"))
            return
        self._queue.append(work)
        self._next(now)

    def _next(self, now: float) -> None:
        while self._work is None and self._queue:
            self._work = self._queue.popleft()
            self._resume(None, now)

    def _resume(self, value: Response | None, now: float) -> None:
        self._step(lambda job: job.send(value), now)

    def _throw(self, error: Exception, now: float) -> None:
        self._step(lambda job: job.throw(error), now)

    def _step(self, advance: Callable[[_Job], _Step], now: float) -> None:
        work = self._work
        if work is None:
            return
        try:
            step = advance(work.job)
        except StopIteration as done:
            self._finish_work(work, RequestCompleted(work.handle or 0, done.value), now)
            return
        except _NoAnswer as error:
            self._finish_work(work, RequestFailed(work.handle or 0, str(error)), now)
            return
        except _Refused as error:
            failed = RequestFailed(work.handle or 0, str(error), error.response)
            self._finish_work(work, failed, now)
            return
        if isinstance(step, _NewAssociation):
            if step.next_tracker:
                self.tracker = (self.tracker + 1) % self.trackers
            self._attempts_left = self.settings.association_attempts * self.trackers
            self.associated = False
            self._acks.clear()
            self._want_association()
            return
        if not self.associated or self.closed:
            self._throw(_NoAnswer("association lost"), now)
            return
        data = encode_request(step.request)
        rto = self.settings.rto
        self._exchange = _Exchange(
            step.request.method.value,
            step.request.transaction_id,
            data,
            now + rto,
            rto,
            self.settings.tries - 1,
            step.rounds - 1,
        )
        self._outbox.append(data)

    def _want_association(self) -> None:
        self._opening = True
        self._events.append(AssociationWanted(self.tracker))

    def _finish_work(
        self, work: _Work, event: RequestCompleted | RequestFailed, now: float
    ) -> None:
        self._work = None
        self._exchange = None
        connected = self.last_connect is not None and not self.closed
        if isinstance(event, RequestCompleted) and connected and self._keepalive_at is None:
            self._keepalive_at = now + self._keepalive_period()
        self._report(work, event)
        self._next(now)

    def _report(self, work: _Work, event: RequestCompleted | RequestFailed) -> None:
        if work.handle is not None:
            self._events.append(event)

    def _keepalive_period(self) -> float:
        return float(self.keep_alive or self.settings.default_keep_alive)

    # ------------------------------------------------------------------
    # the wire
    # ------------------------------------------------------------------
    def _retransmit(self, exchange: _Exchange, now: float) -> bool:
        """Resend the same bytes (PROTOCOL §4); False once every try is spent."""
        if exchange.tries_left > 0:
            exchange.tries_left -= 1
            exchange.rto *= 2
        elif exchange.rounds_left > 0:
            # Another round on the same association: the response cache
            # answers if the request ran and only its answer was lost.
            exchange.rounds_left -= 1
            exchange.tries_left = self.settings.tries - 1
            exchange.rto = self.settings.rto
        else:
            return False
        exchange.deadline = now + exchange.rto
        exchange.sent += 1
        self._outbox.append(exchange.data)
        return True

    def _on_response(self, response: Response, now: float) -> None:
        exchange = self._exchange
        if exchange is None or exchange.transaction_id != response.transaction_id:
            for key, ack in list(self._acks.items()):
                if ack.transaction_id == response.transaction_id:
                    del self._acks[key]
            return  # an acknowledgement's answer, or a late one
        index = response.part.index if response.part is not None else 0
        exchange.count = response.part.count if response.part is not None else 1
        exchange.parts[index] = response
        if len(exchange.parts) >= exchange.count:
            self._finish_exchange(now)
        elif len(exchange.parts) == 1:
            exchange.deadline = now + self.settings.part_grace

    def _finish_exchange(self, now: float) -> None:
        exchange = self._exchange
        assert exchange is not None
        self._exchange = None
        parts = [exchange.parts[i] for i in sorted(exchange.parts)]
        response = parts[0]
        if len(parts) > 1:
            # Parts that disagree: any part alone is usable (PROTOCOL §4).
            with contextlib.suppress(PpspError):
                response = merge_response_parts(parts)
        self._resume(response, now)

    def _on_indication(self, indication: Indication, now: float) -> None:
        key = indication.transaction_id
        if key in self._seen:
            self._seen.move_to_end(key)
        else:
            self._events.append(IndicationReceived(indication))
            self._seen[key] = None
            if len(self._seen) > self.settings.seen_indications:
                self._seen.popitem(last=False)
        if key in self._acks or not self.associated or self.closed:
            return
        ack = Request(Method.ATTACH_ACK, self.peer_id, self._new_id(), indication_id=key)
        data = encode_request(ack)
        rto = self.settings.rto
        self._acks[key] = _Exchange(
            Method.ATTACH_ACK.value,
            ack.transaction_id,
            data,
            now + rto,
            rto,
            self.settings.tries - 1,
            0,
        )
        self._outbox.append(data)


def _is(response: Response, reason: Reason) -> bool:
    """The response carries this ``Reason`` (its status and its phrase)."""
    return response.status == reason.status and response.reason == reason


def _retried(request: Request) -> Request:
    """The request again after a re-CONNECT (``_send`` gives it a fresh
    TransactionID). A STAT_REPORT drops its offer: the tracker cleared our
    offers on the re-CONNECT, that one may already have been handed out,
    and the peer publishes a fresh pool after a re-CONNECT anyway."""
    if request.method is Method.STAT_REPORT:
        return replace(request, ice_offer=None)
    return request
