"""What the load generator sends and how it recognises the answer (pure, no I/O).

Requests are built once per session as templates with a fixed-width
placeholder for the transaction ID, so that building a request costs one
``bytes.replace``; answers are matched by their transaction ID without a
full parse, and the PPSP status is read from the fixed ``<Response
status="...">`` prefix our encoder writes (the generator measures, it does
not validate: the conformance suite does that).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from enum import StrEnum

from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import (
    SWARM_NIL,
    AddressType,
    AddrType,
    IceOffer,
    Method,
    PeerAddress,
    PeerMode,
    Request,
)

STUN_MAGIC = 0x2112A442
STUN_BINDING_REQUEST = 0x0001
_STUN_HEADER = struct.Struct("!HHI12s")


class Kind(StrEnum):
    STUN = "stun"
    HANDSHAKE = "handshake"
    PPSP = "ppsp"
    UDP = "udp"
    BT = "bt"


class Op(StrEnum):
    """One step of the PPSP mix."""

    CONNECT = "connect"
    JOIN = "join"
    FIND = "find"
    STAT = "stat"
    DISCONNECT = "disconnect"


REALISTIC_MIX = "connect=5,join=5,find=25,stat=60,disconnect=5"


class MixError(ValueError):
    pass


def parse_mix(text: str) -> dict[Op, float]:
    """``find=60,stat=40`` -> weights; unknown ops and bad numbers are one-line errors."""
    weights: dict[Op, float] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        try:
            op = Op(name.strip().lower())
        except ValueError:
            known = ", ".join(o.value for o in Op)
            raise MixError(f"unknown operation {name!r} in --mix (known: {known})") from None
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise MixError(f"bad weight {value!r} for {name!r} in --mix") from None
        if not weight >= 0:
            raise MixError(f"bad weight {value!r} for {name!r} in --mix")
        weights[op] = weight
    if not any(w > 0 for w in weights.values()):
        raise MixError("--mix needs at least one operation with a positive weight")
    return weights


class MixChooser:
    """Picks the next PPSP operation of one session.

    A session that has left (DISCONNECT nil) must CONNECT and then JOIN
    again: those are forced, so a CONNECT's weight only matters through
    DISCONNECT's (a second CONNECT on one association is 403 Already
    Connected). While joined, JOIN (the same swarm again, PROTOCOL §3), FIND,
    STAT_REPORT and DISCONNECT are drawn by weight.
    """

    __slots__ = ("_cum", "_ops", "_rng", "_total")

    def __init__(self, weights: dict[Op, float], seed: int) -> None:
        self._ops = [op for op, w in weights.items() if w > 0 and op is not Op.CONNECT]
        if not self._ops:
            self._ops = [Op.DISCONNECT]
            weights = {Op.DISCONNECT: 1.0}
        total = 0.0
        self._cum = []
        for op in self._ops:
            total += weights[op]
            self._cum.append(total)
        self._total = total
        self._rng = random.Random(seed)

    def next(self, connected: bool, joined: bool) -> Op:
        if not connected:
            return Op.CONNECT
        if not joined:
            return Op.JOIN
        x = self._rng.random() * self._total
        for op, bound in zip(self._ops, self._cum, strict=True):
            if x < bound:
                return op
        return self._ops[-1]


# ----------------------------------------------------------------------
# STUN and plain UDP


def stun_request(transaction_id: bytes) -> bytes:
    """A bare Binding request (RFC 8489 §5: magic cookie, 96-bit ID)."""
    return _STUN_HEADER.pack(STUN_BINDING_REQUEST, 0, STUN_MAGIC, transaction_id)


def stun_transaction_id(datagram: bytes) -> bytes | None:
    """The transaction ID of a STUN message (or of an echoed request)."""
    if len(datagram) < 20:
        return None
    return datagram[8:20]


def echo_payload(tag: bytes, size: int) -> bytes:
    return tag + bytes(max(0, size - len(tag)))


# ----------------------------------------------------------------------
# BEP 15 (UDP tracker protocol)

BT_PROTOCOL_ID = 0x41727101980
BT_CONNECT, BT_ANNOUNCE = 0, 1


def bt_connect(transaction_id: int) -> bytes:
    return struct.pack("!QII", BT_PROTOCOL_ID, BT_CONNECT, transaction_id)


def bt_announce(
    connection_id: int, transaction_id: int, info_hash: bytes, peer_id: bytes, port: int
) -> bytes:
    """An announce as a leecher that wants 10 peers (event none)."""
    return struct.pack(
        "!QII20s20sQQQIIIiH",
        connection_id,
        BT_ANNOUNCE,
        transaction_id,
        info_hash,
        peer_id,
        0,
        1000,
        0,
        0,
        0,
        random.getrandbits(32),
        10,
        port,
    )


def bt_answer(datagram: bytes) -> tuple[int, int, bytes] | None:
    """(action, transaction ID, rest) of a BEP 15 answer."""
    if len(datagram) < 8:
        return None
    action, tid = struct.unpack_from("!II", datagram)
    return action, tid, datagram[8:]


# ----------------------------------------------------------------------
# PPSP over DTLS

TXID_WIDTH = 16
_PLACEHOLDER = "T" * TXID_WIDTH


def transaction_id(prefix: int, counter: int) -> bytes:
    """A 16-character hex TransactionID unique to this (worker, session) and counter."""
    return b"%08x%08x" % (prefix & 0xFFFFFFFF, counter & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class PpspTemplates:
    """One session's requests with the transaction ID left as a placeholder."""

    by_op: dict[Op, bytes]
    placeholder: bytes

    def render(self, op: Op, txid: bytes, reconnect_token: bytes | None = None) -> bytes:
        data = self.by_op[op].replace(self.placeholder, txid, 1)
        if op is Op.CONNECT and reconnect_token is not None:
            data = data.replace(
                b"</PPSPTrackerProtocol>",
                b"<ReconnectToken>" + reconnect_token + b"</ReconnectToken></PPSPTrackerProtocol>",
                1,
            )
        return data


