"""The peer implementations ``lab matrix --runner NAME`` can run."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Final

from stunlike_tracker.lab.agents import AGENT_PEERS, connect_agent
from stunlike_tracker.lab.aioice_pair import AioicePairRunner
from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.pairs import PairResult, RunnerFactory, RunPair
from stunlike_tracker.lab.topology import Topology
from stunlike_tracker.lab.tracker_runner import running_trackers, tracker_runner


@contextlib.contextmanager
def aioice_runner(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
    """Bare aioice peers (no tracker): the reference ICE behaviour."""
    yield AioicePairRunner(coturn)


def agent_runner(agent: str) -> RunnerFactory:
    """``lab matrix --agent NAME``: the seeder's side is a third-party
    WebRTC agent (ICE controlled, it answers), the leecher's side our peer's
    channel (controlling, it offers), both with ICE servers from our
    trackers (:mod:`stunlike_tracker.lab.agents`)."""
    if agent not in AGENT_PEERS:
        raise ValueError(f"unknown agent {agent!r}")

    @contextlib.contextmanager
    def factory(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
        cases = itertools.count(1)
        with running_trackers(lab, coturn) as trackers:

            def run_pair(
                lab: Topology, seeder_host: str, leecher_host: str, relay: bool, timeout: float
            ) -> PairResult:
                return connect_agent(
                    lab, trackers.tracker_ip, trackers.certs / "ca.pem", agent,
                    our_host=leecher_host, agent_host=seeder_host, our_role="offer",
                    relay=relay, timeout=timeout, tag=f"{agent}-case-{next(cases)}",
                )  # fmt: skip

            yield run_pair

    return factory


AGENTS: Final = ("aioice", *AGENT_PEERS)
"""``--agent`` choices; ``aioice`` is our own peer (the ``tracker`` runner)."""

RUNNERS: Final[dict[str, RunnerFactory]] = {
    "tracker": tracker_runner,
    "aioice": aioice_runner,
}
