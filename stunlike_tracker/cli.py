"""The ``stunlike-tracker`` command: serve, certs, client, peer, lab.

The only place that parses flags and configures logging. Errors a user can
cause (bad flags, missing files, an unreachable tracker) end in one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stunlike_tracker import logs
from stunlike_tracker.config import ConfigError

log = logging.getLogger("stunlike_tracker")


class UsageError(Exception):
    """A one-line message for the user; exit status 2."""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host.strip("[]"), number


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {what} {path}: {error.strerror}") from None


# ----------------------------------------------------------------------
# serve
# ----------------------------------------------------------------------
async def _serve(args: argparse.Namespace) -> int:
    from stunlike_tracker.service import serve

    return await serve(args)


def _print_config(args: argparse.Namespace) -> int:
    from stunlike_tracker.config import render_config

    print(render_config(), end="")
    return 0


# ----------------------------------------------------------------------
# certs
# ----------------------------------------------------------------------
def _certs(args: argparse.Namespace) -> int:
    from stunlike_tracker.certs import CertError, init_dev_certs, issue_peer_cert

    directory = Path(args.dir)
    try:
        if args.certs_command == "init":
            paths = init_dev_certs(directory, tuple(args.name or ()))
            print(f"CA {paths.ca_cert}")
            print(f"tracker {paths.tracker_cert} {paths.tracker_key}")
        else:
            cert, key = issue_peer_cert(directory, args.peer_id)
            print(f"peer {args.peer_id} {cert} {key}")
    except CertError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot write certificates in {directory}: {error.strerror}") from None
    return 0


# ----------------------------------------------------------------------
# client
# ----------------------------------------------------------------------
async def _client(args: argparse.Namespace) -> int:
    from stunlike_tracker.peer.command import run_client_command

    return await run_client_command(args, UsageError)


# ----------------------------------------------------------------------
# argument parsing
# ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stunlike-tracker",
        description="A NAT-aware, STUN-like PPSP tracker over DTLS-secured UDP.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="default: json unless stderr is a terminal"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the tracker")
    serve.add_argument("--host", help="address to bind (default ::, IPv4 and IPv6)")
    serve.add_argument("--port", type=int, help="UDP port (default 3478; 0 picks a free one)")
    serve.add_argument("--certs", help="certificate directory (default certs/)")
    serve.add_argument("--config", type=Path, help="TOML file (see print-config)")
    serve.add_argument("--mutual", action="store_true", help="require peer certificates")
    serve.add_argument("--lan", action="store_true", help="lab/LAN mode: keep private candidates")
    serve.add_argument("--turn-uri", action="append", help="TURN relay URI (repeatable)")
    serve.add_argument(
        "--turn-secret", action="append", help="coturn static-auth-secret (repeat to rotate)"
    )
    serve.add_argument("--turn-ttl", type=int, help="credential lifetime, s (default 600)")
    serve.add_argument("--cookie-secret", help="DTLS cookie secret shared by tracker nodes")
    serve.add_argument(
        "--store",
        help="memory (default), redis://HOST:PORT/DB, rediss://..., redis+cluster://HOST:PORT",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="processes on the port (shared store)"
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument(
        "--allow-swarm",
        action="append",
        metavar="ID",
        help="closed tracker: accept only these SwarmIDs (repeatable; replaces the config's)",
    )
    serve.add_argument("--http", metavar="HOST:PORT", help="metrics and status page (default off)")
    serve.add_argument(
        "--https", metavar="HOST:PORT", help="RFC 7846 JSON, WebSocket and /peer/ (default off)"
    )
    serve.add_argument("--log-format", choices=("text", "json"), default=argparse.SUPPRESS)
    serve.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    sub.add_parser("print-config", help="print the config file with every default")

    certs = sub.add_parser("certs", help="development certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    init = certs_sub.add_parser("init", help="create a dev CA and the tracker certificate")
    init.add_argument("dir", nargs="?", default="certs")
    init.add_argument("--name", action="append", help="extra DNS name or IP for the tracker")
    peer_cert = certs_sub.add_parser("peer", help="issue a peer certificate")
    peer_cert.add_argument("peer_id")
    peer_cert.add_argument("dir", nargs="?", default="certs")

    client = sub.add_parser(
        "client",
        help="send requests by hand",
        description="CONNECT, then run each STEP: join:SWARM[:seed], find:SWARM[:N], stat, "
        "disconnect:SWARM|ALL|nil, reconnect, wait:SECONDS. One line per response.",
    )
    _tracker_flags(client)
    client.add_argument("--peer-id", required=True)
    client.add_argument("steps", nargs="*", metavar="STEP")

    peer = sub.add_parser("peer", help="share or fetch a file through a swarm")
    _tracker_flags(peer)
    peer.add_argument("--peer-id", help="Peer-ID (default: random)")
    peer.add_argument("--swarm", required=True)
    what = peer.add_mutually_exclusive_group(required=True)
    what.add_argument("--seed", type=Path, metavar="FILE", help="serve FILE until stopped")
    what.add_argument("--leech", type=Path, metavar="OUT", help="fetch the file into OUT")
    peer.add_argument("--timeout", type=float, default=120.0, help="leech: give up after, s")
    peer.add_argument(
        "--connect-timeout", type=float, default=15.0, help="ICE + DTLS bound per attempt, s"
    )
    peer.add_argument("--lan", action="store_true", help="offer loopback/private candidates")
    peer.add_argument("--relay-only", action="store_true", help="connect through TURN only")
    peer.add_argument("--json", action="store_true", help="print a JSON result line at the end")

    from stunlike_tracker.loadgen.command import add_parser as add_load_parser

    add_load_parser(sub)

    lab = sub.add_parser("lab", help="the NAT lab (see interop/README.md)")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    return parser


def _tracker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracker",
        required=True,
        action="append",
        metavar="HOST:PORT",
        help="tracker (repeat, or a comma list: the others are failover targets in order)",
    )
    parser.add_argument("--ca", help="CA certificate of the tracker (default certs/ca.pem)")
    parser.add_argument("--cert", help="peer certificate (mutual mode)")
    parser.add_argument("--key", help="peer key (mutual mode)")
    parser.add_argument("--server-name", help="name to check in the tracker's certificate")


def _default_ca(args: argparse.Namespace) -> None:
    if getattr(args, "ca", "unset") is None and Path("certs/ca.pem").exists():
        args.ca = "certs/ca.pem"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logs.configure(args.log_format or "auto", level)
    _default_ca(args)
    try:
        if args.command == "print-config":
            return _print_config(args)
        if args.command == "certs":
            return _certs(args)
        if args.command == "load":
            from stunlike_tracker.loadgen.command import run as run_load

            return run_load(args, UsageError)
        if args.command == "lab":
            from stunlike_tracker.lab.cli import main as lab_main

            return lab_main(list(args.lab_args))
        if args.command == "serve" and args.workers != 1:
            from stunlike_tracker.server.workers import run_workers

            return run_workers(args, list(argv) if argv is not None else sys.argv[1:])
        runner = {"serve": _serve, "client": _client, "peer": _peer}[args.command]
        return _run(runner(args))
    except (UsageError, ConfigError) as error:
        print(f"stunlike-tracker: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _peer(args: argparse.Namespace) -> int:
    from stunlike_tracker.peer.command import client_settings
    from stunlike_tracker.peer.transfer import run_peer_command

    return await run_peer_command(args, client_settings(args, UsageError))


def _run(coro: Any) -> int:
    """uvloop when installed (3-8x the UDP throughput, FIELD-NOTES), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return int(asyncio.run(coro))
    return int(uvloop.run(coro))


if __name__ == "__main__":
    sys.exit(main())
