"""``stunlike-tracker peer``: move a file between peers over P2P channels.

A seeder joins the swarm as SEED and serves every channel opened toward
it until stopped. A leecher joins as LEECH, connects to a seeder through
the tracker, and fetches the file in chunks, verifying its SHA-256 at the
end (exit 0), or exits 1 with a one-line reason.

The application protocol on the channel (one message each):
1. leecher -> seeder: ``GET``
2. seeder -> leecher: a JSON header ``{"name", "size", "sha256", "chunk"}``
3. seeder -> leecher: ``ceil(size / chunk)`` data messages
4. leecher -> seeder: ``DONE`` once the hash matched (the seeder then closes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stunlike_tracker.peer.channel import ChannelError
from stunlike_tracker.peer.client import ClientSettings, TrackerError
from stunlike_tracker.peer.command import Interrupted, interruptible
from stunlike_tracker.peer.peer import Peer, PeerChannel, PeerError
from stunlike_tracker.ppsp.messages import PeerMode

CHUNK = 256 * 1024
MAX_HEADER = 4096
# A leecher asks the tracker for seeders again at most this often.
FIND_INTERVAL = 2.0
# From SIGINT/SIGTERM to exit, at most (issue 11: 2 s), cleanup included.
STOP_BUDGET = 1.5


class TransferError(Exception):
    """A one-line reason the transfer failed."""


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    sha256: str
    chunk: int = CHUNK

    def encode(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def decode_untrusted(cls, data: bytes) -> FileInfo:
        try:
            raw = json.loads(data[:MAX_HEADER])
            info = cls(str(raw["name"]), int(raw["size"]), str(raw["sha256"]), int(raw["chunk"]))
        except (ValueError, KeyError, TypeError) as error:
            raise TransferError(f"bad header from seeder: {error}") from None
        if info.size < 0 or not 0 < info.chunk <= 16 * 1024 * 1024 or len(info.sha256) != 64:
            raise TransferError("bad header from seeder")
        return info


def describe_file(path: Path) -> FileInfo:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return FileInfo(path.name, path.stat().st_size, digest.hexdigest())


def _chunks(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from iter(lambda: handle.read(size), b"")


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: IO[str] = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self._shown = -1.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown < 0.1 and done < self.total:
            return
        self._shown = now
        frac = done / self.total if self.total else 1.0
        width = 30
        bar = "#" * int(frac * width)
        rate = done / max(now - self.started, 1e-6) / 1e6
        self.stream.write(
            f"\r[{bar:<{width}}] {frac:6.1%} {done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
            f" {rate:.1f} MB/s"
        )
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


async def serve_channel(channel: PeerChannel, path: Path, info: FileInfo) -> None:
    """Seeder side of one transfer."""
    try:
        request = await asyncio.wait_for(channel.recv(), 30)
        if request != b"GET":
            return
        await channel.send(info.encode())
        for block in _chunks(path, info.chunk):
            await channel.send(block)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.recv(), 60)  # DONE
    except (ChannelError, TimeoutError):
        pass
    finally:
        with contextlib.suppress(ChannelError):
            await channel.close()


async def fetch(channel: PeerChannel, out: Path, progress: bool = True) -> FileInfo:
    """Leecher side: fetch into ``out`` and verify the hash (no ``.part``
    file is left behind on failure)."""
    await channel.send(b"GET")
    info = FileInfo.decode_untrusted(await asyncio.wait_for(channel.recv(), 30))
    digest = hashlib.sha256()
    bar = Progress(info.size) if progress else None
    received = 0
    partial = out.with_name(out.name + ".part")
    try:
        with partial.open("wb") as handle:
            while received < info.size:
                block = await asyncio.wait_for(channel.recv(), 30)
                if not block or received + len(block) > info.size:
                    raise TransferError("seeder sent more or less than announced")
                handle.write(block)
                digest.update(block)
                received += len(block)
                if bar is not None:
                    bar.update(received)
        if digest.hexdigest() != info.sha256:
            raise TransferError(f"hash mismatch: got {digest.hexdigest()}, want {info.sha256}")
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    with contextlib.suppress(ChannelError):
        await channel.send(b"DONE")
    return info


async def seed(peer: Peer, swarm: str, path: Path) -> None:
    """Serve ``path`` to every channel opened toward us, until cancelled."""
    info = describe_file(path)
    await peer.join(swarm, PeerMode.SEED)
    print(
        f"seeding {info.name} ({info.size} bytes, sha256 {info.sha256}) in swarm {swarm}"
        f" as {peer.peer_id}",
        flush=True,
    )
    tasks: set[asyncio.Task[None]] = set()
    try:
        async for channel in peer.incoming():
            task = asyncio.ensure_future(serve_channel(channel, path, info))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_BUDGET / 4)


async def leech(peer: Peer, swarm: str, out: Path, give_up_after: float) -> dict[str, object]:
    """Try each seeder the tracker listed; ask it for more (FIND) only when
    none is left to try, at most every FIND_INTERVAL seconds."""
    deadline = time.monotonic() + give_up_after
    response = await peer.join(swarm, PeerMode.LEECH)
    looked_up = time.monotonic()
    last_error = "no seeder in the swarm"
    while True:
        seeders = [p.peer_id for p in response.peers if p.mode is PeerMode.SEED and p.peer_id]
        for seeder in seeders:
            if time.monotonic() >= deadline:
                break
            try:
                channel = await peer.connect(seeder)
            except PeerError as error:
                last_error = str(error)
                continue
            try:
                info = await fetch(channel, out)
            except (ChannelError, TimeoutError, TransferError) as error:
                last_error = f"transfer from {seeder} failed: {error or type(error).__name__}"
                with contextlib.suppress(ChannelError):
                    await channel.close()
                continue
            pair = channel.selected_pair_types()
            return {
                "outcome": "ok",
                "seeder": seeder,
                "bytes": info.size,
                "sha256": info.sha256,
                "connect_ms": round(channel.connect_ms or 0.0, 1),
                "pair_type": "/".join(pair) if pair else None,
            }
        # Poll the tracker for seeders (not for readiness), within the deadline.
        await asyncio.sleep(max(0.0, min(looked_up + FIND_INTERVAL, deadline) - time.monotonic()))
        if time.monotonic() >= deadline:
            break
        response = await peer.find(swarm)
        looked_up = time.monotonic()
    raise TransferError(f"gave up after {give_up_after:.0f} s: {last_error}")


async def run_peer_command(args: argparse.Namespace, settings: ClientSettings) -> int:
    """``stunlike-tracker peer``; SIGINT/SIGTERM stop it in any state within
    STOP_BUDGET (a seeder then exits 0; an interrupted leecher leaves no
    partial file: it is written as OUT.part and renamed only once verified)."""
    peer = Peer(
        settings,
        args.peer_id,
        lan_mode=args.lan,
        relay_only=args.relay_only,
        connect_timeout=args.connect_timeout,
    )

    async def run() -> dict[str, object] | None:
        await peer.start()
        if args.seed is not None:
            if not args.seed.is_file():
                raise TransferError(f"cannot read {args.seed}")
            await seed(peer, args.swarm, args.seed)
            return None
        return await leech(peer, args.swarm, args.leech, args.timeout)

    try:
        result = await interruptible(run())
        if result is not None:
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                size = result["bytes"]
                print(f"fetched {args.leech} ({size} bytes, sha256 verified)", flush=True)
        return 0
    except Interrupted as stopped:
        if args.seed is not None:
            return 0  # a seeder serves until stopped
        print(f"stunlike-tracker: {stopped}", file=sys.stderr, flush=True)
        return stopped.exit_status
    except (TransferError, TrackerError, PeerError, ChannelError, OSError) as error:
        if args.json:
            print(json.dumps({"outcome": "failed", "detail": str(error)}), flush=True)
        print(f"stunlike-tracker: {error}", file=sys.stderr)
        return 1
    finally:
        await _stop(peer)


async def _stop(peer: Peer) -> None:
    """Close the peer (DISCONNECT nil, best effort) within STOP_BUDGET."""
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(peer.close(), STOP_BUDGET * 0.6)
    others = asyncio.all_tasks() - {asyncio.current_task()}
    left = STOP_BUDGET * 0.8 - (time.monotonic() - started)
    if others and left > 0:  # aioice deletes TURN allocations in background tasks
        await asyncio.wait(others, timeout=left)
