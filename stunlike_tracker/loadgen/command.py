"""The ``stunlike-tracker load`` subcommand: flags, a local tracker on request, output."""

from __future__ import annotations

import argparse
import tempfile
from contextlib import ExitStack
from pathlib import Path

from stunlike_tracker.loadgen.shapes import REALISTIC_MIX, Kind, MixError, parse_mix

HELP = "drive a tracker with STUN, DTLS handshakes or PPSP traffic and measure it"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = sub.add_parser(
        "load",
        help=HELP,
        description="Load generator: several processes drive --tracker (or a local tracker "
        "with --serve) and report responses/s, loss, p50/p99 latency and, for a local "
        "tracker, its CPU-seconds. Kinds: stun, handshake, ppsp, udp (an echo), bt "
        "(BEP 15 announces).",
    )
    load.add_argument("--tracker", metavar="HOST:PORT", help="address to drive")
    load.add_argument("--serve", action="store_true", help="start a local tracker and drive it")
    load.add_argument("--serve-loop", choices=("uvloop", "asyncio"), default="uvloop",
                      help="event loop of the --serve tracker")  # fmt: skip
    load.add_argument("--server-pid", type=int, help="measure this local process's CPU")
    load.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.PPSP.value)
    load.add_argument("--mix", default="find=1",
                      help=f"ppsp operations by weight (realistic: {REALISTIC_MIX})")  # fmt: skip
    load.add_argument("--processes", type=int, default=2, help="client processes")
    load.add_argument("--sessions", type=int, default=64, help="sessions (sockets) in all")
    load.add_argument("--window", type=int, default=4,
                      help="requests outstanding per socket (stun, udp, bt)")  # fmt: skip
    load.add_argument("--swarm-size", type=int, default=100, help="ppsp: seeds in the swarm")
    load.add_argument("--interval", type=float, default=0.0,
                      help="ppsp: seconds between a session's answer and its next request "
                      "(25: keep-alive pace; 0: back to back)")  # fmt: skip
    load.add_argument("--size", type=int, default=300, help="udp: datagram size")
    load.add_argument("--seconds", type=float, default=5.0, help="measurement window")
    load.add_argument("--warmup", type=float, default=1.0, help="traffic before the window")
    load.add_argument("--timeout", type=float, default=1.0, help="a request is lost after, s")
    load.add_argument("--ca", help="CA of the tracker's certificate")
    load.add_argument("--cert", help="peer certificate (mutual mode)")
    load.add_argument("--key", help="peer key (mutual mode)")
    load.add_argument("--server-name", help="name to check in the tracker's certificate")
    load.add_argument("--asyncio", action="store_true", help="client processes on asyncio")
    load.add_argument("--json", action="store_true", help="print one JSON line at the end")


def run(args: argparse.Namespace, usage_error: type[Exception]) -> int:
    from stunlike_tracker.cli import _host_port
    from stunlike_tracker.loadgen.local import local_tracker
    from stunlike_tracker.loadgen.runner import LoadError, LoadSettings, run_load

    if (args.tracker is None) == (not args.serve):
        raise usage_error("give exactly one of --tracker HOST:PORT and --serve")
    try:
        mix = parse_mix(args.mix)
    except MixError as error:
        raise usage_error(str(error)) from None
    for name in ("processes", "sessions", "window"):
        if getattr(args, name) < 1:
            raise usage_error(f"--{name} must be at least 1")
    if not (args.seconds > 0 and args.warmup >= 0 and args.timeout > 0 and args.swarm_size >= 0
            and args.interval >= 0):  # fmt: skip
        raise usage_error("--seconds and --timeout must be positive, --warmup not negative")

    def read(path: str | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as error:
            raise usage_error(f"cannot read {what} {path}: {error.strerror}") from None

    with ExitStack() as stack:
        ca = read(args.ca, "CA certificate")
        pid = args.server_pid
        if args.serve:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            try:
                target, pid = stack.enter_context(
                    local_tracker(tmp / "certs", loop=args.serve_loop)
                )
            except RuntimeError as error:
                raise usage_error(str(error)) from None
            ca = (tmp / "certs" / "ca.pem").read_bytes()
        else:
            try:
                target = _host_port(args.tracker)
            except argparse.ArgumentTypeError as error:
                raise usage_error(str(error)) from None
        settings = LoadSettings(
            kind=Kind(args.kind),
            target=target,
            processes=args.processes,
            sessions=args.sessions,
            window=args.window,
            swarm_size=args.swarm_size,
            mix=mix,
            size=args.size,
            timeout=args.timeout,
            seconds=args.seconds,
            warmup=args.warmup,
            ca_pem=ca,
            cert_pem=read(args.cert, "certificate"),
            key_pem=read(args.key, "key"),
            server_name=args.server_name,
            server_pid=pid,
            uvloop=not args.asyncio,
            interval=args.interval,
        )
        try:
            result = run_load(settings)
        except LoadError as error:
            raise usage_error(str(error)) from None
    for line in result.lines():
        print(line, flush=True)
    if args.json:
        print(result.to_json(), flush=True)
    return 0
