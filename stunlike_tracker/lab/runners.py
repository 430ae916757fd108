"""The peer implementations ``lab matrix --runner NAME`` can run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from stunlike_tracker.lab.aioice_pair import AioicePairRunner
from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.pairs import RunnerFactory, RunPair
from stunlike_tracker.lab.topology import Topology
from stunlike_tracker.lab.tracker_runner import tracker_runner


@contextlib.contextmanager
def aioice_runner(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
    """Bare aioice peers (no tracker): the reference ICE behaviour."""
    yield AioicePairRunner(coturn)


RUNNERS: Final[dict[str, RunnerFactory]] = {
    "tracker": tracker_runner,
    "aioice": aioice_runner,
}
