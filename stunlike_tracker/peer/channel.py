"""A DTLS-secured peer-to-peer channel over the ICE-selected pair (PROTOCOL §6).

Built on aiortc's ``RTCPeerConnection`` and one data channel, so an
``IceOffer`` is exactly a WebRTC data-channel offer (see
:mod:`stunlike_tracker.ice.sdp`). Roles follow WebRTC, as PROTOCOL §6 asks:

* the peer whose offer is answered calls :func:`create_offer`, publishes
  ``PendingOffer.offer`` and later :meth:`PendingOffer.accept_answer`; it is
  the ICE *controlling* agent and the DTLS server (``setup:actpass``);
* the peer that takes an offer calls :func:`answer_offer`, sends the answer
  back (ATTACH) and awaits the returned :class:`PendingAnswer`; it is ICE
  *controlled* and the DTLS client (``setup:active``).

The remote DTLS certificate must match the fingerprint in the remote offer
(aiortc checks it right after the handshake and fails the transport
otherwise), so the offer the tracker relayed authenticates the other end.

Every wait is bounded: gathering (``gather_timeout``, default 10 s) and
connecting (``connect_timeout``, default 15 s, counted from the
``accept_answer`` call, or from ``answer_offer`` returning, until the data
channel is open). aiortc's ``connectionState == "failed"`` (ICE or DTLS
failure, fingerprint mismatch) ends the wait at once with
:class:`ChannelFailed`; otherwise :class:`ConnectTimeout`. A remote
offer/answer that cannot be used raises :class:`InvalidOffer` before any
socket is touched. Every error is a :class:`ChannelError`.

Relay-only: ``IceServers(relay_only=True)`` sets
``RTCConfiguration.iceTransportPolicy = RTCIceTransportPolicy.RELAY``,
which aiortc 1.16 maps to aioice 0.13 ``TransportPolicy.RELAY``: no host
sockets are opened, no STUN query is made, only a TURN allocation is
gathered (its related address hidden as 0.0.0.0:9). As a second fence the
published offer keeps only RELAYED candidates.

Framing on the data channel (our application protocol, one byte of type
then payload; every data-channel message is at most 16 KiB)::

    0x00 DATA_MORE  payload      a piece of a message, more follows
    0x01 DATA_END   payload      the last piece (an empty message is one
                                 DATA_END with no payload)
    0x02 CREDIT     uint32 (BE)  the receiver consumed this many bytes
    0x03 CLOSE      (empty)      the sender is done; answer with CLOSE_ACK
    0x04 CLOSE_ACK  (empty)      every frame before the CLOSE arrived

Flow control is credit based, so neither side's memory grows without
bound: a sender may have at most ``RECV_WINDOW`` bytes (counted as whole
data-channel messages, header included) not yet consumed by the
receiver's ``recv()``; the receiver returns credit as it consumes. A peer
that overruns the window or sends an unknown frame fails the channel. On
top, ``send()`` waits while aiortc's ``bufferedAmount`` is above
``SEND_HIGH_WATER`` (and wakes on aiortc's ``bufferedamountlow`` event).
Like a socket, two peers that both send more than the window without
reading concurrently wait for each other.

Closing with ``linger`` sends CLOSE and waits (bounded) for CLOSE_ACK: the
channel is ordered and reliable, so the acknowledgement proves that
everything sent before reached the other side, with nothing but aiortc's
public data-channel API (it has no "all acknowledged" event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcicetransport import parse_stun_turn_uri

from stunlike_tracker.ice.candidates import MAX_CANDIDATES_PER_OFFER, sanitize_offer
from stunlike_tracker.ice.sdp import (
    SdpError,
    canonical_fingerprint,
    offer_from_sdp_untrusted,
    sdp_from_offer,
)
from stunlike_tracker.peer import ice_agent
from stunlike_tracker.ppsp.messages import AddressType, IceOffer, TurnServer

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_GATHER_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_FRAME",
    "ChannelClosed",
    "ChannelError",
    "ChannelFailed",
    "ConnectTimeout",
    "IceServers",
    "InvalidOffer",
    "P2PChannel",
    "PendingAnswer",
    "PendingOffer",
    "answer_offer",
    "create_offer",
]

logger = logging.getLogger(__name__)

DEFAULT_GATHER_TIMEOUT: Final = 10.0  # aioice itself gives STUN/TURN 5 s
DEFAULT_CONNECT_TIMEOUT: Final = 15.0
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024
DEFAULT_LINGER: Final = 2.0

MAX_FRAME: Final = 16 * 1024  # bytes per data-channel message, header included
_MAX_PAYLOAD: Final = MAX_FRAME - 1
RECV_WINDOW: Final = 4 * 1024 * 1024
_GRANT_AT: Final = RECV_WINDOW // 4
SEND_HIGH_WATER: Final = 1024 * 1024
SEND_LOW_WATER: Final = 256 * 1024

_DATA_MORE: Final = 0
_DATA_END: Final = 1
_CREDIT: Final = 2
_CLOSE: Final = 3
_CLOSE_ACK: Final = 4

_LABEL: Final = "stunlike-p2p"
_ID_RE: Final = re.compile(r"[\x20-\x7e]{1,64}")
_ICE_UFRAG_RE: Final = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
_HOST_RE: Final = re.compile(r"[A-Za-z0-9.\-]{1,253}")


class ChannelError(Exception):
    """Base class of this module's errors."""


