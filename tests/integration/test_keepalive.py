"""The client keeps itself alive at the period the tracker gives (SPEC §3)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import TrackerClient
from stunlike_tracker.ppsp.messages import PeerMode
from tests.integration.support import Pki, client_for, client_settings, serve


@pytest.mark.asyncio
async def test_keepalive_outlives_the_track_timer_and_silence_does_not(pki: Pki) -> None:
    # keep-alive every 1 s against a 2.5 s track timer; we wait 4 s of timers.
    server = await serve(pki, TrackerConfig(lan_mode=True, keep_alive=1, track_timeout=2.5))
    alive = client_for(server, pki, "alive")
    quiet = replace(client_settings(server, pki), keep_alives=False)
    silent = TrackerClient(quiet, "silent")
    try:
        assert (await alive.connect()).keep_alive == 1
        await alive.join("x")
        await silent.connect()
        await silent.join("x", PeerMode.SEED)
        await asyncio.sleep(4.0)  # the timers under test run on real time
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
    from stunlike_tracker.server.endpoint import EndpointLimits

    limits = EndpointLimits(idle_timeout=0.5, eviction_interval=0.1, tick=0.1)
    server = await serve(pki, limits=limits)
    quiet = client_for(server, pki, "quiet")
    try:
        await quiet.connect()
        assert len(server.endpoint.sessions) == 1
        await asyncio.sleep(1.0)  # the eviction timer under test runs on real time
        assert len(server.endpoint.sessions) == 0
        assert server.endpoint.counters["sessions-evicted"] == 1
    finally:
        await quiet.close()
        await server.close()


@pytest.mark.asyncio
async def test_a_failing_timer_tick_does_not_stop_the_timers(pki: Pki) -> None:
    from stunlike_tracker.server.endpoint import EndpointLimits

    server = await serve(
        pki, TrackerConfig(lan_mode=True, init_timeout=0.5), limits=EndpointLimits(tick=0.1)
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
        await asyncio.sleep(1.5)  # the init timer under test runs on real time
        assert server.endpoint.drops["timer-error"] == 1
        assert calls["n"] > 3
        assert server.tracker.store.get_peer("short-lived") is None  # it still expired
    finally:
        await peer.close()
        await server.close()
