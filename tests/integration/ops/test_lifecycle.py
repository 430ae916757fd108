"""SIGHUP reloads without dropping sessions; SIGTERM drains and exits 0
within 5 s; both against ``serve`` run as an operator runs it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import signal
import time
from pathlib import Path

import pytest

from stunlike_tracker.certs import make_ca, make_server_cert
from stunlike_tracker.peer.client import ClientSettings, TrackerClient, TrackerError
from stunlike_tracker.ppsp.messages import PeerMode
from tests.integration.ops.support import Tracker, client, offer, scrape, start_tracker


async def _until(condition: object, what: str, limit: float = 10.0) -> None:
    """Poll ``condition()`` (an observable state, not a guess at timing)."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _metric(tracker: Tracker, name: str, **labels: str) -> float:
    assert tracker.http is not None
    key = (name, tuple(sorted(labels.items())))
    return float(scrape(tracker.http).get(key, 0.0))


@pytest.mark.asyncio
async def test_sighup_reloads_allow_list_turn_secret_and_certificate_keeping_sessions(
    tmp_path: Path,
) -> None:
    changes = {
        "tracker": {"allowed_swarms": '["films"]'},
        "turn": {"uris": '["turn:relay.example:3478"]', "secrets": '["first-secret"]'},
    }
    tracker = start_tracker(tmp_path, changes=changes)
    config = tmp_path / "tracker.toml"
    peer = client(tracker, "steady")
    try:
        response = await peer.connect()
        (turn,) = response.turn_servers
        assert turn.credential == _turn_password(b"first-secret", turn.username)
        await peer.join("films", PeerMode.LEECH)
        with pytest.raises(TrackerError) as refused:
            await peer.join("music", PeerMode.LEECH)
        assert refused.value.status == 404

        # A certificate from another CA, a wider allow-list, a rotated secret.
        ca2 = make_ca()
        server2 = make_server_cert(ca2)
        (tmp_path / "t2.pem").write_bytes(server2.cert_pem)
        (tmp_path / "t2.key").write_bytes(server2.key_pem)
        from tests.integration.ops.support import config_text

        changes["tracker"]["allowed_swarms"] = '["films", "music"]'
        changes["turn"]["secrets"] = '["second-secret", "first-secret"]'
        changes["budgets"] = {"address_sessions": "2"}
        changes["server"] = {
            "certificate": f'"{tmp_path / "t2.pem"}"',
            "private_key": f'"{tmp_path / "t2.key"}"',
        }
        config.write_text(config_text(changes))
        tracker.proc.send_signal(signal.SIGHUP)
        await _until(
            lambda: _metric(tracker, "stunlike_events_total", event="config-reloads") == 1,
            "the reload",
        )

        # The established session is still served, with the new allow-list.
        assert (await peer.join("music", PeerMode.LEECH)).status == 200
        assert (await peer.find("films")).status == 200
        assert peer.reconnects == 0
        assert _metric(tracker, "stunlike_handshakes_total") == 1

        # New associations get the new certificate and the new TURN secret.
        fresh = TrackerClient(
            ClientSettings(
                tracker=tracker.udp,
                ca_pem=ca2.cert_pem,
                server_name="localhost",
                local_host="127.0.0.1",
            ),
            "newcomer",
        )
        crowd = TrackerClient(fresh.settings, "crowd")
        try:
            (turn,) = (await fresh.connect()).turn_servers
            assert turn.credential == _turn_password(b"second-secret", turn.username)
            # The new budget: two associations from 127.0.0.1 (steady, newcomer).
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(crowd.connect(), 1.0)
            budget_drops = _metric(
                tracker, "stunlike_dropped_datagrams_total", reason="budget-address-sessions"
            )
            assert budget_drops >= 1
        finally:
            await fresh.close()
            await crowd.close()
    finally:
        await peer.close()
        assert tracker.stop() == 0


@pytest.mark.asyncio
async def test_a_bad_reload_keeps_the_running_settings(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path, "-v")
    peer = client(tracker, "p")
    try:
        await peer.connect()
        (tmp_path / "tracker.toml").write_text("[tracker]\nkeep_alive = 'soon'\n")
        tracker.proc.send_signal(signal.SIGHUP)
        await _until(
            lambda: _metric(tracker, "stunlike_events_total", event="config-reload-failures") == 1,
            "the failed reload",
        )
        assert (await peer.join("s", PeerMode.SEED)).status == 200
    finally:
        await peer.close()
        assert tracker.stop() == 0
    assert tracker.proc.stderr is not None
    err = tracker.proc.stderr.read()
    assert "[tracker] keep_alive: must be an integer" in err


def _turn_password(secret: bytes, username: str) -> str:
    return base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.asyncio
async def test_sigterm_drains_answers_pending_attach_503_and_exits_0_within_5_s(
    tmp_path: Path,
) -> None:
    tracker = start_tracker(tmp_path, changes={"server": {"drain_seconds": "3.0"}})
    asker = client(tracker, "asker")
    gone = client(tracker, "gone")
    late = client(tracker, "late")
    try:
        for peer in (asker, gone):
            await peer.connect()
            await peer.join("s", PeerMode.LEECH)
        # "gone" vanishes without leaving: still registered, nobody to
        # acknowledge the indication, so the ATTACH stays pending.
        await gone.close()
        attach = asyncio.ensure_future(asker.attach("s", "gone", offer("a", 40001)))
        await _until(
            lambda: _metric(tracker, "stunlike_pending_attaches") == 1, "the pending ATTACH"
        )

        stopped_at = time.monotonic()
        tracker.proc.send_signal(signal.SIGTERM)
        with pytest.raises(TrackerError) as info:
            await asyncio.wait_for(attach, 10)
        assert info.value.status == 503
        assert info.value.response is not None
        assert info.value.response.reason == "Shutting Down"
        assert time.monotonic() - stopped_at < 2.0  # not the 5 s ATTACH timeout

        # Established peers are still answered; new handshakes are not.
        assert (await asker.find("s")).status == 200
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(late.connect(), 1.0)

        code = await asyncio.to_thread(tracker.proc.wait, 10)
        assert code == 0
        assert time.monotonic() - stopped_at < 5.0
    finally:
        for peer in (asker, gone, late):
            await peer.close()
        tracker.stop()
