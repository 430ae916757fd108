"""``serve --workers N``: N tracker processes on one UDP port (SO_REUSEPORT),
one logical tracker through a shared store (PROTOCOL §9).

The kernel spreads datagrams over the workers by source address, so one
peer's DTLS association stays on one worker. A worker that dies is started
again; its peers' associations are gone with it, and they recover by
re-CONNECTing (their registrations and swarms are in the shared store). The
workers share a DTLS cookie secret (generated here when none is given),
passed in the environment, not on the command line.

Output: ``worker I pid P`` when a worker (re)starts, ``worker I ready`` once
it has bound the port, and the first worker's ``listening udp HOST:PORT``
line once; restarts are logged on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from urllib.parse import urlsplit

from stunlike_tracker.config import ConfigError

COOKIE_SECRET_ENV = "STUNLIKE_TRACKER_COOKIE_SECRET"  # noqa: S105 - a variable name
# Worker I serves HTTP (metrics, status page) on the configured port + I.
WORKER_INDEX_ENV = "STUNLIKE_TRACKER_WORKER_INDEX"
SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
# A worker restarting more often than this is not restarted again.
MAX_RESTARTS = 5
RESTART_WINDOW = 30.0


def check_store_url(url: str) -> str:
    if url == "memory":
        return url
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError(
            f"[store] url: {url!r}: expected memory, redis://HOST:PORT/DB, "
            "rediss://HOST:PORT/DB or redis+cluster://HOST:PORT"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"[store] url: {url!r}: bad port") from None
    return url


def _child_argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [*out, "--workers", "1", "--reuse-port"]


def run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    from stunlike_tracker.service import flag_overrides, load_settings, server_settings

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    settings = load_settings(args.config, flag_overrides(args))
    # Certificates (development ones are created here, once, not by N
    # workers racing) and every setting are checked before any worker starts.
    server_settings(settings)
    store = check_store_url(settings.store.url)
    if store == "memory":
        raise ConfigError(
            "--workers needs a shared store (--store redis://... or redis+cluster://...); "
            "with memory each worker would be a separate tracker"
        )
    if settings.server.port == 0:
        raise ConfigError("--workers needs a fixed --port (port 0 gives each worker its own)")
    env = dict(os.environ)
    secret = settings.server.cookie_secret or secrets.token_hex(32)
    env[COOKIE_SECRET_ENV] = secret
    command = [sys.executable, "-m", "stunlike_tracker.cli", *_child_argv(argv)]
    return asyncio.run(_supervise(args.workers, command, env))


async def _supervise(count: int, command: list[str], env: dict[str, str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: dict[int, asyncio.subprocess.Process] = {}
    announced = False
    failed = False
    http_lines: set[str] = set()

    async def worker(index: int) -> None:
        nonlocal announced, failed
        starts: list[float] = []
        while not stop.is_set():
            now = time.monotonic()
            starts = [t for t in starts if now - t < RESTART_WINDOW] + [now]
            if len(starts) > MAX_RESTARTS:
                print(f"worker {index}: restarting too often; giving up", file=sys.stderr)
                failed = True
                stop.set()
                return
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, env={**env, WORKER_INDEX_ENV: str(index)}
            )
            running[index] = process
            print(f"worker {index} pid {process.pid}", flush=True)
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line.startswith("listening udp "):
                    if not announced:
                        announced = True
                        print(line, flush=True)
                    print(f"worker {index} ready", flush=True)
                elif line.startswith("listening http ") and line not in http_lines:
                    http_lines.add(line)  # one per worker, on its own port
                    print(line, flush=True)
            code = await process.wait()
            if not stop.is_set():
                print(
                    f"worker {index} (pid {process.pid}) exited {code}; restarting", file=sys.stderr
                )

    tasks = [asyncio.create_task(worker(i)) for i in range(count)]
    await stop.wait()
    for process in running.values():
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    await asyncio.gather(*tasks, return_exceptions=True)
    return 1 if failed else 0
