"""Our tracker side by side with its baselines, in one run on this machine.

    python bench/compare.py [--quick] [--rounds N] [--seconds S] [--out DIR]

Starts every server once -- our tracker (uvloop, and the default asyncio
loop), coturn ``turnserver --stun-only``, a plain uvloop UDP echo, a
pyOpenSSL DTLS echo, WebTorrent's ``bittorrent-tracker`` (npm, pinned by
bench/package-lock.json) -- then runs interleaved rounds: in every round each
(load shape, server) pair gets the same ``stunlike-tracker load`` run, and
the server's CPU-seconds over the window are read from /proc. Figures are
medians over rounds; every comparison is a ratio against a baseline measured
in the same rounds, because the machine is shared and noisy.

Writes BENCHMARKS.md (machine, method, table, ratios against the issue-10
targets) and bench/benchmarks.png; the raw numbers go to bench/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stunlike_tracker.core.config import TrackerConfig  # noqa: E402
from stunlike_tracker.loadgen.local import local_tracker  # noqa: E402
from stunlike_tracker.loadgen.runner import (  # noqa: E402
    LoadError,
    LoadResult,
    LoadSettings,
    rss_kib,
    run_load,
)
from stunlike_tracker.loadgen.shapes import REALISTIC_MIX, Kind, parse_mix, stun_request  # noqa: E402

BENCH = ROOT / "bench"


# ----------------------------------------------------------------------
# servers


@dataclass
class Server:
    name: str
    label: str
    address: tuple[str, int]
    pid: int
    process: subprocess.Popen[str]
    ca_pem: bytes | None = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[str], what: str) -> tuple[str, int]:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} did not start (exit {process.wait()})")
        if line.startswith("listening udp "):
            host, _, port = line.split()[-1].rpartition(":")
            return host, int(port)


def _stun_probe(address: tuple[str, int], deadline: float) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(stun_request(bytes(12)), address)
            with contextlib.suppress(TimeoutError):
                sock.recvfrom(2048)
                return True
    return False


def _python_server(name: str, label: str, args: list[str], ca: bytes | None = None) -> Server:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True, env=env)
    return Server(name, label, _wait_listening(process, label), process.pid, process, ca)


def start_servers(tmp: Path, quick: bool, notes: list[str]) -> list[Server]:
    servers: list[Server] = []
    certs = tmp / "certs"
    servers.append(
        _python_server("tracker", "stunlike-tracker (uvloop)",
                       ["-m", "stunlike_tracker.loadgen.local", "--certs", str(certs)])
    )  # fmt: skip
    servers[-1].ca_pem = (certs / "ca.pem").read_bytes()
    if not quick:
        servers.append(
            _python_server("tracker-asyncio", "stunlike-tracker (asyncio loop)",
                           ["-m", "stunlike_tracker.loadgen.local", "--certs", str(certs),
                            "--loop", "asyncio"], servers[0].ca_pem)
        )  # fmt: skip
    servers.append(
        _python_server("udp-echo", "UDP echo (uvloop)", [str(BENCH / "baselines/udp_echo.py")])
    )
    servers.append(
        _python_server("dtls-echo", "DTLS echo (pyOpenSSL, uvloop)",
                       [str(BENCH / "baselines/dtls_echo.py"), "--certs", str(certs)],
                       servers[0].ca_pem)
    )  # fmt: skip
    turnserver = shutil.which("turnserver")
    if turnserver is None:
        notes.append("coturn is not installed (apt-get install coturn): no coturn row.")
    else:
        port = _free_port()
        process = subprocess.Popen(
            [turnserver, "-n", "--no-cli", "--no-tls", "--no-dtls", "--stun-only",
             "-L", "127.0.0.1", "--listening-port", str(port), "--log-file", "stdout",
             "--simple-log", "--no-stdout-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        if _stun_probe(("127.0.0.1", port), time.monotonic() + 10):
            servers.append(
                Server("coturn", "coturn --stun-only", ("127.0.0.1", port), process.pid, process)
            )
        else:
            process.terminate()
            notes.append("coturn did not answer STUN within 10 s: no coturn row.")
    bt = _bt_tracker(notes)
    if bt is not None:
        servers.append(bt)
    return servers


def _bt_tracker(notes: list[str]) -> Server | None:
    node = shutil.which("node")
    if node is None:
        notes.append("node is not installed: no bittorrent-tracker row.")
        return None
    if not (BENCH / "node_modules/bittorrent-tracker").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            notes.append("npm is not installed: no bittorrent-tracker row.")
            return None
        # The UDP server needs no native module: skip install scripts (node-datachannel).
        done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                              cwd=BENCH, capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            notes.append("`npm ci` in bench/ failed: no bittorrent-tracker row.")
            return None
    process = subprocess.Popen([node, str(BENCH / "baselines/bt_tracker.mjs")],
                               stdout=subprocess.PIPE, text=True, cwd=BENCH)  # fmt: skip
    return Server(
        "bt-tracker",
        "bittorrent-tracker (node)",
        _wait_listening(process, "bittorrent-tracker"),
        process.pid,
        process,
    )


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# ----------------------------------------------------------------------
# load shapes


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    kind: Kind
    servers: tuple[str, ...]
    sessions: int
    window: int = 1
    mix: str = "find=1"
    swarm_size: int = 0


SHAPES = (
    Shape("stun", "STUN Binding", Kind.STUN,
          ("tracker", "tracker-asyncio", "coturn", "udp-echo"), sessions=16, window=8),
    Shape("echo", "UDP datagram, 300 B", Kind.UDP, ("udp-echo",), sessions=16, window=8),
    Shape("find", "FIND, 10 peers (swarm of 100 SEEDs)", Kind.PPSP,
          ("tracker", "tracker-asyncio", "dtls-echo"), sessions=64, swarm_size=100),
    Shape("stat", "STAT_REPORT keep-alive", Kind.PPSP,
          ("tracker", "tracker-asyncio", "dtls-echo"), sessions=64, mix="stat=1"),
    Shape("mix", "Realistic mix", Kind.PPSP, ("tracker", "tracker-asyncio", "dtls-echo"),
          sessions=64, mix=REALISTIC_MIX, swarm_size=100),
    Shape("handshake", "Full DTLS handshake with cookie", Kind.HANDSHAKE,
          ("tracker", "tracker-asyncio", "dtls-echo"), sessions=16),
    Shape("announce", "BEP 15 announce, 10 peers wanted", Kind.BT, ("bt-tracker",),
          sessions=32, window=2),
)  # fmt: skip


@dataclass
class Cell:
    shape: str
    server: str
    runs: list[LoadResult] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.runs if getattr(r, name) is not None]
        return statistics.median(values) if values else None


def measure(shape: Shape, server: Server, seconds: float, processes: int) -> LoadResult:
    settings = LoadSettings(
        kind=shape.kind,
        target=server.address,
        processes=processes,
        sessions=shape.sessions,
        window=shape.window,
        swarm_size=shape.swarm_size,
        mix=parse_mix(shape.mix),
        seconds=seconds,
        warmup=min(1.0, seconds / 2),
        ca_pem=server.ca_pem,
        server_pid=server.pid,
    )
    return run_load(settings)


# The session count the RSS target is stated for (issue 10: 100,000 peers in < 1 GB).
TARGET_SESSIONS = 100_000


def memory_per_session(tmp: Path, sessions: int, *, at_target_share: bool) -> float:
    """RSS growth of a fresh tracker per live CONNECTed+JOINed DTLS session,
    each sending a keep-alive STAT_REPORT every 2 s (its cached answers count).

    ``at_target_share``: the response cache bound (a total, 128 MiB by
    default) is scaled to ``sessions / TARGET_SESSIONS`` of its default, so
    each session holds the share of cached answers it holds when 100,000 are
    connected; otherwise the cache keeps every answer of a small run (its
    bound is not reached) and the figure overstates a large deployment."""
    cache_bytes = None
    if at_target_share:
        cache_bytes = TrackerConfig().response_cache_bytes * sessions // TARGET_SESSIONS
    certs = tmp / ("memory-certs-share" if at_target_share else "memory-certs")
    with local_tracker(certs, response_cache_bytes=cache_bytes) as (address, pid):
        before = rss_kib(pid)
        settings = LoadSettings(
            kind=Kind.PPSP,
            target=address,
            processes=2,
            sessions=sessions,
            swarm_size=0,
            mix=parse_mix("stat=1"),
            seconds=2.0,
            warmup=0.5,
            ca_pem=(certs / "ca.pem").read_bytes(),
            server_pid=pid,
            interval=2.0,
        )
        result = run_load(settings)
    assert result.server_rss_kib is not None
    return 1024 * (result.server_rss_kib - before) / sessions


def core_memory(peers: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(
        [sys.executable, str(BENCH / "core_memory.py"), "--peers", str(peers), "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ----------------------------------------------------------------------
# report


def machine() -> dict[str, str]:
    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    with contextlib.suppress(Exception):
        import OpenSSL
        import uvloop

        info["pyOpenSSL"] = OpenSSL.__version__
        info["OpenSSL"] = OpenSSL.SSL.SSLeay_version(OpenSSL.SSL.SSLEAY_VERSION).decode()
        info["uvloop"] = str(getattr(uvloop, "__version__", "?"))
    for tool, args in (("turnserver", ["--version"]), ("node", ["--version"])):
        path = shutil.which(tool)
        if path:
            with contextlib.suppress(Exception):
                out = subprocess.run([path, *args], capture_output=True, text=True, timeout=10)
                lines = (out.stdout or out.stderr).strip().splitlines()
                info[tool] = lines[-1] if lines else "?"
    return info


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def report(
    cells: dict[tuple[str, str], Cell],
    label: dict[str, str],
    extra: dict[str, Any],
    info: dict[str, str],
    args: argparse.Namespace,
    notes: list[str],
) -> tuple[str, dict[str, Any]]:
    def per_cpu(shape: str, server: str) -> float | None:
        cell = cells.get((shape, server))
        return cell.median("per_cpu_second") if cell else None

    echo = per_cpu("echo", "udp-echo")
    targets: list[tuple[str, str, str, bool | None]] = []

    def ratio_row(name: str, want: str, value: float | None, ok: bool | None) -> None:
        targets.append((name, want, "n/a" if value is None else f"{value:.2f}", ok))

    def cost_vs_echo(shape: str, server: str) -> float | None:
        mine = per_cpu(shape, server)
        return echo / mine if echo and mine else None

    find_x = cost_vs_echo("find", "tracker")
    ratio_row("FIND CPU per response / echo's", "≤ 5", find_x,
              None if find_x is None else find_x <= 5)  # fmt: skip
    stat_x = cost_vs_echo("stat", "tracker")
    ratio_row("STAT_REPORT CPU per response / echo's", "≤ 3", stat_x,
              None if stat_x is None else stat_x <= 3)  # fmt: skip
    mix = per_cpu("mix", "tracker")
    mix_share = mix / echo if mix and echo else None
    ratio_row("Realistic mix rate / UDP echo's rate", "≥ 0.30", mix_share,
              None if mix_share is None else mix_share >= 0.30)  # fmt: skip
    dtls_echo_mix = per_cpu("mix", "dtls-echo")
    dtls_share = mix / dtls_echo_mix if mix and dtls_echo_mix else None
    ratio_row("(the same against the DTLS echo's rate)", "(≥ 0.30)", dtls_share,
              None if dtls_share is None else dtls_share >= 0.30)  # fmt: skip
    stun = per_cpu("stun", "tracker")
    coturn = per_cpu("stun", "coturn")
    stun_ratio = stun / coturn if stun and coturn else None
    ratio_row("STUN rate / coturn's rate", "≥ 1.0", stun_ratio,
              None if stun_ratio is None else stun_ratio >= 1.0)  # fmt: skip
    hs = per_cpu("handshake", "tracker")
    targets.append(("Full DTLS handshakes per CPU-second", "≥ 3,000", _fmt(hs),
                    None if hs is None else hs >= 3000))  # fmt: skip
    mem = extra.get("rss_per_session")
    targets.append(("RSS per live session, KiB (cache at its 100,000-session share)", "≤ 8",
                    _fmt(mem / 1024 if mem else None, 1),
                    None if mem is None else mem <= 8 * 1024))  # fmt: skip
    core = extra.get("core", {})
    per_peer = core.get("bytes_per_peer")
    targets.append(("Bytes per registered peer (core)", "≤ 1,000", _fmt(per_peer),
                    None if per_peer is None else per_peer <= 1000))  # fmt: skip
    fr = core.get("find_ratio")
    targets.append((f"FIND in a {core.get('peers', 0):,}-peer swarm / 100-peer swarm", "≤ 1.5",
                    _fmt(fr, 2), None if fr is None else fr <= 1.5))  # fmt: skip

    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python bench/compare.py{' --quick' if args.quick else ''}` on "
        f"{info['date']}. Rerun it from a fresh clone: see bench/README.md.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items() if k != "date"],
        "",
        "## Method",
        "",
        f"Every server runs at once on loopback; {args.rounds} interleaved round(s), each "
        f"giving every (load, server) pair one `stunlike-tracker load` run: "
        f"{args.processes} client processes, {args.seconds:g} s window after a warm-up. "
        "The server's user+system CPU-seconds over the window come from /proc; "
        "**per CPU-second** = responses / server CPU-seconds, the figure that does not "
        "depend on how busy the shared machine was. Each cell is the median over rounds. "
        "The tracker runs with the per-peer rate limit off (one session sends request after "
        "request) and LAN mode. PPSP sessions keep one request outstanding (PROTOCOL §4); "
        'STUN/UDP/BEP 15 sockets keep several. "echo" in the targets is the uvloop UDP echo '
        "(300 B); the FIND swarm's SEEDs join with one ICE offer each, which the first FINDs "
        "consume (PROTOCOL §6: an offer goes to one requester), so steady-state FIND answers list "
        "addresses, 3 peers per 1,200-byte part (4 datagrams per FIND).",
        "",
        "## Results",
        "",
        "| load | server | per CPU-second | CPU µs / response | responses/s | loss | "
        "p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for shape in SHAPES:
        for name in shape.servers:
            cell = cells.get((shape.key, name))
            if cell is None or not cell.runs:
                continue
            lines.append(
                f"| {shape.title} | {label.get(name, name)} | "
                f"{_fmt(cell.median('per_cpu_second'))} | "
                f"{_fmt(cell.median('cpu_us_per_response'), 1)} | "
                f"{_fmt(cell.median('rate'))} | {100 * (cell.median('loss') or 0):.2f}% | "
                f"{_fmt(cell.median('p50_ms'), 2)} | {_fmt(cell.median('p99_ms'), 2)} |"
            )
    lines += [
        "",
        "## Against the targets (issue 10; uvloop tracker, same run)",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---:|---|",
    ]
    for name, want, value, ok in targets:
        verdict = "n/a" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {name} | {want} | {value} | {verdict} |")
    ratios = []
    for shape_key, ours, theirs in (
        ("stun", "tracker", "coturn"),
        ("stun", "tracker", "udp-echo"),
        ("find", "tracker", "dtls-echo"),
        ("stat", "tracker", "dtls-echo"),
        ("mix", "tracker", "dtls-echo"),
        ("handshake", "tracker", "dtls-echo"),
        ("find", "tracker-asyncio", "tracker"),
        ("stat", "tracker-asyncio", "tracker"),
    ):
        a, b = per_cpu(shape_key, ours), per_cpu(shape_key, theirs)
        if a and b:
            ratios.append(f"- {shape_key}: {label[ours]} / {label[theirs]} = {a / b:.2f}")
    announce = per_cpu("announce", "bt-tracker")
    find = per_cpu("find", "tracker")
    if announce and find:
        ratios.append(
            f"- FIND over DTLS (stunlike-tracker) / BEP 15 announce (bittorrent-tracker) = "
            f"{find / announce:.2f} (per CPU-second; no crypto on the BitTorrent side)"
        )
    if ratios:
        lines += ["", "## Ratios (per CPU-second, same run)", "", *ratios]
    if mem is not None:
        lines += [
            "",
            "## Memory",
            "",
            f"- RSS growth per live CONNECTed+JOINed DTLS session: {mem / 1024:.1f} KiB "
            f"({extra['sessions_for_memory']} sessions, the response cache bound scaled to "
            f"{extra['sessions_for_memory']:,}/{TARGET_SESSIONS:,} of its default: the cached "
            "answers each session holds when 100,000 are connected)",
        ]
        unscaled = extra.get("rss_per_session_default_cache")
        if unscaled is not None:
            lines.append(
                f"- the same with the default bound, not reached by {extra['sessions_for_memory']} "
                f"sessions (every answer of the run kept): {unscaled / 1024:.1f} KiB"
            )
        if core:
            lines.append(
                f"- core: {core['bytes_per_peer']:.0f} B RSS per registered peer "
                f"({core['peers']:,} peers); FIND {core['find_us_small']:.1f} µs in a swarm of "
                f"{core['small']}, {core['find_us_big']:.1f} µs in one of {core['peers']:,}"
            )
    lines += ["", "![per CPU-second](bench/benchmarks.png)", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    raw = {
        "machine": info,
        "labels": label,
        "cells": {f"{k[0]}/{k[1]}": [asdict(r) for r in c.runs] for k, c in cells.items()},
        "extra": extra,
        "targets": [list(t) for t in targets],
    }
    return "\n".join(lines), raw


def chart(cells: dict[tuple[str, str], Cell], label: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars: list[tuple[str, float]] = []
    for shape in SHAPES:
        for name in shape.servers:
            cell = cells.get((shape.key, name))
            value = cell.median("per_cpu_second") if cell else None
            if value:
                bars.append((f"{shape.title[:34]}\n{label.get(name, name)}", value))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(bars) + 1.5))
    names = [b[0] for b in bars][::-1]
    values = [b[1] for b in bars][::-1]
    ax.barh(names, values, color="#4477aa")
    ax.set_xscale("log")
    ax.set_xlabel("responses per server CPU-second (log scale, median of rounds)")
    ax.tick_params(axis="y", labelsize=7)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------


@contextlib.contextmanager
def running(tmp: Path, quick: bool, notes: list[str]) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        servers = start_servers(tmp, quick, notes)
        yield servers
    finally:
        stop_servers(servers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 1.5 s windows, no asyncio")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--core-peers", type=int, default=None)
    parser.add_argument("--sessions-for-memory", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT)
    parser.add_argument(
        "--from-results",
        type=Path,
        help="rewrite the report from a results.json of an earlier run; with --core-peers, "
        "measure the core again, with --sessions-for-memory the RSS per session",
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.5 if args.quick else 4.0)
    core_peers = args.core_peers or (50_000 if args.quick else 1_000_000)
    memory_sessions = args.sessions_for_memory or (300 if args.quick else 2000)
    notes: list[str] = []
    cells: dict[tuple[str, str], Cell] = {}
    extra: dict[str, Any] = {}
    if args.from_results is not None:
        raw = json.loads(args.from_results.read_text())
        for key, runs in raw["cells"].items():
            shape, name = key.split("/")
            cells[(shape, name)] = Cell(shape, name, [LoadResult(**run) for run in runs])
        extra = raw["extra"]
        if args.core_peers:
            print(f"core: {args.core_peers:,} registered peers", flush=True)
            extra["core"] = core_memory(args.core_peers)
        if args.sessions_for_memory:
            print(f"memory: {args.sessions_for_memory} live sessions", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                for key, share in (("rss_per_session", True),
                                   ("rss_per_session_default_cache", False)):  # fmt: skip
                    extra[key] = memory_per_session(
                        Path(tmp), args.sessions_for_memory, at_target_share=share
                    )
            extra["sessions_for_memory"] = args.sessions_for_memory
        machine_info = raw["machine"]
        write(cells, raw["labels"], extra, machine_info, args, raw.get("notes", []))
        return 0
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), args.quick, notes) as servers:
        by_name = {s.name: s for s in servers}
        for round_no in range(args.rounds):
            for shape in SHAPES:
                for name in shape.servers:
                    server = by_name.get(name)
                    if server is None:
                        continue
                    print(f"round {round_no + 1}/{args.rounds}: {shape.key} -> {name}", flush=True)
                    try:
                        result = measure(shape, server, args.seconds, args.processes)
                    except LoadError as error:
                        notes.append(f"{shape.key} against {name} failed: {error}")
                        continue
                    cells.setdefault((shape.key, name), Cell(shape.key, name)).runs.append(result)
                    print("   " + "; ".join(result.lines()[1:]), flush=True)
        print(f"memory: {memory_sessions} live sessions", flush=True)
        extra["rss_per_session"] = memory_per_session(
            Path(tmp), memory_sessions, at_target_share=True
        )
        extra["rss_per_session_default_cache"] = memory_per_session(
            Path(tmp), memory_sessions, at_target_share=False
        )
        extra["sessions_for_memory"] = memory_sessions
    print(f"core: {core_peers:,} registered peers", flush=True)
    extra["core"] = core_memory(core_peers)
    write(cells, {s.name: s.label for s in servers}, extra, machine(), args, notes)
    return 0


def write(
    cells: dict[tuple[str, str], Cell],
    label: dict[str, str],
    extra: dict[str, Any],
    info: dict[str, str],
    args: argparse.Namespace,
    notes: list[str],
) -> None:
    text, raw = report(cells, label, extra, info, args, notes)
    raw["notes"] = notes
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "BENCHMARKS.md"
    # Sections other scripts maintain between their own markers are kept
    # (bench/workers_bench.py: "Many workers on one port").
    kept: list[str] = []
    if target.exists():
        kept = [
            m.group(0)
            for m in re.finditer(
                r"<!-- (\w+):begin -->.*?<!-- \1:end -->\n?", target.read_text(), re.S
            )
        ]
    target.write_text(text.rstrip("\n") + "".join("\n\n" + k.rstrip("\n") for k in kept) + "\n")
    (args.out / "bench").mkdir(exist_ok=True)
    (args.out / "bench" / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    chart(cells, label, args.out / "bench" / "benchmarks.png")
    print(f"wrote {args.out / 'BENCHMARKS.md'} and {args.out / 'bench' / 'benchmarks.png'}")


if __name__ == "__main__":
    sys.exit(main())
