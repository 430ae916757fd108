"""The runner seam between the matrix and the peers it runs (interop/README.md).

A *runner factory* receives the lab and its coturn and returns, as a context
manager (so it can start and stop what it needs), a ``run_pair`` callable::

    run_pair(lab, seeder_host, leecher_host, relay, timeout) -> PairResult
                                                  (or an awaitable of one)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from stunlike_tracker.lab.coturn import Coturn
    from stunlike_tracker.lab.topology import Topology

Outcome = Literal["connected", "failed"]


@dataclasses.dataclass(frozen=True)
class PairResult:
    """What a ``run_pair`` reports for one attempt."""

    outcome: Outcome
    pair_type: str | None  # e.g. "srflx/prflx" (leecher's local/remote candidate types)
    connect_ms: float | None
    detail: str


RunPair = Callable[["Topology", str, str, bool, float], "PairResult | Awaitable[PairResult]"]
RunnerFactory = Callable[["Topology", "Coturn"], contextlib.AbstractContextManager[RunPair]]
