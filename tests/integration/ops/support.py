"""A tracker started the way an operator starts it (``serve`` in a
subprocess, from print-config's output), peers driven against it, and HTTP
scraped from it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stunlike_tracker.config import render_config
from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    PeerAddress,
    PeerMode,
    Representation,
    SegmentInfo,
    StreamStatistics,
)

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


@dataclass
class Tracker:
    proc: subprocess.Popen[str]
    udp: tuple[str, int]
    http: str | None
    ca: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def config_text(changes: dict[str, dict[str, str]] | None = None) -> str:
    """print-config's output with some keys set (values as TOML text)."""
    lines = render_config().splitlines()
    section = ""
    wanted = {(s, k): v for s, table in (changes or {}).items() for k, v in table.items()}
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key = line.removeprefix("# ").split(" = ", 1)[0]
        if " = " in line and (section, key) in wanted:
            lines[i] = f"{key} = {wanted.pop((section, key))}"
    assert not wanted, f"no such keys: {wanted}"
    return "\n".join(lines) + "\n"


def start_tracker(
    tmp_path: Path,
    *flags: str,
    http: bool = True,
    changes: dict[str, dict[str, str]] | None = None,
) -> Tracker:
    """``serve --config <print-config output with changes>`` on loopback ports 0."""
    path = tmp_path / "tracker.toml"
    path.write_text(config_text(changes))
    certs = tmp_path / "certs"
    args = [*CLI, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", "0"]
    args += ["--certs", str(certs), "--lan", *flags]
    if http:
        args += ["--http", "127.0.0.1:0"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()  # blocks until bound
    if not first.startswith("listening udp "):
        proc.kill()
        raise AssertionError(
            f"unexpected first line {first!r}: {proc.stderr.read() if proc.stderr else ''}"
        )
    host, _, port = first.removeprefix("listening udp ").rpartition(":")
    http_address = None
    if http:
        second = proc.stdout.readline().strip()
        assert second.startswith("listening http 127.0.0.1:"), second
        http_address = second.removeprefix("listening http ")
    return Tracker(proc, (host, int(port)), http_address, certs / "ca.pem")


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
        return response.status, response.headers["Content-Type"], body


def scrape(http: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    _, _, text = get(f"http://{http}/metrics")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def client(tracker: Tracker, peer_id: str) -> TrackerClient:
    settings = ClientSettings(
        tracker=tracker.udp,
        ca_pem=tracker.ca.read_bytes(),
        server_name="localhost",
        local_host="127.0.0.1",
    )
    return TrackerClient(settings, peer_id)


def offer(name: str, port: int) -> IceOffer:
    return IceOffer(
        id=f"o-{name}",
        ufrag=f"u{name}",
        pwd="p" * 22,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=(
            PeerAddress(
                AddrType.IPV4, "127.0.0.1", port, AddressType.HOST, 2130706431, foundation="1"
            ),
        ),
    )


async def populate(tracker: Tracker, swarm: str) -> list[TrackerClient]:
    """One seed and two leeches in ``swarm``, statistics and content maps
    reported, one introduction (leech -> seed) acknowledged."""
    seed = client(tracker, "seed-1")
    leeches = [client(tracker, f"leech-{i}") for i in (1, 2)]
    peers = [seed, *leeches]
    for peer in peers:
        await peer.connect()
    await seed.join(swarm, PeerMode.SEED)
    for leech in leeches:
        await leech.join(swarm, PeerMode.LEECH)
    full = Representation("r1", (SegmentInfo(0, 15, None, "//8="),))  # chunks 0..15
    half = Representation("r1", (SegmentInfo(0, 15, None, "/wA="),))  # chunks 0..7
    await seed.stat_report(
        (StreamStatistics(swarm, 5_000_000, 0, None), ContentMap(swarm, (full,)))
    )
    await leeches[0].stat_report(
        (StreamStatistics(swarm, 1_000, 2_500_000, None), ContentMap(swarm, (half,)))
    )
    await asyncio.wait_for(leeches[0].attach(swarm, "seed-1", offer("l1", 40000)), 10)
    return peers


async def close_all(peers: list[TrackerClient]) -> None:
    for peer in peers:
        await peer.close()
