"""An asyncio tracker client (SPEC §3, §4, §6, §8).

One UDP socket, one DTLS association, one request outstanding at a time.
Requests are resent byte-identical (same PPSP document) with RTO 0.5 s
doubling, 5 tries (SPEC §4); multi-part responses are merged; a keep-alive
STAT_REPORT goes out at the period the tracker gave.

ATTACH indications are acknowledged at once, beside the outstanding request
(an ATTACH of ours may be waiting for the other side's acknowledgement while
the other side waits for ours), each ATTACH_ACK with its own byte-identical
retransmission. The tracker resends an indication until it is acknowledged,
so a repeated indication is acknowledged again but queued for the
application only once.

Once connected, the client recovers by itself: when the association or the
NAT mapping is lost (a request times out, the session fails, or the tracker
says the session no longer owns the Peer-ID) it re-CONNECTs from a new
socket; when the tracker has forgotten the registration (``403 Not
Connected``: a timer expired) it re-CONNECTs over the same association. The
ReconnectToken (open mode) or the certificate (mutual mode) proves the
Peer-ID, the tracker restores the swarms (its tombstone survives an expiry
by one track timeout), and the request is retried once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, cast

from stunlike_tracker.ppsp import (
    PpspError,
    encode_request,
    merge_response_parts,
    parse_message_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    SWARM_ALL,
    SWARM_NIL,
    IceOffer,
    Indication,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    Response,
    Stat,
)
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession, DtlsError

Address = tuple[str, int]

# How many indication TransactionIDs to remember, to queue each indication once.
SEEN_INDICATIONS = 1024


class TrackerError(Exception):
    """A request failed: the tracker answered an error, or nobody answered."""

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None


class TrackerUnreachable(TrackerError):
    pass


@dataclass(frozen=True)
class ClientSettings:
    tracker: Address
    # CA that issued the tracker's certificate (None: system trust store).
    ca_pem: bytes | None = None
    server_name: str | None = None
    # Mutual mode: our certificate naming the Peer-ID.
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    local_host: str = "0.0.0.0"  # noqa: S104 - the peer's own socket
    rto: float = 0.5
    tries: int = 5
    handshake_timeout: float = 10.0
    # How long to wait for the missing parts of a multi-part response.
    part_grace: float = 0.3
    auto_reconnect: bool = True
    # DTLS datagram size: the tracker's 1200-byte XML budget plus record overhead.
    mtu: int = 1240


@dataclass
class _Pending:
    transaction_id: str
    parts: dict[int, Response] = field(default_factory=dict)
    count: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    first: asyncio.Event = field(default_factory=asyncio.Event)


class _Association(asyncio.DatagramProtocol):
    """One socket and its DTLS session; delivers decrypted messages."""

    def __init__(
        self,
        ctx: DtlsClientContext,
        tracker: Address,
        on_message: Callable[[bytes], None],
    ) -> None:
        self.dtls = DtlsClientSession(ctx)
        self.tracker = tracker
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.dtls.start(time.monotonic())
        self._pump()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if (addr[0], addr[1]) != self.tracker or not data or not 20 <= data[0] <= 63:
            return  # only DTLS from the tracker reaches this socket's session
        self.dtls.feed(data, time.monotonic())
        self._pump()

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP: the retransmission logic copes

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.failed = self.failed or "socket closed"
        self.ready.set()

    def send(self, data: bytes) -> None:
        if self.transport is None or self.dtls.closed:
            raise DtlsError("association closed")
        self.dtls.send(data)
        self._pump()

    def _pump(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for datagram in self.dtls.datagrams_to_send():
            self.transport.sendto(datagram, self.tracker)
        if self.dtls.handshake_complete and not self.ready.is_set():
            self.ready.set()
        for message in self.dtls.receive():
            self.on_message(message)
        if self.dtls.closed:
            self.failed = self.dtls.error or "closed by tracker"
            self.ready.set()
            return
        deadline = self.dtls.get_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, deadline - time.monotonic())
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.dtls.handle_timer(time.monotonic())
        self._pump()

    def close(self) -> None:
        with contextlib.suppress(DtlsError):
            self.dtls.close()
        self._pump()
        if self.transport is not None:
            self.transport.close()


def new_transaction_id() -> str:
    return secrets.token_hex(8)


class TrackerClient:
    def __init__(self, settings: ClientSettings, peer_id: str) -> None:
        self.settings = settings
        self.peer_id = peer_id
        self._ctx = DtlsClientContext(
            ca_pem=settings.ca_pem,
            cert_pem=settings.cert_pem,
            key_pem=settings.key_pem,
            verify_hostname=settings.server_name,
            mtu=settings.mtu,
        )
        self._assoc: _Association | None = None
        # Held by every request but ATTACH_ACK: one request outstanding (SPEC §4).
        self._lock = asyncio.Lock()
        # By TransactionID: the outstanding request and acknowledgements in flight.
        self._pending: dict[str, _Pending] = {}
        self._addresses: tuple[PeerAddress, ...] = ()
        self.indications: asyncio.Queue[Indication] = asyncio.Queue(maxsize=256)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._acking: set[str] = set()
        self.reconnect_token: str | None = None
        self.keep_alive: int | None = None
        self.reflexive: PeerAddress | None = None
        # The tracker's address as resolved for the current association.
        self.tracker_address: Address | None = None
        # Swarms we joined, with mode and start point, to re-join after a
        # re-CONNECT that did not restore them (a tracker that lost its state).
        self.joined: dict[str, tuple[PeerMode, tuple[Representation, ...]]] = {}
        self.last_connect: Response | None = None
        self.reconnects = 0
        # Called (under the request lock: do not send from it) after every
        # successful re-CONNECT; the tracker dropped our unused ICE offers.
        self.on_reconnect: Callable[[Response], None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------
    # association
    # ------------------------------------------------------------------
    @property
    def local_address(self) -> Address | None:
        if self._assoc is None or self._assoc.transport is None:
            return None
        name = self._assoc.transport.get_extra_info("sockname")
        return (name[0], name[1])

    async def _open(self) -> None:
        """A new socket and DTLS association toward the tracker.

        The tracker's name is resolved here, once per association, so that
        datagrams go to, and are accepted only from, one (ip, port). A
        specific ``local_host`` picks the address family; the wildcard
        default takes the resolver's first answer and binds to match it.
        """
        loop = asyncio.get_running_loop()
        host, port = self.settings.tracker
        local_host = self.settings.local_host
        wildcard = local_host in ("0.0.0.0", "::", "")  # noqa: S104
        try:
            infos = await loop.getaddrinfo(
                host,
                port,
                family=socket.AF_UNSPEC if wildcard else _family_of(local_host),
                type=socket.SOCK_DGRAM,
            )
        except OSError as error:
            raise TrackerUnreachable(f"cannot resolve {host}: {error}") from None
        if not infos:
            raise TrackerUnreachable(f"cannot resolve {host}")
        family, _, _, _, sockaddr = infos[0]
        tracker = (str(sockaddr[0]), int(sockaddr[1]))
        if wildcard:
            local_host = "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104
        assoc = _Association(self._ctx, tracker, self._on_message)
        try:
            await loop.create_datagram_endpoint(
                lambda: assoc, local_addr=(local_host, 0), family=family
            )
        except OSError as error:
            raise TrackerUnreachable(f"cannot open a socket for {host}:{port}: {error}") from None
        try:
            await asyncio.wait_for(assoc.ready.wait(), self.settings.handshake_timeout)
        except TimeoutError:
            assoc.close()
            raise TrackerUnreachable("DTLS handshake timed out") from None
        except BaseException:  # cancelled: no socket may outlive us
            assoc.close()
            raise
        if assoc.failed is not None:
            assoc.close()
            raise TrackerUnreachable(f"DTLS handshake failed: {assoc.failed}")
        self._assoc = assoc
        self.tracker_address = tracker

    def _drop_association(self) -> None:
        if self._assoc is not None:
            self._assoc.close()
            self._assoc = None

    @property
    def _live(self) -> bool:
        return self._assoc is not None and self._assoc.failed is None

    # ------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------
    def _on_message(self, data: bytes) -> None:
        try:
            message = parse_message_untrusted(data)
        except PpspError:
            return
        if isinstance(message, Indication):
            self._on_indication(message)
            return
        if not isinstance(message, Response):
            return
        pending = self._pending.get(message.transaction_id)
        if pending is None:
            return  # a late answer to a request we gave up on
        index = message.part.index if message.part is not None else 0
        pending.count = message.part.count if message.part is not None else 1
        pending.parts[index] = message
        pending.first.set()
        if len(pending.parts) >= pending.count:
            pending.done.set()

    def _on_indication(self, indication: Indication) -> None:
        """Queue an indication the first time it arrives; acknowledge every
        copy that arrives while no acknowledgement of it is in flight."""
        key = indication.transaction_id
        if key in self._seen:
            self._seen.move_to_end(key)
        else:
            with contextlib.suppress(asyncio.QueueFull):
                self.indications.put_nowait(indication)
            self._seen[key] = None
            if len(self._seen) > SEEN_INDICATIONS:
                self._seen.popitem(last=False)
        if key not in self._acking:
            self._acking.add(key)
            self._spawn(self._acknowledge(key))

    async def _acknowledge(self, indication_id: str) -> None:
        """ATTACH_ACK outside the request lock, retransmitted on its own."""
        ack = Request(
            Method.ATTACH_ACK, self.peer_id, new_transaction_id(), indication_id=indication_id
        )
        try:
            with contextlib.suppress(TrackerError):
                await self._exchange(ack)
        finally:
            self._acking.discard(indication_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _exchange(self, request: Request) -> Response:
        """Send one request and wait for its (merged) response (SPEC §4)."""
        data = encode_request(request)
        pending = _Pending(request.transaction_id)
        self._pending[request.transaction_id] = pending
        rto = self.settings.rto
        try:
            for _ in range(self.settings.tries):
                assoc = self._assoc
                if assoc is None or assoc.failed is not None:
                    raise TrackerUnreachable("association lost")
                try:
                    assoc.send(data)  # byte-identical on every try
                except DtlsError as error:
                    raise TrackerUnreachable(str(error)) from None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending.first.wait(), rto)
                    break
                rto *= 2
            else:
                raise TrackerUnreachable(
                    f"no answer to {request.method} after {self.settings.tries} tries"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.done.wait(), self.settings.part_grace)
            parts = [pending.parts[i] for i in sorted(pending.parts)]
            if len(parts) == 1:
                return parts[0]
            try:
                return merge_response_parts(parts)
            except PpspError:
                return parts[0]  # parts that disagree: any part alone is usable (SPEC §4)
        finally:
            self._pending.pop(request.transaction_id, None)

    async def request(self, request: Request, *, reconnect: bool | None = None) -> Response:
        """Send ``request``; if the association or the registration was lost,
        re-CONNECT once and retry with a fresh TransactionID.

        Recovery needs a CONNECT that succeeded before (``last_connect``):
        its token or certificate proves the Peer-ID again.
        """
        allow = self.settings.auto_reconnect if reconnect is None else reconnect
        async with self._lock:
            # A closed client never registers again behind its owner's back.
            allow = allow and request.method is not Method.CONNECT and not self._closed
            allow = allow and self.last_connect is not None
            try:
                response = await self._exchange(request)
            except TrackerUnreachable:
                if not allow:
                    raise
                await self._reconnect_locked()
                return await self._exchange(_fresh(request))
            if not allow:
                return response
            if response.status == 401 and response.reason == "PeerID Not Owned":
                await self._reconnect_locked()  # our association was replaced
                response = await self._exchange(_fresh(request))
            elif response.status == 403 and response.reason == "Not Connected":
                await self._reconnect_locked(new_socket=False)  # our registration expired
                response = await self._exchange(_fresh(request))
        return response

    async def _checked(self, request: Request, *, reconnect: bool | None = None) -> Response:
        response = await self.request(request, reconnect=reconnect)
        if response.status != 200:
            raise TrackerError(
                f"{request.method} failed: {response.status} {response.status_text}"
                f" ({response.reason})",
                response,
            )
        return response

    # ------------------------------------------------------------------
    # the protocol
    # ------------------------------------------------------------------
    async def connect(self, addresses: tuple[PeerAddress, ...] = ()) -> Response:
        """Open the association and CONNECT (SPEC §3)."""
        async with self._lock:
            self._addresses = addresses
            if self._assoc is None:
                await self._open()
            response = await self._connect_locked()
        self._start_keepalive()
        return response

    async def _connect_locked(self) -> Response:
        request = Request(
            Method.CONNECT,
            self.peer_id,
            new_transaction_id(),
            addresses=self._addresses,
            reconnect_token=self.reconnect_token,
        )
        response = await self._exchange(request)
        if response.status != 200:
            raise TrackerError(
                f"CONNECT failed: {response.status} {response.status_text} ({response.reason})",
                response,
            )
        self.last_connect = response
        if response.reconnect_token is not None:
            self.reconnect_token = response.reconnect_token
        self.keep_alive = response.keep_alive
        for info in response.peers:
            for address in info.addresses:
                self.reflexive = address
        for swarm_id in [s for s in self.joined if s not in response.swarm_ids]:
            mode, content = self.joined[swarm_id]
            join = Request(
                Method.JOIN,
                self.peer_id,
                new_transaction_id(),
                swarm_id=swarm_id,
                peer_mode=mode,
                peer_num=PeerNum(0),
                content=content,
            )
            if (await self._exchange(join)).status != 200:
                del self.joined[swarm_id]
        return response

    @property
    def swarms(self) -> set[str]:
        return set(self.joined)

    async def reconnect(self) -> Response:
        """re-CONNECT from a new socket (new DTLS session, new NAT mapping)."""
        async with self._lock:
            return await self._reconnect_locked()

    async def _reconnect_locked(self, *, new_socket: bool = True) -> Response:
        if self._closed:
            raise TrackerUnreachable("the client is closed")
        if new_socket or not self._live:
            self._drop_association()
            await self._open()
        self.reconnects += 1
        response = await self._connect_locked()
        if self.on_reconnect is not None:
            self.on_reconnect(response)
        return response

    async def join(
        self,
        swarm_id: str,
        mode: PeerMode = PeerMode.LEECH,
        *,
        peer_num: PeerNum | None = None,
        content: tuple[Representation, ...] = (),
        ice_offer: IceOffer | None = None,
    ) -> Response:
        response = await self._checked(
            Request(
                Method.JOIN,
                self.peer_id,
                new_transaction_id(),
                swarm_id=swarm_id,
                peer_mode=mode,
                peer_num=peer_num,
                content=content,
                ice_offer=ice_offer,
            )
        )
        self.joined[swarm_id] = (mode, content)
        return response

    async def find(
        self,
        swarm_id: str,
        *,
        peer_num: PeerNum | None = None,
        content: tuple[Representation, ...] = (),
    ) -> Response:
        return await self._checked(
            Request(
                Method.FIND,
                self.peer_id,
                new_transaction_id(),
                swarm_id=swarm_id,
                peer_num=peer_num,
                content=content,
            )
        )

    async def stat_report(
        self, stats: tuple[Stat, ...] | None = None, *, ice_offer: IceOffer | None = None
    ) -> Response:
        return await self._checked(
            Request(
                Method.STAT_REPORT,
                self.peer_id,
                new_transaction_id(),
                stats=stats,
                ice_offer=ice_offer,
            )
        )

    async def disconnect(self, swarm_id: str, *, reconnect: bool | None = None) -> Response:
        response = await self._checked(
            Request(Method.DISCONNECT, self.peer_id, new_transaction_id(), swarm_id=swarm_id),
            reconnect=reconnect,
        )
        if swarm_id in (SWARM_ALL, SWARM_NIL):
            self.joined.clear()
        else:
            self.joined.pop(swarm_id, None)
        if swarm_id == SWARM_NIL:
            # We left the system: nothing to recover until connect() again.
            self.reconnect_token = None
            self.last_connect = None
        return response

    async def attach(
        self, swarm_id: str, target: str, offer: IceOffer, offer_id: str | None = None
    ) -> Response:
        return await self._checked(
            Request(
                Method.ATTACH,
                self.peer_id,
                new_transaction_id(),
                swarm_id=swarm_id,
                target_peer_id=target,
                offer_id=offer_id,
                ice_offer=offer,
            )
        )

    # ------------------------------------------------------------------
    # keep-alive
    # ------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        if self._keepalive_task is None:
            self._keepalive_task = asyncio.ensure_future(self._keepalive())

    async def _keepalive(self) -> None:
        """A STAT_REPORT at the tracker's keep-alive period while in a swarm.

        In REGISTERED (no swarm) nothing is sent: STAT_REPORT is refused there
        (draft-07 §8.5) and nothing else renews the init timer without side
        effects. The registration may therefore expire; the next request then
        gets ``403 Not Connected`` and ``request()`` re-CONNECTs (with the
        token, inside the tombstone window) and retries it.
        """
        while not self._closed:
            await asyncio.sleep(self.keep_alive or 25)
            if not self.swarms:
                continue
            with contextlib.suppress(TrackerError):
                await self.stat_report()

    async def close(self, *, leave: bool = False) -> None:
        """Stop; with ``leave`` send DISCONNECT nil first (best effort, and
        only over a live association: never re-CONNECT just to leave)."""
        already_closed, self._closed = self._closed, True
        if leave and not already_closed and self._live and self.last_connect is not None:
            with contextlib.suppress(TrackerError):
                await self.disconnect(SWARM_NIL, reconnect=False)
        tasks = [t for t in (self._keepalive_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_association()


def _family_of(host: str) -> int:
    """The address family of an IP literal; AF_UNSPEC for a name."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _fresh(request: Request) -> Request:
    """The same request with a new TransactionID, for a new session. A
    STAT_REPORT drops its offer: the tracker cleared our offers on the
    re-CONNECT, that one may already have been handed out, and the peer
    publishes a fresh pool after a re-CONNECT anyway."""
    if request.method is Method.STAT_REPORT:
        return replace(request, transaction_id=new_transaction_id(), ice_offer=None)
    return replace(request, transaction_id=new_transaction_id())
