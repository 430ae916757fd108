"""The ``client`` subcommand and what ``client`` and ``peer`` share:
tracker flags and stopping on SIGINT/SIGTERM.

``--tracker`` may be given several times or as a comma list: the first is
used, the others are failover targets in order (PROTOCOL §9). A signal cancels
the command's task in whatever state it is (handshake, request, transfer),
and its cleanup has a bounded budget, so the process ends within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from stunlike_tracker.peer.client import Address, ClientSettings, TrackerClient, TrackerError
from stunlike_tracker.ppsp.messages import PeerMode, PeerNum, Response
from stunlike_tracker.ppsp.reasons import Reason

T = TypeVar("T")
UsageErrorType = Callable[[str], Exception]

# Exit status for a command stopped by a signal (128 + signal number).
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the command."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


async def interruptible(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGINT/SIGTERM cancel it and raise ``Interrupted``."""
    task = asyncio.ensure_future(work)
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


def parse_trackers(values: list[str], usage_error: UsageErrorType) -> tuple[Address, ...]:
    """Every ``--tracker`` value, each ``HOST:PORT`` or a comma list of them."""
    trackers: list[Address] = []
    for value in values:
        for item in value.split(","):
            host, sep, port = item.strip().rpartition(":")
            host = host.strip("[]")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise usage_error(f"--tracker: expected HOST:PORT, got {item.strip()!r}")
            trackers.append((host, int(port)))
    if not trackers:
        raise usage_error("--tracker: give at least one HOST:PORT")
    return tuple(trackers)


def client_settings(args: argparse.Namespace, usage_error: UsageErrorType) -> ClientSettings:
    def read(path: str | None, what: str) -> bytes | None:
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as error:
            raise usage_error(f"cannot read {what} {path}: {error.strerror}") from None

    ca = read(args.ca, "CA certificate")
    cert = read(args.cert, "certificate")
    key = read(args.key, "key")
    if (cert is None) != (key is None):
        raise usage_error("--cert and --key go together")
    trackers = parse_trackers(args.tracker, usage_error)
    return ClientSettings(
        tracker=trackers[0],
        backup_trackers=trackers[1:],
        ca_pem=ca,
        server_name=args.server_name,
        cert_pem=cert,
        key_pem=key,
    )


def describe(method: str, response: Response) -> str:
    parts = [method, str(response.status), response.status_text]
    if response.reason and response.reason != Reason.OK:
        parts.append(f"reason={response.reason!r}")
    for info in response.peers:
        addrs = ",".join(f"{a.ip}:{a.port}/{a.type or '-'}" for a in info.addresses)
        label = info.peer_id or "self"
        offer = f" offer={info.offer.id}" if info.offer else ""
        parts.append(f"peer={label}({info.mode or '-'})@{addrs}{offer}")
    if response.swarm_ids:
        parts.append("swarms=" + ",".join(response.swarm_ids))
    if response.keep_alive is not None:
        parts.append(f"keepalive={response.keep_alive}")
    for turn in response.turn_servers:
        parts.append(f"turn={turn.uri}")
    return " ".join(parts)


STEPS = ("join", "find", "stat", "disconnect", "reconnect", "wait")


def check_step(step: str, usage_error: UsageErrorType) -> tuple[str, str, str]:
    """``name:arg:extra`` of a client step, or a one-line usage error."""
    name, _, rest = step.partition(":")
    arg, _, extra = rest.partition(":")
    if name not in STEPS or (name in ("join", "find", "disconnect", "wait") and not arg):
        raise usage_error(f"unknown step {step!r} (see --help)")
    if name == "find" and extra and not extra.isdigit():
        raise usage_error(f"bad step {step!r}: the peer count must be a number")
    if name == "wait":
        try:
            seconds = float(arg)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise usage_error(f"bad step {step!r}: wait takes SECONDS")
    return name, arg, extra


async def run_client_command(args: argparse.Namespace, usage_error: UsageErrorType) -> int:
    """``stunlike-tracker client``: CONNECT, then one line per step's response."""
    steps = [check_step(step, usage_error) for step in args.steps]  # before any traffic
    client = TrackerClient(client_settings(args, usage_error), args.peer_id)
    failures = 0

    async def run() -> None:
        nonlocal failures
        print(describe("CONNECT", await client.connect()), flush=True)
        for name, arg, extra in steps:
            try:
                response = await _step(client, name, arg, extra)
            except TrackerError as error:
                failures += 1
                if error.response is None:
                    raise
                response = error.response
            if response is not None:
                print(describe(name.upper(), response), flush=True)

    try:
        await interruptible(run())
    except TrackerError as error:
        raise usage_error(str(error)) from None
    except Interrupted as stopped:
        print(f"stunlike-tracker: {stopped}", file=sys.stderr, flush=True)
        return stopped.exit_status
    finally:
        await client.close()
    return 1 if failures else 0


async def _step(client: TrackerClient, name: str, arg: str, extra: str) -> Response | None:
    if name == "join":
        mode = PeerMode.SEED if extra.upper() in ("SEED", "SEEDER") else PeerMode.LEECH
        return await client.join(arg, mode)
    if name == "find":
        count = PeerNum(int(extra)) if extra else None
        return await client.find(arg, peer_num=count)
    if name == "stat":
        return await client.stat_report()
    if name == "disconnect":
        return await client.disconnect(arg)
    if name == "reconnect":
        return await client.reconnect()
    await asyncio.sleep(float(arg))  # the user asked to wait
    return None
