"""Latency histograms as plain counters (read by the metrics exporter).

``observe`` is a bisect and two additions: the hot path pays no more. The
Prometheus side turns the per-bucket counts into cumulative buckets at
scrape time.
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds, seconds: 50 us .. 1 s (a request through the core takes ~100 us).
BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
    1.0,
)


class LatencyHistograms:
    """Per label: counts per bucket (the last one is +Inf) and the sum."""

    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, label: str, seconds: float) -> None:
        counts = self.counts.get(label)
        if counts is None:
            counts = self.counts[label] = [0] * (len(BUCKETS) + 1)
            self.sums[label] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.sums[label] += seconds
