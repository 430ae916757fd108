"""``stunlike-tracker lab ...``: the NAT lab from the command line.

    lab up [--nat TYPE ...] [--shared] [--loss PCT] [--no-coturn] [--ipv6]
    lab down [--force]
    lab natcheck [--json PATH]
    lab interop [--json PATH]
    lab matrix [--no-relay] [--loss PCT] [--json FILE] [--svg FILE]
               [--runner tracker|aioice] [--agent aioice|werift|chromium]
               [--relay off|on|both] [--types TYPE ...]
               [--timeout S] [--no-shared] [--row TYPE] [--ipv6]

Needs root (network namespaces, nftables). SIGINT, SIGTERM and SIGHUP tear
the lab down before exiting; a lab left by a killed run is removed by
``lab down`` or by the next command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from stunlike_tracker.lab import heatmap, interop, matrix, natcheck
from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.runners import AGENTS, RUNNERS, agent_runner
from stunlike_tracker.lab.topology import (
    NAT_TYPES,
    LabError,
    LanSpec,
    Topology,
    cleanup_stale,
    lans_for,
)

_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


class _Terminated(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signum)


@contextmanager
def _teardown_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so ``with Topology`` cleans up
    (SIGINT already raises KeyboardInterrupt)."""
    previous = {s: signal.signal(s, _raise_terminated) for s in _TERMINATING}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _complain(message: str) -> None:
    # The terminal may be gone (SIGHUP) or the reader may have closed the pipe.
    with contextlib.suppress(OSError):
        print(f"lab: {message}", file=sys.stderr, flush=True)


def _preflight() -> str | None:
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces and nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _need_coturn() -> str | None:
    for tool in ("turnserver", "turnutils_natdiscovery"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package coturn)"
    return None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="stunlike-tracker lab", description="NAT lab")
    sub = ap.add_subparsers(dest="cmd", required=True)

    up = sub.add_parser("up", help="build a lab and keep it until Ctrl-C")
    up.add_argument("--nat", nargs="+", choices=NAT_TYPES, default=list(NAT_TYPES))
    up.add_argument("--shared", action="store_true", help="add two hosts behind one NAT")
    up.add_argument("--loss", type=int, default=0, metavar="PCT")
    up.add_argument("--no-coturn", action="store_true")
    up.add_argument("--ipv6", action="store_true", help="dual-stack: IPv6 without NAT")

    down = sub.add_parser("down", help="remove labs left by dead runs")
    down.add_argument("--force", action="store_true", help="also labs of running processes")

    nc = sub.add_parser("natcheck", help="verify every NAT type with turnutils_natdiscovery")
    nc.add_argument("--json", type=Path)

    mx = sub.add_parser("matrix", help="connect every ordered pair of NAT types")
    mx.add_argument(
        "--runner",
        choices=sorted(RUNNERS),
        default="tracker",
        help="tracker: our tracker and `stunlike-tracker peer` (default); aioice: bare ICE",
    )
    mx.add_argument(
        "--agent",
        choices=AGENTS,
        help="the seeders' ICE agent: werift or chromium against our peer as leecher; "
        "aioice (our peer on both sides) is the default",
    )
    mx.add_argument("--relay", choices=("off", "on", "both"), default="both")
    mx.add_argument("--no-relay", action="store_true", help="the same as --relay off")
    mx.add_argument("--types", nargs="+", choices=NAT_TYPES, default=list(matrix.MATRIX_TYPES))
    mx.add_argument(
        "--timeout", type=float, help="ICE check budget per pair, s (5; 60 with --loss)"
    )
    mx.add_argument("--loss", type=int, default=0, metavar="PCT")
    mx.add_argument(
        "--ipv6", action="store_true", help="dual-stack lab: IPv6 without NAT behind firewalls"
    )
    mx.add_argument("--no-shared", action="store_true")
    mx.add_argument(
        "--row", choices=NAT_TYPES, help="only the row of this seeder NAT type (against --types)"
    )
    mx.add_argument(
        "--json", type=Path, help="write the report as JSON (and the SVG heat map beside it)"
    )
    mx.add_argument("--svg", type=Path, help="write the heat map here (default: FILE.svg)")
    io = sub.add_parser(
        "interop", help="third-party STUN, DTLS and ICE clients against our tracker"
    )
    io.add_argument("--json", type=Path, help="write the cells as JSON")
    return ap


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    problem = _preflight()
    if problem:
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    try:
        with _teardown_on_signals():
            if args.cmd == "down":
                return _down(args)
            cleanup_stale()
            if args.cmd == "up":
                return _up(args)
            if args.cmd == "natcheck":
                return _natcheck(args)
            if args.cmd == "interop":
                return _interop(args)
            return _matrix(args)
    except KeyboardInterrupt:
        _complain("interrupted, torn down")
        return 130
    except _Terminated as t:
        _complain(f"signal {t.signum}, torn down")
        return 128 + t.signum
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1


def _down(args: argparse.Namespace) -> int:
    removed = cleanup_stale(include_live=args.force)
    print(f"removed {len(removed)}: {' '.join(removed)}" if removed else "nothing to remove")
    return 0


