"""``lab interop``: clients nobody here wrote, run unmodified inside the lab
against our tracker (interop/README.md, "The interop matrix").

Every cell runs one third-party program in a LAN host behind a
port-restricted cone NAT (or, for DTLS, in an open host) and checks what it
reports against what the lab knows: the NAT's public address for a STUN
answer or a gathered server-reflexive candidate, a verified DTLS 1.2
handshake for ``openssl s_client``. Negative controls must fail. The
adapters in ``interop/agents/`` only drive each agent's API and print what
it saw; nothing changes what goes on the wire.
"""

from __future__ import annotations

import dataclasses
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from stunlike_tracker.lab import agents
from stunlike_tracker.lab.cdp import HEADLESS_FLAGS, RAW_HOST_IPS_FLAG
from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.topology import LanSpec, Topology
from stunlike_tracker.lab.tracker_runner import (
    CLI,
    PLAIN_PORT,
    running_trackers,
    start_tracker,
    stop_process,
)

REPO: Final = Path(__file__).resolve().parents[2]
AGENTS: Final = REPO / "interop" / "agents"
NODE_MODULES: Final = REPO / "interop" / "node_modules"
NATTED: Final = "nat1"
"""The LAN host behind a port-restricted cone NAT where clients run."""
OPEN: Final = "open1"
MUTUAL_PORT: Final = 3480
CHROMIUM_FLAGS: Final = (
    *HEADLESS_FLAGS,
    RAW_HOST_IPS_FLAG,
    "--enable-logging=stderr",
    "--v=0",
)


CONE_PEER: Final = "nat2"
"""A second port-restricted cone LAN: full connections cross two NATs."""
SYM_OURS: Final = "sym1"
SYM_AGENT: Final = "sym2"
"""Two symmetric-NAT LANs: only a TURN relay connects them."""
CONNECT_TIMEOUT: Final = 15.0


def interop_lans() -> list[LanSpec]:
    return [
        LanSpec(NATTED, "port-restricted-cone"),
        LanSpec(CONE_PEER, "port-restricted-cone"),
        LanSpec(SYM_OURS, "symmetric"),
        LanSpec(SYM_AGENT, "symmetric"),
        LanSpec(OPEN, "none"),
    ]


@dataclasses.dataclass(frozen=True)
class CellResult:
    group: str
    agent: str
    expect_ok: bool
    ok: bool
    detail: str
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return self.ok == self.expect_ok


@dataclasses.dataclass(frozen=True)
class Env:
    """What a cell needs: the lab, the tracker's address and certificates."""

    lab: Topology
    tracker_ip: str
    certs: Path
    workdir: Path

    @property
    def public_ip(self) -> str:
        return self.lab.public_address(NATTED)


Outcome = tuple[bool, str]
Check = Callable[[Env], Outcome]


