"""The status page and /status.json: swarms, peer counts by mode and NAT
class, what peers reported in STAT_REPORT, recent introductions, uptime.

Built at request time from the store (O(peers); one scrape, not per
datagram). A store that cannot list its peers shows totals only.
"""

from __future__ import annotations

import datetime
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from stunlike_tracker.http.metrics import peer_count, swarm_count, version
from stunlike_tracker.ppsp.chunkmap import decode_chunk_map
from stunlike_tracker.ppsp.messages import Representation
from stunlike_tracker.server.app import RunningServer
from stunlike_tracker.store.records import PeerRecord

# A content map spanning more chunks than this is not summed up (a peer
# could claim chunk 2^64 and make the union huge).
MAX_COVERAGE_SPAN = 1 << 20


@runtime_checkable
class ListsPeers(Protocol):
    def peers(self) -> list[PeerRecord]: ...


@dataclass
class _Coverage:
    # Union of the chunks reported present, as a bit set relative to ``base``.
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (start, nbits, bits)

    def add(self, representation: Representation) -> None:
        for seg in representation.segments:
            bitmap = decode_chunk_map(seg)
            if bitmap is None or seg.start is None:
                continue
            nbits = len(bitmap) * 8
            if seg.end is not None:
                nbits = min(nbits, seg.end - seg.start + 1)
            if seg.chunkmap_size is not None:
                nbits = min(nbits, seg.chunkmap_size)
            if nbits <= 0:
                continue
            bits = int.from_bytes(bitmap, "big") >> (len(bitmap) * 8 - nbits)
            self.segments.append((seg.start, nbits, bits))

    def summary(self) -> dict[str, Any] | None:
        if not self.segments:
            return None
        first = min(s for s, _, _ in self.segments)
        last = max(s + n - 1 for s, n, _ in self.segments)
        span = last - first + 1
        if span > MAX_COVERAGE_SPAN:
            return {"first_chunk": first, "last_chunk": last, "chunks": span, "covered": None}
        union = 0
        for start, nbits, bits in self.segments:
            # MSB first: bit 0 of the map is chunk ``start``.
            union |= bits << (last - (start + nbits - 1))
        covered = union.bit_count()
        return {
            "first_chunk": first,
            "last_chunk": last,
            "chunks": span,
            "covered": covered,
            "coverage": round(covered / span, 4),
        }


def _swarms(records: list[PeerRecord]) -> list[dict[str, Any]]:
    modes: dict[str, Counter[str]] = {}
    nat: dict[str, Counter[str]] = {}
    uploaded: Counter[str] = Counter()
    downloaded: Counter[str] = Counter()
    reporters: Counter[str] = Counter()
    coverage: dict[tuple[str, str], _Coverage] = {}
    for record in records:
        for membership in record.memberships:
            sid = membership.swarm_id
            modes.setdefault(sid, Counter())[membership.mode.value] += 1
            nat.setdefault(sid, Counter())[record.nat_ability.value] += 1
        for stats in record.stream_stats:
            reporters[stats.swarm_id] += 1
            uploaded[stats.swarm_id] += stats.uploaded_bytes or 0
            downloaded[stats.swarm_id] += stats.downloaded_bytes or 0
        for swarm_id, representation in record.content_maps:
            coverage.setdefault((swarm_id, representation.id), _Coverage()).add(representation)
    swarms = []
    for sid in sorted(modes):
        content = []
        for (swarm_id, rep_id), cov in sorted(coverage.items()):
            summary = cov.summary() if swarm_id == sid else None
            if summary is not None:
                content.append({"representation": rep_id, **summary})
        swarms.append(
            {
                "swarm_id": sid,
                "peers": sum(modes[sid].values()),
                "modes": {"SEED": modes[sid]["SEED"], "LEECH": modes[sid]["LEECH"]},
                "nat": dict(sorted(nat[sid].items())),
                "reports": reporters[sid],
                "uploaded_bytes": uploaded[sid],
                "downloaded_bytes": downloaded[sid],
                "content": content,
            }
        )
    return swarms


def _iso(when: float) -> str:
    stamp = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def snapshot(node: RunningServer) -> dict[str, Any]:
    endpoint, tracker = node.endpoint, node.tracker
    now = endpoint.wall()
    store = tracker.store
    records = None
    if node.shared is None and isinstance(store, ListsPeers):
        records = store.peers()
    answers = tracker.answers
    return {
        "version": version(),
        "node_id": tracker.config.node_id,
        "started_at": _iso(endpoint.started_at),
        "uptime_seconds": round(now - endpoint.started_at, 1),
        "draining": endpoint.draining,
        "udp": f"{node.address[0]}:{node.address[1]}",
        "identity_mode": tracker.config.identity_mode,
        "totals": {
            "sessions": len(endpoint.sessions),
            "peers": peer_count(node),
            "swarms": swarm_count(node),
            "requests": sum(answers.values()),
            "errors": sum(c for (_, status), c in answers.items() if status >= 400),
            "stun_responses": endpoint.stun.answered,
            "handshakes": endpoint.counters["dtls-handshakes"],
            "dropped": sum(endpoint.drops.values()) + sum(endpoint.stun.drops.values()),
            "pending_attaches": len(tracker.attaches),
        },
        "swarms": None if records is None else _swarms(records),
        "introductions": [
            {
                "at": _iso(i.at),
                "swarm_id": i.swarm_id,
                "requester": i.requester_id,
                "target": i.target_id,
                "status": i.status,
                "reason": i.reason,
            }
            for i in reversed(tracker.recent_introductions)
        ],
    }


