"""One side of a bare aioice connection, run inside a lab host; and the
``run_pair`` that drives two of them (no tracker involved).

It gives the matrix runner a reference: what plain ICE (RFC 8445, as aioice
implements it) achieves across each pair of NATs, with coturn as STUN server
and, when asked, as TURN relay.

Protocol with the driving process, one JSON object per line:

1. the peer gathers candidates and writes
   ``{"kind": "offer", "ufrag", "pwd", "candidates": [sdp, ...], "gather_ms"}``;
2. it reads the other peer's offer from stdin, adds its candidates and
   end-of-candidates, and runs the connectivity checks for at most
   ``--timeout`` seconds (aioice alone would retry for 63.6 s);
3. once connected the controlling side sends ``ping`` over the nominated pair
   (repeated every 200 ms, so loss does not fail it) and the controlled side
   answers ``pong``: a nominated pair that carries no data is not a success;
4. it writes ``{"kind": "result", "outcome", "pair_type", "connect_ms",
   "detail"}`` and waits for stdin to close before closing the connection, so
   the controlled side still answers while the controlling one finishes.

``pair_type`` is ``"<local type>/<remote type>"`` of the nominated pair as
the controlling (leecher) side sees it, e.g. ``srflx/prflx``; the remote
type is ``prflx`` when the address the checks came from was not among the
offered candidates (typical behind a symmetric NAT).

Run as ``python3 -m stunlike_tracker.lab.aioice_pair --role controlling ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from typing import Any, Final

from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.pairs import PairResult
from stunlike_tracker.lab.topology import Topology

PING: Final = b"stl-lab-ping"
PONG: Final = b"stl-lab-pong"
PING_INTERVAL_S: Final = 0.2
GATHER_BUDGET_S: Final = 6.0  # aioice waits 5 s for an unanswered STUN server


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _nominated_pair_type(conn: Any) -> str | None:
    # aioice has no public accessor for the selected pair.
    pairs = getattr(conn, "_nominated", {})
    pair = pairs.get(1)
    if pair is None:
        return None
    return f"{pair.local_candidate.type}/{pair.remote_candidate.type}"


async def _exchange_data(conn: Any, controlling: bool, budget_s: float) -> None:
    if controlling:

        async def pinger() -> None:
            while True:
                await conn.send(PING)
                await asyncio.sleep(PING_INTERVAL_S)

        task = asyncio.create_task(pinger())
        try:
            async with asyncio.timeout(budget_s):
                while await conn.recv() != PONG:
                    pass
        finally:
            task.cancel()
    else:
        async with asyncio.timeout(budget_s):
            while await conn.recv() != PING:
                pass
            await conn.send(PONG)


async def _answer_pings(conn: Any) -> None:
    """Controlled side, after success: keep answering late pings."""
    with contextlib.suppress(Exception):
        while True:
            if await conn.recv() == PING:
                await conn.send(PONG)


async def peer(args: argparse.Namespace) -> int:
    import aioice  # imported here so the lab driver does not need it

    controlling = args.role == "controlling"
    kwargs: dict[str, Any] = {"use_ipv6": False}
    if args.stun:
        host, port = args.stun.rsplit(":", 1)
        kwargs["stun_server"] = (host, int(port))
    if args.turn:
        host, port = args.turn.rsplit(":", 1)
        kwargs.update(
            turn_server=(host, int(port)),
            turn_username=args.turn_username,
            turn_password=args.turn_password,
        )
    conn = aioice.Connection(ice_controlling=controlling, **kwargs)
    stdin = await _stdin_reader()
    try:
        t0 = time.monotonic()
        await conn.gather_candidates()
        _emit(
            {
                "kind": "offer",
                "ufrag": conn.local_username,
                "pwd": conn.local_password,
                "candidates": [c.to_sdp() for c in conn.local_candidates],
                "gather_ms": (time.monotonic() - t0) * 1000,
            }
        )
        line = await stdin.readline()
        if not line:
            _emit({"kind": "result", "outcome": "failed", "detail": "no remote offer"})
            return 1
        remote = json.loads(line)
        conn.remote_username = remote["ufrag"]
        conn.remote_password = remote["pwd"]
        for sdp in remote["candidates"]:
            await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
        await conn.add_remote_candidate(None)

        t1 = time.monotonic()
        try:
            async with asyncio.timeout(args.timeout):
                await conn.connect()
            connect_ms = (time.monotonic() - t1) * 1000
            left = max(0.5, args.timeout - (time.monotonic() - t1))
            await _exchange_data(conn, controlling, left)
        except (TimeoutError, ConnectionError) as exc:
            elapsed = time.monotonic() - t1
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            _emit(
                {
                    "kind": "result",
                    "outcome": "failed",
                    "pair_type": _nominated_pair_type(conn),
                    "connect_ms": None,
                    "detail": f"{reason} after {elapsed:.1f}s",
                }
            )
            return 1
        pair_type = _nominated_pair_type(conn)
        _emit(
            {
                "kind": "result",
                "outcome": "connected",
                "pair_type": pair_type,
                "connect_ms": connect_ms,
                "detail": f"nominated {pair_type}, data echoed",
            }
        )
        answering = None if controlling else asyncio.create_task(_answer_pings(conn))
        await stdin.read()  # until the driver closes our stdin
        if answering is not None:
            answering.cancel()
        return 0
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m stunlike_tracker.lab.aioice_pair")
    ap.add_argument("--role", choices=("controlling", "controlled"), required=True)
    ap.add_argument("--stun", help="HOST:PORT of the STUN server")
    ap.add_argument("--turn", help="HOST:PORT of the TURN server (UDP)")
    ap.add_argument("--turn-username")
    ap.add_argument("--turn-password")
    ap.add_argument("--timeout", type=float, default=5.0, help="ICE check budget, seconds")
    args = ap.parse_args(argv)
    return asyncio.run(peer(args))


# ---------------------------------------------------------------------------
# the driver side: a run_pair for stunlike_tracker.lab.matrix


class AioicePairRunner:
    """``run_pair`` that connects two bare aioice peers (seeder controlled,
    leecher controlling) through the lab, relaying their offers."""

    def __init__(self, coturn: Coturn) -> None:
        self.coturn = coturn

    def _argv(
        self, lab: Topology, role: str, peer_id: str, relay: bool, timeout: float
    ) -> list[str]:
        stun_host, stun_port = self.coturn.stun_server
        args = ["--role", role, "--stun", f"{stun_host}:{stun_port}", "--timeout", str(timeout)]
        if relay:
            turn_host, turn_port = self.coturn.turn_server
            user, password = self.coturn.credentials(peer_id)
            args += [
                "--turn",
                f"{turn_host}:{turn_port}",
                "--turn-username",
                user,
                "--turn-password",
                password,
            ]
        return lab.python_argv("stunlike_tracker.lab.aioice_pair", *args)

    # `timeout` is the name the run_pair contract gives the ICE budget.
    async def __call__(
        self,
        lab: Topology,
        seeder_host: str,
        leecher_host: str,
        relay: bool,
        timeout: float,  # noqa: ASYNC109
    ) -> PairResult:
        env = lab.python_env()
        procs: list[asyncio.subprocess.Process] = []
        try:
            for host, role in ((seeder_host, "controlled"), (leecher_host, "controlling")):
                argv = lab.exec_argv(host, self._argv(lab, role, host, relay, timeout))
                procs.append(
                    await asyncio.create_subprocess_exec(
                        *argv,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        env=env,
                    )
                )
            seeder, leecher = procs
            budget = GATHER_BUDGET_S + 5.0 + 2 * timeout
            try:
                async with asyncio.timeout(budget):
                    offers = await asyncio.gather(_read_msg(seeder), _read_msg(leecher))
                    if None in offers:
                        raise _PeerDied
                    _write_line(seeder, offers[1])
                    _write_line(leecher, offers[0])
                    results = await asyncio.gather(_read_msg(seeder), _read_msg(leecher))
            except TimeoutError:
                return PairResult("failed", None, None, f"driver gave up after {budget:.0f}s")
            except _PeerDied:
                return PairResult("failed", None, None, await _stderr_tail(procs))
            s_res, l_res = results
            if s_res is None or l_res is None:
                return PairResult("failed", None, None, await _stderr_tail(procs))
            if l_res.get("outcome") == "connected" and s_res.get("outcome") == "connected":
                return PairResult(
                    "connected", l_res.get("pair_type"), l_res.get("connect_ms"), l_res["detail"]
                )
            detail = f"leecher: {l_res.get('detail')}; seeder: {s_res.get('detail')}"
            return PairResult("failed", l_res.get("pair_type"), None, detail)
        finally:
            for p in procs:
                if p.stdin is not None:
                    p.stdin.close()
            for p in procs:
                try:
                    async with asyncio.timeout(5):
                        await p.wait()
                except TimeoutError:
                    p.kill()
                    await p.wait()


class _PeerDied(Exception):
    pass


async def _read_msg(proc: asyncio.subprocess.Process) -> dict[str, Any] | None:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    if not line:
        return None
    msg: dict[str, Any] = json.loads(line)
    return msg


def _write_line(proc: asyncio.subprocess.Process, msg: dict[str, Any] | None) -> None:
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(msg) + "\n").encode())


async def _stderr_tail(procs: list[asyncio.subprocess.Process]) -> str:
    tails = []
    for p in procs:
        if p.stdin is not None:
            p.stdin.close()
        if p.stderr is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    err = await p.stderr.read()
                    tails.append(err.decode(errors="replace").strip()[-400:])
    return "peer exited early: " + " | ".join(t for t in tails if t)


if __name__ == "__main__":
    sys.exit(main())
