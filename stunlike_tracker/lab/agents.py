"""Third-party WebRTC agents against our P2P channel (``lab interop``'s
connection cells and ``lab matrix --agent NAME``).

Our side is :mod:`stunlike_tracker.lab.channel_side` (the peer's channel:
ICE, DTLS, SCTP, our framing) in one lab host; the agent's adapter in
``interop/agents/`` runs in another. Both get their ICE servers from our
tracker (STUN at the tracker's address; TURN REST credentials from a
CONNECT when ``relay``). The driver only carries their SDP lines; both must
report data both ways.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from stunlike_tracker.lab.pairs import PairResult
from stunlike_tracker.lab.topology import Topology
from stunlike_tracker.lab.tracker_runner import PLAIN_PORT, RELAY_PORT, stop_process

SYSTEM_PYTHON: Final = "/usr/bin/python3"  # where Debian's python3-gi lives
AGENTS_DIR: Final = Path(__file__).resolve().parents[2] / "interop" / "agents"


def json_line(output: str) -> dict[str, Any]:
    """The last line of ``output`` that is a JSON object ({} if none)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    return {}


def _werift_peer(role: str, config: dict[str, Any]) -> list[str]:
    return ["node", str(AGENTS_DIR / "werift_peer.cjs"), role, json.dumps(config)]


def connect_agent(
    lab: Topology,
    tracker_ip: str,
    ca: Path,
    agent: str,
    *,
    our_host: str,
    agent_host: str,
    our_role: str,
    relay: bool,
    timeout: float,
    tag: str,
) -> PairResult:
    """One connection between our channel and ``agent``. ``our_role``
    "offer" makes us ICE controlling (the agent answers, controlled);
    ``connect_ms``, ``pair_type`` come from our side (local/remote)."""
    port = RELAY_PORT if relay else PLAIN_PORT
    side = [
        *lab.python_argv("stunlike_tracker.lab.channel_side"),
        "--tracker", f"{tracker_ip}:{port}", "--ca", str(ca),
    ]  # fmt: skip
    turn = None
    if relay:  # the agent's own TURN REST credentials, from our tracker
        done = lab.run(
            agent_host, [*side, "--peer-id", f"{tag}-agent", "--turn-only"], timeout=30,
            env=lab.python_env(),
        )  # fmt: skip
        turn = json_line(done.stdout).get("turn")
        if not turn:
            detail = (done.stdout + done.stderr).strip()[-160:]
            return PairResult(
                "failed", None, None, f"no TURN credentials from the tracker: {detail}"
            )
    config = {"stun": f"{tracker_ip}:{port}", "turn": turn}
    agent_role = "answer" if our_role == "offer" else "offer"
    ours_argv = [*side, "--peer-id", tag, "--role", our_role, "--timeout", str(timeout)]
    if agent in ICE_ONLY:
        ours_argv.append("--ice-only")
    pipes: dict[str, Any] = {
        "stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL,
        "text": True, "env": lab.python_env(),
    }  # fmt: skip
    ours = lab.spawn(our_host, ours_argv, **pipes)
    theirs = lab.spawn(agent_host, AGENT_PEERS[agent](agent_role, config), **pipes)
    try:
        results = _relay_sdp({"ours": ours, agent: theirs}, 2 * timeout + 20)
    finally:
        stop_process(ours)
        stop_process(theirs)
    mine, other = results.get("ours", {}), results.get(agent, {})
    if mine.get("outcome") == "ok" and other.get("outcome") == "ok":
        return PairResult(
            "connected",
            mine.get("pair_type"),
            float(mine.get("connect_ms") or 0.0),
            f"data both ways ({agent} got {other.get('received')})",
        )
    return PairResult(
        "failed",
        None,
        None,
        f"ours: {mine.get('detail', mine)}; {agent}: {other.get('detail', other)}",
    )


def _relay_sdp(procs: dict[str, subprocess.Popen[str]], timeout: float) -> dict[str, Any]:
    """Forward each side's ``{"sdp"}`` line to the other; collect the
    ``{"outcome"}`` lines (the last one of each side wins)."""
    names = list(procs)
    by_fd = {procs[n].stdout: n for n in names}
    results: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    open_fds = [fd for fd in by_fd if fd is not None]
    while open_fds and (left := deadline - time.monotonic()) > 0:
        if any(r.get("outcome") != "ok" for r in results.values()):
            break
        if "ours" in results and len(results) == 2:
            break  # our side ends last when it works: it waits for the echo
        ready, _, _ = select.select(open_fds, [], [], min(left, 0.5))
        for fd in ready:
            line = fd.readline()
            if not line:
                open_fds.remove(fd)
                continue
            name = by_fd[fd]
            message = json_line(line)
            if "sdp" in message or "ice" in message:
                other = procs[names[1 - names.index(name)]]
                assert other.stdin is not None
                with contextlib.suppress(OSError):
                    other.stdin.write(json.dumps(message) + "\n")
                    other.stdin.flush()
            elif "outcome" in message:
                results[name] = message
    return results


def _chromium_peer(role: str, config: dict[str, Any]) -> list[str]:
    return [sys.executable, str(AGENTS_DIR / "chromium_peer.py"), role, json.dumps(config)]


def _libnice_peer(role: str, config: dict[str, Any]) -> list[str]:
    return [SYSTEM_PYTHON, str(AGENTS_DIR / "libnice_peer.py"), role, json.dumps(config)]


AGENT_PEERS: Final[dict[str, Callable[[str, dict[str, Any]], list[str]]]] = {
    "werift": _werift_peer,
    "chromium": _chromium_peer,
    "libnice": _libnice_peer,
}
ICE_ONLY: Final = frozenset({"libnice"})
"""Agents without DTLS and SCTP: they meet the peer's ICE agent alone."""
