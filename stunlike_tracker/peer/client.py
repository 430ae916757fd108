"""The asyncio tracker client: a thin shell around ``TrackerConnection``.

``TrackerConnection`` (peer/connection.py) holds every protocol rule of the
client (PROTOCOL §3, §4, §6, §8: retransmission, the response cache contract,
multi-part merging, indications and their ATTACH_ACKs, keep-alive,
re-CONNECT and failover between trackers). This module only does the I/O it
asks for, like aioquic's asyncio protocol around its ``QuicConnection``:
one UDP socket and one DTLS client session per association (opened when the
machine wants one, to the tracker it names), one timer, and futures for the
application's requests. The clock is injectable.

The DTLS handshake retransmits its flights (RFC 6347 §4.2.4: 1 s, doubling)
within ``handshake_timeout``; an association that cannot be opened in that
budget is retried (the next tracker first, when several are configured).
The socket is connected to the tracker, so an ICMP "port unreachable"
(a tracker node that is gone) ends the association at once and the machine
fails over instead of waiting for its retransmissions to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from stunlike_tracker.peer.connection import (
    AssociationWanted,
    ConnectionSettings,
    Event,
    IndicationReceived,
    Reconnected,
    RequestCompleted,
    RequestFailed,
    TrackerConnection,
)
from stunlike_tracker.ppsp.messages import (
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
    # Rounds of byte-identical tries on one association before a new one.
    rounds: int = 2
    # One DTLS handshake's budget: its flights retransmit at +1, +3, +7 s
    # (RFC 6347 §4.2.4) ... A handshake that has not completed by then is
    # started afresh (timers back at 1 s), ``association_attempts`` times per
    # tracker: under 30 % loss both ways that beats one long wait, whose
    # retransmissions are 8 and 16 s apart by then.
    handshake_timeout: float = 15.0
    association_attempts: int = 4
    # How long to wait for the missing parts of a multi-part response.
    part_grace: float = 0.3
    auto_reconnect: bool = True
    # A STAT_REPORT every KeepAlive seconds while in a swarm (PROTOCOL §3).
    keep_alives: bool = True
    # DTLS datagram size: the tracker's 1200-byte XML budget plus record overhead.
    mtu: int = 1240
    # Trackers to fail over to, in order, when ``tracker`` stops answering.
    backup_trackers: tuple[Address, ...] = ()
    # close(leave=True): how long DISCONNECT nil may take.
    leave_timeout: float = 1.0

    @property
    def trackers(self) -> tuple[Address, ...]:
        return (self.tracker, *self.backup_trackers)

    def connection_settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            rto=self.rto,
            tries=self.tries,
            rounds=self.rounds,
            part_grace=self.part_grace,
            auto_reconnect=self.auto_reconnect,
            keep_alives=self.keep_alives,
            association_attempts=self.association_attempts,
        )


class _Association(asyncio.DatagramProtocol):
    """One connected socket and its DTLS session; delivers decrypted messages."""

    def __init__(
        self,
        ctx: DtlsClientContext,
        tracker: Address,
        on_message: Callable[[bytes], None],
        on_lost: Callable[[_Association], None],
        clock: Callable[[], float],
    ) -> None:
        self.dtls = DtlsClientSession(ctx)
        self.tracker = tracker
        self.on_message = on_message
        self.on_lost = on_lost
        self.clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.dtls.start(self.clock())
        self._pump()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data or not 20 <= data[0] <= 63:
            return  # only DTLS reaches this socket's session (it is connected)
        self.dtls.feed(data, self.clock())
        self._pump()

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable on a connected socket: nobody listens there now.
        if isinstance(exc, ConnectionRefusedError):
            self._fail(f"tracker unreachable ({exc.strerror or exc})")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._fail("socket closed")

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            self.ready.set()
            self.on_lost(self)

    def send(self, data: bytes) -> None:
        if self.transport is None or self.dtls.closed:
            raise DtlsError("association closed")
        self.dtls.send(data)
        self._pump()

    def _pump(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for datagram in self.dtls.datagrams_to_send():
            self.transport.sendto(datagram)
        if self.dtls.handshake_complete and not self.ready.is_set():
            self.ready.set()
        for message in self.dtls.receive():
            self.on_message(message)
        if self.dtls.closed:
            self._fail(self.dtls.error or "closed by tracker")
            return
        deadline = self.dtls.get_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, deadline - self.clock())
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.dtls.handle_timer(self.clock())
        self._pump()

    def close(self) -> None:
        with contextlib.suppress(DtlsError):
            self.dtls.close()
        self._pump()
        self.failed = self.failed or "closed"
        if self.transport is not None:
            self.transport.close()


class TrackerClient:
    def __init__(
        self,
        settings: ClientSettings,
        peer_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.peer_id = peer_id
        self._clock = clock
        self._ctx = DtlsClientContext(
            ca_pem=settings.ca_pem,
            cert_pem=settings.cert_pem,
            key_pem=settings.key_pem,
            verify_hostname=settings.server_name,
            mtu=settings.mtu,
        )
        self._conn = TrackerConnection(
            peer_id, settings.connection_settings(), trackers=len(settings.trackers)
        )
        self._assoc: _Association | None = None
        self._opening: asyncio.Task[None] | None = None
        self._results: dict[int, asyncio.Future[RequestCompleted | RequestFailed]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.indications: asyncio.Queue[Indication] = asyncio.Queue(maxsize=256)
        # The tracker's address as resolved for the current association.
        self.tracker_address: Address | None = None
        # Called after every successful re-CONNECT (do not wait on the client
        # from it); the tracker dropped our unused ICE offers.
        self.on_reconnect: Callable[[Response], None] | None = None
        self._closed = False

    # ------------------------------------------------------------------
    # the registration, as the state machine keeps it
    # ------------------------------------------------------------------
    @property
    def reconnect_token(self) -> str | None:
        return self._conn.reconnect_token

    @property
    def keep_alive(self) -> int | None:
        return self._conn.keep_alive

    @property
    def reflexive(self) -> PeerAddress | None:
        return self._conn.reflexive

    @property
    def last_connect(self) -> Response | None:
        return self._conn.last_connect

    @property
    def reconnects(self) -> int:
        return self._conn.reconnects

    @property
    def joined(self) -> dict[str, tuple[PeerMode, tuple[Representation, ...]]]:
        return self._conn.joined

    @property
    def swarms(self) -> set[str]:
        return self._conn.swarms

    @property
    def local_address(self) -> Address | None:
        if self._assoc is None or self._assoc.transport is None:
            return None
        name = self._assoc.transport.get_extra_info("sockname")
        return (name[0], name[1])

    # ------------------------------------------------------------------
    # driving the state machine
    # ------------------------------------------------------------------
    def _flush(self) -> None:
        """Send what the machine produced, act on its events, re-arm the timer."""
        while True:
            for data in self._conn.datagrams_to_send():
                assoc = self._assoc
                if assoc is None or assoc.failed is not None:
                    continue  # the machine hears of it (association_lost) and recovers
                try:
                    assoc.send(data)
                except DtlsError:
                    continue
            events = self._conn.events()
            if not events:
                break
            for event in events:
                self._on_event(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._conn.next_timer()
        if deadline is not None:
            delay = max(0.0, deadline - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, (RequestCompleted, RequestFailed)):
            future = self._results.pop(event.handle, None)
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, IndicationReceived):
            with contextlib.suppress(asyncio.QueueFull):
                self.indications.put_nowait(event.indication)
        elif isinstance(event, Reconnected):
            if self.on_reconnect is not None:
                self.on_reconnect(event.response)
        elif isinstance(event, AssociationWanted):
            self._drop_association()
            if self._opening is not None:
                self._opening.cancel()
            self._opening = asyncio.ensure_future(self._open_for_machine(event.tracker))

    def _on_timer(self) -> None:
        self._timer = None
        self._conn.on_timer(self._clock())
        self._flush()

    def _on_message(self, data: bytes) -> None:
        self._conn.receive(data, self._clock())
        self._flush()

    def _on_lost(self, assoc: _Association) -> None:
        if assoc is self._assoc:
            self._conn.association_lost(assoc.failed or "closed", self._clock())
            self._flush()

    async def _open_for_machine(self, index: int) -> None:
        trackers = self.settings.trackers
        try:
            assoc = await self._open(trackers[index % len(trackers)])
        except TrackerUnreachable as error:
            self._conn.association_failed(str(error), self._clock())
        else:
            self._assoc = assoc
            self._conn.association_ready(self._clock())
        finally:
            if self._opening is asyncio.current_task():
                self._opening = None
        self._flush()

    async def _result(self, handle: int) -> Response:
        future: asyncio.Future[RequestCompleted | RequestFailed]
        future = asyncio.get_running_loop().create_future()
        self._results[handle] = future
        self._flush()
        event = await future
        if isinstance(event, RequestCompleted):
            return event.response
        if event.response is None:
            raise TrackerUnreachable(event.message)
        raise TrackerError(event.message, event.response)

    # ------------------------------------------------------------------
    # association
    # ------------------------------------------------------------------
    async def _open(self, target: Address) -> _Association:
        """A new socket and DTLS association toward ``target``.

        The tracker's name is resolved here, once per association, and the
        socket is connected to the (ip, port) it resolved to: datagrams go
        to, and are accepted only from, that address. A specific
        ``local_host`` picks the address family; the wildcard default takes
        the resolver's first answer and binds to match it.
        """
        loop = asyncio.get_running_loop()
        host, port = target
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
        assoc = _Association(self._ctx, tracker, self._on_message, self._on_lost, self._clock)
        try:
            await loop.create_datagram_endpoint(
                lambda: assoc, local_addr=(local_host, 0), remote_addr=tracker, family=family
            )
        except OSError as error:
            raise TrackerUnreachable(f"cannot open a socket for {host}:{port}: {error}") from None
        try:
            await asyncio.wait_for(assoc.ready.wait(), self.settings.handshake_timeout)
        except TimeoutError:
            assoc.close()
            raise TrackerUnreachable(f"DTLS handshake with {host}:{port} timed out") from None
        except BaseException:  # cancelled: no socket may outlive us
            assoc.close()
            raise
        if assoc.failed is not None:
            assoc.close()
            raise TrackerUnreachable(f"DTLS handshake with {host}:{port} failed: {assoc.failed}")
        self.tracker_address = tracker
        return assoc

    def _drop_association(self) -> None:
        if self._assoc is not None:
            self._assoc.close()
            self._assoc = None

    # ------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------
    async def request(self, request: Request, *, reconnect: bool | None = None) -> Response:
        """Send ``request`` (with a fresh TransactionID); if the association
        or the registration was lost, re-CONNECT once (the next tracker when
        nobody answered) and retry. Recovery needs a CONNECT that succeeded
        before: its token or certificate proves the Peer-ID again."""
        handle = self._conn.submit(request, self._clock(), reconnect=reconnect)
        return await self._result(handle)

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
        """Open an association and CONNECT (PROTOCOL §3); the next tracker is
        tried when one does not answer."""
        if self._closed:
            raise TrackerUnreachable("the client is closed")
        return await self._result(self._conn.submit_connect(addresses, self._clock()))

    async def reconnect(self) -> Response:
        """re-CONNECT from a new socket (new DTLS session, new NAT mapping)."""
        return await self._result(self._conn.submit_reconnect(self._clock()))

    async def join(
        self,
        swarm_id: str,
        mode: PeerMode = PeerMode.LEECH,
        *,
        peer_num: PeerNum | None = None,
        content: tuple[Representation, ...] = (),
        ice_offer: IceOffer | None = None,
    ) -> Response:
        return await self._checked(
            Request(
                Method.JOIN,
                self.peer_id,
                "",
                swarm_id=swarm_id,
                peer_mode=mode,
                peer_num=peer_num,
                content=content,
                ice_offer=ice_offer,
            )
        )

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
                "",
                swarm_id=swarm_id,
                peer_num=peer_num,
                content=content,
            )
        )

    async def stat_report(
        self, stats: tuple[Stat, ...] | None = None, *, ice_offer: IceOffer | None = None
    ) -> Response:
        return await self._checked(
            Request(Method.STAT_REPORT, self.peer_id, "", stats=stats, ice_offer=ice_offer)
        )

    async def disconnect(self, swarm_id: str, *, reconnect: bool | None = None) -> Response:
        return await self._checked(
            Request(Method.DISCONNECT, self.peer_id, "", swarm_id=swarm_id),
            reconnect=reconnect,
        )

    async def attach(
        self, swarm_id: str, target: str, offer: IceOffer, offer_id: str | None = None
    ) -> Response:
        return await self._checked(
            Request(
                Method.ATTACH,
                self.peer_id,
                "",
                swarm_id=swarm_id,
                target_peer_id=target,
                offer_id=offer_id,
                ice_offer=offer,
            )
        )

    async def close(self, *, leave: bool = False) -> None:
        """Stop; with ``leave`` send DISCONNECT nil first (best effort, within
        ``leave_timeout``, and only over a live association: never
        re-CONNECT just to leave)."""
        already_closed, self._closed = self._closed, True
        live = self._assoc is not None and self._assoc.failed is None and self._conn.associated
        if leave and not already_closed and live and self._conn.last_connect is not None:
            with contextlib.suppress(TrackerError, TimeoutError):
                await asyncio.wait_for(
                    self.disconnect(SWARM_NIL, reconnect=False), self.settings.leave_timeout
                )
        self._conn.close(self._clock())
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
            self._opening = None
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_association()


def _family_of(host: str) -> int:
    """The address family of an IP literal; AF_UNSPEC for a name."""
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return socket.AF_UNSPEC
    return socket.AF_INET6 if version == 6 else socket.AF_INET
