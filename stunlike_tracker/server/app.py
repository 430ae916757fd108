"""Start and stop a tracker node: socket, DTLS context, core, store."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from stunlike_tracker.core.addresses import transport_address_text
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.server.budgets import BudgetLimits
from stunlike_tracker.server.clock import Clock
from stunlike_tracker.server.endpoint import EndpointLimits, TrackerEndpoint
from stunlike_tracker.server.shared import NodeBus, SharedStoreDriver, idle_overlay, pubsub_client
from stunlike_tracker.store.contract import TrackerStore
from stunlike_tracker.store.memory import MemoryStore
from stunlike_tracker.store.redis import RedisStore, StoreUnavailable, connect
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import DtlsServerContext

# ``serve`` binds dual-stack by default, IPv4 only where there is no IPv6.
DUAL_STACK_HOST = "::"
IPV4_ANY = "0.0.0.0"  # noqa: S104 - a tracker serves the public network


@dataclass(frozen=True)
class ServerSettings:
    cert_pem: bytes
    key_pem: bytes
    host: str = DUAL_STACK_HOST
    port: int = 3478
    # CA that issues peer certificates; with ``mutual`` a client certificate
    # naming the Peer-ID is required (PROTOCOL §8).
    peer_ca_pem: bytes | None = None
    mutual: bool = False
    # Nodes of one logical tracker share this secret (PROTOCOL §9); None: random.
    cookie_secret: bytes | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    limits: EndpointLimits = field(default_factory=EndpointLimits)
    budgets: BudgetLimits = field(default_factory=BudgetLimits)
    receive_buffer: int = 4 * 1024 * 1024
    # "memory" (embedded) or a shared store URL: redis://HOST:PORT/DB,
    # rediss://..., redis+cluster://HOST:PORT (PROTOCOL §9).
    store: str = "memory"
    # Several processes on one port (serve --workers).
    reuse_port: bool = False


# AEAD record overhead: 13-byte header + 8-byte explicit nonce + 16-byte tag,
# rounded up, so that a response of ``datagram_budget`` bytes of XML still
# travels in one datagram (PROTOCOL §4: never rely on IP fragmentation).
DTLS_RECORD_OVERHEAD = 40


def dtls_mtu(xml_budget: int) -> int:
    return xml_budget + DTLS_RECORD_OVERHEAD


class RunningServer:
    def __init__(
        self,
        endpoint: TrackerEndpoint,
        transport: asyncio.DatagramTransport,
        settings: ServerSettings | None = None,
        cookie_keys: CookieKeys | None = None,
        shared: SharedStoreDriver | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.settings = settings
        self._cookie_keys = cookie_keys
        self.shared = shared
        sockname = transport.get_extra_info("sockname")
        self.address: tuple[str, int] = (sockname[0], sockname[1])

    @property
    def tracker(self) -> Tracker:
        return self.endpoint.tracker

    def reload(self, settings: ServerSettings) -> None:
        """Certificates, allow-lists, limits and TURN secrets from ``settings``;
        established associations keep their DTLS state and stay up (the new
        certificate serves new handshakes). The address, identity mode and
        cookie keys stay as started."""
        assert self.settings is not None and self._cookie_keys is not None
        config = _identity(settings.tracker, self.settings.mutual)
        # The node id names this node's sessions in a shared store: it stays.
        config = replace(config, node_id=self.endpoint.tracker.config.node_id)
        config = _with_own_address(config, self.address)
        self.endpoint.dtls = _dtls_context(
            settings, config, self._cookie_keys, mutual=self.settings.mutual
        )
        self.endpoint.reconfigure(config, settings.limits)
        self.endpoint.budgets.limits = settings.budgets  # counts and bans carry over
        self.settings = replace(settings, mutual=self.settings.mutual)

    def drain(self) -> None:
        """Refuse new handshakes and answer every pending ATTACH (503);
        requests on established associations are still answered."""
        self.endpoint.drain()

    async def close(self) -> None:
        self.transport.close()
        await self.endpoint.closed.wait()
        if self.shared is not None:
            if self.shared.bus is not None:
                await self.shared.bus.close()
            await self.shared.store.close()


def _with_own_address(config: TrackerConfig, bound: tuple[str, int]) -> TrackerConfig:
    """PROTOCOL §8: no peer may list the tracker's own address as its own."""
    if ipaddress.ip_address(bound[0]).is_unspecified:
        return config
    own = transport_address_text(*bound)
    return replace(config, tracker_addresses=config.tracker_addresses | {own})


