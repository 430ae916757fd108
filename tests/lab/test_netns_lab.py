"""The NAT lab for real: namespaces, nftables NATs, coturn, aioice.

Needs root and ``ip netns`` (skipped otherwise, with the reason); the coturn
tests also need coturn's ``turnserver`` and ``turnutils_natdiscovery``. Every
wait is on an event (a line on a pipe, a process exit), never a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from stunlike_tracker.lab import heatmap, matrix, natcheck
from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.runners import aioice_runner
from stunlike_tracker.lab.topology import (
    NAT_TYPES,
    PREFIX,
    LanSpec,
    Topology,
    cleanup_stale,
    lans_for,
    list_lab_namespaces,
)
from stunlike_tracker.lab.tracker_runner import tracker_runner


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "NAT lab tests need root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"NAT lab tests need `{tool}`"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable: {probe.stderr.strip()}"
    return None


def _coturn_unavailable() -> str | None:
    for tool in ("turnserver", "turnutils_natdiscovery"):
        if shutil.which(tool) is None:
            return f"needs coturn's {tool}"
    return None


_NO_NETNS = _netns_unavailable()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(_NO_NETNS is not None, reason=_NO_NETNS or "")]
needs_coturn = [
    pytest.mark.coturn,
    pytest.mark.skipif(_coturn_unavailable() is not None, reason=_coturn_unavailable() or ""),
]

REPO = Path(__file__).resolve().parents[2]


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(":", 2)[1].strip().split("@")[0] for line in out.stdout.splitlines()}


def _ours(prefix: str) -> list[str]:
    return [ns for ns in list_lab_namespaces() if ns.startswith(prefix + "-")]


def _read_until(stream: IO[str], marker: str) -> list[str]:
    lines = []
    for line in stream:
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"stream ended before {marker!r}: {''.join(lines)}")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


# ---------------------------------------------------------------------------
# topology life cycle


def test_up_and_down_leave_nothing_behind() -> None:
    links_before = _root_links()
    lab = Topology([LanSpec("fc", "full-cone"), LanSpec("sh", "symmetric", hosts=2)])
    with lab:
        assert sorted(_ours(lab.prefix)) == sorted(lab.namespaces)
        assert len(lab.namespaces) == 3 + 2 + 3  # pub, trk, turn; 2 NATs; 3 hosts
        addr = lab.run("sh-2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], timeout=5)
        assert lab.address("sh-2") in addr.stdout
        route = lab.run("fc", ["ip", "route", "show", "default"], timeout=5)
        assert "via 10." in route.stdout
        assert _root_links() == links_before  # nothing in our namespace, ever
        assert lab.timings["up_s"] < 5
    assert _ours(lab.prefix) == []
    assert _root_links() == links_before
    lab.down()  # idempotent
    assert lab.timings["down_s"] < 5


def test_failure_inside_the_context_still_tears_down() -> None:
    lab = Topology([LanSpec("a", "port-restricted-cone")])
    with pytest.raises(RuntimeError, match="boom"), lab:
        assert _ours(lab.prefix)
        raise RuntimeError("boom")
    assert _ours(lab.prefix) == []


def test_spawned_processes_die_with_the_lab() -> None:
    with Topology([LanSpec("a", "symmetric")]) as lab:
        proc = lab.spawn("a", ["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert proc.poll() is None
    assert proc.wait(timeout=5) is not None
    if proc.stdin is not None:
        proc.stdin.close()


def test_cleanup_stale_removes_a_killed_runs_lab() -> None:
    code = (
        "import signal\n"
        "from stunlike_tracker.lab.topology import LanSpec, Topology\n"
        "lab = Topology([LanSpec('a', 'symmetric')]).up()\n"
        "print(lab.prefix, flush=True)\n"
        "signal.pause()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert child.stdout is not None
    prefix = child.stdout.readline().strip()
    child.kill()  # SIGKILL: no chance to clean up
    child.wait(timeout=5)
    child.stdout.close()
    assert prefix.startswith(f"{PREFIX}-{child.pid}-")
    assert _ours(prefix), "the killed run should have left its namespaces"
    removed = cleanup_stale()
    assert set(removed) >= {f"{prefix}-pub", f"{prefix}-nat-a", f"{prefix}-h-a"}
    assert _ours(prefix) == []
    assert cleanup_stale() == [] or all(not r.startswith(prefix) for r in cleanup_stale())


def test_cleanup_stale_removes_a_stray_veth_named_like_ours() -> None:
    subprocess.run(
        ["ip", "link", "add", "name", "stl999999a", "type", "veth", "peer", "name", "stl999999b"],
        check=True,
    )
    removed = cleanup_stale()
    assert "stl999999a" in removed or "stl999999b" in removed
    assert not {"stl999999a", "stl999999b"} & _root_links()


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)]
)
def test_cli_up_tears_down_on_signal(signum: int, exit_code: int) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stunlike_tracker.lab.cli",
            "up",
            "--nat",
            "full-cone",
            "--no-coturn",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert child.stdout is not None and child.stderr is not None
    lines = _read_until(child.stdout, "Ctrl-C to tear down")
    assert any("fc1" in line for line in lines)
    assert _ours(f"{PREFIX}-{child.pid}-0")
    child.send_signal(signum)
    assert child.wait(timeout=10) == exit_code, child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert _ours(f"{PREFIX}-{child.pid}-0") == []


# ---------------------------------------------------------------------------
# loss emulation

ECHO_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data, addr)
"""