def seed_offer(peer_id: str, port: int) -> IceOffer:
    """A plausible ICE offer of a loopback seed (kept in LAN mode)."""
    return IceOffer(
        id=f"o-{peer_id}",
        ufrag=f"u{port:05d}",
        pwd=f"p{port:05d}" + "x" * 18,
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=(
            PeerAddress(
                AddrType.IPV4,
                "127.0.0.1",
                port,
                AddressType.HOST,
                priority=2130706431,
                foundation="1",
            ),
        ),
    )


def ppsp_templates(peer_id: str, swarm_id: str, port: int, *, seed: bool = False) -> PpspTemplates:
    host = (PeerAddress(AddrType.IPV4, "127.0.0.1", port, AddressType.HOST),)

    def enc(method: Method, **fields: object) -> bytes:
        return encode_request(Request(method, peer_id, _PLACEHOLDER, **fields))  # type: ignore[arg-type]

    join_fields: dict[str, object] = {"swarm_id": swarm_id}
    if seed:
        join_fields.update(peer_mode=PeerMode.SEED, ice_offer=seed_offer(peer_id, port))
    else:
        join_fields.update(peer_mode=PeerMode.LEECH)
    by_op = {
        Op.CONNECT: enc(Method.CONNECT, addresses=host),
        Op.JOIN: enc(Method.JOIN, **join_fields),
        Op.FIND: enc(Method.FIND, swarm_id=swarm_id),
        Op.STAT: enc(Method.STAT_REPORT),
        Op.DISCONNECT: enc(Method.DISCONNECT, swarm_id=SWARM_NIL),
    }
    return PpspTemplates(by_op, _PLACEHOLDER.encode())


def _between(data: bytes, start: bytes, end: bytes) -> bytes | None:
    i = data.find(start)
    if i < 0:
        return None
    i += len(start)
    j = data.find(end, i)
    if j < 0:
        return None
    return data[i:j]


def ppsp_answer(data: bytes) -> tuple[bytes, int] | None:
    """(TransactionID, status) of a PPSP response; status 0 when there is none
    (an echo server returns the request itself)."""
    txid = _between(data, b"<TransactionID>", b"</TransactionID>")
    if txid is None:
        return None
    status = _between(data, b'<Response status="', b'"')
    try:
        code = int(status) if status is not None else 0
    except ValueError:
        code = 0
    return txid, code


def reconnect_token(data: bytes) -> bytes | None:
    return _between(data, b"<ReconnectToken>", b"</ReconnectToken>")
