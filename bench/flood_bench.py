"""Floods from outside on loopback, against a real tracker process (issue 11).

Run: python3 bench/flood_bench.py [--seconds 10] [--json FILE] [--server-tree DIR]
     (CI: --seconds 3 --check)

A tracker runs in its own process (tests/integration/stats_server.py, the
tracker's defaults). 20 honest SEEDs join a swarm from 127.0.0.10-29 and an honest
LEECH on 127.0.0.3 sends a FIND every 0.1 s throughout. Each attack runs in
its own process for ``--seconds``:

* ``sessions``  one source IP (127.0.0.1) completes as many DTLS handshakes
                as it can, each from a new port, never closing them;
* ``halfopen``  200 source IPs (127.0.1.x) pass the cookie exchange and then
                go silent (unfinished handshakes);
* ``junk``      30,000 1-byte 0x17 datagrams/s, half from 500 ports, half
                from an established association;
* ``assoc``     one established association sends 30,000 datagrams/s of
                valid, distinct, encrypted FIND requests;
* ``sybil``     one association CONNECTs and JOINs new Peer-IDs at the
                per-peer rate limit.

Each attack has an idle round before it (the same honest FINDs, no attack);
the report gives the honest FIND median during the attack over the median
of its idle round, the tracker's RSS before and after, the tracker's CPU
seconds, what the attacker sent and received (bytes out/in from the
tracker's side), the tracker's drop counters, and whether anything honest
was lost (every honest FIND answered 200, the honest SEEDs all still
listed). ``--server-tree`` runs the tracker from another checkout (for the
"before" figures in docs/SECURITY.md). ``--check`` exits 1 unless every
attack leaves the FIND median within 2x of idle, nothing lost and the
tracker's associations within the caps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import Method, PeerMode, PeerNum, Request
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession

ATTACKS = ("sessions", "halfopen", "junk", "assoc", "sybil")
STATS_SERVER = Path(__file__).resolve().parent.parent / "tests" / "integration" / "stats_server.py"


# ---------------------------------------------------------------------------
# attacker side (its own process, blocking sockets)
# ---------------------------------------------------------------------------
class _Counted:
    def __init__(self) -> None:
        self.sent = 0
        self.sent_bytes = 0
        self.received = 0
        self.received_bytes = 0

    def send(self, sock: socket.socket, data: bytes) -> None:
        with contextlib.suppress(OSError):
            sock.send(data)
            self.sent += 1
            self.sent_bytes += len(data)

    def recv(self, sock: socket.socket, timeout: float) -> bytes | None:
        sock.settimeout(timeout)
        try:
            data = sock.recv(4096)
        except (TimeoutError, OSError):
            return None
        self.received += 1
        self.received_bytes += len(data)
        return data

    def drain(self, sock: socket.socket) -> None:
        while self.recv(sock, 0.0) is not None:
            pass


# Each attack from its own source addresses (a ban of one must not hide the next).
SOURCE = {"sessions": "127.0.5.1", "junk": "127.0.6.1", "assoc": "127.0.7.1", "sybil": "127.0.8.1"}


def _socket(target: tuple[str, int], host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.connect(target)
    return sock


def _handshake(
    io: _Counted, sock: socket.socket, ctx: DtlsClientContext, *, finish: bool, patience: float
) -> DtlsClientSession | None:
    """Drive one handshake. ``finish=False`` stops right after the cookie
    exchange (a half-open handshake). None if the tracker went silent."""
    session = DtlsClientSession(ctx)
    session.start(time.monotonic())
    for d in session.datagrams_to_send():
        io.send(sock, d)
    verify = io.recv(sock, patience)
    if verify is None:
        return None
    session.feed(verify, time.monotonic())
    for d in session.datagrams_to_send():
        io.send(sock, d)
    if not finish:
        return session
    end = time.monotonic() + patience * 4
    while not session.handshake_complete and time.monotonic() < end:
        data = io.recv(sock, patience)
        if data is None:
            return None
        session.feed(data, time.monotonic())
        for d in session.datagrams_to_send():
            io.send(sock, d)
    return session if session.handshake_complete else None


def attack(kind: str, target: tuple[str, int], ca_pem: bytes, seconds: float) -> dict[str, Any]:
    ctx = DtlsClientContext(ca_pem=ca_pem, verify_hostname="localhost")
    io = _Counted()
    tried = ok = refused = 0
    end = time.monotonic() + seconds
    if kind == "sessions":
        while time.monotonic() < end:
            with _socket(target, SOURCE[kind]) as sock:
                tried += 1
                if _handshake(io, sock, ctx, finish=True, patience=0.1) is not None:
                    ok += 1
                else:
                    refused += 1
    elif kind == "halfopen":
        n = 0
        while time.monotonic() < end:
            host = f"127.0.1.{1 + n % 200}"
            n += 1
            with _socket(target, host) as sock:
                tried += 1
                if _handshake(io, sock, ctx, finish=False, patience=0.2) is not None:
                    ok += 1
                    io.drain(sock)
                else:
                    refused += 1
    elif kind == "junk":
        socks = [_socket(target, SOURCE[kind]) for _ in range(500)]
        assoc = _socket(target, SOURCE[kind])
        session = _handshake(io, assoc, ctx, finish=True, patience=1.0)
        assert session is not None
        # 30,000 datagrams/s, half from 500 ports without an association,
        # half from one established association, paced in batches of 300.
        start = time.monotonic()
        while time.monotonic() < end:
            for n in range(150):
                io.send(socks[(tried + n) % len(socks)], b"\x17")
                io.send(assoc, b"\x17")
            tried += 300
            due = start + tried / 30_000
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
        for s in (*socks, assoc):
            io.drain(s)
            s.close()
    elif kind == "assoc":
        sock = _socket(target, SOURCE[kind])
        session = _handshake(io, sock, ctx, finish=True, patience=1.0)
        assert session is not None
        rate = 30_000
        records: list[bytes] = []
        for n in range(int(rate * seconds)):
            session.send(encode_request(Request(Method.FIND, "flood", f"f{n}", swarm_id="bench")))
            records += session.datagrams_to_send()
        start = time.monotonic()
        end = start + seconds
        batch = 300
        for i in range(0, len(records), batch):
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            for record in records[i : i + batch]:
                io.send(sock, record)
                tried += 1
            if i % 3000 == 0:
                io.drain(sock)
        io.drain(sock)
        sock.close()
    elif kind == "sybil":
        sock = _socket(target, SOURCE[kind])
        session = _handshake(io, sock, ctx, finish=True, patience=1.0)
        assert session is not None
        n = 0
        while time.monotonic() < end:
            peer = f"sybil-{n}"
            n += 1
            for req in (
                Request(Method.CONNECT, peer, f"c{n}"),
                Request(Method.JOIN, peer, f"j{n}", swarm_id="bench", peer_mode=PeerMode.SEED),
            ):
                session.send(encode_request(req))
                for d in session.datagrams_to_send():
                    io.send(sock, d)
                tried += 1
                reply = io.recv(sock, 1.0)
                if reply is not None:
                    session.feed(reply, time.monotonic())
                    for message in session.receive():
                        if b'status="200"' in message:
                            ok += 1
                        else:
                            refused += 1
                time.sleep(1 / 19)  # just under the per-peer rate limit
        sock.close()
    return {
        "kind": kind,
        "tried": tried,
        "ok": ok,
        "refused": refused,
        "sent": io.sent,
        "sent_bytes": io.sent_bytes,
        "received": io.received,
        "received_bytes": io.received_bytes,
    }


# ---------------------------------------------------------------------------
# the bench (honest side)
# ---------------------------------------------------------------------------
def _pinned(cpu: int) -> list[str]:
    """The tracker on one core and the attacker on the other, when the
    machine has two and taskset exists (less noise in the latency ratio)."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