ECHO_CLIENT = """
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)
for i in range(n):
    s.sendto(i.to_bytes(4, "big"), (host, port))
s.settimeout(0.5)  # the end of the replies, not readiness
got = set()
try:
    while len(got) < n:
        got.add(s.recv(64))
except TimeoutError:
    pass
print(len(got))
"""


FIRST_REPLY = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
t0 = time.monotonic()
s.sendto(b"x", (sys.argv[1], int(sys.argv[2])))
s.recv(16)
print(time.monotonic() - t0)
"""


def test_first_packet_through_a_fresh_lab_is_not_delayed() -> None:
    # A bridged lab made the first packet wait up to 1 s for linkwatch.
    with Topology(
        [LanSpec("a", "port-restricted-cone"), LanSpec("b", "symmetric", hosts=2)]
    ) as lab:
        server = lab.spawn(
            "trk",
            [sys.executable, "-c", ECHO_SERVER, lab.address("trk")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        for host in ("a", "b-1", "b-2"):
            argv = [sys.executable, "-c", FIRST_REPLY, lab.address("trk"), port]
            out = lab.run(host, argv, timeout=10)
            assert out.returncode == 0, out.stderr
            assert float(out.stdout) < 0.2
    server.stdout.close()


def test_loss_emulation_drops_the_configured_share() -> None:
    n = 400
    with Topology([LanSpec("a", "port-restricted-cone", loss_pct=100)]) as lab:
        server = lab.spawn(
            "trk",
            [sys.executable, "-c", ECHO_SERVER, lab.address("trk")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        port = server.stdout.readline().strip()

        def delivered() -> int:
            argv = [sys.executable, "-c", ECHO_CLIENT, lab.address("trk"), port, str(n)]
            out = lab.run("a", argv, timeout=20)
            assert out.returncode == 0, out.stderr
            return int(out.stdout)

        assert delivered() == 0
        lab.set_loss("a", 0)
        assert delivered() == n
        lab.set_loss("a", 30)  # each way: about 0.7 * 0.7 = 49 % round trips
        assert 0.35 * n < delivered() < 0.63 * n
    server.stdout.close()


# ---------------------------------------------------------------------------
# independent verification of every NAT label


@pytest.fixture(scope="module")
def natcheck_observations() -> Iterator[dict[str, natcheck.NatObservation]]:
    if reason := _coturn_unavailable():
        pytest.skip(reason)
    lans = [*lans_for(NAT_TYPES), LanSpec(matrix.SHARED, matrix.SHARED_NAT, hosts=2)]
    with Topology(lans) as lab, Coturn(lab) as coturn:
        assert coturn.startup_s is not None and coturn.startup_s < 5
        yield {o.host: o for o in natcheck.natcheck(lab, coturn)}


@pytest.mark.parametrize("label", [*NAT_TYPES, matrix.SHARED])
def test_natdiscovery_confirms_label(
    label: str, natcheck_observations: dict[str, natcheck.NatObservation]
) -> None:
    if label == matrix.SHARED:
        found = [o for o in natcheck_observations.values() if o.shared]
        assert len(found) == 2
    else:
        found = [o for o in natcheck_observations.values() if o.label == label and not o.shared]
        assert len(found) == 1
    for o in found:
        assert o.ok, f"{natcheck.format_table([o])}\n{o.raw}"
        assert o.discovery.hairpin is True


for _mark in needs_coturn:
    test_natdiscovery_confirms_label = _mark(test_natdiscovery_confirms_label)


# ---------------------------------------------------------------------------
# the matrix runner with bare aioice peers


@pytest.mark.coturn
@pytest.mark.skipif(_coturn_unavailable() is not None, reason=_coturn_unavailable() or "")
def test_aioice_matrix_small(tmp_path: Path) -> None:
    pytest.importorskip("aioice")
    types = ["full-cone", "port-restricted-cone", "symmetric"]
    wanted = {
        ("full-cone", "port-restricted-cone", False),
        ("symmetric", "port-restricted-cone", False),
        ("symmetric", "symmetric", False),
        ("symmetric", "symmetric", True),
        (matrix.SHARED, matrix.SHARED, False),
    }
    cases = [
        c
        for c in matrix.plan_cases(types, relay_modes=(False, True))
        if (c.seeder_nat, c.leecher_nat, c.relay) in wanted
    ]
    assert len(cases) == len(wanted)
    t0 = time.monotonic()
    with Topology(matrix.matrix_lans(types)) as lab, Coturn(lab) as coturn:
        report = matrix.run_matrix(lab, coturn, aioice_runner, cases, timeout=3.0)
    assert report.exit_code == 0, report.format_table()
    by_case = {
        (r.case.seeder_nat, r.case.leecher_nat, r.case.relay): r.result for r in report.results
    }
    relayed = by_case[("symmetric", "symmetric", True)]
    # Either side's relay candidate will do (relay/prflx, relay/relay, host/relay).
    assert relayed.pair_type is not None and "relay" in relayed.pair_type.split("/")
    assert by_case[(matrix.SHARED, matrix.SHARED, False)].pair_type == "host/host"
    for res in by_case.values():
        if res.outcome == "connected":
            assert res.connect_ms is not None and res.connect_ms < 3000
    assert time.monotonic() - t0 < 60
    report.write_json(tmp_path / "matrix.json")
    heatmap.write_svg(report, tmp_path / "matrix.svg")
    assert json.loads((tmp_path / "matrix.json").read_text())["all_match"] is True
    assert (tmp_path / "matrix.svg").read_text().startswith("<svg")


UDP6_RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(float(sys.argv[1]))
try:
    data, addr = s.recvfrom(100)
    print("got", data.decode(), addr[0], flush=True)
    s.sendto(b"reply", addr)
except TimeoutError:
    print("nothing", flush=True)
"""
UDP6_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
if sys.argv[3] == "expect-reply":
    print(s.recvfrom(100)[0].decode())
