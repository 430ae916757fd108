"""Logs: JSON lines by default off a terminal, per-peer context, nothing
above debug while peers are served, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.ops.support import close_all, get, populate, start_tracker

TURN_SECRET = "turn-secret-4c1d9e"
COOKIE_SECRET = "cookie-secret-77ab02"


def _secrets_changes() -> dict[str, dict[str, str]]:
    return {
        "server": {"cookie_secret": f'"{COOKIE_SECRET}"'},
        "turn": {"uris": '["turn:relay.example:3478"]', "secrets": f'["{TURN_SECRET}"]'},
    }


@pytest.mark.asyncio
async def test_debug_logs_are_json_with_peer_context_and_hold_no_secret(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path, "-vv", changes=_secrets_changes())
    assert tracker.http is not None
    peers = await populate(tracker, "films")
    tokens = [p.reconnect_token for p in peers]
    credentials = [
        t.credential for p in peers for t in (p.last_connect.turn_servers if p.last_connect else ())
    ]
    assert all(tokens) and credentials
    pages = [get(f"http://{tracker.http}{path}")[2] for path in ("/", "/status.json", "/metrics")]
    await close_all(peers)
    assert tracker.stop() == 0
    assert tracker.proc.stderr is not None and tracker.proc.stdout is not None
    err = tracker.proc.stderr.read()
    out = tracker.proc.stdout.read()

    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    requests = [entry for entry in lines if entry["message"].startswith("request ")]
    assert {"peer_id", "address"} <= set(requests[0])
    assert {entry["peer_id"] for entry in requests} >= {"seed-1", "leech-1", "leech-2"}
    assert all(entry["level"] == "debug" for entry in requests)

    key_lines = [
        line
        for name in ("tracker.key", "ca.key")
        for line in (tracker.ca.parent / name).read_text().splitlines()
        if "PRIVATE KEY" not in line
    ]
    forbidden = [TURN_SECRET, COOKIE_SECRET, *tokens, *credentials, *key_lines]
    for text in (err, out, *pages):
        for secret in forbidden:
            assert secret is not None and secret not in text


@pytest.mark.asyncio
async def test_serving_peers_logs_nothing_at_the_default_level(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path)
    peers = await populate(tracker, "films")
    await close_all(peers)
    assert tracker.stop() == 0
    assert tracker.proc.stderr is not None
    assert tracker.proc.stderr.read() == ""


def test_text_format_on_request(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path, "-v", "--log-format", "text", http=False)
    assert tracker.stop() == 0
    assert tracker.proc.stderr is not None
    first = tracker.proc.stderr.readline()
    assert first.startswith("INFO stunlike_tracker.service: serving"), first