def _up(args: argparse.Namespace) -> int:
    lans = lans_for(list(dict.fromkeys(args.nat)), loss_pct=args.loss)
    if args.shared:
        lans.append(LanSpec(matrix.SHARED, matrix.SHARED_NAT, hosts=2, loss_pct=args.loss))
    if not args.no_coturn and (problem := _need_coturn()):
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    with Topology(lans, ipv6=args.ipv6) as lab:
        print(lab.describe())
        print(f"up in {lab.timings['up_s'] * 1000:.0f} ms")
        if not args.no_coturn:
            coturn = Coturn(lab).start()
            a, p = coturn.stun_server
            print(
                f"coturn: stun/turn {a}:{p} (alt {coturn.addresses[1]}:{p + 1}), "
                f"static-auth-secret {coturn.secret}, log {coturn.log_path}"
            )
        print("run a command in a host: ip netns exec <ns> <command>")
        print("Ctrl-C to tear down", flush=True)
        _wait_for_signal()
    return 0  # not reached: a signal ends the wait with an exception


def _wait_for_signal() -> None:
    """Block until a signal handler raises.

    Not ``signal.pause()``: a signal landing between Python's check for
    pending signals and the pause() call is lost and the wait never ends.
    The wakeup fd keeps a byte for every signal, so nothing is lost.
    """
    r, w = socket.socketpair()
    w.setblocking(False)
    previous = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    try:
        while True:
            r.recv(16)  # the handler's exception surfaces right after this
    finally:
        signal.set_wakeup_fd(previous)
        r.close()
        w.close()


def _natcheck(args: argparse.Namespace) -> int:
    if problem := _need_coturn():
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    lans = [*lans_for(NAT_TYPES), LanSpec(matrix.SHARED, matrix.SHARED_NAT, hosts=2)]
    with Topology(lans) as lab, Coturn(lab) as coturn:
        t0 = time.monotonic()
        observations = natcheck.natcheck(lab, coturn)
        print(natcheck.format_table(observations))
        ok = all(o.ok for o in observations)
        print(
            f"{sum(o.ok for o in observations)}/{len(observations)} labels hold "
            f"(topology up {lab.timings['up_s'] * 1000:.0f} ms, coturn ready "
            f"{(coturn.startup_s or 0) * 1000:.0f} ms, checks {time.monotonic() - t0:.1f} s)"
        )
        if args.json:
            rows = [
                {
                    "host": o.host,
                    "label": o.label,
                    "shared": o.shared,
                    "nat_detected": o.discovery.nat_detected,
                    "mapping": o.discovery.mapping,
                    "filtering": o.discovery.filtering,
                    "hairpin": o.discovery.hairpin,
                    "elapsed_s": o.elapsed_s,
                    "ok": o.ok,
                }
                for o in observations
            ]
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 0 if ok else 1


def _interop(args: argparse.Namespace) -> int:
    if problem := _need_coturn():
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    with Topology(interop.interop_lans()) as lab, Coturn(lab) as coturn:
        results = interop.run_interop(lab, coturn)
    elapsed = time.monotonic() - t0
    print(interop.format_table(results, elapsed))
    if args.json:
        args.json.write_text(json.dumps(interop.to_json(results, elapsed), indent=2) + "\n")
    return 0 if results and all(r.passed for r in results) else 1


def _matrix(args: argparse.Namespace) -> int:
    if problem := _need_coturn():
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    types = list(dict.fromkeys(args.types))
    relay = "off" if args.no_relay else args.relay
    relay_modes = {"off": (False,), "on": (True,), "both": (False, True)}[relay]
    if args.timeout is None:
        # Lost checks cost retransmissions: give ICE more time under loss.
        args.timeout = 60.0 if args.loss else 5.0
    if args.json and not args.svg:
        args.svg = args.json.with_suffix(".svg")
    shared = not args.no_shared
    pairs = [(args.row, t) for t in types] if args.row else None
    if args.row and args.row not in types:
        types.append(args.row)
    cases = matrix.plan_cases(
        types, relay_modes=relay_modes, shared=shared, pairs=pairs, ipv6=args.ipv6
    )
    lans = matrix.matrix_lans(types, shared=shared, loss_pct=args.loss)

    def progress(r: matrix.CaseResult) -> None:
        c = r.case
        mark = "ok " if r.match else "BAD"
        ms = f"{r.result.connect_ms:.0f} ms" if r.result.connect_ms is not None else "-"
        print(
            f"{mark} {c.seeder_nat:>20} -> {c.leecher_nat:<20} relay={'on ' if c.relay else 'off'} "
            f"{r.result.outcome:<9} {r.result.pair_type or '-':<12} {ms:>8}  ({r.elapsed_s:.1f}s)",
            flush=True,
        )

    with Topology(lans, ipv6=args.ipv6) as lab, Coturn(lab) as coturn:
        report = matrix.run_matrix(
            lab,
            coturn,
            agent_runner(args.agent)
            if args.agent and args.agent != "aioice"
            else RUNNERS[args.runner],
            cases,
            timeout=args.timeout,
            on_result=progress,
        )
    print()
    print(report.format_table())
    if args.json:
        report.write_json(args.json)
    if args.svg:
        heatmap.write_svg(report, args.svg)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
