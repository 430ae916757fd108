"""Run a load: start the worker processes, time the window, read the server's CPU.

The window is timed in wall-clock seconds shared by every process on the
machine: the parent picks ``start = now + warm-up`` once every worker has
set its sessions up, reads the server's CPU time from /proc at ``start``
and at ``end``, and merges the workers' reports.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stunlike_tracker.loadgen.shapes import Kind, Op
from stunlike_tracker.loadgen.worker import WorkerPlan, WorkerReport, worker_main

Address = tuple[str, int]
_TICKS = os.sysconf("SC_CLK_TCK")


class LoadError(Exception):
    """A one-line reason the load could not run."""


@dataclass(frozen=True, slots=True)
class LoadSettings:
    kind: Kind
    target: Address
    processes: int = 2
    sessions: int = 64
    window: int = 4
    swarm_size: int = 100
    mix: dict[Op, float] = field(default_factory=lambda: {Op.FIND: 1.0})
    swarm_id: str = "load"
    size: int = 300
    timeout: float = 1.0
    seconds: float = 5.0
    warmup: float = 1.0
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None
    server_pid: int | None = None
    uvloop: bool = True
    interval: float = 0.0


@dataclass(slots=True)
class LoadResult:
    kind: str
    seconds: float
    sent: int
    answered: int
    responses: int
    rate: float
    loss: float
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int]
    ops: dict[str, int]
    setup_seconds: float
    setup_failures: int
    server_cpu_seconds: float | None = None
    per_cpu_second: float | None = None
    cpu_us_per_response: float | None = None
    server_rss_kib: int | None = None

    def lines(self) -> list[str]:
        out = [
            f"kind {self.kind}: {self.responses} responses in {self.seconds:.1f} s",
            f"responses/s {self.rate:.0f}",
            f"loss {100 * self.loss:.2f}% ({self.sent - self.answered} of {self.sent})",
        ]
        if self.p50_ms is not None and self.p99_ms is not None:
            out.append(f"latency ms p50 {self.p50_ms:.2f} p99 {self.p99_ms:.2f}")
        if self.statuses:
            out.append("statuses " + " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items())))
        if self.ops:
            out.append("ops " + " ".join(f"{k}:{v}" for k, v in sorted(self.ops.items())))
        if self.setup_failures:
            out.append(f"setup failures {self.setup_failures}")
        if self.server_cpu_seconds is not None:
            out.append(
                f"server CPU-seconds {self.server_cpu_seconds:.2f}"
                f" ({self.per_cpu_second or 0:.0f} responses per CPU-second,"
                f" {self.cpu_us_per_response or 0:.1f} µs each)"
            )
        if self.server_rss_kib is not None:
            out.append(f"server RSS KiB {self.server_rss_kib}")
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


# ----------------------------------------------------------------------
# /proc


def _pids(pid: int) -> list[int]:
    """The server process and its direct children (worker processes)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of *pid* and its direct children, from /proc."""
    total = 0
    for p in _pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            if p == pid:
                raise LoadError(f"no process {pid} (--server-pid)") from None
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ----------------------------------------------------------------------


def _plans(settings: LoadSettings, run_id: int) -> list[WorkerPlan]:
    n = max(1, settings.processes)
    plans = []
    for index in range(n):
        sessions = settings.sessions // n + (1 if index < settings.sessions % n else 0)
        seeds = settings.swarm_size // n + (1 if index < settings.swarm_size % n else 0)
        plans.append(
            WorkerPlan(
                kind=settings.kind,
                target=settings.target,
                index=index,
                run_id=run_id,
                sessions=sessions,
                window=settings.window,
                seeds=seeds if settings.kind is Kind.PPSP else 0,
                mix=settings.mix,
                swarm_id=settings.swarm_id,
                size=settings.size,
                timeout=settings.timeout,
                ca_pem=settings.ca_pem,
                cert_pem=settings.cert_pem,
                key_pem=settings.key_pem,
                server_name=settings.server_name,
                uvloop=settings.uvloop,
                interval=settings.interval,
            )
        )
    return [p for p in plans if p.sessions > 0 or p.seeds > 0]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def run_load(settings: LoadSettings) -> LoadResult:
    if settings.server_pid is not None:
        cpu_seconds(settings.server_pid)  # fail early on a wrong pid
    ctx = multiprocessing.get_context("spawn")
    run_id = int.from_bytes(os.urandom(3), "big")
    plans = _plans(settings, run_id)
    procs = []
    conns = []
    try:
        for plan in plans:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(plan, child), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        errors = []
        for conn in conns:
            if not conn.poll(120):
                raise LoadError("a worker did not finish its setup in 120 s")
            try:
                _, error = conn.recv()
            except EOFError:
                raise LoadError("a worker process died during its setup") from None
            if error:
                errors.append(error)
        if errors:
            for conn in conns:
                conn.send(("stop",))
            raise LoadError(errors[0])
        start = time.time() + settings.warmup
        end = start + settings.seconds
        for conn in conns:
            conn.send(("go", start, end))
        pid = settings.server_pid
        time.sleep(max(0.0, start - time.time()))
        cpu0 = cpu_seconds(pid) if pid is not None else None
        time.sleep(max(0.0, end - time.time()))
        cpu1 = cpu_seconds(pid) if pid is not None else None
        rss = rss_kib(pid) if pid is not None else None
        reports: list[WorkerReport] = []
        for conn in conns:
            if not conn.poll(settings.timeout + 30):
                raise LoadError("a worker did not report")
            try:
                _, report = conn.recv()
            except EOFError:
                raise LoadError("a worker process died before reporting") from None
            if report.error:
                raise LoadError(report.error)
            reports.append(report)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return _merge(settings, reports, cpu0, cpu1, rss)


def _merge(
    settings: LoadSettings,
    reports: list[WorkerReport],
    cpu0: float | None,
    cpu1: float | None,
    rss: int | None,
) -> LoadResult:
    sent = sum(r.sent for r in reports)
    answered = sum(r.answered for r in reports)
    responses = sum(r.responses for r in reports)
    latencies = [x for r in reports for x in r.latencies]
    statuses: dict[str, int] = {}
    ops: dict[str, int] = {}
    for r in reports:
        for code, n in r.statuses.items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
        for op, n in r.ops.items():
            ops[op] = ops.get(op, 0) + n
    result = LoadResult(
        kind=settings.kind.value,
        seconds=settings.seconds,
        sent=sent,
        answered=answered,
        responses=responses,
        rate=responses / settings.seconds,
        loss=(sent - answered) / sent if sent else 0.0,
        p50_ms=1000 * statistics.median(latencies) if latencies else None,
        p99_ms=1000 * _percentile(latencies, 0.99) if latencies else None,
        statuses=statuses,
        ops=ops,
        setup_seconds=max((r.setup_seconds for r in reports), default=0.0),
        setup_failures=sum(r.setup_failures for r in reports),
        server_rss_kib=rss,
    )
    if cpu0 is not None and cpu1 is not None:
        used = cpu1 - cpu0
        result.server_cpu_seconds = used
        if used > 0 and responses:
            result.per_cpu_second = responses / used
            result.cpu_us_per_response = 1e6 * used / responses
    return result
