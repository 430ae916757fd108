"""`stunlike-tracker peer` moves a 10 MB file between two processes (issue 4)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--lan",
            "--certs",
            str(tmp_path / "certs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening udp "), line
    yield line.removeprefix("listening udp ")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_ten_megabytes_with_matching_hash(tracker: str, tmp_path: Path) -> None:
    source = tmp_path / "movie.bin"
    source.write_bytes(os.urandom(10 * 1024 * 1024))
    ca = str(tmp_path / "certs" / "ca.pem")
    seeder = subprocess.Popen(
        [
            *CLI,
            "peer",
            "--tracker",
            tracker,
            "--ca",
            ca,
            "--swarm",
            "films",
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
        ready = seeder.stdout.readline()  # printed once the seeder has joined
        assert ready.startswith("seeding movie.bin (10485760 bytes"), ready
        out = tmp_path / "copy.bin"
        leecher = subprocess.run(
            [
                *CLI,
                "peer",
                "--tracker",
                tracker,
                "--ca",
                ca,
                "--swarm",
                "films",
                "--lan",
                "--leech",
                str(out),
                "--timeout",
                "60",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert leecher.returncode == 0, leecher.stderr
        result = json.loads(leecher.stdout.strip().splitlines()[-1])
        assert result["outcome"] == "ok" and result["bytes"] == 10 * 1024 * 1024
        assert (
            hashlib.sha256(out.read_bytes()).hexdigest()
            == hashlib.sha256(source.read_bytes()).hexdigest()
        )
        assert result["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        print(f"connect {result['connect_ms']} ms, pair {result['pair_type']}")
    finally:
        seeder.send_signal(signal.SIGTERM)
        assert seeder.wait(timeout=30) == 0


def test_leecher_without_seeder_fails_in_one_line(tracker: str, tmp_path: Path) -> None:
    ca = str(tmp_path / "certs" / "ca.pem")
    leecher = subprocess.run(
        [
            *CLI,
            "peer",
            "--tracker",
            tracker,
            "--ca",
            ca,
            "--swarm",
            "empty",
            "--lan",
            "--leech",
            str(tmp_path / "x"),
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert leecher.returncode == 1
    assert leecher.stderr.strip().count("\n") == 0
    assert "gave up after 2 s: no seeder in the swarm" in leecher.stderr
