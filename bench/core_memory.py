"""Core memory per registered peer and FIND cost against swarm size (pure core, no network).

    python3 bench/core_memory.py [--peers 1000000] [--small 100] [--finds 3000] [--json]

Registers ``--peers`` peers straight through the core (CONNECT + JOIN of one
swarm, one in ten a SEED, each with a HOST address) and reports the process
RSS growth per peer (the core's records, the store's sets and indexes,
cached responses included), then the CPU time of a FIND (10 peers) in that
swarm against one in a swarm of ``--small`` peers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.core.effects import Session
from stunlike_tracker.core.tracker import Tracker
from stunlike_tracker.ppsp import encode_request
from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    Method,
    PeerAddress,
    PeerMode,
    PeerNum,
    Request,
)
from stunlike_tracker.store.memory import MemoryStore


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def populate(tracker: Tracker, swarm: str, size: int, now: float) -> None:
    """Peers behind distinct NATs (one public address each), like a real swarm."""
    for i in range(size):
        public = f"100.{64 + (i >> 16 & 63)}.{i >> 8 & 255}.{i & 255}"
        session = Session(f"{swarm}-s{i}", (public, 1024 + i % 60000))
        peer = f"{swarm}-p{i}"
        host = (PeerAddress(AddrType.IPV4, "10.0.0.1", 1024 + i % 60000, AddressType.HOST),)
        tracker.handle_datagram(
            encode_request(Request(Method.CONNECT, peer, f"c{i}", addresses=host)), session, now
        )
        mode = PeerMode.SEED if i % 10 == 0 else PeerMode.LEECH
        join = Request(
            Method.JOIN, peer, f"j{i}", swarm_id=swarm, peer_mode=mode, peer_num=PeerNum(0)
        )
        tracker.handle_datagram(encode_request(join), session, now)


def find_cost(tracker: Tracker, swarm: str, finds: int, now: float) -> float:
    session = Session(f"{swarm}-s0", ("198.51.100.1", 1024))
    datagrams = [
        encode_request(
            Request(Method.FIND, f"{swarm}-p0", f"f{n}", swarm_id=swarm, peer_num=PeerNum(10))
        )
        for n in range(finds)
    ]
    start = time.process_time()
    for data in datagrams:
        tracker.handle_datagram(data, session, now)
    return (time.process_time() - start) / finds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--finds", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # One requester sends every FIND here (no rate limit); distinct public
    # addresses stay well under the per-source caps, lifted anyway.
    config = TrackerConfig(peer_rate=0, max_peers_per_source=10**9, max_source_share=1.0)
    tracker = Tracker(MemoryStore(random.Random(1)), config)
    now = 1000.0
    populate(tracker, "small", args.small, now)
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.process_time()
    populate(tracker, "big", args.peers, now)
    populate_s = time.process_time() - t0
    gc.collect()
    per_peer = (rss_bytes() - rss0) / args.peers
    registered = tracker.store.peer_count()
    if registered < args.peers + args.small:
        raise SystemExit(f"only {registered} of {args.peers + args.small} peers registered")
    small = min(find_cost(tracker, "small", args.finds, now) for _ in range(3))
    big = min(find_cost(tracker, "big", args.finds, now) for _ in range(3))
    result = {
        "peers": args.peers,
        "bytes_per_peer": per_peer,
        "find_us_small": small * 1e6,
        "find_us_big": big * 1e6,
        "find_ratio": big / small,
        "small": args.small,
        "register_us": populate_s / args.peers * 1e6,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.peers} registered peers: {per_peer:.0f} B RSS each "
              f"({result['register_us']:.0f} us CPU to CONNECT+JOIN one)")  # fmt: skip
        print(f"FIND (10 peers): {small * 1e6:.1f} us in a swarm of {args.small}, "
              f"{big * 1e6:.1f} us in one of {args.peers} ({big / small:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
