"""``serve --https`` and the ``[https]`` table, from outside (PROTOCOL §14.1)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

from stunlike_tracker.config import HttpsConfig, build_settings, render_config

from ..ops.support import CLI, config_text
from .client import HttpsClient, WsClient, request


def test_print_config_documents_the_https_table() -> None:
    text = render_config()
    section = text.split("[https]", 1)[1].split("\n[", 1)[0]
    for key in ("listen", "max_message_size", "max_json_depth", "max_connections_per_address"):
        assert f"{key} = " in section, key
    assert "RFC 7846" in section
    settings = build_settings({"https": {"listen": "127.0.0.1:8443", "max_json_depth": 6}})
    assert settings.https.listen == "127.0.0.1:8443"
    assert settings.https.max_json_depth == 6
    assert build_settings({}).https == HttpsConfig()


def test_a_bad_listen_address_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tracker.toml"
    path.write_text(config_text({"https": {"listen": '"nowhere"'}}))
    done = subprocess.run(
        [*CLI, "serve", "--config", str(path), "--certs", str(tmp_path / "certs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "stunlike-tracker: [https] listen: expected HOST:PORT, got 'nowhere'"
    ]


def test_serve_https_flag(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--certs",
            str(certs),
            "--lan",
            "--https",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        udp = proc.stdout.readline().strip()
        assert udp.startswith("listening udp 127.0.0.1:"), udp
        line = proc.stdout.readline().strip()
        assert line.startswith("listening https 127.0.0.1:"), line
        host, _, port = line.removeprefix("listening https ").rpartition(":")
        ca = (certs / "ca.pem").read_bytes()
        asyncio.run(_exchange((host, int(port)), ca, int(udp.rpartition(":")[2])))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


async def _exchange(address: tuple[str, int], ca: bytes, udp_port: int) -> None:
    """The certificate is the tracker's own (trusted via the dev CA)."""
    ws = await WsClient(address, ca).open()
    answer = await ws.call(request("CONNECT", "s1", "cli-1"))
    assert answer["status"] == 200
    await ws.close()
    http = await HttpsClient(address, ca).open()
    status, _headers, body = await http.request("GET", "/peer/config.json")
    assert status == 200 and json.loads(body)["stun_port"] == udp_port
    await http.close()
