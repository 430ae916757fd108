"""The tracker's one UDP port: RFC 7983 demux -> STUN | DTLS -> core (PROTOCOL §1).

Every datagram is handled to completion inside ``datagram_received``: STUN
Binding requests are answered statelessly, DTLS records go to the sender's
session (created only after the stateless cookie exchange, PROTOCOL §8), and
decrypted PPSP requests go to the tracker core, whose effects are sent at
once. One timer, re-armed after every datagram, drives DTLS handshake
retransmissions, ATTACH indication resends, peer timers and idle eviction.
Every datagram not answered is counted in ``drops`` by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from stunlike_tracker.core.addresses import is_ipv6_path
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import (
    AckRelayed,
    Effect,
    PeerExpired,
    RequestDropped,
    Session,
    Transmit,
)
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.server.budgets import BudgetLimits, Budgets, Verdict
from stunlike_tracker.server.clock import Clock, SystemClock, TimerHandle
from stunlike_tracker.server.heap_trim import HeapTrimmer
from stunlike_tracker.server.latency import LatencyHistograms
from stunlike_tracker.server.sessions import Address, SessionEntry, SessionTable
from stunlike_tracker.stun.responder import BindingResponder
from stunlike_tracker.transport.demux import classify
from stunlike_tracker.transport.dtls import (
    DtlsError,
    DtlsServerContext,
    DtlsServerSession,
    HelloAction,
)

if TYPE_CHECKING:
    from stunlike_tracker.server.shared import SharedStoreDriver


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    max_sessions: int = field(
        default=100_000, metadata={"doc": "DTLS associations held at once (beyond: dropped)"}
    )
    # A completed association silent for this long is dropped (a peer sends a
    # keep-alive every 25 s; the tracker forgets it after 90 s anyway).
    idle_timeout: float = field(
        default=120.0, metadata={"doc": "a silent association is dropped after, seconds"}
    )
    handshake_timeout: float = field(
        default=30.0, metadata={"doc": "an unfinished DTLS handshake is dropped after, seconds"}
    )
    # Peer timers and store purging run at least this often ...
    tick: float = field(
        default=0.5, metadata={"doc": "peer timers and store purging run this often, seconds"}
    )
    # ... and the idle-session scan (O(sessions)) this often.
    eviction_interval: float = field(
        default=5.0, metadata={"doc": "idle-association scan interval, seconds"}
    )
    # Pause reading when the socket's send buffer holds more than this.
    max_write_buffer: int = field(
        default=4 * 1024 * 1024,
        metadata={"doc": "datagrams are dropped while the send buffer holds more, bytes"},
    )


log = logging.getLogger(__name__)
_perf_counter = time.perf_counter

# IPv6's minimum MTU (1,280) less the IPv6 and UDP headers (RFC 8200 §5).
IPV6_UDP_PAYLOAD = 1232


_RECORD_HEADER = 13  # DTLS record header bytes (RFC 6347 §4.1)


def _is_client_hello(data: bytes) -> bool:
    """A DTLS handshake record in epoch 0 carrying a ClientHello (RFC 6347 §4.1, §4.2.2)."""
    return len(data) > 25 and data[0] == 22 and data[3:5] == b"\x00\x00" and data[13] == 1


def _nothing_buffered() -> int:
    return 0


def _normalise(address: tuple[str, int] | tuple[str, int, int, int]) -> Address:
    return (address[0], address[1])


class TrackerEndpoint(asyncio.DatagramProtocol):
    def __init__(
        self,
        tracker: Tracker,
        dtls: DtlsServerContext,
        *,
        limits: EndpointLimits | None = None,
        mutual: bool = False,
        budgets: BudgetLimits | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.tracker = tracker
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.dtls = dtls
        self.limits = limits or EndpointLimits()
        self._max_write_buffer = self.limits.max_write_buffer
        self.mutual = mutual
        self.stun = BindingResponder()
        self._answer_stun = self.stun.handle_untrusted
        self.sessions = SessionTable(tracker.config.node_id, self.limits.max_sessions)
        self.drops: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        # Seconds per request through the core, by method (read at scrape time).
        self.latency = LatencyHistograms()
        self.draining = False
        self.started_at = self.wall()
        # Whether per-request debug lines are wanted, asked once (and on reload).
        self.debug_log = log.isEnabledFor(logging.DEBUG)
        # PROTOCOL §8 per-source budgets, asked before any decryption or parsing.
        self.budgets = Budgets(budgets, self.drops)
        self._transport: asyncio.DatagramTransport | None = None
        self._buffered: Callable[[], int] = _nothing_buffered
        self._timer: TimerHandle | None = None
        self._timer_at = float("inf")
        self._handshaking: set[SessionEntry] = set()
        self._last_housekeeping = 0.0
        # Freed handshake memory back to the OS now and then (heap_trim).
        self.heap_trimmer = HeapTrimmer()
        self.closed = asyncio.Event()
        # Set with a shared store (PROTOCOL §9): requests go through it, async.
        self.shared: SharedStoreDriver | None = None
        # Set by the HTTPS listener: delivers Transmits for its JSON sessions.
        self.json_sessions: Callable[[Transmit], bool] | None = None

    # ------------------------------------------------------------------
    # asyncio plumbing
    # ------------------------------------------------------------------
    def now(self) -> float:
        """Monotonic time, for DTLS timers and the event loop."""
        return self.clock.monotonic()

    def wall(self) -> float:
        """Wall-clock time, for the core: deadlines in a shared store and TURN
        credential expiry must mean the same on every node (PROTOCOL §7, §9)."""
        return self.clock.wall()

    def _tracker_deadline(self, now: float) -> float | None:
        """The core's next deadline, on the monotonic clock."""
        wall_deadline = self.tracker.next_timer()
        if wall_deadline is None:
            return None
        return now + (wall_deadline - self.wall())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        # get_write_buffer_size() exists on every datagram transport; typeshed
        # lacks it. Looked up once, not per datagram.
        self._buffered = getattr(transport, "get_write_buffer_size", _nothing_buffered)
        self._last_housekeeping = self.now()
        self._arm(self._last_housekeeping + self.limits.tick)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.closed.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable from a vanished peer) are not fatal.
        self.drops["socket-error"] += 1

    def _arm(self, when: float) -> None:
        if when >= self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_at(when, self._on_timer)
        self._timer_at = when

    def _sendto(self, data: bytes, address: Address) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._buffered() > self._max_write_buffer:
            self.drops["send-buffer-full"] += 1
            return
        transport.sendto(data, address)

    def reconfigure(self, config: TrackerConfig, limits: EndpointLimits) -> None:
        """SIGHUP: new tracker settings and limits; sessions stay."""
        self.tracker.reconfigure(config)
        self.limits = limits
        self._max_write_buffer = limits.max_write_buffer
        self.sessions.max_sessions = limits.max_sessions
        self.debug_log = log.isEnabledFor(logging.DEBUG)

    def drain(self) -> None:
        """SIGTERM: no new handshakes; pending ATTACHes are answered 503."""
        self.draining = True
        self._apply(self.tracker.drain(self.wall()))

    # ------------------------------------------------------------------
    # receive path
    # ------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data and data[0] < 4:
            # RFC 7983 §7: STUN, answered statelessly -- the hot path, kept
            # free of anything the DTLS path needs (IPv4 addresses come as
            # (host, port) already).
            address = addr if len(addr) == 2 else _normalise(addr)
            reply = self._answer_stun(data, address)
            if reply is not None:
                transport = self._transport
                if transport is not None and self._buffered() <= self._max_write_buffer:
                    transport.sendto(reply, address)
                else:
                    self._sendto(reply, address)  # counts the drop
            return
        address = addr if len(addr) == 2 else _normalise(addr)
        if not data or not 20 <= data[0] <= 63:  # RFC 7983 §7: not DTLS
            self.drops[f"demux-{classify(data).value}"] += 1
            return
        now = self.now()
        entry = self.sessions.by_address.get(address)
        if entry is not None:
            verdict = self.budgets.admit_datagram(address, now)
            if verdict is not None:
                # Over budget: dropped before decryption (counted by reason);
                # an association over its own rate gets a bounded few 503s.
                if (
                    verdict is Verdict.SESSION_RATE
                    and entry.core_session is not None
                    and self.budgets.may_answer_overloaded(address, now)
                ):
                    self._answer_overloaded(entry, data, now)
                return
        if entry is not None and entry.dtls.handshake_complete and _is_client_hello(data):
            if hash(data[_RECORD_HEADER:]) == entry.opening_hello:
                # A delayed or retransmitted copy of the hello that opened this
                # association (RFC 6347 §4.2.8): replacing the association
                # with it would strand a client that has finished.
                self.drops["dtls-hello-retransmitted"] += 1
                return
            # The peer restarted on the same address: a new association
            # replaces the old one once its cookie checks out.
            fresh = self._new_session(data, address, now, replacing=entry)
            if fresh is None:
                return
            entry = fresh
        elif entry is None:
            if data[0] != 22 or len(data) < 26:
                # Only a handshake record can open an association: the rest
                # (junk "records" of any length) is dropped before any parsing.
                self.drops["dtls-no-session"] += 1
                return
            entry = self._new_session(data, address, now)
            if entry is None:
                return
        else:
            entry.dtls.feed(data, now)
        self._after_io(entry, now)

    def _answer_overloaded(self, entry: SessionEntry, data: bytes, now: float) -> None:
        session = entry.core_session
        assert session is not None
        entry.dtls.feed(data, now)
        effects: list[Effect] = []
        for message in entry.dtls.receive():
            entry.last_activity = now
            self.counters["budget-overloaded-answers"] += 1
            effects += self.tracker.answer_overloaded(message, session)
        self._flush(entry)
        self._apply(effects)

    def _new_session(
        self, data: bytes, address: Address, now: float, replacing: SessionEntry | None = None
    ) -> SessionEntry | None:
        """PROTOCOL §8: nothing is allocated before the cookie checks out."""
        if self.draining:
            self.drops["draining"] += 1
            return None
        hello = self.dtls.check_client_hello_untrusted(data, address, now)
        if hello.action is HelloAction.VERIFY_REQUEST:
            self.counters["dtls-hello-verify-sent"] += 1
            self._sendto(hello.verify_request, address)
            return None
        if hello.action is HelloAction.DROP:
            self.drops[f"dtls-hello-{hello.reason}"] += 1
            return None
        if replacing is not None:
            self._evict(replacing)
        if self.budgets.admit_session(address, now) is not None:
            return None  # over the source's or the global budget: no reply
        if self.sessions.full:
            self.drops["sessions-full"] += 1
            return None
        try:
            dtls = DtlsServerSession(self.dtls, address, now=now, mtu=self._mtu_for(address))
            dtls.feed(data, now)
        except DtlsError:
            self.drops["dtls-session-error"] += 1
            return None
        self.counters["dtls-sessions-created"] += 1
        self.budgets.session_opened(address, now)
        entry = self.sessions.add(address, dtls, now)
        entry.opening_hello = hash(data[_RECORD_HEADER:])
        return entry

    def _mtu_for(self, address: Address) -> int:
        """PROTOCOL §4: over IPv6 every datagram, handshake flights included, fits
        the 1,232-byte UDP payload of the IPv6 minimum MTU."""
        if is_ipv6_path(address):
            return min(self.dtls.mtu, IPV6_UDP_PAYLOAD)
        return self.dtls.mtu

    def _after_io(self, entry: SessionEntry, now: float) -> None:
        dtls = entry.dtls
        if entry.core_session is not None:
            pass  # established: the common case, no handshake bookkeeping
        elif dtls.handshake_complete:
            self._handshaking.discard(entry)
            identity = dtls.peer_certificate_peer_id if self.mutual else None
            entry.core_session = Session(
                entry.session_id, entry.address, identity, self.tracker.config.node_id
            )
            self.counters["dtls-handshakes"] += 1
            self.heap_trimmer.handshake_done()
            log.debug(
                "association established",
                extra={"address": entry.address, "session_id": entry.session_id},
            )
            self.budgets.handshake_completed(entry.address)
            entry.last_activity = now  # the client's Finished authenticated it
        else:
            self._handshaking.add(entry)
        effects: list[Effect] = []
        session = entry.core_session
        if session is not None:
            tracker = self.tracker
            for message in dtls.receive():
                # Only authenticated records count as activity: junk that
                # merely looks like a record (0x17 ...) never keeps an
                # association alive.
                entry.last_activity = now
                self.counters["ppsp-requests"] += 1
                if self.shared is not None:
                    self.shared.submit(message, session)
                    continue
                started = _perf_counter()
                effects += tracker.handle_datagram(message, session, self.clock.wall())
                self.latency.observe(tracker.last_method, _perf_counter() - started)
                if self.debug_log:
                    log.debug(
                        "request %s",
                        tracker.last_method,
                        extra={"peer_id": tracker.last_peer_id, "address": entry.address},
                    )
        self._flush(entry)
        if effects:
            self._apply(effects)
        if dtls.closed:
            self._evict(entry)
        soonest = self._timer_at
        deadline = dtls.get_timer()
        if deadline is not None and deadline < soonest:
            soonest = deadline
        if self.tracker.next_timer() is not None:
            next_attach = self._tracker_deadline(now)
            if next_attach is not None and next_attach < soonest:
                soonest = next_attach
        if soonest < self._timer_at or self._timer is None:
            self._arm(soonest)

    def _flush(self, entry: SessionEntry) -> None:
        datagrams = entry.dtls.datagrams_to_send()
        if datagrams:
            address = entry.address
            send = self._sendto
            for datagram in datagrams:
                send(datagram, address)

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Transmit):
                entry = self.sessions.by_id.get(effect.session_id)
                here = effect.node_id == self.tracker.config.node_id
                if not here and self.shared is not None and self.shared.forward(effect):
                    continue
                if entry is None or not here:
                    # A JSON session (PROTOCOL §14) is not a DTLS association.
                    if here and self.json_sessions is not None and self.json_sessions(effect):
                        continue
                    self.drops["transmit-no-session"] += 1
                    continue
                try:
                    for datagram in effect.datagrams:
                        entry.dtls.send(datagram)
                except DtlsError:
                    self.drops["transmit-dtls-error"] += 1
                self._flush(entry)
            elif isinstance(effect, RequestDropped):
                self.drops[effect.reason] += 1
                if effect.reason == "internal-error":
                    log.error("request failed (answered 500):\n%s", effect.detail)
            elif isinstance(effect, PeerExpired):
                self.counters["peers-expired"] += 1
                log.debug("peer expired", extra={"peer_id": effect.peer_id})
            elif isinstance(effect, AckRelayed) and (
                self.shared is None or not self.shared.forward(effect)
            ):
                self.drops["ack-relay-no-bus"] += 1

    def _evict(self, entry: SessionEntry) -> None:
        self._handshaking.discard(entry)
        if self.sessions.by_address.get(entry.address) is entry:
            self.budgets.session_closed(entry.address)
        self.sessions.remove(entry)
        if self.shared is not None:
            self.shared.forget_session(entry.session_id)

    # ------------------------------------------------------------------
    # timers
    # ------------------------------------------------------------------
    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        now = self.now()
        try:
            self._run_timers(now)
        except Exception:
            # Never let one failure stop peer expiry and ATTACH resends for good.
            self.drops["timer-error"] += 1
            log.exception("timer work failed")
        finally:
            deadlines = [e.dtls.get_timer() for e in self._handshaking]
            with contextlib.suppress(Exception):
                deadlines.append(self._tracker_deadline(now))
            soonest = min([d for d in deadlines if d is not None] + [now + self.limits.tick])
            self._arm(max(soonest, now + 0.001))

    def _run_timers(self, now: float) -> None:
        half_open_timeout = self.budgets.limits.half_open_timeout
        for entry in list(self._handshaking):
            if now - entry.last_activity > half_open_timeout:
                # An unfinished handshake holds its memory this long at most.
                self.drops["budget-half-open-timeout"] += 1
                self._evict(entry)
                continue
            deadline = entry.dtls.get_timer()
            if deadline is not None and deadline <= now:
                entry.dtls.handle_timer(now)
                self._flush(entry)
                if entry.dtls.closed:
                    self._evict(entry)
        if self.shared is not None:
            self.shared.timer()
        else:
            self._apply(self.tracker.on_timer(self.wall()))
        if now - self._last_housekeeping >= self.limits.eviction_interval:
            self._last_housekeeping = now
            self.budgets.prune(now)
            self.heap_trimmer.maybe_trim()
            limits = self.limits
            for entry in self.sessions.idle(now, limits.idle_timeout, limits.handshake_timeout):
                self.counters["sessions-evicted"] += 1
                self._evict(entry)
