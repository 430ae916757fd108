"""The server endpoint's clock, injectable (issue 9: no test waits for time).

A ``Clock`` gives two readings and runs callbacks at a monotonic time:

* ``monotonic()``: DTLS retransmission timers, idle eviction, the event loop;
* ``wall()``: what the core is given as ``now``: deadlines in a shared store
  and TURN credential expiry must mean the same on every node (PROTOCOL §7, §9);
* ``call_at(when, callback)``: run ``callback`` once ``monotonic()`` reaches
  ``when``; the handle it returns can be cancelled.

``SystemClock`` is the real one (the running asyncio loop's timers).
``ManualClock`` stands still until told to ``advance``, running the due
callbacks in time order as it goes: tests drive keep-alive, expiry and
eviction timers through it in no real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...


class SystemClock:
    """``time.monotonic``/``time.time`` and the running event loop's timers."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        # loop.time() is monotonic too, but its origin may differ.
        return loop.call_at(loop.time() + max(0.0, when - self.monotonic()), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only in ``advance``; the wall clock keeps a fixed
    offset from the monotonic one."""

    def __init__(self, monotonic: float = 1_000.0, wall: float = 1_700_000_000.0) -> None:
        self._now = monotonic
        self._wall_offset = wall - monotonic
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    @property
    def pending(self) -> int:
        """Timers scheduled and not cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every callback that falls
        due on the way at its own time (callbacks may schedule more)."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.callback()
        self._now = target


__all__ = ["Clock", "ManualClock", "SystemClock", "TimerHandle"]