def _identity(config: TrackerConfig, mutual: bool) -> TrackerConfig:
    mode = "mutual" if mutual else "open"
    return config if config.identity_mode == mode else replace(config, identity_mode=mode)


def _dtls_context(
    settings: ServerSettings, config: TrackerConfig, keys: CookieKeys, *, mutual: bool
) -> DtlsServerContext:
    return DtlsServerContext(
        settings.cert_pem,
        settings.key_pem,
        ca_pem=settings.peer_ca_pem if mutual else None,
        require_client_cert=mutual,
        cookie_keys=keys,
        mtu=dtls_mtu(config.datagram_budget),
    )


def udp_socket(
    host: str,
    port: int,
    receive_buffer: int,
    reuse_port: bool = False,
    bind: Callable[[str, int, int, bool], socket.socket] | None = None,
) -> socket.socket:
    """The one UDP socket. ``::`` is dual-stack (IPV6_V6ONLY off: IPv4 peers
    arrive as ``::ffff:a.b.c.d``); on a machine without IPv6 it falls back
    to ``0.0.0.0`` (issue 15). ``bind`` opens one socket (tests pass theirs)."""
    bind = bind or _bind
    try:
        return bind(host, port, receive_buffer, reuse_port)
    except OSError as error:
        no_ipv6 = error.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL)
        if host != DUAL_STACK_HOST or not no_ipv6:
            raise
    return bind(IPV4_ANY, port, receive_buffer, reuse_port)


def _bind(host: str, port: int, receive_buffer: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def start_server(
    settings: ServerSettings, store: TrackerStore | None = None, *, clock: Clock | None = None
) -> RunningServer:
    """Bind the port (``port=0`` picks a free one) and start serving; ``clock``
    defaults to the real one."""
    if settings.cookie_secret is not None:
        keys = CookieKeys.from_shared_key(settings.cookie_secret)
    else:
        keys = CookieKeys.generate()
    config = _identity(settings.tracker, settings.mutual)
    dtls = _dtls_context(settings, config, keys, mutual=settings.mutual)
    shared_store: RedisStore | None = None
    if store is None and settings.store != "memory":
        if config.node_id == "local":
            # Session ids must be unique across the nodes of one tracker.
            node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
            config = replace(config, node_id=node)
        shared_store = RedisStore(
            connect(settings.store), offer_ttl=config.offer_ttl, tombstone_ttl=config.track_timeout
        )
    sock = udp_socket(settings.host, settings.port, settings.receive_buffer, settings.reuse_port)
    bound_ip, bound_port = sock.getsockname()[:2]
    config = _with_own_address(config, (bound_ip, bound_port))
    if store is None:
        store = MemoryStore(max_cache_bytes=config.response_cache_bytes)
    tracker = Tracker(store, config)
    endpoint = TrackerEndpoint(
        tracker,
        dtls,
        limits=settings.limits,
        mutual=settings.mutual,
        budgets=settings.budgets,
        clock=clock,
    )
    driver: SharedStoreDriver | None = None
    if shared_store is not None:
        tracker.store = idle_overlay(0.0)
        bus = NodeBus(pubsub_client(settings.store), config.node_id)
        driver = SharedStoreDriver(tracker, shared_store, endpoint._apply, endpoint.wall, bus)
        # Exported with the endpoint's events (store-unavailable-503, ...).
        driver.counters = bus.counters = endpoint.counters
        endpoint.shared = driver
        with contextlib.suppress(StoreUnavailable, OSError):
            await shared_store.load_scripts()  # else on first use, once Redis is up
        await bus.start()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
    return RunningServer(endpoint, transport, settings, keys, driver)
