"""The browser page at /peer/ and the native ``peer`` share one swarm (issue 14).

A tracker with ``--https`` (WebSocket + the page) and ``--lan`` on loopback
ports 0; headless Chromium opens https://127.0.0.1:PORT/peer/ and

* fetches a file that a native ``stunlike-tracker peer --seed`` serves,
* then seeds a file that a native ``peer --leech`` fetches,

both verified by SHA-256 (the page shows the hash it computed; the native
leecher checks the header's hash and the test compares the bytes). A
WebSocket peer that disappears is a lost association (PROTOCOL §3, §14.8):
a dropped socket re-CONNECTs with the token and keeps its swarm; a closed
page is retired by its track timer.
Chromium and aioice gather on this machine's own interface addresses, so
the peer-to-peer traffic never leaves the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from stunlike_tracker.lab.cdp import Browser, chromium_executable
from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode
from tests.browser_page import fetch, open_page, share, until

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(chromium_executable() is None, reason="needs chromium"),
]

CLI = [sys.executable, "-m", "stunlike_tracker.cli"]
SIZE = 1_500_000


@dataclass
class Tracker:
    udp: str
    https: str
    ca: Path


# Short timers so that a closed page is retired within the test; the page
# sends its keep-alive STAT_REPORT every second.
CONFIG = "[tracker]\ntrack_timeout = 4.0\nkeep_alive = 1\n"


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[Tracker]:
    (tmp_path / "tracker.toml").write_text(CONFIG)
    argv = [*CLI, "serve", "--config", str(tmp_path / "tracker.toml")]
    argv += ["--host", "127.0.0.1", "--port", "0", "--lan"]
    argv += ["--certs", str(tmp_path / "certs"), "--https", "127.0.0.1:0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    try:
        listening: dict[str, str] = {}
        while len(listening) < 2:  # each line is printed once its socket is bound
            line = proc.stdout.readline().strip()
            assert line.startswith("listening "), line
            _, kind, address = line.split(" ", 2)
            listening[kind] = address
        yield Tracker(listening["udp"], listening["https"], tmp_path / "certs" / "ca.pem")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = await Browser.launch()
    try:
        yield chromium
    finally:
        await chromium.close()


def native_peer(tracker: Tracker, swarm: str, *args: str) -> list[str]:
    return [*CLI, "peer", "--tracker", tracker.udp, "--ca", str(tracker.ca), "--swarm", swarm,
            "--lan", *args]  # fmt: skip


async def test_page_fetches_from_native_seed_and_seeds_a_native_leech(
    tracker: Tracker, browser: Browser, tmp_path: Path
) -> None:
    movie = tmp_path / "movie.bin"
    movie.write_bytes(os.urandom(SIZE))
    seeder = await asyncio.create_subprocess_exec(
        *native_peer(tracker, "films", "--seed", str(movie)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert seeder.stdout is not None
        async with asyncio.timeout(30):
            ready = await seeder.stdout.readline()  # printed once joined
        assert ready.startswith(b"seeding movie.bin"), ready
        page = await open_page(browser, f"https://{tracker.https}/peer/?swarm=films")
        fetched = await fetch(page, limit=90)
    finally:
        seeder.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            await seeder.wait()
    assert fetched["sha256"] == hashlib.sha256(movie.read_bytes()).hexdigest()
    assert fetched["size"] == SIZE
    shown = await page.evaluate("document.getElementById('sha256').textContent")
    assert shown == fetched["sha256"]

    # The other way: a page seeds, a native leecher fetches.
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(SIZE + 12345))
    sharing = await open_page(browser, f"https://{tracker.https}/peer/?swarm=photos")
    seeding = await share(sharing, photo)
    assert seeding["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    out = tmp_path / "copy.bin"
    leecher = await asyncio.to_thread(
        subprocess.run,
        native_peer(tracker, "photos", "--leech", str(out), "--json", "--timeout", "60"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert leecher.returncode == 0, leecher.stderr
    result = json.loads(leecher.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "ok", result
    assert result["sha256"] == seeding["sha256"]
    assert out.read_bytes() == photo.read_bytes()


async def _leech_from(tracker: Tracker, swarm: str, out: Path) -> dict[str, object]:
    leecher = await asyncio.to_thread(
        subprocess.run,
        native_peer(tracker, swarm, "--leech", str(out), "--json", "--timeout", "60"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert leecher.returncode == 0, leecher.stderr
    result: dict[str, object] = json.loads(leecher.stdout.strip().splitlines()[-1])
    return result


async def test_a_dropped_websocket_re_connects_with_its_token_and_keeps_seeding(
    tracker: Tracker, browser: Browser, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(300_000))
    page = await open_page(browser, f"https://{tracker.https}/peer/?swarm=kept")
    seeding = await share(page, photo)
    await page.evaluate("window.browserPeerDebug.tracker.socket.close()")
    state = await until(page, "(s) => (s.reconnects || 0) >= 1", 30, "re-CONNECTed")
    assert state["phase"] == "seeding"
    # The re-CONNECT restored the membership: a native leecher finds the page.
    result = await _leech_from(tracker, "kept", tmp_path / "copy.bin")
    assert result["outcome"] == "ok", result
    assert result["sha256"] == seeding["sha256"]
    assert (tmp_path / "copy.bin").read_bytes() == photo.read_bytes()


async def test_a_closed_page_is_retired_by_its_track_timer(
    tracker: Tracker, browser: Browser, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(1000))
    page = await open_page(browser, f"https://{tracker.https}/peer/?swarm=gone")
    seeding = await share(page, photo)
    client = TrackerClient(
        ClientSettings(
            tracker=_address(tracker.udp),
            ca_pem=tracker.ca.read_bytes(),
            server_name="localhost",
            local_host="127.0.0.1",
        ),
        "native-watcher",
    )
    try:
        await client.connect()
        listed = await client.join("gone", PeerMode.LEECH)
        assert seeding["peerId"] in {p.peer_id for p in listed.peers}
        await page.close()  # its WebSocket closes: a lost association
        closed_at = time.monotonic()
        # The tracker keeps the peer until its track timer (4 s) runs out;
        # watch with FIND (a protocol timer, bounded: never past 3x the timer).
        while seeding["peerId"] in {p.peer_id for p in (await client.find("gone")).peers}:
            assert time.monotonic() - closed_at < 12, "the closed page is still listed"
            await asyncio.sleep(0.25)
        assert time.monotonic() - closed_at > 1.0  # not dropped at once: a timer, as for DTLS
    finally:
        await client.close(leave=True)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def test_a_reloaded_page_re_connects_as_the_same_peer(
    tracker: Tracker, browser: Browser, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(200_000))
    url = f"https://{tracker.https}/peer/?swarm=again"
    page = await open_page(browser, url)
    first = await share(page, photo)
    assert first["restored"] == []
    await page.goto(url)  # a reload: same tab, so the same identity and token
    await until(page, "(s) => s.phase !== 'loading'", 30, "loaded")
    second = await share(page, photo)
    assert second["peerId"] == first["peerId"]
    assert second["restored"] == ["again"]  # a re-CONNECT, not a new registration
    result = await _leech_from(tracker, "again", tmp_path / "copy.bin")
    assert result["outcome"] == "ok", result
    assert result["seeder"] == first["peerId"]


async def test_a_page_fetches_from_another_page(
    tracker: Tracker, browser: Browser, tmp_path: Path
) -> None:
    """Browser to browser through the same tracker (both on WebSockets)."""
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(300_000))
    seeding = await share(
        await open_page(browser, f"https://{tracker.https}/peer/?swarm=pages"), photo
    )
    # A second tab of the same browser has its own identity (sessionStorage).
    fetching = await open_page(browser, f"https://{tracker.https}/peer/?swarm=pages")
    fetched = await fetch(fetching, limit=60)
    assert fetched["peerId"] != seeding["peerId"]
    assert fetched["seeder"] == seeding["peerId"]
    assert fetched["sha256"] == seeding["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
