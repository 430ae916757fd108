"""Prometheus metrics, collected at scrape time from the node's plain counters.

The UDP path only increments counters (``Tracker.answers``,
``TrackerEndpoint.counters``/``drops``, the STUN responder's, the latency
buckets); a custom collector turns them into metric families when
``/metrics`` is read. Every counter another module adds to
``TrackerEndpoint.counters`` appears as ``stunlike_events_total{event=...}``
without changes here.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata
from itertools import accumulate

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from stunlike_tracker.server.app import RunningServer
from stunlike_tracker.server.latency import BUCKETS


def version() -> str:
    try:
        return metadata.version("stunlike-tracker")
    except metadata.PackageNotFoundError:
        return "unknown"


def swarm_count(node: RunningServer) -> int | None:
    """Swarms with at least one member, when the store can tell cheaply."""
    if node.shared is not None:
        return None  # a shared store: the whole tracker's, not this node's to count
    count = getattr(node.tracker.store, "swarm_count", None)
    return int(count()) if callable(count) else None


def peer_count(node: RunningServer) -> int | None:
    """Registered peers (the embedded store only, see ``swarm_count``)."""
    if node.shared is not None:
        return None
    return node.tracker.store.peer_count()


class NodeCollector(Collector):
    def __init__(self, node: RunningServer) -> None:
        self.node = node
        self.version = version()

    def collect(self) -> Iterator[Metric]:
        node = self.node
        endpoint, tracker = node.endpoint, node.tracker
        config = tracker.config

        info = GaugeMetricFamily(
            "stunlike_info", "version and node of this tracker", labels=["version", "node_id"]
        )
        info.add_metric([self.version, config.node_id], 1)
        yield info

        requests = CounterMetricFamily(
            "stunlike_requests",
            "PPSP requests answered, by request and status (invalid: not parsed)",
            labels=["request", "status"],
        )
        for (method, status), count in sorted(tracker.answers.items()):
            requests.add_metric([method, str(status)], count)
        yield requests
        yield CounterMetricFamily(
            "stunlike_response_replays",
            "retransmitted requests answered from the response cache",
            value=tracker.replays,
        )
        yield CounterMetricFamily(
            "stunlike_stun_responses",
            "STUN Binding responses sent (success and 420)",
            value=endpoint.stun.answered,
        )
        yield CounterMetricFamily(
            "stunlike_handshakes",
            "DTLS handshakes completed",
            value=endpoint.counters["dtls-handshakes"],
        )
        dropped = CounterMetricFamily(
            "stunlike_dropped_datagrams",
            "datagrams and requests not answered, by reason",
            labels=["reason"],
        )
        for reason, count in sorted((endpoint.drops + endpoint.stun.drops).items()):
            dropped.add_metric([reason], count)
        yield dropped
        events = CounterMetricFamily(
            "stunlike_events", "other endpoint events, by name", labels=["event"]
        )
        for event, count in sorted(endpoint.counters.items()):
            events.add_metric([event], count)
        yield events

        yield GaugeMetricFamily(
            "stunlike_sessions", "DTLS associations held", value=len(endpoint.sessions)
        )
        peers = peer_count(node)
        if peers is not None:
            yield GaugeMetricFamily("stunlike_peers", "registered peers", value=peers)
        swarms = swarm_count(node)
        if swarms is not None:
            yield GaugeMetricFamily("stunlike_swarms", "swarms with members", value=swarms)
        yield GaugeMetricFamily(
            "stunlike_pending_attaches",
            "ATTACH introductions in flight",
            value=len(tracker.attaches),
        )
        yield GaugeMetricFamily(
            "stunlike_draining",
            "1 while the node drains after SIGTERM",
            value=int(endpoint.draining),
        )
        yield GaugeMetricFamily(
            "stunlike_start_time_seconds",
            "when the node started (Unix time)",
            value=endpoint.started_at,
        )

        latency = HistogramMetricFamily(
            "stunlike_request_duration_seconds",
            "time to handle one PPSP request in the core, by request",
            labels=["request"],
        )
        histograms = endpoint.latency
        bounds = [repr(b) for b in BUCKETS] + ["+Inf"]
        for method, counts in sorted(histograms.counts.items()):
            cumulative = list(accumulate(counts))
            latency.add_metric(
                [method], list(zip(bounds, cumulative, strict=True)), histograms.sums[method]
            )
        yield latency


class MetricsExporter:
    """A registry of its own per node (tests run several nodes in one process)."""

    def __init__(self, node: RunningServer) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(node))
        self.registry.register(ProcessCollector(registry=None))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
