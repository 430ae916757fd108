"""`peer` and `client` stop within 2 s of SIGTERM/SIGINT in every state,
the tracker gone included (issue 11 item 7), leaving no partial file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]
LIMIT = 2.0


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    subprocess.run([*CLI, "certs", "init", str(tmp_path / "certs")], check=True, timeout=60)
    return tmp_path / "certs"


@pytest.fixture
def silent_tracker() -> Iterator[socket.socket]:
    """A UDP port that receives and never answers (a tracker that is gone
    but whose address still swallows datagrams)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(30)
    yield sock
    sock.close()


def _stop_time(proc: subprocess.Popen[str], signum: int = signal.SIGTERM) -> float:
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    command = " ".join(str(a) for a in proc.args[3:])  # type: ignore[index]
    print(f"{command}: exit {proc.returncode} {elapsed:.2f} s after signal")
    return elapsed


def _serve(certs: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--lan", "--certs", str(certs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening udp "), line
    return proc, line.removeprefix("listening udp ")


def test_seeder_stops_fast_after_its_tracker_is_gone(certs: Path, tmp_path: Path) -> None:
    tracker, address = _serve(certs)
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 1000)
    seeder = subprocess.Popen(
        [
            *CLI,
            "peer",
            "--tracker",
            address,
            "--ca",
            str(certs / "ca.pem"),
            "--swarm",
            "s",
            "--lan",
            "--seed",
            str(source),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert seeder.stdout is not None
        assert seeder.stdout.readline().startswith("seeding f.bin")
    finally:
        tracker.kill()  # the tracker is gone, without a goodbye
        tracker.wait()
    assert _stop_time(seeder) < LIMIT
    assert seeder.returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_leecher_stuck_in_the_handshake_stops_fast_and_leaves_no_file(
    certs: Path, tmp_path: Path, silent_tracker: socket.socket, signum: int
) -> None:
    port = silent_tracker.getsockname()[1]
    out = tmp_path / "out.bin"
    leecher = subprocess.Popen(
        [
            *CLI,
            "peer",
            "--tracker",
            f"127.0.0.1:{port}",
            "--ca",
            str(certs / "ca.pem"),
            "--swarm",
            "s",
            "--lan",
            "--leech",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    silent_tracker.recv(2048)  # its ClientHello: it is handshaking now
    assert _stop_time(leecher, signum) < LIMIT
    assert leecher.returncode == 128 + signum
    assert list(tmp_path.glob("out.bin*")) == []


def test_client_stuck_in_the_handshake_stops_fast(
    certs: Path, silent_tracker: socket.socket
) -> None:
    port = silent_tracker.getsockname()[1]
    client = subprocess.Popen(
        [
            *CLI,
            "client",
            "--tracker",
            f"127.0.0.1:{port}",
            "--ca",
            str(certs / "ca.pem"),
            "--peer-id",
            "c",
            "join:s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    silent_tracker.recv(2048)
    assert _stop_time(client) < LIMIT
    assert client.returncode == 128 + signal.SIGTERM
    assert client.stderr is not None
    assert client.stderr.read().strip() == "stunlike-tracker: stopped by SIGTERM"
