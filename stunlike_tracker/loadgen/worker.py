"""One load-generator process: its share of the sessions on its own event loop.

The parent (:mod:`.runner`) sends a :class:`WorkerPlan`; the worker sets
its sessions up (DTLS handshakes, CONNECT, JOIN, the swarm's silent seeds),
answers ``ready``, waits for ``go`` with the measurement window in wall
time, drives traffic from then on (the time before the window is the
warm-up), stops sending at the window's end, waits one grace period for
late answers and sends back a :class:`WorkerReport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

from stunlike_tracker.loadgen.shapes import (
    BT_ANNOUNCE,
    BT_CONNECT,
    Kind,
    MixChooser,
    Op,
    PpspTemplates,
    bt_announce,
    bt_answer,
    bt_connect,
    echo_payload,
    ppsp_answer,
    ppsp_templates,
    reconnect_token,
    stun_request,
    stun_transaction_id,
    transaction_id,
)
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession, DtlsError

Address = tuple[str, int]
LATENCY_SAMPLES = 20_000
TICK = 0.05
SETUP_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    kind: Kind
    target: Address
    index: int
    run_id: int
    sessions: int
    window: int = 1
    seeds: int = 0
    mix: dict[Op, float] = field(default_factory=dict)
    swarm_id: str = "load"
    size: int = 300
    timeout: float = 1.0
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None
    mtu: int = 1240
    uvloop: bool = True
    setup_timeout: float = 30.0
    # ppsp: pause between a session's answer and its next request (0: none).
    interval: float = 0.0


@dataclass(slots=True)
class WorkerReport:
    sent: int = 0
    answered: int = 0
    responses: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    setup_seconds: float = 0.0
    setup_failures: int = 0
    error: str | None = None


class Meter:
    """Counts what falls into the measurement window [start, end)."""

    __slots__ = ("_rng", "_seen", "answered", "end", "latencies", "ops", "responses", "sent",
                 "start", "statuses")  # fmt: skip

    def __init__(self) -> None:
        self.start = float("inf")
        self.end = float("inf")
        self.sent = 0
        self.answered = 0
        self.responses = 0
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.ops: Counter[str] = Counter()
        self._seen = 0
        self._rng = random.Random(7)

    def on_send(self, t: float, op: str | None = None) -> None:
        if self.start <= t < self.end:
            self.sent += 1
            if op is not None:
                self.ops[op] += 1

    def on_answer(self, t_sent: float, t: float, status: int | None = None) -> None:
        if self.start <= t < self.end:
            self.responses += 1
        if self.start <= t_sent < self.end:
            self.answered += 1
            if status is not None:
                self.statuses[status] += 1
            self._seen += 1
            latency = t - t_sent
            if len(self.latencies) < LATENCY_SAMPLES:
                self.latencies.append(latency)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < LATENCY_SAMPLES:
                    self.latencies[slot] = latency


class _Sending:
    """Shared by every session: the meter and the "keep sending" switch."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.running = False


# ----------------------------------------------------------------------
# datagram sessions without DTLS


