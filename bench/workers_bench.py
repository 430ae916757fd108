"""FIND and keep-alive rates of `serve --workers N` on a shared Redis (issue 12).

Interleaved rounds of: the embedded memory store in one process (reference),
then 1 and 2 worker processes on one UDP port (SO_REUSEPORT, as `serve
--workers` runs them, with the load generator's relaxed per-address limits:
every load session comes from 127.0.0.1) on one Redis (redis-server started
here, in a temp dir). Each round drives the tracker with `stunlike-tracker load --kind ppsp`
(FIND only, then STAT_REPORT keep-alives only) over DTLS on loopback, and
reads the CPU-seconds of the tracker processes and of redis-server from
/proc. Medians over the rounds; ratios against 1 worker of the same run.

    python3 bench/workers_bench.py                 # prints the section
    python3 bench/workers_bench.py --update BENCHMARKS.md

``--update`` replaces the section between the markers (or appends it), so
it survives regenerating the rest of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEGIN = "<!-- workers_bench:begin -->"
END = "<!-- workers_bench:end -->"
CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _node(certs: Path, port: int, store: str, secret: str) -> None:
    """One worker as `serve --workers` starts it (SO_REUSEPORT, shared store),
    with the load generator's relaxed limits (every session is 127.0.0.1)."""
    import asyncio
    from dataclasses import replace

    from stunlike_tracker.certs import init_dev_certs
    from stunlike_tracker.core.config import TrackerConfig
    from stunlike_tracker.server.app import ServerSettings, start_server
    from stunlike_tracker.server.budgets import BudgetLimits

    paths = init_dev_certs(certs)
    unlimited = 1e12
    settings = ServerSettings(
        cert_pem=paths.tracker_cert.read_bytes(),
        key_pem=paths.tracker_key.read_bytes(),
        host="127.0.0.1",
        port=port,
        peer_ca_pem=paths.ca_cert.read_bytes(),
        cookie_secret=secret.encode(),
        tracker=replace(
            TrackerConfig(),
            peer_rate=0.0,
            lan_mode=True,
            max_peers_per_source=10**9,
            max_source_share=1.0,
        ),
        budgets=BudgetLimits(
            address_rate=unlimited,
            address_burst=unlimited,
            session_rate=unlimited,
            session_burst=unlimited,
            address_sessions=10**9,
            address_half_open=10**9,
            global_half_open=10**9,
        ),
        store=store,
        reuse_port=True,
    )
    running = await start_server(settings)
    print(f"listening udp 127.0.0.1:{running.address[1]}", flush=True)
    await asyncio.Event().wait()


class Tracker:
    """N worker processes on one port (what `serve --workers N` runs)."""

    def __init__(self, certs: Path, store: str, workers: int) -> None:
        self.port = _free_udp_port()
        secret = secrets.token_hex(16)
        self.processes = []
        for _ in range(workers):
            args = [sys.executable, __file__, "--node", str(certs), str(self.port), store, secret]
            process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            process.stdout.readline()  # listening: bound
            self.processes.append(process)
        self.pids = [p.pid for p in self.processes]

    def cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _load(port: int, certs: Path, mix: str, seconds: float, sessions: int) -> dict[str, object]:
    out = subprocess.run(
        [
            *CLI,
            "load",
            "--tracker",
            f"127.0.0.1:{port}",
            "--kind",
            "ppsp",
            "--mix",
            mix,
            "--processes",
            "1",
            "--sessions",
            str(sessions),
            "--seconds",
            str(seconds),
            "--warmup",
            "1",
            "--ca",
            str(certs / "ca.pem"),
            "--server-name",
            "localhost",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds * 4 + 60,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--node":
        import asyncio

        node_certs, port, store, secret = sys.argv[2:]
        try:  # as `serve` runs: uvloop when installed
            import uvloop

            uvloop.run(_node(Path(node_certs), int(port), store, secret))
        except ImportError:
            asyncio.run(_node(Path(node_certs), int(port), store, secret))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--update", type=Path, help="write the section into this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp:
        certs = Path(tmp) / "certs"
        redis_port = _free_tcp_port()
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                tmp,
                "--logfile",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert redis.stdout is not None
        for line in redis.stdout:
            if "Ready to accept connections" in line:
                break
        url = f"redis://127.0.0.1:{redis_port}/0"
        configs = [("memory", 1), (url, 1), (url, 2)]
        results: dict[tuple[str, int, str], list[dict[str, float]]] = {}
        try:
            for _round in range(args.rounds):
                for store, workers in configs:
                    tracker = Tracker(certs, store, workers)
                    try:
                        for op, mix in (("find", "find=1"), ("keep-alive", "stat=1")):
                            cpu0, rcpu0 = tracker.cpu(), _cpu_seconds(redis.pid)
                            r = _load(tracker.port, certs, mix, args.seconds, args.sessions)
                            cpu = tracker.cpu() - cpu0
                            rcpu = _cpu_seconds(redis.pid) - rcpu0
                            kind = "memory" if store == "memory" else "redis"
                            results.setdefault((kind, workers, op), []).append(
                                {
                                    "rate": float(r["rate"]),  # type: ignore[arg-type]
                                    "p50": float(r["p50_ms"]),  # type: ignore[arg-type]
                                    "loss": float(r["loss"]),  # type: ignore[arg-type]
                                    "cpu": cpu,
                                    "redis_cpu": rcpu if store != "memory" else 0.0,
                                }
                            )
                            print(kind, workers, op, r["rate"], file=sys.stderr)
                    finally:
                        tracker.stop()
        finally:
            redis.terminate()
            redis.wait()

    def med(key: tuple[str, int, str], field: str) -> float:
        return statistics.median(x[field] for x in results[key])

    lines = [
        BEGIN,
        "## Many workers on one port (`serve --workers N`, shared Redis)",
        "",
        f"Generated by `python3 bench/workers_bench.py` on {platform.node()}"
        f" ({os.cpu_count()} cores, {platform.python_version()}), {time.strftime('%Y-%m-%d')}:"
        f" {args.rounds} interleaved rounds, {args.seconds:.0f} s per measurement,"
        f" {args.sessions} DTLS sessions from one load process (`stunlike-tracker load"
        " --kind ppsp`), medians. The load generator, the workers and redis-server share"
        " the same cores. CPU-s: tracker processes / redis-server during the run."
        f" Load average when the run ended: {os.getloadavg()[0]:.1f}.",
        "",
        "| store | workers | operation | responses/s | vs 1 worker | p50 ms | loss |"
        " tracker CPU-s | redis CPU-s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for op in ("find", "keep-alive"):
        base = med(("redis", 1, op), "rate")
        for kind, workers in (("memory", 1), ("redis", 1), ("redis", 2)):
            key = (kind, workers, op)
            ratio = f"{med(key, 'rate') / base:.2f}x" if kind == "redis" else "-"
            lines.append(
                f"| {kind} | {workers} | {op} | {med(key, 'rate'):.0f} | {ratio} |"
                f" {med(key, 'p50'):.1f} | {med(key, 'loss'):.1%} | {med(key, 'cpu'):.2f} |"
                f" {med(key, 'redis_cpu'):.2f} |"
            )
    lines += [END, ""]
    section = "\n".join(lines)
    print(section)
    if args.update is not None:
        text = args.update.read_text() if args.update.exists() else ""
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            text = head + section.rstrip("\n") + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + ("\n\n" if text else "") + section
        args.update.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
