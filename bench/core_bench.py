"""Tracker core throughput, and FIND cost against swarm size (PROTOCOL §3: peer
selection must cost O(returned peers), whatever the swarm size).

Run: python3 bench/core_bench.py [--sizes 100,10000,100000] [--finds 5000]
Pure core + memory store, one process, no network: it measures the state
machine and the XML codec, not DTLS or sockets.
"""

from __future__ import annotations

import argparse
import random
import time

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Session
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import Method, PeerMode, PeerNum, Request
from stunlike_tracker.store.memory import MemoryStore


def populate(tracker: Tracker, size: int, now: float) -> None:
    """Register and join ``size`` peers straight through the core."""
    store = tracker.store
    for i in range(size):
        session = Session(f"s{i}", ("198.51.100.1", 1024 + i % 60000))
        peer = f"p{i}"
        tracker.handle_request(Request(Method.CONNECT, peer, f"c{i}"), b"c%d" % i, session, now)
        mode = PeerMode.SEED if i % 10 == 0 else PeerMode.LEECH
        join = Request(
            Method.JOIN, peer, f"j{i}", swarm_id="big", peer_mode=mode, peer_num=PeerNum(0)
        )
        tracker.handle_request(join, b"j%d" % i, session, now)
    assert store.member_count("big") == size


def bench_finds(size: int, finds: int) -> tuple[float, float]:
    # No rate limit: one peer sends every FIND here.
    tracker = Tracker(MemoryStore(random.Random(1)), TrackerConfig(peer_rate=0))
    now = 1000.0
    populate(tracker, size, now)
    session = Session("s0", ("198.51.100.1", 1024))
    datagrams = [
        encode_request(Request(Method.FIND, "p0", f"f{n}", swarm_id="big", peer_num=PeerNum(10)))
        for n in range(finds)
    ]
    start = time.perf_counter()
    for data in datagrams:
        tracker.handle_datagram(data, session, now)
    elapsed = time.perf_counter() - start
    return finds / elapsed, elapsed / finds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--finds", type=int, default=5000)
    args = parser.parse_args()
    print(f"FIND (10 peers, parse + select + encode + cache), {args.finds} requests each")
    for size in (int(s) for s in args.sizes.split(",")):
        rate, micros = bench_finds(size, args.finds)
        print(f"  swarm {size:>7}: {rate:8.0f} FIND/s  {micros:7.1f} us/FIND")


if __name__ == "__main__":
    main()
