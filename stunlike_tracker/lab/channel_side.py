"""Our side of an interop connection: the peer's P2P channel
(:mod:`stunlike_tracker.peer.channel`) against a third-party WebRTC agent.

Run in a lab host as ``python3 -m stunlike_tracker.lab.channel_side``. It
CONNECTs to our tracker for the ICE servers a peer gets (the tracker's STUN
address, TURN REST credentials when the tracker hands them out), then speaks
JSON lines on stdin/stdout with the driver, which relays them to the agent:

* ``--role offer``: prints ``{"sdp": OFFER}``, reads ``{"sdp": ANSWER}``
  (we are ICE controlling and the DTLS server);
* ``--role answer``: reads ``{"sdp": OFFER}``, prints ``{"sdp": ANSWER}``
  (ICE controlled, DTLS client).

SDP is the common language: our offers become SDP and back through
:mod:`stunlike_tracker.ice.sdp`, the same translation the peer applies to
what the tracker relays. Once the channel is open we send ``ping-<nonce>``
and expect the agent's own greeting and ``echo:ping-<nonce>``; the last line
is ``{"outcome": "ok" | "failed", "connect_ms", "pair_type", "detail"}``.
``--turn-only`` prints ``{"turn": {...}}`` (the tracker's TURN credentials
for ``--peer-id``) and exits, for the agent's side.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from aioice import Candidate

from stunlike_tracker.ice.sdp import offer_from_sdp_untrusted, sdp_from_offer
from stunlike_tracker.peer.channel import (
    ChannelError,
    IceServers,
    P2PChannel,
    answer_offer,
    create_offer,
)
from stunlike_tracker.peer.client import ClientSettings, TrackerClient, TrackerError
from stunlike_tracker.peer.ice_agent import TriggeredChecks
from stunlike_tracker.ppsp.messages import TurnServer

EXCHANGE_TIMEOUT = 10.0


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _read_sdp(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        raise ChannelError("the driver closed our stdin")
    sdp = json.loads(line)["sdp"]
    if not isinstance(sdp, str):
        raise ChannelError("no SDP in the driver's line")
    return sdp


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _tracker_servers(
    args: argparse.Namespace, ca_pem: bytes
) -> tuple[IceServers, TurnServer | None]:
    host, port = args.tracker.rsplit(":", 1)
    settings = ClientSettings((host, int(port)), ca_pem=ca_pem)
    client = TrackerClient(settings, args.peer_id)
    try:
        response = await client.connect()
    finally:
        await client.close()
    turn = response.turn_servers[0] if response.turn_servers else None
    return IceServers(stun=(host, int(port)), turn=turn), turn


async def _exchange(channel: P2PChannel) -> list[str]:
    nonce = secrets.token_hex(4)
    await channel.send(f"ping-{nonce}".encode())
    got: list[str] = []
    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        while len(got) < 2:
            got.append((await channel.recv(max_size=4096)).decode(errors="replace"))
    if f"echo:ping-{nonce}" not in got:
        raise ChannelError(f"no echo of our ping in {got}")
    return got


async def _read_ice(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise ChannelError("the driver closed our stdin")
    ice = json.loads(line)["ice"]
    if not isinstance(ice, dict):
        raise ChannelError("no ICE description in the driver's line")
    return ice


async def run_ice_only(
    args: argparse.Namespace, servers: IceServers, turn: TurnServer | None
) -> int:
    """The peer's ICE agent alone (for agents without DTLS/SCTP): exchange
    ``{"ice": {"ufrag", "pwd", "candidates"}}`` lines, then datagrams."""
    turn_kwargs: dict[str, Any] = {}
    if turn is not None:
        host, port = turn.uri.split(":", 1)[1].split("?", 1)[0].rsplit(":", 1)
        turn_kwargs = {
            "turn_server": (host, int(port)),
            "turn_username": turn.username,
            "turn_password": turn.credential,
        }
    agent = TriggeredChecks(
        ice_controlling=args.role == "offer", stun_server=servers.stun, use_ipv6=False,
        **turn_kwargs,
    )  # fmt: skip
    reader = await _stdin_reader()
    try:
        await agent.gather_candidates()
        local = {
            "ufrag": agent.local_username,
            "pwd": agent.local_password,
            "candidates": [f"candidate:{c.to_sdp()}" for c in agent.local_candidates],
        }
        if args.role == "offer":
            _emit({"ice": local})
            remote = await _read_ice(reader)
        else:
            remote = await _read_ice(reader)
            _emit({"ice": local})
        agent.remote_username, agent.remote_password = remote["ufrag"], remote["pwd"]
        for line in remote["candidates"]:
            await agent.add_remote_candidate(Candidate.from_sdp(line.removeprefix("candidate:")))
        await agent.add_remote_candidate(None)
        started = time.monotonic()
        async with asyncio.timeout(args.timeout):
            await agent.connect()
        connect_ms = (time.monotonic() - started) * 1000
        nonce = secrets.token_hex(4)
        await agent.send(f"ping-{nonce}".encode())
        got: list[str] = []
        async with asyncio.timeout(EXCHANGE_TIMEOUT):
            while f"echo:ping-{nonce}" not in got or len(got) < 2:
                got.append((await agent.recv()).decode(errors="replace"))
        pair = agent._nominated.get(1)  # aioice keeps the nominated pair privately
        pair_type = f"{pair.local_candidate.type}/{pair.remote_candidate.type}" if pair else None
    except (ChannelError, ConnectionError, ValueError, KeyError, TimeoutError) as error:
        _emit({"outcome": "failed", "detail": f"{type(error).__name__}: {error}"})
        return 1
    finally:
        await agent.close()
    _emit(
        {
            "outcome": "ok",
            "connect_ms": round(connect_ms, 1),
            "pair_type": pair_type,
            "detail": f"ICE only, received {got}",
        }
    )
    return 0


async def run(args: argparse.Namespace, ca_pem: bytes) -> int:
    servers, turn = await _tracker_servers(args, ca_pem)
    if args.turn_only:
        _emit({"turn": None if turn is None else dataclasses.asdict(turn)})
        return 0
    if args.ice_only:
        return await run_ice_only(args, servers, turn)
    reader = await _stdin_reader()
    try:
        if args.role == "offer":
            pending = await create_offer("lab", servers)
            _emit({"sdp": sdp_from_offer(pending.offer, role="offer")})
            answer = offer_from_sdp_untrusted(await _read_sdp(reader), "agent")
            started = time.monotonic()
            channel = await pending.accept_answer(answer, connect_timeout=args.timeout)
        else:
            remote = offer_from_sdp_untrusted(await _read_sdp(reader), "agent")
            answer, waiting = await answer_offer(
                remote, "lab", servers, connect_timeout=args.timeout
            )
            started = time.monotonic()
            _emit({"sdp": sdp_from_offer(answer, role="answer")})
            channel = await waiting
        connect_ms = (time.monotonic() - started) * 1000
        pair = channel.selected_pair_types()
        got = await _exchange(channel)
        await channel.close()
    except (ChannelError, ValueError, TimeoutError) as error:
        _emit({"outcome": "failed", "detail": f"{type(error).__name__}: {error}"})
        return 1
    _emit(
        {
            "outcome": "ok",
            "connect_ms": round(connect_ms, 1),
            "pair_type": "/".join(pair) if pair else None,
            "detail": f"received {got}",
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m stunlike_tracker.lab.channel_side")
    ap.add_argument("--tracker", required=True, help="HOST:PORT of our tracker")
    ap.add_argument("--ca", required=True, help="the tracker's CA certificate")
    ap.add_argument("--peer-id", required=True)
    ap.add_argument("--role", choices=("offer", "answer"), default="offer")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--turn-only", action="store_true")
    ap.add_argument("--ice-only", action="store_true", help="the ICE agent alone, datagrams")
    args = ap.parse_args(argv)
    try:
        return asyncio.run(run(args, Path(args.ca).read_bytes()))
    except TrackerError as error:
        _emit({"outcome": "failed", "detail": f"tracker: {error}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
