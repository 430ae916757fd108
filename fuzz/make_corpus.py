"""Write the seed corpora under fuzz/corpus/ (run once; the output is committed).

python3 -m fuzz.make_corpus
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    Method,
    NatAbility,
    PeerAddress,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    SegmentInfo,
    StreamStatistics,
)
from stunlike_tracker.stun.codec import METHOD_BINDING, StunClass, encode_message
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsClientSession

HERE = Path(__file__).parent / "corpus"
VECTORS = Path(__file__).parent.parent / "tests" / "vectors" / "draft07"


def _write(kind: str, seeds: list[bytes]) -> None:
    folder = HERE / kind
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (folder / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)


def stun_seeds() -> list[bytes]:
    tid = bytes(range(12))
    return [
        encode_message(METHOD_BINDING, StunClass.REQUEST, tid),
        encode_message(METHOD_BINDING, StunClass.REQUEST, tid, fingerprint=True),
        encode_message(METHOD_BINDING, StunClass.REQUEST, tid, [(0x8022, b"fuzz")]),
        encode_message(METHOD_BINDING, StunClass.REQUEST, tid, [(0x0003, b"\0\0\0\6")]),
        encode_message(METHOD_BINDING, StunClass.REQUEST, tid, [(0x7FFF, b"xyz!")]),
        b"\x00\x01\x00\x00" + bytes(range(16)),  # RFC 3489: no magic cookie
    ]


def ppsp_seeds() -> list[bytes]:
    address = PeerAddress(AddrType.IPV4, "198.51.100.7", 5000, AddressType.HOST, 2130706431, "1")
    offer = IceOffer("o1", "ufrag", "p" * 22, "sha-256 " + ":".join(["AB"] * 32), (address,))
    rep = Representation("r", (SegmentInfo(0, 15, 16, "//8="),))
    requests = [
        Request(Method.CONNECT, "A", "t1", addresses=(address,)),
        Request(Method.CONNECT, "A", "t1b", reconnect_token="tk-1"),  # noqa: S106
        Request(Method.JOIN, "A", "t2", swarm_id="x", peer_mode=PeerMode.SEED, ice_offer=offer),
        Request(
            Method.FIND,
            "A",
            "t3",
            swarm_id="x",
            peer_num=PeerNum(5, ability_nat=NatAbility.TURN),
            content=(rep,),
        ),
        Request(
            Method.STAT_REPORT,
            "A",
            "t4",
            stats=(StreamStatistics("x", 1, 2, 3), ContentMap("x", (rep,))),
        ),
        Request(Method.DISCONNECT, "A", "t5", swarm_id="ALL"),
        Request(
            Method.ATTACH,
            "A",
            "t6",
            swarm_id="x",
            target_peer_id="B",
            offer_id="o1",
            ice_offer=offer,
        ),
        Request(Method.ATTACH_ACK, "A", "t7", indication_id="i1"),
    ]
    seeds = [encode_request(r) for r in requests]
    seeds += [p.read_bytes() for p in sorted(VECTORS.glob("*-request.xml"))]
    return seeds


def datagram_seeds() -> list[bytes]:
    session = DtlsClientSession(DtlsClientContext(ca_pem=None))
    session.start(0.0)
    hello = session.datagrams_to_send()
    return [
        *hello,
        b"\x17",
        b"\x17\xfe\xfd" + bytes(10) + b"\x00\x10" + bytes(16),
        *stun_seeds()[:2],
    ]


if __name__ == "__main__":
    _write("stun", stun_seeds())
    _write("ppsp", ppsp_seeds())
    _write("datagram", datagram_seeds())