class ChannelFailed(ChannelError):
    """ICE, DTLS (fingerprint included) or the channel protocol failed."""


class ConnectTimeout(ChannelFailed, TimeoutError):
    """Gathering or connecting did not finish within its bound."""


class ChannelClosed(ChannelError):
    """The channel is closed (locally, by the peer, or after a failure)."""


class InvalidOffer(ChannelError, SdpError):
    """The remote offer/answer cannot be used (raised before any network activity).

    Both a :class:`ChannelError` and an :class:`~stunlike_tracker.ice.sdp.SdpError`.
    """


def _remote_sdp(
    offer: IceOffer, *, lan_mode: bool, role: Literal["offer", "answer"]
) -> tuple[str, str]:
    """Hygiene (PROTOCOL §8), then (the SDP aiortc gets, the canonical fingerprint)."""
    clean = sanitize_offer(offer, lan_mode=lan_mode)
    try:
        sdp = sdp_from_offer(clean, role=role)
        assert clean.fingerprint is not None  # sdp_from_offer requires one
        algorithm, digest = canonical_fingerprint(clean.fingerprint)
    except SdpError as exc:
        raise InvalidOffer(str(exc)) from exc
    return sdp, f"{algorithm} {digest}"


@dataclass(frozen=True, slots=True)
class IceServers:
    """Where candidates come from.

    ``stun``: (host, port) of a STUN server, in production the tracker's own
    address (IPv4 or a name; aioice only asks STUN from IPv4 sockets).
    ``turn``: a TURN server with credentials, as a CONNECT response hands
    them out (PROTOCOL §7). ``relay_only``: gather and publish relayed
    candidates only (needs ``turn``). ``lan_mode``: keep loopback and
    link-local candidates (lab/LAN, PROTOCOL §8). ``host_addresses``:
    gather host candidates on exactly these local IP addresses (default:
    every interface aioice lists, which leaves out loopback).
    """

    stun: tuple[str, int] | None = None
    turn: TurnServer | None = None
    relay_only: bool = False
    lan_mode: bool = False
    host_addresses: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.stun is not None:
            host, port = self.stun
            if _HOST_RE.fullmatch(host) is None:
                raise ValueError("STUN host must be an IPv4 address or a DNS name")
            if not 1 <= port <= 0xFFFF:
                raise ValueError("STUN port out of range")
        if self.turn is not None:
            _check_turn_uri(self.turn.uri)
        if self.relay_only and self.turn is None:
            raise ValueError("relay_only needs a TURN server")

    def rtc_configuration(self) -> RTCConfiguration:
        """The aiortc configuration (never aiortc's default Google STUN server)."""
        servers: list[RTCIceServer] = []
        if self.stun is not None and not self.relay_only:
            servers.append(RTCIceServer(urls=f"stun:{self.stun[0]}:{self.stun[1]}"))
        if self.turn is not None:
            servers.append(
                RTCIceServer(
                    urls=self.turn.uri,
                    username=self.turn.username,
                    credential=self.turn.credential,
                )
            )
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def _check_turn_uri(uri: str) -> None:
    """Refuse what aiortc 1.16 would silently ignore (RFC 7065 URIs it cannot use)."""
    try:
        parsed = parse_stun_turn_uri(uri)
    except ValueError as exc:
        raise ValueError(f"malformed TURN URI: {exc}") from None
    scheme, transport = parsed["scheme"], parsed.get("transport")
    if scheme == "turn" and transport in ("udp", "tcp"):
        return
    if scheme == "turns" and transport == "tcp":
        return
    raise ValueError("TURN URI must be turn:host[:port][?transport=udp|tcp] or turns:...tcp")


