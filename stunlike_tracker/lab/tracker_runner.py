"""The matrix runner that uses our product end to end.

Two trackers run in the lab's public tracker host (``trk``): one without
TURN credentials (``relay=False``) and one that hands out TURN REST
credentials for the lab's coturn (``relay=True``). For each case a seeder
(``stunlike-tracker peer --seed``) starts in the seeder's LAN host and a
leecher (``stunlike-tracker peer --leech --json``) in the leecher's; the two
know only the tracker's public address and a swarm id. The leecher's JSON
result line becomes the ``PairResult``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.pairs import PairResult, RunPair
from stunlike_tracker.lab.topology import LabError, Topology

TRACKER_HOST = "trk"
PLAIN_PORT = 3478
RELAY_PORT = 3479
# Enough to prove data moves both ways of a real channel; small enough that
# 10% loss (every lost SCTP packet can cost a 1 s RTO in aiortc) stays quick.
PAYLOAD_BYTES = 64 * 1024
CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


def read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The first stdout line starting with ``prefix``, waiting at most ``timeout``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LabError(f"no {prefix!r} line within {timeout:.0f} s")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            raise LabError(f"process exited (rc={proc.poll()}) before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TrackerPairRunner:
    def __init__(self, lab: Topology, workdir: Path, tracker_ip: str) -> None:
        self.lab = lab
        self.workdir = workdir
        self.tracker_ip = tracker_ip
        self.ca = workdir / "certs" / "ca.pem"
        self.payload = workdir / "payload.bin"
        self.payload.write_bytes(os.urandom(PAYLOAD_BYTES))
        self._case = 0

    def __call__(
        self, lab: Topology, seeder_host: str, leecher_host: str, relay: bool, timeout: float
    ) -> PairResult:
        self._case += 1
        port = RELAY_PORT if relay else PLAIN_PORT
        tracker = f"{self.tracker_ip}:{port}"
        swarm = f"case-{self._case}"
        common = ["--tracker", tracker, "--ca", str(self.ca), "--swarm", swarm]
        common += ["--connect-timeout", str(timeout)]
        seeder = lab.spawn(
            seeder_host,
            [*CLI, "peer", *common, "--peer-id", f"seed-{self._case}", "--seed", str(self.payload)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        out = self.workdir / f"out-{self._case}.bin"
        # Two connection attempts (offer, then reverse ATTACH) and their setup.
        give_up = 2 * timeout + 6
        try:
            # The seeder CONNECTs, gathers and JOINs first: slow under loss.
            read_line(seeder, "seeding ", 30 + 2 * timeout)
            started = time.monotonic()
            leecher = lab.run(
                leecher_host,
                [
                    *CLI,
                    "peer",
                    *common,
                    "--peer-id",
                    f"leech-{self._case}",
                    "--leech",
                    str(out),
                    "--timeout",
                    str(give_up),
                    "--json",
                ],
                timeout=give_up + 30,
            )
        except (LabError, subprocess.TimeoutExpired) as error:
            return PairResult("failed", None, None, f"runner: {error}")
        finally:
            stop_process(seeder)
        lines = [ln for ln in leecher.stdout.splitlines() if ln.startswith("{")]
        try:
            result = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            result = {}
        if result.get("outcome") == "ok" and out.exists() and out.stat().st_size == PAYLOAD_BYTES:
            out.unlink()
            return PairResult(
                "connected",
                result.get("pair_type"),
                float(result.get("connect_ms") or 0.0),
                f"{PAYLOAD_BYTES} bytes, sha256 ok",
            )
        detail = result.get("detail") or leecher.stderr.strip()[-200:] or "no result"
        return PairResult("failed", None, None, f"{detail} ({time.monotonic() - started:.1f} s)")


@dataclasses.dataclass(frozen=True)
class Trackers:
    """The trackers running on ``trk``: ``PLAIN_PORT`` without TURN,
    ``RELAY_PORT`` handing out TURN REST credentials for the lab's coturn."""

    tracker_ip: str
    workdir: Path

    @property
    def certs(self) -> Path:
        return self.workdir / "certs"


@contextlib.contextmanager
def running_trackers(lab: Topology, coturn: Coturn) -> Iterator[Trackers]:
    """Start both trackers in the lab's tracker host; stop them afterwards."""
    with tempfile.TemporaryDirectory(prefix="stl-lab-") as tmp:
        workdir = Path(tmp)
        tracker_ip = lab.public_address(TRACKER_HOST)
        subprocess.run(
            [*CLI, "certs", "init", str(workdir / "certs"), "--name", tracker_ip],
            check=True,
            capture_output=True,
        )
        secret = coturn.secret
        turn_host, turn_port = coturn.turn_server
        turn_uri = f"turn:{turn_host}:{turn_port}?transport=udp"
        trackers = []
        try:
            for port, extra in (
                (PLAIN_PORT, []),
                (RELAY_PORT, ["--turn-uri", turn_uri, "--turn-secret", secret]),
            ):
                trackers.append(start_tracker(lab, workdir / "certs", port, extra))
            yield Trackers(tracker_ip, workdir)
        finally:
            for proc in trackers:
                stop_process(proc)


def start_tracker(lab: Topology, certs: Path, port: int, extra: list[str]) -> subprocess.Popen[str]:
    """``stunlike-tracker serve`` on ``trk``, returned once it listens."""
    tracker_ip = lab.public_address(TRACKER_HOST)
    argv = [*CLI, "serve", "--host", tracker_ip, "--port", str(port), "--certs", str(certs)]
    proc = lab.spawn(
        TRACKER_HOST,
        [*argv, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        read_line(proc, "listening udp ", 30)
    except LabError:
        stop_process(proc)
        raise
    return proc


@contextlib.contextmanager
def tracker_runner(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
    """Our trackers in ``trk``; ``stunlike-tracker peer`` processes per case."""
    with running_trackers(lab, coturn) as trackers:
        yield TrackerPairRunner(lab, trackers.workdir, trackers.tracker_ip)
