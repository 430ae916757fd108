"""Cost of the PPSP XML codec's hot calls, in microseconds, single core.

Run: python3 bench/ppsp_bench.py [--number 2000] [--repeat 7]

Each case runs one call in a ``timeit`` loop of ``--number`` calls and
reports the best of ``--repeat`` loops (the run least disturbed by the rest
of the machine) as µs per call. No sockets, no tracker core: the encoder and
the parser alone.

* FIND responses as the tracker sends them (PROTOCOL §4): 10 and 30 peers, each
  with a REFLEXIVE address and an ICE offer of 2 HOST candidates (PROTOCOL §6),
  through ``encode_response_datagrams`` with the default 1,200-byte budget
  (a peer with its offer is about 580 bytes, so 10 such peers take 10
  datagrams and 30 take 30: the split itself is exercised);
* the same 10 peers without offers (about 1.9 KB, 2 datagrams);
* ``encode_response`` of the 10 peers with offers, as one document;
* ``parse_request_untrusted`` of the draft's JOIN example (draft-07 §8.3,
  tests/vectors/draft07/v5-join-request.xml) and of our own compact FIND.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable
from pathlib import Path

from stunlike_tracker.ppsp import (
    encode_request,
    encode_response,
    encode_response_datagrams,
    parse_request_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    IceOffer,
    Method,
    PeerAddress,
    PeerInfo,
    PeerMode,
    PeerNum,
    Request,
    Response,
)

JOIN_VECTOR = (
    Path(__file__).resolve().parent.parent / "tests" / "vectors" / "draft07" / "v5-join-request.xml"
)


def peer(n: int, offer: bool = True) -> PeerInfo:
    reflexive = PeerAddress(
        addr_type=AddrType.IPV4,
        ip=f"198.51.100.{n % 250 + 1}",
        port=40000 + n,
        type=AddressType.REFLEXIVE,
        priority=1694498815,
    )
    ice = IceOffer(
        id=f"offer-{n}",
        ufrag="x9Qf",
        pwd="0123456789abcdefghijkl",
        fingerprint="sha-256 " + ":".join(["AB"] * 32),
        candidates=tuple(
            PeerAddress(
                addr_type=AddrType.IPV4,
                ip=f"10.0.{n % 250}.{i + 1}",
                port=50000 + i,
                type=AddressType.HOST,
                priority=2130706431 - i,
                foundation=str(i),
            )
            for i in range(2)
        ),
    )
    return PeerInfo(
        peer_id=f"peer-{n:04d}",
        mode=PeerMode.SEED if n % 3 == 0 else PeerMode.LEECH,
        addresses=(reflexive,),
        offer=ice if offer else None,
    )


def find_response(npeers: int, offers: bool = True) -> Response:
    return Response(
        status=200,
        transaction_id="f3a9c2d417e0",
        swarm_ids=("swarm-1",),
        peers=tuple(peer(n, offers) for n in range(npeers)),
    )


def best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    number, repeat = args.number, args.repeat

    r10, r30, plain10 = find_response(10), find_response(30), find_response(10, offers=False)
    join = JOIN_VECTOR.read_bytes()
    find = encode_request(
        Request(Method.FIND, "peer-0001", "f3a9c2d417e0", swarm_id="swarm-1", peer_num=PeerNum(10))
    )
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            f"encode_response_datagrams, 10 peers + offers ({len(encode_response(r10))} B, "
            f"{len(encode_response_datagrams(r10))} datagrams)",
            lambda: encode_response_datagrams(r10),
        ),
        (
            f"encode_response_datagrams, 30 peers + offers ({len(encode_response(r30))} B, "
            f"{len(encode_response_datagrams(r30))} datagrams)",
            lambda: encode_response_datagrams(r30),
        ),
        (
            f"encode_response_datagrams, 10 peers, no offers ({len(encode_response(plain10))} B, "
            f"{len(encode_response_datagrams(plain10))} datagrams)",
            lambda: encode_response_datagrams(plain10),
        ),
        (
            f"encode_response, 10 peers + offers, one document ({len(encode_response(r10))} B)",
            lambda: encode_response(r10),
        ),
        (
            f"parse_request_untrusted, draft-07 JOIN vector ({len(join)} B)",
            lambda: parse_request_untrusted(join),
        ),
        (
            f"parse_request_untrusted, compact FIND ({len(find)} B)",
            lambda: parse_request_untrusted(find),
        ),
    ]
    print(
        f"PPSP codec, best of {repeat} x {number} calls, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    for name, call in cases:
        print(f"  {best_us(call, number, repeat):8.1f} us  {name}")


if __name__ == "__main__":
    main()