class _Server:
    def __init__(self, tree: Path | None, tmp: Path) -> None:
        env = dict(os.environ)
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        self.ca_path = tmp / "ca.pem"
        self.proc = subprocess.Popen(
            [*_pinned(1), sys.executable, str(STATS_SERVER), str(self.ca_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[-1])

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return report

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _honest_finds(client: TrackerClient, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        try:
            r = await client.find("bench", peer_num=PeerNum(10))
            if r.status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                failures += 1
        except Exception:  # counted: a lost honest request
            failures += 1
        await asyncio.sleep(0.1)
    return latencies, failures


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def run(seconds: float, tree: Path | None, attacks: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = _Server(tree, Path(tmp))
        target = ("127.0.0.1", server.port)
        ca_pem = server.ca_path.read_bytes()

        def settings(host: str) -> ClientSettings:
            return ClientSettings(tracker=target, ca_pem=ca_pem, local_host=host)

        seeds = [TrackerClient(settings(f"127.0.0.{10 + i}"), f"seed-{i}") for i in range(20)]
        leech = TrackerClient(settings("127.0.0.3"), "honest-leech")
        try:
            for c in (*seeds, leech):
                await c.connect()
            for c in seeds:
                await c.join("bench", PeerMode.SEED)
            await leech.join("bench", peer_num=PeerNum(0))
            for kind in attacks:
                # A half-open flood fills the global half-open cap until its
                # handshakes time out; the next attacker needs a handshake of
                # its own, so each attack starts once they have (bounded).
                settle = time.monotonic() + 20
                while server.stats()["half_open"] and time.monotonic() < settle:
                    await asyncio.sleep(0.5)
                idle, idle_failures = await _honest_finds(leech, seconds)
                before = server.stats()
                proc = await asyncio.create_subprocess_exec(
                    *_pinned(0),
                    sys.executable,
                    __file__,
                    "attack",
                    kind,
                    str(server.port),
                    str(server.ca_path),
                    str(seconds),
                    stdout=subprocess.PIPE,
                )
                loaded, failures = await _honest_finds(leech, seconds)
                out, _ = await proc.communicate()
                after = server.stats()
                attacker = json.loads(out)
                final = await leech.find("bench", peer_num=PeerNum(30))
                listed = {i.peer_id for i in final.peers}
                honest_listed = sum(f"seed-{i}" in listed for i in range(20))
                sybils_listed = sum((p or "").startswith("sybil") for p in listed)
                idle_p50 = statistics.median(idle) if idle else float("nan")
                flood_p50 = statistics.median(loaded) if loaded else float("inf")
                results.append(
                    {
                        "attack": kind,
                        "attacker": attacker,
                        "bytes_out_per_in": attacker["received_bytes"]
                        / max(1, attacker["sent_bytes"]),
                        "find_p50_idle_ms": 1000 * idle_p50,
                        "find_p50_flood_ms": 1000 * flood_p50,
                        "find_ratio": flood_p50 / idle_p50 if idle else float("inf"),
                        "honest_finds": len(loaded),
                        "honest_failures": failures + idle_failures,
                        "honest_seeds_listed_of_20": honest_listed,
                        "sybils_listed_of_30": sybils_listed,
                        "rss_kib_before": before["rss_kib"],
                        "rss_kib_after": after["rss_kib"],
                        "server_cpu_s": after["cpu_s"] - before["cpu_s"],
                        "sessions_after": after["sessions"],
                        "half_open_after": after["half_open"],
                        "peers_after": after["peers"],
                        "drops": _diff(after["drops"], before["drops"]),
                        "counters": _diff(after["counters"], before["counters"]),
                    }
                )
                print(_line(results[-1]), flush=True)
        finally:
            for c in (*seeds, leech):
                with contextlib.suppress(Exception):
                    await c.close()
            server.stop()
    return results


def _line(r: dict[str, Any]) -> str:
    a = r["attacker"]
    return (
        f"{r['attack']:9s} tried {a['tried']:>7d} (ok {a['ok']}, refused {a['refused']}) "
        f"out/in {r['bytes_out_per_in']:.2f}  FIND p50 {r['find_p50_idle_ms']:.1f} -> "
        f"{r['find_p50_flood_ms']:.1f} ms (x{r['find_ratio']:.2f})  "
        f"RSS {r['rss_kib_before'] // 1024} -> {r['rss_kib_after'] // 1024} MiB  "
        f"cpu {r['server_cpu_s']:.1f} s  sessions {r['sessions_after']}  "
        f"lost {r['honest_failures']}  seeds {r['honest_seeds_listed_of_20']}/20  "
        f"sybils {r['sybils_listed_of_30']}"
    )


def check(results: list[dict[str, Any]], max_ratio: float) -> list[str]:
    """Hard limits: nothing honest lost, no amplification toward unverified
    sources, associations within the caps (21 honest + one source's 256 +
    the global 1,024 half-open + a few), and the FIND median ratio."""
    problems = []
    for r in results:
        if r["sessions_after"] > 21 + 256 + 1024 + 10:
            problems.append(f"{r['attack']}: {r['sessions_after']} associations")
        if r["find_ratio"] > max_ratio:
            problems.append(f"{r['attack']}: FIND median x{r['find_ratio']:.2f} of idle")
        if r["honest_failures"]:
            problems.append(f"{r['attack']}: {r['honest_failures']} honest FINDs lost")
        if r["honest_seeds_listed_of_20"] < 20 and r["attack"] != "sybil":
            problems.append(f"{r['attack']}: honest seeds missing")
        if r["bytes_out_per_in"] > 1.0 and r["attack"] in ("halfopen", "junk"):
            problems.append(f"{r['attack']}: amplification {r['bytes_out_per_in']:.2f}")
    return problems


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "attack":
        kind, port, ca, seconds = sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
        report = attack(kind, ("127.0.0.1", port), Path(ca).read_bytes(), seconds)
        print(json.dumps(report))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--attack", action="append", choices=ATTACKS)
    parser.add_argument("--server-tree", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--max-ratio", type=float, default=2.0)
    args = parser.parse_args()
    results = asyncio.run(run(args.seconds, args.server_tree, args.attack or list(ATTACKS)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.check:
        problems = check(results, args.max_ratio)
        for p in problems:
            print("FAIL", p)
        sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
