"""/metrics, /status.json and the status page as a person sees it: the
tracker runs as ``serve --http`` from print-config's output, peers use it,
and headless Chromium renders ``/`` (the screenshot is a CI artifact)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stunlike_tracker.lab.cdp import HEADLESS_FLAGS
from stunlike_tracker.stun.codec import MAGIC_COOKIE
from tests.integration.ops.support import Tracker, close_all, get, populate, scrape, start_tracker

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
CHROMIUM_FLAGS = [*HEADLESS_FLAGS, "--window-size=1280,900"]


def _stun_binding(tracker: Tracker) -> None:
    request = b"\x00\x01\x00\x00" + MAGIC_COOKIE.to_bytes(4, "big") + b"\x07" * 12
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(request, tracker.udp)
        reply, _ = sock.recvfrom(2048)
    assert reply[:2] == b"\x01\x01"


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        pass


def _rendered_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return " ".join(" ".join(parser.parts).split())


def _chromium(url: str, profile: Path, *what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *what, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.asyncio
async def test_metrics_move_and_status_page_renders_in_chromium(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path)
    assert tracker.http is not None
    try:
        before = scrape(tracker.http)
        assert _value(before, "stunlike_peers") == 0
        peers = await populate(tracker, "films-2026")
        _stun_binding(tracker)
        after = scrape(tracker.http)

        # Counters moved by what the peers did.
        joins = ("stunlike_requests_total", {"request": "JOIN", "status": "200"})
        assert _value(after, joins[0], **joins[1]) - _value(before, joins[0], **joins[1]) == 3
        assert _value(after, "stunlike_requests_total", request="ATTACH", status="200") == 1
        assert _value(after, "stunlike_handshakes_total") >= 3
        assert _value(after, "stunlike_stun_responses_total") == 1 + _value(
            before, "stunlike_stun_responses_total"
        )
        assert _value(after, "stunlike_peers") == 3
        assert _value(after, "stunlike_swarms") == 1
        assert _value(after, "stunlike_sessions") == 3
        count = _value(after, "stunlike_request_duration_seconds_count", request="JOIN")
        assert count == 3
        assert ("stunlike_dropped_datagrams_total", ()) not in after  # labelled by reason
        status, content_type, _ = get(f"http://{tracker.http}/metrics")
        assert status == 200 and content_type.startswith("text/plain")

        # /status.json: the same, for programs.
        _, content_type, body = get(f"http://{tracker.http}/status.json")
        assert content_type == "application/json"
        snap = json.loads(body)
        (swarm,) = snap["swarms"]
        assert swarm["swarm_id"] == "films-2026"
        assert swarm["peers"] == 3 and swarm["modes"] == {"SEED": 1, "LEECH": 2}
        assert sum(swarm["nat"].values()) == 3
        assert swarm["uploaded_bytes"] == 5_001_000
        assert swarm["downloaded_bytes"] == 2_500_000
        (content,) = swarm["content"]
        assert content["representation"] == "r1"
        assert (content["covered"], content["chunks"]) == (16, 16)
        (intro,) = snap["introductions"]
        assert (intro["requester"], intro["target"], intro["status"]) == ("leech-1", "seed-1", 200)
        assert snap["totals"]["peers"] == 3 and snap["uptime_seconds"] >= 0
        assert snap["version"]

        # The page as a person sees it, rendered by Chromium.
        if shutil.which("chromium") is None:
            pytest.fail("chromium is not installed (.ci/run installs it)")
        url = f"http://{tracker.http}/"
        dom = _chromium(url, tmp_path / "profile-dom", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        text = _rendered_text(dom.stdout)
        assert "films-2026" in text
        assert "3 peers in 1 swarms" in text
        # The swarm's row: peers, seeds, leeches.
        assert "films-2026 3 1 2" in text, text
        assert "leech-1 seed-1 200" in text, text
        assert "4.8 MiB" in text  # uploaded, reported by STAT_REPORT
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        shot.unlink(missing_ok=True)
        result = _chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from matplotlib.image import imread

        pixels = imread(str(shot))
        assert pixels.shape[:2] == (900, 1280)
        assert (pixels[..., :3] < 0.3).any(), "the screenshot shows no text"
        await close_all(peers)
    finally:
        assert tracker.stop() == 0


def test_http_is_off_by_default_and_unknown_paths_are_404(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path, http=False)
    try:
        assert tracker.http is None
    finally:
        assert tracker.stop() == 0
    tracker = start_tracker(tmp_path)
    try:
        import urllib.error

        with pytest.raises(urllib.error.HTTPError) as info:
            get(f"http://{tracker.http}/nothing-here")
        assert info.value.code == 404
    finally:
        assert tracker.stop() == 0


@pytest.mark.asyncio
async def test_with_a_shared_store_the_node_reports_its_own_counters(tmp_path: Path) -> None:
    from tests.integration.ops.support import client
    from tests.redis_servers import redis_server

    with redis_server() as redis:
        tracker = start_tracker(tmp_path, "--store", redis.url)
        assert tracker.http is not None
        try:
            peer = client(tracker, "p1")
            await peer.connect()
            await peer.close()
            after = scrape(tracker.http)
            assert _value(after, "stunlike_requests_total", request="CONNECT", status="200") == 1
            # Peers and swarms are the whole tracker's (in Redis): not a node gauge.
            assert ("stunlike_peers", ()) not in after
            snap = json.loads(get(f"http://{tracker.http}/status.json")[2])
            assert snap["swarms"] is None and snap["totals"]["peers"] is None
            _, _, page = get(f"http://{tracker.http}/")
            assert "shared store" in page
        finally:
            assert tracker.stop() == 0
