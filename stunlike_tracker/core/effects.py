"""Events into the core and effects out of it (ARCHITECTURE habit 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stunlike_tracker.ppsp.messages import Response


@dataclass(frozen=True, slots=True)
class Session:
    """The DTLS association a datagram arrived on (or a JSON session).

    ``session_id`` is unique across tracker nodes; ``address`` is the UDP
    source (the peer's reflexive address); ``identity`` is the Peer-ID named
    by the client certificate in mutual mode, else None. ``transport`` is
    ``udp`` for DTLS, ``tcp`` for the JSON binding over HTTPS/WebSocket,
    whose source address is no UDP candidate (PROTOCOL §14.3).
    """

    session_id: str
    address: tuple[str, int]
    identity: str | None = None
    node_id: str = "local"
    transport: str = "udp"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send these datagrams over a session (on ``node_id``'s server).

    ``answer`` is the Response the datagrams encode when the core has it at
    hand, so that the JSON binding re-encodes it without parsing the XML
    back (PROTOCOL §14.3); None otherwise (the bytes are the truth).
    """

    session_id: str
    datagrams: tuple[bytes, ...]
    node_id: str = "local"
    # Not compared: the datagrams are the truth (a cached replay has none).
    answer: Response | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PeerExpired:
    """A peer's timer fired; it left every swarm (PROTOCOL §3)."""

    peer_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class AckRelayed:
    """An ATTACH_ACK for an ATTACH taken on ``node_id``: that node finishes
    the introduction (``Tracker.on_remote_ack``; PROTOCOL §9)."""

    node_id: str
    indication_id: str
    peer_id: str


@dataclass(frozen=True, slots=True)
class RequestDropped:
    """An input that was not (fully) served, counted by ``reason``;
    ``detail`` is for the operator's log (a traceback for internal errors)."""

    reason: str
    detail: str = ""


Effect = Transmit | PeerExpired | RequestDropped | AckRelayed