class _UdpSession(asyncio.DatagramProtocol):
    """``window`` requests outstanding, matched by a tag; lost ones are replaced."""

    def __init__(self, shared: _Sending, prefix: int, window: int, timeout: float) -> None:
        self.shared = shared
        self.prefix = prefix
        self.window = window
        self.timeout = timeout
        self.counter = 0
        self.outstanding: dict[bytes, float] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        pass

    def request(self) -> tuple[bytes, bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def match(self, data: bytes) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fill(self) -> None:
        if not self.shared.running or self.transport is None:
            return
        now = time.monotonic()
        while len(self.outstanding) < self.window:
            key, data = self.request()
            self.outstanding[key] = now
            self.shared.meter.on_send(now)
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        key = self.match(data)
        if key is None:
            return
        sent = self.outstanding.pop(key, None)
        if sent is None:
            return
        self.shared.meter.on_answer(sent, time.monotonic())
        self.fill()

    def tick(self, now: float) -> None:
        expired = [k for k, t in self.outstanding.items() if now - t > self.timeout]
        for key in expired:
            del self.outstanding[key]
        self.fill()


class StunSession(_UdpSession):
    def request(self) -> tuple[bytes, bytes]:
        self.counter += 1
        txid = self.prefix.to_bytes(4, "big") + self.counter.to_bytes(8, "big")
        return txid, stun_request(txid)

    def match(self, data: bytes) -> bytes | None:
        return stun_transaction_id(data)


class EchoSession(_UdpSession):
    size = 300

    def request(self) -> tuple[bytes, bytes]:
        self.counter += 1
        tag = self.prefix.to_bytes(4, "big") + self.counter.to_bytes(8, "big")
        return tag, echo_payload(tag, self.size)

    def match(self, data: bytes) -> bytes | None:
        return data[:12] if len(data) >= 12 else None


class BtSession(_UdpSession):
    """BEP 15: connect once (and again on an error), then announce."""

    def __init__(self, shared: _Sending, prefix: int, window: int, timeout: float) -> None:
        super().__init__(shared, prefix, window, timeout)
        self.connection_id: int | None = None
        self.connecting: int | None = None
        self.connect_sent = 0.0
        self.info_hash = b"stunlike-load-bench!"
        self.peer_id = b"-SL0001-" + prefix.to_bytes(4, "big") + bytes(8)
        self.connected = asyncio.Event()

    def connect(self) -> None:
        assert self.transport is not None
        self.counter += 1
        self.connecting = self.counter & 0xFFFFFFFF
        self.connect_sent = time.monotonic()
        self.transport.sendto(bt_connect(self.connecting))

    def request(self) -> tuple[bytes, bytes]:
        assert self.connection_id is not None
        self.counter += 1
        tid = self.counter & 0xFFFFFFFF
        port = 10000 + self.prefix % 50000
        data = bt_announce(self.connection_id, tid, self.info_hash, self.peer_id, port)
        return tid.to_bytes(4, "big"), data

    def fill(self) -> None:
        if self.connection_id is not None:
            super().fill()

    def match(self, data: bytes) -> bytes | None:
        answer = bt_answer(data)
        if answer is None:
            return None
        action, tid, rest = answer
        if action == BT_CONNECT:
            # A late answer to an earlier connect is ignored: treating it as
            # an error made a slow tracker (RTT above one tick) reconnect for ever.
            if tid == self.connecting and len(rest) >= 8:
                self.connection_id = int.from_bytes(rest[:8], "big")
                self.connecting = None
                self.connected.set()
                self.fill()
            return None
        if action != BT_ANNOUNCE:
            self.connection_id = None  # an error: connect again
            self.outstanding.clear()
            self.connect()
            return None
        return tid.to_bytes(4, "big")

    def tick(self, now: float) -> None:
        # Connect again only when no connect is in flight or it timed out.
        waiting = self.connecting is not None and now - self.connect_sent <= self.timeout
        if self.connection_id is None and self.transport is not None and not waiting:
            self.connect()
        super().tick(now)


# ----------------------------------------------------------------------
# DTLS sessions


class _DtlsSession(asyncio.DatagramProtocol):
    def __init__(self, ctx: DtlsClientContext) -> None:
        self.dtls = DtlsClientSession(ctx)
        self.transport: asyncio.DatagramTransport | None = None
        self.established = asyncio.Event()
        self.failed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.dtls.start(time.monotonic())
        self.flush()

    def error_received(self, exc: Exception) -> None:
        pass

    def flush(self) -> None:
        if self.transport is None:
            return
        for datagram in self.dtls.datagrams_to_send():
            self.transport.sendto(datagram)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.dtls.feed(data, time.monotonic())
        if self.dtls.handshake_complete and not self.established.is_set():
            self.established.set()
        for message in self.dtls.receive():
            self.on_message(message)
        self.flush()
        if self.dtls.closed and not self.established.is_set():
            self.failed = True
            self.established.set()

    def on_message(self, message: bytes) -> None:
        pass

    def tick(self, now: float) -> None:
        self.dtls.handle_timer(now)
        self.flush()

    def send(self, data: bytes) -> bool:
        try:
            self.dtls.send(data)
        except DtlsError:
            return False
        self.flush()
        return True

    def close(self) -> None:
        with contextlib.suppress(DtlsError):
            self.dtls.close()
        self.flush()
        if self.transport is not None:
            self.transport.close()


class PpspSession(_DtlsSession):
    """One peer: one PPSP request outstanding (PROTOCOL §4), the next drawn from the mix."""

    def __init__(
        self,
        ctx: DtlsClientContext,
        shared: _Sending,
        templates: PpspTemplates,
        prefix: int,
        chooser: MixChooser | None,
        timeout: float,
    ) -> None:
        super().__init__(ctx)
        self.shared = shared
        self.templates = templates
        self.prefix = prefix
        self.chooser = chooser
        self.timeout = timeout
        self.counter = 0
        self.connected = False
        self.joined = False
        self.token: bytes | None = None
        self.pending: tuple[bytes, float, Op] | None = None
        self.setup_done: asyncio.Future[int] | None = None
        self.interval = 0.0

    def issue(self, op: Op) -> None:
        self.counter += 1
        txid = transaction_id(self.prefix, self.counter)
        now = time.monotonic()
        self.pending = (txid, now, op)
        if self.chooser is not None:
            self.shared.meter.on_send(now, op.value)
        if not self.send(self.templates.render(op, txid, self.token)):
            self.pending = None

    def next(self) -> None:
        if self.chooser is None or not self.shared.running:
            return
        if self.interval > 0:
            asyncio.get_running_loop().call_later(self.interval, self._next_now)
            return
        self._next_now()

    def _next_now(self) -> None:
        if self.chooser is not None and self.shared.running and self.pending is None:
            self.issue(self.chooser.next(self.connected, self.joined))

    def on_message(self, message: bytes) -> None:
        answer = ppsp_answer(message)
        pending = self.pending
        if answer is None or pending is None or answer[0] != pending[0]:
            return  # a later part of a multi-part answer, or an indication
        _, sent, op = pending
        status = answer[1]
        self.pending = None
        ok = status in (0, 200)  # 0: an echo server returned the request
        if op is Op.CONNECT and ok:
            self.connected = True
            self.token = reconnect_token(message) or self.token
        elif op is Op.JOIN and ok:
            self.joined = True
        elif op is Op.DISCONNECT and ok:
            self.connected = self.joined = False
        elif status == 403:
            # Already Connected (CONNECT), Not Connected or Not Joined: resync.
            self.connected = op is Op.CONNECT
            self.joined = False
        if self.setup_done is not None and not self.setup_done.done():
            self.setup_done.set_result(status)
            return
        if self.chooser is not None:
            self.shared.meter.on_answer(sent, time.monotonic(), status)
        self.next()

    def tick(self, now: float) -> None:
        super().tick(now)
        pending = self.pending
        if pending is not None and now - pending[1] > self.timeout:
            self.pending = None
            self.next()

    async def request(self, op: Op) -> int:
        """Setup step: one request, retried until answered."""
        for _ in range(5):
            self.setup_done = asyncio.get_running_loop().create_future()
            self.issue(op)
            try:
                return await asyncio.wait_for(asyncio.shield(self.setup_done), 1.0)
            except TimeoutError:
                continue
            finally:
                self.setup_done = None
        raise TimeoutError(f"no answer to {op.value}")


# ----------------------------------------------------------------------
# the worker


class Worker:
    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.meter = Meter()
        self.shared = _Sending(self.meter)
        self.tickers: list[Callable[[float], None]] = []
        self.closers: list[Callable[[], None]] = []
        self.setup_failures = 0
        self.handshake_tasks: list[asyncio.Task[None]] = []
        self.ctx: DtlsClientContext | None = None
        self.ppsp_sessions: list[PpspSession] = []

    def prefix(self, i: int) -> int:
        return (self.plan.index << 20) | i

    async def _endpoint(self, factory: Callable[[], asyncio.DatagramProtocol]) -> Any:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(factory, remote_addr=self.plan.target)
        return protocol

    def _dtls_context(self) -> DtlsClientContext:
        plan = self.plan
        return DtlsClientContext(
            ca_pem=plan.ca_pem,
            cert_pem=plan.cert_pem,
            key_pem=plan.key_pem,
            verify_hostname=plan.server_name,
            mtu=plan.mtu,
        )

    async def setup(self) -> None:
        plan = self.plan
        if plan.kind in (Kind.STUN, Kind.UDP, Kind.BT):
            cls: type[_UdpSession] = {
                Kind.STUN: StunSession,
                Kind.UDP: EchoSession,
                Kind.BT: BtSession,
            }[plan.kind]
            for i in range(plan.sessions):
                session = cls(self.shared, self.prefix(i), plan.window, plan.timeout)
                if isinstance(session, EchoSession):
                    session.size = plan.size
                await self._endpoint(lambda s=session: s)  # type: ignore[misc]
                self.tickers.append(session.tick)
                if isinstance(session, BtSession):
                    session.connect()
            return
        self.ctx = self._dtls_context()
        if plan.kind is Kind.PPSP:
            await self._setup_ppsp()

    async def _setup_ppsp(self) -> None:
        plan = self.plan
        assert self.ctx is not None
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        sessions: list[PpspSession] = []

        async def one(i: int, seed: bool) -> None:
            async with gate:
                role = "s" if seed else "w"
                peer_id = f"ld{plan.run_id:x}-{plan.index}-{role}{i}"
                prefix = self.prefix(i + (plan.sessions if seed else 0))
                templates = ppsp_templates(peer_id, plan.swarm_id, 20000 + i, seed=seed)
                chooser = None if seed else MixChooser(plan.mix, seed=prefix)
                assert self.ctx is not None
                ctx = self.ctx
                session = PpspSession(ctx, self.shared, templates, prefix, None, plan.timeout)
                await self._endpoint(lambda: session)
                self.tickers.append(session.tick)
                self.closers.append(session.close)
                try:
                    await asyncio.wait_for(session.established.wait(), plan.setup_timeout)
                    if session.failed:
                        raise DtlsError(session.dtls.error or "handshake failed")
                    await session.request(Op.CONNECT)
                    await session.request(Op.JOIN)
                except (TimeoutError, DtlsError):
                    self.setup_failures += 1
                    return
                session.chooser = chooser
                session.interval = plan.interval
                if chooser is not None:
                    sessions.append(session)

        await asyncio.gather(
            *(one(i, True) for i in range(plan.seeds)),
            *(one(i, False) for i in range(plan.sessions)),
        )
        self.ppsp_sessions = sessions

    def start(self) -> None:
        self.shared.running = True
        plan = self.plan
        if plan.kind in (Kind.STUN, Kind.UDP, Kind.BT):
            for tick in self.tickers:
                tick(time.monotonic())
        elif plan.kind is Kind.PPSP:
            for session in self.ppsp_sessions:
                session.next()
        else:
            self.handshake_tasks = [
                asyncio.ensure_future(self._handshake_slot(i)) for i in range(plan.sessions)
            ]

    async def _handshake_slot(self, i: int) -> None:
        assert self.ctx is not None
        ctx = self.ctx
        while self.shared.running:
            session = _DtlsSession(ctx)
            t0 = time.monotonic()
            self.meter.on_send(t0)
            await self._endpoint(lambda s=session: s)  # type: ignore[misc]
            self.tickers.append(session.tick)
            try:
                await asyncio.wait_for(session.established.wait(), self.plan.timeout * 4)
                if not session.failed:
                    self.meter.on_answer(t0, time.monotonic())
            except TimeoutError:
                pass
            finally:
                self.tickers.remove(session.tick)
                session.close()

    async def ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for tick in list(self.tickers):
                tick(now)

    async def run(self, conn: Connection) -> WorkerReport:
        report = WorkerReport()
        tick_task = asyncio.ensure_future(self.ticker())
        t0 = time.monotonic()
        try:
            await self.setup()
        except (OSError, DtlsError) as error:
            report.error = f"setup failed: {error}"
        report.setup_seconds = time.monotonic() - t0
        report.setup_failures = self.setup_failures
        conn.send(("ready", report.error))
        loop = asyncio.get_running_loop()
        message = await loop.run_in_executor(None, conn.recv)
        if message[0] != "go" or report.error is not None:
            tick_task.cancel()
            return report
        offset = time.monotonic() - time.time()
        self.meter.start = message[1] + offset
        self.meter.end = message[2] + offset
        self.start()
        await asyncio.sleep(max(0.0, self.meter.end - time.monotonic()))
        self.shared.running = False
        await asyncio.sleep(min(self.plan.timeout, 1.0))
        tick_task.cancel()
        for task in self.handshake_tasks:
            task.cancel()
        for close in self.closers:
            close()
        meter = self.meter
        report.sent = meter.sent
        report.answered = meter.answered
        report.responses = meter.responses
        report.latencies = meter.latencies
        report.statuses = dict(meter.statuses)
        report.ops = dict(meter.ops)
        return report


def worker_main(plan: WorkerPlan, conn: Connection) -> None:
    """Entry point of a worker process."""
    worker = Worker(plan)
    try:
        if plan.uvloop:
            try:
                import uvloop
            except ImportError:
                report = asyncio.run(worker.run(conn))
            else:
                report = uvloop.run(worker.run(conn))
        else:
            report = asyncio.run(worker.run(conn))
    except Exception as error:  # a worker reports, it never dies silently
        report = WorkerReport(error=f"{type(error).__name__}: {error}")
    conn.send(("report", report))
    conn.close()