def _check_id(offer_id: str) -> None:
    if _ID_RE.fullmatch(offer_id) is None:
        raise ValueError("offer id must be 1..64 printable ASCII characters")


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Done-callback: mark an exception as retrieved (it is reported elsewhere)."""
    if not future.cancelled():
        future.exception()


class _Link:
    """One RTCPeerConnection, its data channel, framing and flow-control state."""

    def __init__(self, servers: IceServers) -> None:
        self.servers = servers
        ice_agent.install()  # RFC 8445 §7.3.1.4 triggered checks (peer/ice_agent.py)
        # The agent, built inside createDataChannel, reads its host addresses here.
        ice_agent.HOST_ADDRESSES.set(servers.host_addresses)
        self.pc = RTCPeerConnection(servers.rtc_configuration())
        self.dc = self.pc.createDataChannel(_LABEL, negotiated=True, id=0, ordered=True)
        self.dc.bufferedAmountLowThreshold = SEND_LOW_WATER
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.opened.add_done_callback(_retrieve)
        self.ended: ChannelError | None = None
        self.ended_event = asyncio.Event()
        self.remote_fingerprint: str | None = None
        self.pair_types: tuple[str, str] | None = None
        # Receiving.
        self.frames: deque[tuple[int, bytes]] = deque()
        self.queued = 0  # cost of frames received, not yet consumed
        self.ungranted = 0  # consumed, credit not yet returned
        self.partial: list[bytes] = []
        self.partial_size = 0
        self.recv_lock = asyncio.Lock()
        self.recv_waiter: asyncio.Future[None] | None = None
        # Sending.
        self.credit = RECV_WINDOW
        self.send_lock = asyncio.Lock()
        self.send_waiter: asyncio.Future[None] | None = None
        # Closing.
        self.close_acked: asyncio.Future[None] = loop.create_future()
        self.close_acked.add_done_callback(_retrieve)
        self.close_started = False
        self.close_done = asyncio.Event()
        self.background: set[asyncio.Task[None]] = set()

        self.dc.on("open", self._on_open)
        self.dc.on("close", self._on_dc_close)
        self.dc.on("message", self._on_message)
        self.dc.on("bufferedamountlow", self._wake_sender)
        self.pc.on("connectionstatechange", self._on_state)

    # -- descriptions -------------------------------------------------------

    def local_offer(self, offer_id: str) -> IceOffer:
        """Our gathered candidates, credentials and fingerprint as an IceOffer."""
        description = self.pc.localDescription
        try:
            offer = offer_from_sdp_untrusted(description.sdp, offer_id)
        except SdpError as exc:  # aiortc wrote something we cannot read
            raise ChannelFailed(f"cannot read the local description: {exc}") from exc
        offer = sanitize_offer(
            offer, lan_mode=self.servers.lan_mode, max_candidates=MAX_CANDIDATES_PER_OFFER
        )
        if self.servers.relay_only:
            relayed = tuple(c for c in offer.candidates if c.type == AddressType.RELAYED)
            offer = IceOffer(
                id=offer.id,
                ufrag=offer.ufrag,
                pwd=offer.pwd,
                fingerprint=offer.fingerprint,
                candidates=relayed,
            )
        if not offer.candidates:
            hint = (
                "is the TURN server reachable, are its credentials valid?"
                if self.servers.relay_only
                else "only loopback/link-local addresses without lan_mode?"
            )
            raise ChannelFailed(f"no usable local ICE candidates ({hint})")
        return offer

    async def run_bounded(
        self, step: Callable[[], Awaitable[None]], limit: float, what: str
    ) -> None:
        """Run ``step()`` (setting descriptions, which gathers) within ``limit`` seconds."""
        try:
            async with asyncio.timeout(limit):
                await step()
        except TimeoutError:
            raise ConnectTimeout(f"{what} took longer than {limit:.1f} s") from None
        except (ValueError, RuntimeError) as exc:  # aiortc refusing a description
            raise ChannelFailed(f"description refused: {exc}") from exc

    async def open_channel(self, limit: float) -> P2PChannel:
        """Wait (bounded) for the data channel to open; close everything on failure."""
        try:
            async with asyncio.timeout(limit):
                await self.opened
        except TimeoutError:
            await self.abort()
            raise ConnectTimeout(
                f"channel not open after {limit:.1f} s "
                f"(ICE {self.pc.iceConnectionState}, connection {self.pc.connectionState})"
            ) from None
        except BaseException:
            await self.abort()
            raise
        return P2PChannel(self)

    async def abort(self) -> None:
        """Close without lingering (failed or unused connection)."""
        await self.close(linger=0)

    # -- aiortc events --------------------------------------------------------

    def _on_open(self) -> None:
        self.pair_types = self.live_pair_types()
        logger.debug("data channel open, selected pair %s", self.pair_types)
        if not self.opened.done():
            self.opened.set_result(None)

    def _on_dc_close(self) -> None:
        self.end(ChannelClosed("data channel closed"))

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "failed":
            if self.pc.iceConnectionState == "failed":
                reason = "ICE negotiation failed (no candidate pair works)"
            else:
                reason = "DTLS failed (handshake error or certificate fingerprint mismatch)"
            self.end(ChannelFailed(reason))
            self._spawn(self.pc.close())
        elif state == "closed":
            self.end(ChannelClosed("peer connection closed"))

    def _on_message(self, data: bytes | str) -> None:
        if self.ended is not None:
            return
        if not isinstance(data, bytes) or not data:
            self._violation("text or empty data-channel message")
            return
        kind = data[0]
        if kind == _CREDIT:
            if len(data) != 5:
                self._violation("malformed CREDIT frame")
                return
            self.credit += int.from_bytes(data[1:], "big")
            if self.credit > RECV_WINDOW:
                self._violation("credit beyond the window")
                return
            self._wake_sender()
        elif kind in (_DATA_MORE, _DATA_END):
            cost = len(data)
            if self.queued + self.ungranted + cost > RECV_WINDOW:
                self._violation("peer overran the receive window")
                return
            self.frames.append((kind, data[1:]))
            self.queued += cost
            self._wake(self.recv_waiter)
        elif kind == _CLOSE and len(data) == 1:
            if self.dc.readyState == "open":
                self._dc_send(bytes((_CLOSE_ACK,)))
        elif kind == _CLOSE_ACK and len(data) == 1:
            if not self.close_acked.done():
                self.close_acked.set_result(None)
        else:
            self._violation(f"unknown frame type {kind}")

    def _violation(self, reason: str) -> None:
        logger.warning("peer channel protocol violation: %s", reason)
        self.end(ChannelFailed(f"protocol violation: {reason}"))
        self._spawn(self.pc.close())

    # -- state ----------------------------------------------------------------

    def end(self, reason: ChannelError) -> None:
        """Record why the channel ended (first reason wins) and wake every waiter."""
        if self.ended is None:
            self.ended = reason
            self.ended_event.set()
        if not self.opened.done():
            self.opened.set_exception(reason)
        self._wake(self.recv_waiter)
        self._wake_sender()

    def closed_error(self) -> ChannelClosed:
        reason = self.ended
        if isinstance(reason, ChannelClosed):
            return ChannelClosed(str(reason))
        error = ChannelClosed(f"channel closed: {reason}")
        error.__cause__ = reason
        return error

    def live_pair_types(self) -> tuple[str, str] | None:
        """Local/remote candidate types of the nominated pair: our ICE agent
        records them (aiortc has no public accessor), found by the username
        fragment of our public local description."""
        description = self.pc.localDescription
        if description is None:
            return None
        found = _ICE_UFRAG_RE.search(description.sdp)
        return ice_agent.selected_pair_types(found.group(1)) if found else None

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_sender(self) -> None:
        self._wake(self.send_waiter)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- data -----------------------------------------------------------------

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        async with self.send_lock:
            total, offset = len(view), 0
            while True:
                chunk = view[offset : offset + _MAX_PAYLOAD]
                offset += len(chunk)
                last = offset >= total
                frame = bytes((_DATA_END if last else _DATA_MORE,)) + chunk
                await self._wait_sendable(len(frame))
                self._dc_send(frame)
                self.credit -= len(frame)
                if last:
                    return

    async def _wait_sendable(self, cost: int) -> None:
        while True:
            if self.ended is not None or self.close_started:
                raise self.closed_error() if self.ended else ChannelClosed("closing")
            if self.credit >= cost and self.dc.bufferedAmount <= SEND_HIGH_WATER:
                return
            self.send_waiter = asyncio.get_running_loop().create_future()
            try:
                await self.send_waiter
            finally:
                self.send_waiter = None

    async def recv(self, max_size: int) -> bytes:
        async with self.recv_lock:
            while True:
                while self.frames:
                    kind, payload = self.frames.popleft()
                    cost = len(payload) + 1
                    self.queued -= cost
                    self._grant(cost)
                    self.partial_size += len(payload)
                    if self.partial_size > max_size:
                        self.end(ChannelFailed(f"message larger than {max_size} bytes"))
                        self._spawn(self.pc.close())
                        raise ChannelFailed(f"message larger than {max_size} bytes")
                    self.partial.append(payload)
                    if kind == _DATA_END:
                        message = b"".join(self.partial)
                        self.partial.clear()
                        self.partial_size = 0
                        return message
                if self.ended is not None:
                    raise self.closed_error()
                self.recv_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self.recv_waiter
                finally:
                    self.recv_waiter = None

    def _dc_send(self, frame: bytes) -> None:
        # aiortc 1.16 compares the payload with "" before checking its type,
        # a BytesWarning that ``python -bb`` turns into an error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BytesWarning)
            self.dc.send(frame)

    def _grant(self, cost: int) -> None:
        self.ungranted += cost
        if self.ungranted >= _GRANT_AT and self.ended is None and self.dc.readyState == "open":
            self._dc_send(bytes((_CREDIT,)) + self.ungranted.to_bytes(4, "big"))
            self.ungranted = 0

    # -- closing --------------------------------------------------------------

    async def close(self, linger: float) -> None:
        if self.close_started:
            await self.close_done.wait()
            return
        self.close_started = True
        self._wake_sender()
        try:
            if self.ended is None and linger > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(linger):
                        await self._drain()
            self.end(ChannelClosed("closed locally"))
            await self.pc.close()
            for task in list(self.background):
                with contextlib.suppress(Exception):
                    await task
        finally:
            self.close_done.set()

    async def _drain(self) -> None:
        """Wait until the peer confirms that everything sent arrived: CLOSE
        goes after the data on the ordered, reliable channel, CLOSE_ACK
        comes back once the peer has it (or the channel ends)."""
        if self.dc.readyState != "open":
            return
        self._dc_send(bytes((_CLOSE,)))
        ended: asyncio.Future[Any] = asyncio.ensure_future(self.ended_event.wait())
        acked: asyncio.Future[Any] = self.close_acked
        try:
            await asyncio.wait({ended, acked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()


class P2PChannel:
    """An open, authenticated, reliable and ordered message channel to one peer."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    @property
    def remote_fingerprint(self) -> str:
        """The peer's DTLS certificate fingerprint ("sha-256 AA:..."), as verified."""
        assert self._link.remote_fingerprint is not None
        return self._link.remote_fingerprint

    @property
    def ice_role(self) -> str:
        """ICE role: "controlling" (we made the offer) or "controlled" (we answered)."""
        sctp = self._link.pc.sctp
        assert sctp is not None
        return str(sctp.transport.transport.role)

    @property
    def closed(self) -> bool:
        return self._link.ended is not None or self._link.close_started

    def selected_pair_types(self) -> tuple[str, str] | None:
        """ICE types (host/srflx/prflx/relay) of the local and remote candidate in use.

        Known from the moment the channel opened; still answered after close.
        """
        live = self._link.live_pair_types()
        if live is not None:
            self._link.pair_types = live
        return self._link.pair_types

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Send one message (any size; split into ≤ 16 KiB data-channel messages).

        Waits for flow-control credit and for aiortc's buffer to drain.
        Raises :class:`ChannelClosed` once the channel is closed.
        """
        await self._link.send(data)

    async def recv(self, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
        """The next message, whole. Raises :class:`ChannelClosed` at the end.

        A message larger than ``max_size`` fails the channel
        (:class:`ChannelFailed`). Cancelling ``recv()`` loses nothing.
        """
        return await self._link.recv(max_size)

    async def close(self, *, linger: float = DEFAULT_LINGER) -> None:
        """Close; first wait up to ``linger`` seconds for sent data to be acknowledged."""
        await self._link.close(linger)

    async def __aenter__(self) -> P2PChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class PendingOffer:
    """Our published offer, waiting for an answer (or to expire)."""

    def __init__(self, link: _Link, offer: IceOffer) -> None:
        self._link = link
        self._offer = offer
        self._accepting = False

    @property
    def offer(self) -> IceOffer:
        return self._offer

    async def accept_answer(
        self, answer: IceOffer, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> P2PChannel:
        """Connect using the peer's answer; return once the channel is open.

        Raises :class:`InvalidOffer` for an unusable answer (the offer stays
        usable), :class:`ChannelFailed` when ICE or
        DTLS fails, :class:`ConnectTimeout` after ``connect_timeout`` seconds. After
        a failure the offer is closed.
        """
        if self._accepting:
            raise ChannelError("this offer already took an answer")
        sdp, fingerprint = _remote_sdp(answer, lan_mode=self._link.servers.lan_mode, role="answer")
        self._accepting = True
        self._link.remote_fingerprint = fingerprint
        description = RTCSessionDescription(sdp=sdp, type="answer")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + connect_timeout
        try:
            await self._link.run_bounded(
                lambda: self._link.pc.setRemoteDescription(description),
                connect_timeout,
                "applying the answer",
            )
        except BaseException:
            await self._link.abort()
            raise
        return await self._link.open_channel(max(0.0, deadline - loop.time()))

    async def close(self) -> None:
        """Release an offer that was not (successfully) answered."""
        if not self._accepting or self._link.ended is not None:
            await self._link.abort()

    async def __aenter__(self) -> PendingOffer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class PendingAnswer:
    """Awaitable: the channel that opens once the offerer accepts our answer."""

    def __init__(self, link: _Link, connect_timeout: float) -> None:
        self._link = link
        self._task: asyncio.Task[P2PChannel] = asyncio.ensure_future(
            link.open_channel(connect_timeout)
        )
        self._task.add_done_callback(_retrieve)
        self._claimed = False

    def __await__(self) -> Generator[Any, None, P2PChannel]:
        self._claimed = True
        return self._task.__await__()

    def done(self) -> bool:
        return self._task.done()

    async def close(self) -> None:
        """Give up waiting, or close a channel that opened but was never awaited."""
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ChannelError):
                await self._task
        elif not self._claimed and not self._task.cancelled() and self._task.exception() is None:
            await self._task.result().close(linger=0)
        await self._link.abort()


async def create_offer(
    offer_id: str, servers: IceServers, *, gather_timeout: float = DEFAULT_GATHER_TIMEOUT
) -> PendingOffer:
    """Gather candidates and return our offer (we will be ICE controlling)."""
    _check_id(offer_id)
    link = _Link(servers)
    try:

        async def build() -> None:
            await link.pc.setLocalDescription(await link.pc.createOffer())

        await link.run_bounded(build, gather_timeout, "ICE gathering")
        offer = link.local_offer(offer_id)
    except BaseException:
        await link.abort()
        raise
    return PendingOffer(link, offer)


async def answer_offer(
    remote: IceOffer,
    answer_id: str,
    servers: IceServers,
    *,
    gather_timeout: float = DEFAULT_GATHER_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> tuple[IceOffer, PendingAnswer]:
    """Answer a peer's offer: return our answer as soon as it is gathered.

    The :class:`PendingAnswer` resolves to the open channel, or raises
    :class:`ChannelFailed` / :class:`ConnectTimeout` (``connect_timeout``
    counts from now). Raises :class:`InvalidOffer` before opening any socket
    if ``remote`` is unusable.
    """
    _check_id(answer_id)
    sdp, fingerprint = _remote_sdp(remote, lan_mode=servers.lan_mode, role="offer")
    description = RTCSessionDescription(sdp=sdp, type="offer")
    link = _Link(servers)
    link.remote_fingerprint = fingerprint
    try:

        async def build() -> None:
            await link.pc.setRemoteDescription(description)
            await link.pc.setLocalDescription(await link.pc.createAnswer())

        await link.run_bounded(build, gather_timeout, "ICE gathering")
        answer = link.local_offer(answer_id)
    except BaseException:
        await link.abort()
        raise
    return answer, PendingAnswer(link, connect_timeout)
