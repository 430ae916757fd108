"""The browser page at /peer/ and the native ``peer`` share one swarm (issue 14).

A tracker with ``--https`` (WebSocket + the page) and ``--lan`` on loopback
ports 0; headless Chromium opens https://127.0.0.1:PORT/peer/ and

* fetches a file that a native ``stunlike-tracker peer --seed`` serves,
* then seeds a file that a native ``peer --leech`` fetches,

both verified by SHA-256 (the page shows the hash it computed; the native
leecher checks the header's hash and the test compares the bytes).
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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from stunlike_tracker.lab.cdp import Browser, chromium_executable
from tests.browser_page import fetch, open_page, share

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


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[Tracker]:
    argv = [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--lan"]
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
