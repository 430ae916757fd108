"""A tracker in its own process that reports its counters (flood bench, soak).

Run by bench/flood_bench.py and tests/integration/soak.py, not by hand:
starts a tracker on 127.0.0.1
port 0 with the tracker's defaults (LAN mode, so loopback peers list their
candidates), prints ``listening PORT`` and then answers every line on stdin
with one JSON line: drop and event counters, associations, half-open
handshakes, registrations and RSS. Works with any tree of the project
(PYTHONPATH picks it), so the bench can compare a tree without budgets.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path

from stunlike_tracker.certs import make_ca, make_server_cert
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.server.app import ServerSettings, start_server


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main() -> None:
    ca = make_ca()
    cert = make_server_cert(ca)
    Path(sys.argv[1]).write_bytes(ca.cert_pem)  # noqa: ASYNC240 - before serving
    settings = ServerSettings(
        cert_pem=cert.cert_pem,
        key_pem=cert.key_pem,
        host="127.0.0.1",
        port=0,
        # argv[2]: optional JSON of TrackerConfig fields (the soak's short mode).
        tracker=TrackerConfig(
            lan_mode=True, **(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
        ),
    )
    server = await start_server(settings)
    print(f"listening {server.address[1]}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    endpoint = server.endpoint
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"quit":
            break
        budgets = getattr(endpoint, "budgets", None)
        report = {
            "drops": dict(endpoint.drops),
            "counters": dict(endpoint.counters),
            "sessions": len(endpoint.sessions),
            "half_open": budgets.half_open if budgets is not None else None,
            "peers": server.tracker.store.peer_count(),
            "rss_kib": _rss_kib(),
            "cpu_s": _cpu_seconds(),
        }
        print(json.dumps(report), flush=True)
    await server.close()


if __name__ == "__main__":
    try:  # what `serve` runs on when installed
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
