"""Per-key token buckets for PROTOCOL §8 rate limits (503 TEMPORARILY OVERLOADED)."""

from __future__ import annotations


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved up, per key.

    Node-local and pure: ``now`` is passed in. Buckets that have refilled
    completely carry no information and are forgotten by ``prune``.
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        # A clock stepped backwards must not lock anyone out: no negative refill.
        tokens = min(self.burst, tokens + max(0.0, now - stamp) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        full_after = self.burst / self.rate if self.rate > 0 else 0.0
        stale = [k for k, (_, stamp) in self._buckets.items() if now - stamp >= full_after]
        for key in stale:
            del self._buckets[key]
