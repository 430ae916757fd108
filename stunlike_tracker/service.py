"""``stunlike-tracker serve``: one tracker node run as a service.

Reads the config file (``config.py``) with the flags on top, starts the UDP
node and, when configured, the HTTP listener, then follows signals:

* SIGHUP reloads the file: certificates, allow-lists, limits and TURN
  secrets change for what comes next; established associations stay up. A
  file that no longer loads is reported and the running settings are kept.
* SIGTERM or SIGINT drains: no new handshakes, pending ATTACHes are
  answered 503, established peers are still answered for
  ``[server] drain_seconds``, then the node exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from stunlike_tracker import logs
from stunlike_tracker.config import (
    ConfigError,
    Settings,
    build_settings,
    read_file,
    tracker_config,
)
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server
from stunlike_tracker.server.workers import COOKIE_SECRET_ENV, WORKER_INDEX_ENV, check_store_url

log = logging.getLogger("stunlike_tracker.service")

# Flag name -> (section, key). A flag given on the command line wins over
# the file; list flags replace the file's list.
FLAGS: dict[str, tuple[str, str]] = {
    "host": ("server", "host"),
    "port": ("server", "port"),
    "certs": ("server", "certs"),
    "cookie_secret": ("server", "cookie_secret"),
    "store": ("store", "url"),
    "allow_swarm": ("tracker", "allowed_swarms"),
    "turn_uri": ("turn", "uris"),
    "turn_secret": ("turn", "secrets"),
    "turn_ttl": ("turn", "ttl"),
    "http": ("http", "listen"),
    "https": ("https", "listen"),
    "log_format": ("logging", "format"),
}
# store_true flags: only ``True`` overrides the file.
SWITCHES: dict[str, tuple[str, str]] = {
    "mutual": ("server", "mutual"),
    "lan": ("tracker", "lan_mode"),
}


def flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    overrides: dict[str, dict[str, object]] = {}
    for flag, (section, key) in FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    for flag, (section, key) in SWITCHES.items():
        if getattr(args, flag, False):
            overrides.setdefault(section, {})[key] = True
    verbose = getattr(args, "verbose", 0)
    if verbose:
        overrides.setdefault("logging", {})["level"] = "debug" if verbose > 1 else "info"
    return overrides


def load_settings(config_path: Path | None, overrides: dict[str, dict[str, object]]) -> Settings:
    document = read_file(config_path) if config_path is not None else {}
    return build_settings(document, overrides)


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"[server] {key}: cannot read {path}: {error.strerror}") from None


def server_settings(settings: Settings) -> ServerSettings:
    """The node's settings, with the certificates read from disk (development
    certificates are created in ``certs`` when no certificate is named)."""
    from stunlike_tracker.certs import CertError, init_dev_certs

    server = settings.server
    certs = Path(server.certs)
    if (server.certificate is None) != (server.private_key is None):
        raise ConfigError("[server] certificate: goes together with private_key")
    if server.certificate is not None and server.private_key is not None:
        cert_path, key_path = Path(server.certificate), Path(server.private_key)
        ca_path = Path(server.peer_ca) if server.peer_ca else certs / "ca.pem"
    else:
        try:
            paths = init_dev_certs(certs)
        except CertError as error:
            raise ConfigError(f"[server] certs: {error}") from None
        except OSError as error:
            raise ConfigError(f"[server] certs: cannot write {certs}: {error.strerror}") from None
        cert_path, key_path = paths.tracker_cert, paths.tracker_key
        ca_path = Path(server.peer_ca) if server.peer_ca else paths.ca_cert
    peer_ca = None
    if server.mutual or ca_path.exists():
        peer_ca = _read(ca_path, "peer_ca")
    secret = server.cookie_secret
    return ServerSettings(
        cert_pem=_read(cert_path, "certificate"),
        key_pem=_read(key_path, "private_key"),
        host=server.host,
        port=server.port,
        peer_ca_pem=peer_ca,
        mutual=server.mutual,
        cookie_secret=secret.encode() if secret else None,
        tracker=tracker_config(settings),
        limits=settings.endpoint,
        budgets=settings.budgets,
        receive_buffer=server.receive_buffer,
        store=check_store_url(settings.store.url),
    )


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Node:
    """A running node and what SIGHUP needs to rebuild its settings."""

    def __init__(
        self,
        running: RunningServer,
        settings: Settings,
        config_path: Path | None,
        overrides: dict[str, dict[str, object]],
    ) -> None:
        self.running = running
        self.settings = settings
        self.config_path = config_path
        self.overrides = overrides
        self.http: Any = None
        self.https: Any = None
        self.stopping = asyncio.Event()

    def reload(self) -> None:
        try:
            settings = load_settings(self.config_path, self.overrides)
            fresh = server_settings(settings)
        except ConfigError as error:
            log.error("reload failed, keeping the running settings: %s", error)
            self.running.endpoint.counters["config-reload-failures"] += 1
            return
        fixed = [
            key
            for key in ("host", "port", "mutual", "cookie_secret", "receive_buffer")
            if getattr(settings.server, key) != getattr(self.settings.server, key)
        ]
        if fixed:
            log.warning("reload: [server] %s change only on restart", ", ".join(fixed))
        logs.configure(settings.logging.format, settings.logging.level)
        self.running.reload(replace(fresh, mutual=self.settings.server.mutual))
        if self.https is not None:
            self.https.reload_certificate(fresh.cert_pem, fresh.key_pem)
        self.running.endpoint.counters["config-reloads"] += 1
        self.settings = settings
        log.info("reloaded certificates, allow-list, limits and TURN secrets")

    async def drain_and_stop(self) -> None:
        self.running.drain()
        log.info("draining for %.1f s", self.settings.server.drain_seconds)
        await asyncio.sleep(self.settings.server.drain_seconds)
        if self.http is not None:
            await self.http.close()
        if self.https is not None:
            await self.https.close()
        await self.running.close()


async def serve(args: argparse.Namespace) -> int:
    overrides = flag_overrides(args)
    shared_secret = os.environ.get(COOKIE_SECRET_ENV)  # from serve --workers
    if shared_secret and args.cookie_secret is None:
        overrides.setdefault("server", {})["cookie_secret"] = shared_secret
    settings = load_settings(args.config, overrides)
    logs.configure(settings.logging.format, settings.logging.level)
    node_settings = server_settings(settings)
    if getattr(args, "reuse_port", False):
        node_settings = replace(node_settings, reuse_port=True)
    try:
        running = await start_server(node_settings)
    except OSError as error:
        where = _shown(settings.server.host, settings.server.port)
        raise ConfigError(f"cannot listen on {where}: {error.strerror}") from None
    node = Node(running, settings, args.config, overrides)
    # Signals are ours before anyone learns the address (a SIGTERM right
    # after the first line must drain, not kill).
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, node.reload)
    print(f"listening udp {_shown(*running.address)}", flush=True)
    if settings.http.listen is not None:
        try:
            await _start_http(node)
        except OSError as error:
            await running.close()
            raise ConfigError(
                f"cannot listen on {settings.http.listen}: {error.strerror}"
            ) from None
    if settings.https.listen is not None:
        try:
            await _start_https(node)
        except OSError as error:
            if node.http is not None:
                await node.http.close()
            await running.close()
            raise ConfigError(
                f"cannot listen on {settings.https.listen}: {error.strerror}"
            ) from None
    mode = "mutual" if settings.server.mutual else "open"
    log.info("serving; certificates in %s; identity mode %s", settings.server.certs, mode)
    try:
        await node.stopping.wait()
        await node.drain_and_stop()  # a second SIGTERM meanwhile changes nothing
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    log.info("stopped; drops %s", dict(running.endpoint.drops))
    return 0


async def _start_http(node: Node) -> None:
    from stunlike_tracker.config import parse_listen
    from stunlike_tracker.http import start_http

    listen = node.settings.http.listen
    assert listen is not None
    host, port = parse_listen(listen)
    worker = int(os.environ.get(WORKER_INDEX_ENV, "0"))
    if port != 0:
        port += worker  # serve --workers: each worker's counters on a port of its own
    node.http = await start_http(
        node.running, host, port, recent_introductions=node.settings.http.recent_introductions
    )
    print(f"listening http {_shown(*node.http.address)}", flush=True)


async def _start_https(node: Node) -> None:
    """PROTOCOL §14: the JSON binding and the /peer/ page, on TLS with the
    tracker's certificate."""
    from stunlike_tracker.config import parse_listen
    from stunlike_tracker.http.https_listener import start_https

    listen = node.settings.https.listen
    assert listen is not None
    host, port = parse_listen(listen)
    worker = int(os.environ.get(WORKER_INDEX_ENV, "0"))
    if port != 0:
        port += worker  # serve --workers: one listener per worker, as for --http
    node.https = await start_https(node.running, node.settings.https, host, port)
    print(f"listening https {_shown(*node.https.address)}", flush=True)
