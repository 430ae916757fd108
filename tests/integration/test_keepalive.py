"""The tracker's timers on a manual clock: a peer that keeps reporting outlives
the track timer, a silent one does not; idle associations are evicted; a
failing tick does not stop the timers (PROTOCOL §3). No test waits for real time:
the endpoint runs on a ``ManualClock`` and the test moves it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode
from stunlike_tracker.server.clock import ManualClock
from stunlike_tracker.server.endpoint import EndpointLimits
from tests.integration.support import Pki, client_for, client_settings, serve


@pytest.mark.asyncio
async def test_keepalive_outlives_the_track_timer_and_silence_does_not(pki: Pki) -> None:
    clock = ManualClock()
    config = TrackerConfig(lan_mode=True, keep_alive=25, track_timeout=90)
    server = await serve(pki, config, clock=clock)
    alive = client_for(server, pki, "alive")
    quiet = replace(client_settings(server, pki), keep_alives=False)
    silent = TrackerClient(quiet, "silent")
    try:
        assert (await alive.connect()).keep_alive == 25
        await alive.join("x")
        await silent.connect()
        await silent.join("x", PeerMode.SEED)
        # 4 x 25 s of tracker time: "alive" reports every period, "silent"
        # (keep-alives off) says nothing.
        for _ in range(4):
            clock.advance(25)
            assert (await alive.stat_report()).status == 200
        assert server.tracker.store.get_peer("alive") is not None
        assert server.tracker.store.get_peer("silent") is None
        assert server.tracker.store.member_count("x") == 1
        assert server.endpoint.counters["peers-expired"] == 1
    finally:
        await alive.close()
        await silent.close()
        await server.close()


@pytest.mark.asyncio
async def test_idle_associations_are_evicted(pki: Pki) -> None:
    clock = ManualClock()
    limits = EndpointLimits()
    server = await serve(pki, limits=limits, clock=clock)
    quiet = client_for(server, pki, "quiet")
    try:
        await quiet.connect()
        assert len(server.endpoint.sessions) == 1
        clock.advance(limits.idle_timeout - 1)
        assert len(server.endpoint.sessions) == 1
        clock.advance(1 + limits.eviction_interval + limits.tick)
        assert len(server.endpoint.sessions) == 0
        assert server.endpoint.counters["sessions-evicted"] == 1
    finally:
        await quiet.close()
        await server.close()


@pytest.mark.asyncio
async def test_a_failing_timer_tick_does_not_stop_the_timers(pki: Pki) -> None:
    clock = ManualClock()
    limits = EndpointLimits(tick=0.5)
    server = await serve(
        pki, TrackerConfig(lan_mode=True, init_timeout=30), limits=limits, clock=clock
    )
    real = server.tracker.on_timer
    calls = {"n": 0}

    def flaky(now: float) -> list[object]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("store went away once")
        return real(now)  # type: ignore[return-value]

    server.tracker.on_timer = flaky  # type: ignore[method-assign,assignment]
    peer = client_for(server, pki, "short-lived")
    try:
        await peer.connect()
        clock.advance(31)
        assert server.endpoint.drops["timer-error"] == 1
        assert calls["n"] > 3
        assert server.tracker.store.get_peer("short-lived") is None  # it still expired
    finally:
        await peer.close()
        await server.close()
