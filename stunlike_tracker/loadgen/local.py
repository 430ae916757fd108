"""A tracker on loopback for load runs: ``python -m stunlike_tracker.loadgen.local``.

The same server as ``stunlike-tracker serve`` (LAN mode, development
certificates) with the per-peer rate limit, the per-source budgets and the
per-source Sybil caps lifted -- every load session comes from 127.0.0.1 and
one session sends request after request -- and a choice of event loop, so
that the default asyncio loop can be measured too. Prints ``listening udp HOST:PORT`` and
serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path


async def _serve(certs_dir: Path, mutual: bool, cache_bytes: int | None = None) -> None:
    from stunlike_tracker.certs import init_dev_certs
    from stunlike_tracker.core.config import TrackerConfig
    from stunlike_tracker.server.app import ServerSettings, start_server
    from stunlike_tracker.server.budgets import BudgetLimits

    paths = init_dev_certs(certs_dir)
    config = replace(
        TrackerConfig(),
        peer_rate=0.0,
        lan_mode=True,
        max_peers_per_source=10**9,
        max_source_share=1.0,
    )
    if cache_bytes is not None:
        config = replace(config, response_cache_bytes=cache_bytes)
    unlimited = 1e12
    budgets = BudgetLimits(
        address_rate=unlimited,
        address_burst=unlimited,
        session_rate=unlimited,
        session_burst=unlimited,
        address_sessions=10**9,
        address_half_open=10**9,
        global_half_open=10**9,
        handshake_rate=0.0,
        ban_strikes=10**9,
    )
    settings = ServerSettings(
        cert_pem=paths.tracker_cert.read_bytes(),
        key_pem=paths.tracker_key.read_bytes(),
        host="127.0.0.1",
        port=0,
        peer_ca_pem=paths.ca_cert.read_bytes(),
        mutual=mutual,
        tracker=config,
        budgets=budgets,
    )
    running = await start_server(settings)
    host, port = running.address
    print(f"listening udp {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--certs", type=Path, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--mutual", action="store_true")
    parser.add_argument("--response-cache-bytes", type=int, default=None)
    args = parser.parse_args(argv)
    coro = _serve(args.certs, args.mutual, args.response_cache_bytes)
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            asyncio.run(coro)
        else:
            uvloop.run(coro)
    else:
        asyncio.run(coro)
    return 0


@contextmanager
def local_tracker(
    certs_dir: Path,
    *,
    loop: str = "uvloop",
    mutual: bool = False,
    response_cache_bytes: int | None = None,
) -> Iterator[tuple[tuple[str, int], int]]:
    """Start a local tracker process; yields ((host, port), pid)."""
    command = [sys.executable, "-m", "stunlike_tracker.loadgen.local", "--certs", str(certs_dir),
               "--loop", loop]  # fmt: skip
    if mutual:
        command.append("--mutual")
    if response_cache_bytes is not None:
        command += ["--response-cache-bytes", str(response_cache_bytes)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening udp "):
            raise RuntimeError(f"the local tracker did not start (exit {process.wait()})")
        host, _, port = line.split()[-1].rpartition(":")
        yield (host, int(port)), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
