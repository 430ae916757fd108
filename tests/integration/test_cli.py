"""The command line: serve, certs, client (issue 3's CLI names, to the letter)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]


def test_certs_init_and_peer(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "certs", "init", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "tracker" in out.stdout
    for name in ("ca.pem", "tracker.pem", "tracker.key"):
        assert (tmp_path / "c" / name).exists()
    assert (tmp_path / "c" / "tracker.key").stat().st_mode & 0o077 == 0
    out = subprocess.run(
        [*CLI, "certs", "peer", "alice", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "alice" in out.stdout


def test_serve_prints_its_address_first_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--certs", str(tmp_path / "certs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()  # blocks until the server is bound
        assert first.startswith("listening udp 127.0.0.1:")
        port = int(first.rsplit(":", 1)[1])
        assert port > 0
        out = subprocess.run(
            [
                *CLI,
                "client",
                "--tracker",
                f"127.0.0.1:{port}",
                "--ca",
                str(tmp_path / "certs" / "ca.pem"),
                "--peer-id",
                "cli-peer",
                "join:s1:seed",
                "find:s1",
                "stat",
                "disconnect:s1",
                "disconnect:nil",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["CONNECT", "200"],
            ["JOIN", "200"],
            ["FIND", "200"],
            ["STAT", "200"],
            ["DISCONNECT", "200"],
            ["DISCONNECT", "200"],
        ]
        assert "REFLEXIVE" in lines[0] and "keepalive=25" in lines[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_client_errors_are_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            *CLI,
            "client",
            "--tracker",
            "127.0.0.1:9",
            "--ca",
            str(tmp_path / "missing.pem"),
            "--peer-id",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "cannot read CA certificate" in out.stderr


def test_serve_reports_a_busy_port_in_one_line(tmp_path: Path) -> None:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        out = subprocess.run(
            [
                *CLI,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(sock.getsockname()[1]),
                "--certs",
                str(tmp_path / "c"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sock.close()
    assert out.returncode == 2
    assert out.stderr.strip().startswith("stunlike-tracker: cannot listen on")