"""


def _udp6(lab: Topology, receiver: str, sender: str, expect_reply: bool) -> str:
    proc = lab.spawn(
        receiver, [sys.executable, "-c", UDP6_RECEIVER, "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    address6 = lab.host(receiver).address6
    assert address6 is not None
    mode = "expect-reply" if expect_reply else "fire"
    sent = lab.run(sender, [sys.executable, "-c", UDP6_SENDER, address6, port, mode], timeout=10)
    assert sent.returncode == 0, sent.stderr
    verdict = str(proc.stdout.readline()).strip()
    proc.wait(timeout=5)
    proc.stdout.close()
    return verdict


def test_dual_stack_lab_routes_ipv6_without_nat_behind_a_stateful_firewall() -> None:
    lans = [LanSpec("s", "symmetric"), LanSpec("o", "none")]
    with Topology(lans, ipv6=True) as lab:
        s6, trk6 = lab.host("s").address6, lab.host("trk").address6
        assert s6 is not None and trk6 is not None
        # Outbound from behind the firewall: the tracker sees the host's own
        # address (no NAT on IPv6) and its reply comes back.
        assert _udp6(lab, "trk", "s", expect_reply=True) == f"got hello {s6}"
        # Unsolicited inbound is dropped; a public host is reachable.
        assert _udp6(lab, "s", "trk", expect_reply=False) == "nothing"
        assert _udp6(lab, "o", "trk", expect_reply=False).startswith("got hello")
        # Hosts have no link-local address (peers gather only global ones).
        addrs = lab.run("s", ["ip", "-6", "-o", "addr", "show", "dev", "eth0"], timeout=5)
        assert "fe80" not in addrs.stdout and s6 in addrs.stdout
    # IPv6 stays off in a plain lab.
    with Topology([LanSpec("s", "symmetric")]) as lab:
        assert lab.host("s").address6 is None
        addrs = lab.run("s", ["ip", "-6", "-o", "addr"], timeout=5)
        assert addrs.stdout.strip() == ""


@pytest.mark.coturn
@pytest.mark.skipif(_coturn_unavailable() is not None, reason=_coturn_unavailable() or "")
def test_peers_behind_two_symmetric_nats_connect_over_ipv6() -> None:
    # Over IPv4 this pair cannot connect without a relay (the expected
    # table); in a dual-stack lab our peers connect over IPv6 host candidates.
    types = ["symmetric"]
    cases = matrix.plan_cases(types, relay_modes=(False,), shared=False, ipv6=True)
    assert [c.expected for c in cases] == ["connected"]
    with Topology(matrix.matrix_lans(types, shared=False), ipv6=True) as lab, Coturn(lab) as turn:
        report = matrix.run_matrix(lab, turn, tracker_runner, cases, timeout=5.0)
    result = report.results[0].result
    assert result.outcome == "connected", report.format_table()
    assert result.pair_type == "host/host"
