"""``leech`` against scripted seeders: bad seeders are skipped, nothing is left
behind, and the tracker is asked for more seeders sparingly."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import cast

import pytest

from stunlike_tracker.peer.channel import ChannelClosed
from stunlike_tracker.peer.peer import Peer, PeerChannel, PeerError
from stunlike_tracker.peer.transfer import FileInfo, TransferError, leech
from stunlike_tracker.ppsp.messages import PeerInfo, PeerMode, Response

DATA = b"0123456789" * 10


class ScriptedChannel:
    """A seeder's side of a channel: the messages it sends, then maybe a break."""

    def __init__(self, messages: list[bytes], *, breaks: bool = False) -> None:
        self.messages = messages
        self.breaks = breaks
        self.closed = False
        self.connect_ms = 1.0

    async def send(self, data: bytes) -> None:
        pass

    async def recv(self) -> bytes:
        if self.messages:
            return self.messages.pop(0)
        if self.breaks:
            raise ChannelClosed("the seeder went away")
        raise AssertionError("nothing more scripted")

    async def close(self) -> None:
        self.closed = True

    def selected_pair_types(self) -> tuple[str, str] | None:
        return ("host", "host")


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def header(data: bytes = DATA) -> bytes:
    return FileInfo("f", len(data), hashlib.sha256(data).hexdigest(), 40).encode()


class ScriptedPeer:
    def __init__(self, channels: dict[str, ScriptedChannel | None]) -> None:
        self.channels = channels
        self.lookups: list[float] = []
        self.connects: list[str] = []

    def _listing(self) -> Response:
        self.lookups.append(time.monotonic())
        seeders = tuple(PeerInfo(name, PeerMode.SEED) for name in self.channels)
        return Response(200, "t", peers=seeders)

    async def join(self, swarm: str, mode: PeerMode) -> Response:
        return self._listing()

    async def find(self, swarm: str | None = None) -> Response:
        return self._listing()

    async def connect(self, peer_id: str) -> PeerChannel:
        self.connects.append(peer_id)
        channel = self.channels[peer_id]
        if channel is None:
            raise PeerError(f"no channel to {peer_id}")
        return cast(PeerChannel, channel)


@pytest.mark.asyncio
async def test_a_seeder_with_a_bad_header_is_skipped(tmp_path: Path) -> None:
    bad = ScriptedChannel([b"not json"])
    good = ScriptedChannel([header(), DATA[:40], DATA[40:80], DATA[80:]])
    peer = ScriptedPeer({"bad": bad, "good": good})
    out = tmp_path / "f"
    result = await leech(cast(Peer, peer), "s", out, 5.0)
    assert result["outcome"] == "ok" and result["seeder"] == "good"
    assert out.read_bytes() == DATA
    assert bad.closed


@pytest.mark.asyncio
async def test_a_broken_transfer_leaves_no_part_file(tmp_path: Path) -> None:
    broken = ScriptedChannel([header(), DATA[:40]], breaks=True)
    peer = ScriptedPeer({"broken": broken})
    out = tmp_path / "f"
    with pytest.raises(TransferError, match="transfer from broken"):
        await leech(cast(Peer, peer), "s", out, 0.2)
    assert _names(tmp_path) == []  # no f.part
    assert broken.closed


@pytest.mark.asyncio
async def test_the_tracker_is_asked_again_only_when_no_seeder_is_left(tmp_path: Path) -> None:
    peer = ScriptedPeer({"a": None, "b": None})  # no channel to either
    with pytest.raises(TransferError, match=r"gave up after \d s: no channel to b"):
        await leech(cast(Peer, peer), "s", tmp_path / "f", 2.5)  # real time: the poll interval
    assert len(peer.lookups) == 2  # JOIN, then one FIND 2 s later
    assert peer.lookups[1] - peer.lookups[0] >= 1.95
    assert peer.connects == ["a", "b", "a", "b"]  # each listing tried in full first
