"""Fixtures shared by the loopback tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from stunlike_tracker.server.app import RunningServer
from tests.integration.support import Pki, make_pki, serve


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


@pytest_asyncio.fixture
async def server(pki: Pki) -> AsyncIterator[RunningServer]:
    running = await serve(pki)
    yield running
    await running.close()
