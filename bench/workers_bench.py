"""FIND and keep-alive rates of `serve --workers N` on a shared Redis (issue 12).

Interleaved rounds of: the embedded memory store in one process (reference),
then 1 and 2 workers on one Redis (redis-server started here, in a temp
dir). Each round drives the tracker with `stunlike-tracker load --kind ppsp`
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


class Tracker:
    def __init__(self, certs: Path, store: str, workers: int) -> None:
        self.port = _free_udp_port()
        config = certs.parent / "tracker.toml"
        # Every load session comes from 127.0.0.1: lift the per-address Sybil caps.
        config.write_text("[tracker]\nmax_peers_per_source = 100000\nmax_source_share = 1.0\n")
        args = [
            *CLI,
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--certs",
            str(certs),
            "--store",
            store,
            "--workers",
            str(workers),
            "--cookie-secret",
            secrets.token_hex(16),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.pids = [self.process.pid]
        assert self.process.stdout is not None
        ready = 0
        for line in self.process.stdout:
            if line.startswith("worker ") and " pid " in line:
                self.pids.append(int(line.split()[-1]))
            ready += line.startswith("worker ") and line.rstrip().endswith(" ready")
            if line.startswith("listening udp") and workers == 1:
                break
            if ready == workers:
                break

    def cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
        " the same cores. CPU-s: tracker processes / redis-server during the run.",
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
