"""The README's five-minute tour, word for word: the first terminal's
command, then the second terminal's, in a fresh directory, inside a network
namespace of its own (the tour uses fixed ports 3478, 8080 and 8443). Between
the second terminal's two blocks, "a browser joins": headless Chromium in the
same namespace opens the page the README names and fetches the seed's file."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stunlike_tracker.lab.cdp import Browser, chromium_executable
from tests.browser_page import fetch, open_page

ROOT = Path(__file__).resolve().parents[3]


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2"
    return None


pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(_netns_unavailable() is not None, reason=_netns_unavailable() or ""),
]


def tour_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"stl-tour-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        # Loopback for the tracker, and a veth pair so that the peers' ICE
        # agents have host addresses (they skip 127.0.0.1).
        setup = (
            "ip link set lo up && ip link add tour0 type veth peer name tour1 && "
            "ip addr add 10.77.0.1/24 dev tour0 && ip addr add 10.77.0.2/24 dev tour1 && "
            "ip link set tour0 up && ip link set tour1 up"
        )
        subprocess.run(["ip", "netns", "exec", name, "sh", "-c", setup], check=True)
        yield name
    finally:
        # Whatever the tour left running in the namespace was started here.
        pids = subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], check=False)


def browser_step_url() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("**A browser joins.**", 1)[1].split("\n\n", 1)[0]
    found = re.search(r"<(https://127\.0\.0\.1:8443/peer/[^>]*)>", section)
    assert found is not None, section
    return found[1]


async def fetch_in_browser(namespace: str, url: str) -> dict[str, Any]:
    """The README's browser step: open the page, click Fetch, wait for the hash."""
    async with await Browser.launch(netns=namespace) as browser:
        page = await open_page(browser, url)
        return await fetch(page, limit=90)


@pytest.mark.skipif(chromium_executable() is None, reason="needs chromium (.ci/run installs it)")
def test_the_readme_tour_works_word_for_word(tmp_path: Path, namespace: str) -> None:
    first, second, third = tour_blocks()
    assert first.strip() == (
        "stunlike-tracker serve --lan --http 127.0.0.1:8080 --https 127.0.0.1:8443"
    )
    # `stunlike-tracker` as `pip install .` makes it, running this tree's code.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "stunlike-tracker"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m stunlike_tracker.cli "$@"\n')
    shim.chmod(0o755)
    clone = tmp_path / "clone"
    clone.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    run = ["ip", "netns", "exec", namespace, "bash", "-e", "-c"]
    tracker = subprocess.Popen(
        [*run, first],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tracker.stdout is not None
        assert tracker.stdout.readline().strip() == "listening udp [::]:3478"
        assert tracker.stdout.readline().strip() == "listening http 127.0.0.1:8080"
        assert tracker.stdout.readline().strip() == "listening https 127.0.0.1:8443"
        # One shell, as one terminal: `read` holds it (and its seed, job %1)
        # while the browser joins, and the test's newline lets it go on.
        terminal = subprocess.Popen(
            [*run, f"{second}echo tour-browser-step\nread _\n{third}"],
            cwd=clone,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert terminal.stdout is not None and terminal.stdin is not None
            before = []
            for line in terminal.stdout:
                if line.strip() == "tour-browser-step":
                    break
                before.append(line)
            assert "copy.bin is movie.bin\n" in before, "".join(before)
            fetched = asyncio.run(fetch_in_browser(namespace, browser_step_url()))
            movie = (clone / "movie.bin").read_bytes()
            assert fetched["sha256"] == hashlib.sha256(movie).hexdigest()
            # Nothing is buffered past the marker: the shell waits in `read`.
            out, err = terminal.communicate("\n", timeout=120)
        finally:
            if terminal.poll() is None:
                terminal.kill()
        assert terminal.returncode == 0, err[-3000:]
        assert '"swarm_id": "films"' in out
        # The native leech's introduction and the browser's (a retried or
        # reverse-path introduction counts too).
        attaches = re.search(r'stunlike_requests_total\{request="ATTACH",status="200"\} (\S+)', out)
        assert attaches is not None and float(attaches[1]) >= 2, out
    finally:
        tracker.send_signal(signal.SIGINT)  # Ctrl-C in the first terminal
        code = tracker.wait(timeout=10)
    assert code == 0