def _run(env: Env, host: str, argv: Sequence[str], timeout: float = 20) -> tuple[int, str]:
    try:
        done = env.lab.run(host, list(argv), timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    return done.returncode, done.stdout + done.stderr


def _mapped_ok(env: Env, mapped: str | None, output: str) -> Outcome:
    if mapped is None:
        return False, "no mapped address: " + output.strip()[-160:]
    ip = mapped.rsplit(":", 1)[0]
    if ip != env.public_ip:
        return False, f"mapped {mapped}, expected the NAT's {env.public_ip}"
    return True, f"mapped {mapped}"


# -- STUN clients --------------------------------------------------------------


def stun_turnutils(env: Env) -> Outcome:
    _, out = _run(env, NATTED, ["turnutils_stunclient", "-p", str(PLAIN_PORT), env.tracker_ip])
    m = re.search(r"UDP reflexive addr: (\S+)", out)
    return _mapped_ok(env, m[1] if m else None, out)


def stun_rfc3489_client(env: Env) -> Outcome:
    # stun-client 0.97 exits with its NAT classification; only the output counts.
    _, out = _run(env, NATTED, ["stun", f"{env.tracker_ip}:{PLAIN_PORT}", "-v"])
    m = re.search(r"MappedAddress = (\S+)", out)
    return _mapped_ok(env, m[1] if m else None, out)


def stun_npm(env: Env) -> Outcome:
    argv = ["node", str(AGENTS / "stun_request.cjs"), env.tracker_ip, str(PLAIN_PORT)]
    _, out = _run(env, NATTED, argv)
    return _mapped_ok(env, agents.json_line(out).get("mapped"), out)


# -- DTLS ----------------------------------------------------------------------


def _s_client(env: Env, port: int, ca: Path, cert: tuple[Path, Path] | None) -> Outcome:
    argv = [
        "openssl", "s_client", "-dtls1_2", "-connect", f"{env.tracker_ip}:{port}",
        "-CAfile", str(ca), "-verify_return_error", "-verify_ip", env.tracker_ip,
    ]  # fmt: skip
    if cert is not None:
        argv += ["-cert", str(cert[0]), "-key", str(cert[1])]
    # stdin at EOF: s_client completes the handshake, then closes.
    rc, out = _run(env, OPEN, argv, timeout=20)
    verified = "Verify return code: 0 (ok)" in out
    cipher = re.search(r"Cipher is (\S+)", out)
    if rc == 0 and verified and cipher and cipher[1] != "(NONE)":
        return True, f"DTLSv1.2 {cipher[1]}, server verified"
    reason = re.findall(r"(?:error|alert)[^\n]*", out)
    return False, (reason[0] if reason else out.strip()[-160:]).strip()


def dtls_no_client_cert(env: Env) -> Outcome:
    return _s_client(env, PLAIN_PORT, env.certs / "ca.pem", None)


def dtls_client_cert(env: Env) -> Outcome:
    cert, key = _peer_cert(env)
    ok, detail = _s_client(env, MUTUAL_PORT, env.certs / "ca.pem", (cert, key))
    return ok, detail + (", client certificate accepted (--mutual)" if ok else "")


def dtls_negative_no_cert_mutual(env: Env) -> Outcome:
    """Negative control: a --mutual tracker must refuse a client without certificate."""
    return _s_client(env, MUTUAL_PORT, env.certs / "ca.pem", None)


def dtls_negative_foreign_ca(env: Env) -> Outcome:
    """Negative control: a client trusting another CA must reject our tracker."""
    other = env.workdir / "other-ca"
    subprocess.run([*CLI, "certs", "init", str(other)], check=True, capture_output=True)
    return _s_client(env, PLAIN_PORT, other / "ca.pem", None)


def _peer_cert(env: Env) -> tuple[Path, Path]:
    subprocess.run(
        [*CLI, "certs", "peer", "interop-peer", str(env.certs)], check=True, capture_output=True
    )
    pems = sorted(env.certs.glob("*interop-peer*"))
    cert = next(p for p in pems if "key" not in p.name)
    key = next(p for p in pems if "key" in p.name)
    return cert, key


# -- srflx gathering behind the NAT ---------------------------------------------


def _srflx_ok(env: Env, addrs: list[str], output: str) -> Outcome:
    if not addrs:
        return False, "no srflx candidate: " + output.strip()[-160:]
    for addr in addrs:
        if addr.rsplit(":", 1)[0] == env.public_ip:
            return True, f"srflx {addr}"
    return False, f"srflx {addrs}, expected the NAT's {env.public_ip}"


_SDP_SRFLX: Final = re.compile(r"udp \d+ (\S+) (\d+) typ srflx")


def gather_aioice(env: Env) -> Outcome:
    script = (
        "import asyncio, aioice\n"
        "async def main():\n"
        f"    c = aioice.Connection(ice_controlling=True, stun_server=({env.tracker_ip!r}, "
        f"{PLAIN_PORT}), use_ipv6=False)\n"
        "    await c.gather_candidates()\n"
        "    print(*(f'{x.host}:{x.port}' for x in c.local_candidates if x.type == 'srflx'))\n"
        "    await c.close()\n"
        "asyncio.run(main())\n"
    )
    _, out = _run(env, NATTED, [*CLI[:1], "-c", script])
    return _srflx_ok(env, out.split(), out)


def gather_werift(env: Env) -> Outcome:
    argv = ["node", str(AGENTS / "werift_gather.cjs"), env.tracker_ip, str(PLAIN_PORT)]
    _, out = _run(env, NATTED, argv)
    found = [
        f"{m[1]}:{m[2]}"
        for c in agents.json_line(out).get("candidates", [])
        for m in [_SDP_SRFLX.search(c)]
        if m
    ]
    return _srflx_ok(env, found, out)


def gather_libnice(env: Env) -> Outcome:
    argv = [
        agents.SYSTEM_PYTHON,
        str(AGENTS / "libnice_gather.py"),
        env.tracker_ip,
        str(PLAIN_PORT),
    ]
    _, out = _run(env, NATTED, argv)
    cands = agents.json_line(out).get("candidates", [])
    return _srflx_ok(env, [c["addr"] for c in cands if c.get("type") == "srflx"], out)


def gather_chromium(env: Env) -> Outcome:
    page = f"file://{AGENTS / 'chromium_gather.html'}?stun={env.tracker_ip}:{PLAIN_PORT}"
    # Chromium's helper processes may still write the profile as it exits;
    # the lab's teardown ends them, and the leftover files do not matter.
    with tempfile.TemporaryDirectory(prefix="stl-chromium-", ignore_cleanup_errors=True) as profile:
        argv = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", page]
        proc = env.lab.spawn(
            NATTED, argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        found: list[str] = []
        try:
            for line in _lines(proc, 30):
                if "STL-GATHERED" in line:
                    break
                if "STL-CANDIDATE" in line and (m := _SDP_SRFLX.search(line)):
                    found.append(f"{m[1]}:{m[2]}")
        finally:
            stop_process(proc)
    return _srflx_ok(env, found, "chromium gathered no srflx in 30 s")


def _chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def _lines(proc: subprocess.Popen[str], timeout: float) -> Iterator[str]:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if ready:
            line = proc.stderr.readline()
            if not line:
                return
            yield line


# -- full connections: our P2P channel <-> a third-party WebRTC agent -----------


def _connect(env: Env, agent: str, our_role: str, relay: bool) -> Outcome:
    """Our channel in one NATed LAN, the agent in another (two port-restricted
    cones, or two symmetric NATs with TURN); data must cross both ways."""
    our_host, agent_host = (SYM_OURS, SYM_AGENT) if relay else (NATTED, CONE_PEER)
    result = agents.connect_agent(
        env.lab, env.tracker_ip, env.certs / "ca.pem", agent,
        our_host=our_host, agent_host=agent_host, our_role=our_role, relay=relay,
        timeout=CONNECT_TIMEOUT, tag=f"{agent}-{our_role}-{int(relay)}",
    )  # fmt: skip
    if result.outcome == "connected":
        return True, f"{result.connect_ms:.0f} ms, pair {result.pair_type}, {result.detail}"
    return False, result.detail


def _connect_cell(agent: str, our_role: str, relay: bool) -> Check:
    return lambda env: _connect(env, agent, our_role, relay)


def _connect_cells(agent: str, name: str) -> list[tuple[str, str, bool, Check]]:
    """Both ICE roles across two port-restricted cones, and across two
    symmetric NATs through coturn."""
    return [
        ("connect", f"{name}: {who}, {where}", True, _connect_cell(agent, role, relay))
        for relay, where in ((False, "2 cone NATs"), (True, "2 sym NATs, TURN"))
        for role, who in (("offer", "we offer"), ("answer", "it offers"))
    ]


CELLS: Final[tuple[tuple[str, str, bool, Check], ...]] = (
    ("stun", "turnutils_stunclient (coturn)", True, stun_turnutils),
    ("stun", "stun (stun-client, RFC 3489)", True, stun_rfc3489_client),
    ("stun", "npm stun 2.1.0", True, stun_npm),
    ("dtls", "openssl s_client -dtls1_2", True, dtls_no_client_cert),
    ("dtls", "openssl s_client + client cert (--mutual)", True, dtls_client_cert),
    ("dtls", "NEG: no client cert vs --mutual", False, dtls_negative_no_cert_mutual),
    ("dtls", "NEG: client trusting another CA", False, dtls_negative_foreign_ca),
    ("gather", "aioice", True, gather_aioice),
    ("gather", "werift 0.24 (Node 20)", True, gather_werift),
    ("gather", "libnice 0.1 (python3-gi)", True, gather_libnice),
    ("gather", "headless Chromium", True, gather_chromium),
    *_connect_cells("werift", "werift"),
    *_connect_cells("chromium", "Chromium"),
    *_connect_cells("libnice", "libnice (ICE only)"),
)


def run_cells(env: Env, cells: Sequence[tuple[str, str, bool, Check]] = CELLS) -> list[CellResult]:
    results = []
    for group, agent, expect_ok, check in cells:
        started = time.monotonic()
        try:
            ok, detail = check(env)
        except (OSError, subprocess.SubprocessError, ValueError, StopIteration) as error:
            ok, detail = False, f"{type(error).__name__}: {error}"
        results.append(CellResult(group, agent, expect_ok, ok, detail, time.monotonic() - started))
    return results


def format_table(results: Sequence[CellResult], elapsed_s: float) -> str:
    out = [f"{'group':<7} {'agent':<50} {'expect':<6} {'result':<6} {'time':>6}  detail"]
    for r in results:
        result = "PASS" if r.passed else "FAIL"
        expect = "ok" if r.expect_ok else "refuse"
        out.append(
            f"{r.group:<7} {r.agent:<50} {expect:<6} {result:<6} {r.elapsed_s:5.1f}s  {r.detail}"
        )
    passed = sum(r.passed for r in results)
    out.append(f"{passed}/{len(results)} cells pass in {elapsed_s:.1f}s")
    return "\n".join(out)


def to_json(results: Sequence[CellResult], elapsed_s: float) -> dict[str, Any]:
    return {
        "elapsed_s": elapsed_s,
        "all_pass": all(r.passed for r in results),
        "cells": [{**dataclasses.asdict(r), "passed": r.passed} for r in results],
    }


def run_interop(lab: Topology, coturn: Coturn) -> list[CellResult]:
    """Start the trackers (plus one with ``--mutual``), run every cell."""
    with running_trackers(lab, coturn) as trackers, tempfile.TemporaryDirectory() as tmp:
        mutual = start_tracker(lab, trackers.certs, MUTUAL_PORT, ["--mutual"])
        try:
            return run_cells(Env(lab, trackers.tracker_ip, trackers.certs, Path(tmp)))
        finally:
            stop_process(mutual)
