"""The command line: serve, certs, client (issue 3's CLI names, to the letter)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stunlike_tracker.cli import build_parser
from stunlike_tracker.server.app import RunningServer
from tests.integration.support import Pki, client_for

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


def test_tracker_settings_from_the_config_file_are_type_checked() -> None:
    from stunlike_tracker.config import ConfigError, build_settings, tracker_config
    from stunlike_tracker.service import flag_overrides

    plain = flag_overrides(build_parser().parse_args(["serve"]))
    table = {"allowed_swarms": ["a", "b"], "keep-alive": 10, "track_timeout": 60}
    config = tracker_config(build_settings({"tracker": table}, plain))
    assert config.allowed_swarms == frozenset({"a", "b"})
    assert config.keep_alive == 10
    assert config.track_timeout == 60.0 and isinstance(config.track_timeout, float)
    closed = flag_overrides(
        build_parser().parse_args(["serve", "--allow-swarm", "x", "--allow-swarm", "y"])
    )
    assert tracker_config(build_settings({}, closed)).allowed_swarms == frozenset({"x", "y"})
    with_list = build_settings({"tracker": {"allowed_swarms": ["a"]}}, closed)
    assert tracker_config(with_list).allowed_swarms == frozenset("xy")
    bad: list[dict[str, object]] = [
        {"keep_alive": "25"},
        {"keep_alive": 2.5},
        {"lan_mode": 1},
        {"track_timeout": True},
        {"node_id": 7},
        {"allowed_swarms": "a"},
        {"allowed_swarms": [1]},
        {"attach_resend_intervals": ["x"]},
        {"turn": {}},
        {"identity_mode": "mutual"},
    ]
    for table in bad:
        with pytest.raises(ConfigError) as info:
            build_settings({"tracker": table}, plain)
        assert "\n" not in str(info.value), table
        assert str(info.value).startswith("[tracker] " + next(iter(table))), info.value


def test_serve_allow_swarm_makes_a_closed_tracker(tmp_path: Path) -> None:
    config = tmp_path / "tracker.toml"
    config.write_text('[tracker]\nallowed_swarms = ["other"]\nkeep_alive = 7\n')
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--certs",
            str(tmp_path / "certs"),
            "--config",
            str(config),
            "--allow-swarm",
            "films",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()  # blocks until the server is bound
        assert first.startswith("listening udp 127.0.0.1:"), first
        out = subprocess.run(
            [
                *CLI,
                "client",
                "--tracker",
                first.removeprefix("listening udp "),
                "--ca",
                str(tmp_path / "certs" / "ca.pem"),
                "--peer-id",
                "p",
                "join:films",
                "join:other",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = out.stdout.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["CONNECT", "200"],
            ["JOIN", "200"],
            ["JOIN", "404"],  # the flag replaced the config file's list
        ]
        assert "keepalive=7" in lines[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


@pytest.mark.asyncio
async def test_client_steps_peer_count_and_bad_waits(
    server: RunningServer, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stunlike_tracker.cli import UsageError, _client, build_parser
    from stunlike_tracker.ppsp.messages import PeerMode

    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.cert_pem)
    host, port = server.address

    def parse(*steps: str) -> argparse.Namespace:
        flags = ["--tracker", f"{host}:{port}", "--ca", str(ca), "--server-name", "localhost"]
        return build_parser().parse_args(["client", *flags, "--peer-id", "cli", *steps])

    seed = client_for(server, pki, "seed")
    try:
        await seed.connect()
        await seed.join("films", PeerMode.SEED)
        assert await _client(parse("join:films", "find:films:0", "find:films")) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in lines] == ["CONNECT", "JOIN", "FIND", "FIND"]
        assert "peer=" not in lines[2]  # PeerNum 0: no peers
        assert "peer=seed" in lines[3]  # the default
        for step in ("wait:abc", "wait:-1", "find:films:x", "hop"):
            with pytest.raises(UsageError, match=step):
                await _client(parse("stat", step))
    finally:
        await seed.close()


def test_a_bad_step_is_a_one_line_usage_error_before_any_traffic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stunlike_tracker.cli import main

    # Nothing listens on port 9: the steps are checked before connecting.
    assert main(["client", "--tracker", "127.0.0.1:9", "--peer-id", "x", "wait:abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wait:abc" in err