def render_json(node: RunningServer) -> str:
    return json.dumps(snapshot(node), indent=2) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value))


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    text = f"{hours:02d}:{minutes:02d}:{s:02d}"
    return f"{days}d {text}" if days else text


_NAT_LABELS = {"NoNAT": "no NAT", "STUN": "behind NAT", "TURN": "relayed", "PROXY": "proxied"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left}
th{background:#f0f0f0} td.n{text-align:right} .muted{color:#777}
"""


def render_html(node: RunningServer) -> str:
    snap = snapshot(node)
    totals = snap["totals"]
    rows = []
    for swarm in snap["swarms"] or []:
        nat = ", ".join(f"{_NAT_LABELS.get(k, _e(k))} {v}" for k, v in swarm["nat"].items())
        content = (
            "; ".join(
                f"{_e(c['representation'])}: "
                + (
                    f"{c['covered']}/{c['chunks']} chunks ({c['coverage']:.0%})"
                    if c["covered"] is not None
                    else f"{c['chunks']} chunks (too wide to sum)"
                )
                for c in swarm["content"]
            )
            or '<span class="muted">no content maps</span>'
        )
        rows.append(
            f"<tr><td>{_e(swarm['swarm_id'])}</td><td class=n>{swarm['peers']}</td>"
            f"<td class=n>{swarm['modes']['SEED']}</td><td class=n>{swarm['modes']['LEECH']}</td>"
            f"<td>{nat}</td><td class=n>{swarm['reports']}</td>"
            f"<td class=n>{_bytes(swarm['uploaded_bytes'])}</td>"
            f"<td class=n>{_bytes(swarm['downloaded_bytes'])}</td><td>{content}</td></tr>"
        )
    if snap["swarms"] is None:
        swarm_table = (
            "<p class=muted>Swarms live in the shared store: this node does not list them.</p>"
        )
    elif not rows:
        swarm_table = "<p class=muted>No swarms yet.</p>"
    else:
        swarm_table = (
            "<table id=swarms><tr><th>swarm</th><th>peers</th><th>seeds</th><th>leeches</th>"
            "<th>NAT class</th><th>reports</th><th>uploaded</th><th>downloaded</th>"
            "<th>content coverage</th></tr>" + "".join(rows) + "</table>"
        )
    intro_rows = "".join(
        f"<tr><td>{_e(i['at'])}</td><td>{_e(i['swarm_id'])}</td><td>{_e(i['requester'])}</td>"
        f"<td>{_e(i['target'])}</td><td>{i['status']} {_e(i['reason'])}</td></tr>"
        for i in snap["introductions"]
    )
    intro_table = (
        "<table id=introductions><tr><th>when (UTC)</th><th>swarm</th><th>from</th><th>to</th>"
        "<th>outcome</th></tr>" + intro_rows + "</table>"
        if intro_rows
        else "<p class=muted>No introductions yet.</p>"
    )
    swarms_total = "?" if totals["swarms"] is None else totals["swarms"]
    peers_total = "?" if totals["peers"] is None else totals["peers"]
    state = " (draining)" if snap["draining"] else ""
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta http-equiv=refresh content=10>
<title>stunlike-tracker {_e(snap["node_id"])}</title><style>{_STYLE}</style></head>
<body>
<h1>stunlike-tracker{state}</h1>
<p>Version {_e(snap["version"])}, node {_e(snap["node_id"])}, UDP {_e(snap["udp"])},
identity mode {_e(snap["identity_mode"])}. Up {_duration(snap["uptime_seconds"])}
since {_e(snap["started_at"])}.</p>
<p id=totals>{peers_total} peers in {swarms_total} swarms, {totals["sessions"]} sessions;
{totals["requests"]} requests answered ({totals["errors"]} errors), {totals["handshakes"]}
handshakes, {totals["stun_responses"]} STUN responses, {totals["dropped"]} datagrams dropped,
{totals["pending_attaches"]} introductions in flight.</p>
<h2>Swarms</h2>
{swarm_table}
<h2>Recent introductions</h2>
{intro_table}
<p class=muted>Also as <a href="/status.json">/status.json</a> and
<a href="/metrics">/metrics</a>. Refreshes every 10 s.</p>
</body></html>
"""
