"""Backends the store conformance suite runs against (chihaya habit)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from stunlike_tracker.store.contract import TrackerStore
from stunlike_tracker.store.memory import MemoryStore


@pytest.fixture(params=["memory"])
def store(request: pytest.FixtureRequest) -> Iterator[TrackerStore]:
    if request.param == "memory":
        yield MemoryStore(random.Random(7))
