"""Cost of one STUN Binding through BindingResponder, in microseconds, single core.

Run: python3 bench/stun_bench.py [--number 200000] [--repeat 5]

Each case calls ``BindingResponder.handle_untrusted(request, source)`` in a
``timeit`` loop and reports the best of ``--repeat`` runs (least disturbed by
the rest of the machine), as µs per call and responses per second. No
sockets: this is the codec and responder alone, the part the server's hot
path adds to the kernel's recvfrom/sendto. For reference, the same work done
with aioice's codec (parse, build the response, add FINGERPRINT) is measured
too, on the same machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import struct
import timeit
from collections.abc import Callable

from aioice import stun as aio

from stunlike_tracker.stun import (
    ATTR_CHANGE_REQUEST,
    ATTR_SOFTWARE,
    Address,
    BindingResponder,
    StunClass,
    encode_message,
)

V4: Address = ("203.0.113.7", 54321)
V6: Address = ("2001:db8::7", 54321, 0, 0)
TID = os.urandom(12)


def cases() -> list[tuple[str, bytes, Address, float]]:
    bare = encode_message(1, StunClass.REQUEST, TID)
    with_fp = encode_message(
        1, StunClass.REQUEST, TID, [(ATTR_SOFTWARE, b"ice/1.0")], fingerprint=True
    )
    classic = encode_message(
        1, StunClass.REQUEST, os.urandom(16), [(ATTR_CHANGE_REQUEST, bytes(4))]
    )
    unknown = encode_message(1, StunClass.REQUEST, TID, [(0x7777, b"abcd")], fingerprint=True)
    return [
        ("RFC 8489 bare request, IPv4 source (the common case)", bare, V4, 2.0),
        ("RFC 8489 SOFTWARE+FINGERPRINT request, IPv4", with_fp, V4, 2.0),
        ("RFC 8489 SOFTWARE+FINGERPRINT request, IPv6", with_fp, V6, 2.0),
        ("RFC 3489 request with CHANGE-REQUEST 0, IPv4", classic, V4, 2.0),
        ("420 for an unknown attribute, IPv4", unknown, V4, 2.0),
    ]


def best_us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def aioice_binding(data: bytes, source: Address) -> bytes:
    request = aio.parse_message(data)
    response = aio.Message(
        message_method=aio.Method.BINDING,
        message_class=aio.Class.RESPONSE,
        transaction_id=request.transaction_id,
    )
    response.attributes["XOR-MAPPED-ADDRESS"] = (source[0], source[1])
    response.add_fingerprint()
    return bytes(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}", end="")
    print(f", one core, best of {args.repeat} runs of {args.number:,} calls")
    for name, data, source, ratio in cases():
        responder = BindingResponder(max_response_ratio=ratio)
        handle = responder.handle_untrusted
        out = handle(data, source)
        assert out is not None, responder.drops
        us = best_us(lambda: handle(data, source), args.number, args.repeat)  # noqa: B023
        print(f"  {name:<55} {us:6.2f} µs {1e6 / us:>11,.0f} responses/s", end="")
        print(f"  ({len(data)} -> {len(out)} bytes)")
    bare = struct.pack("!HHI12s", 1, 0, 0x2112A442, TID)
    us = best_us(lambda: aioice_binding(bare, V4), max(args.number // 10, 1), args.repeat)
    name = "aioice codec, same bare request (reference)"
    print(f"  {name:<55} {us:6.2f} µs {1e6 / us:>11,.0f} responses/s")


if __name__ == "__main__":
    main()
