"""A real tracker on 127.0.0.1 port 0, with certificates made in code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
import uvloop

from stunlike_tracker.certs import (
    CertificateAuthority,
    IssuedCert,
    make_ca,
    make_peer_cert,
    make_server_cert,
)
from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.peer.client import ClientSettings, TrackerClient
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server


@dataclass
class Pki:
    ca: CertificateAuthority
    server: IssuedCert

    def peer(self, peer_id: str) -> IssuedCert:
        return make_peer_cert(self.ca, peer_id)


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = make_ca()
    return Pki(ca, make_server_cert(ca))


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every test here runs on the default asyncio loop and on uvloop."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


async def serve(
    pki: Pki, config: TrackerConfig | None = None, *, mutual: bool = False
) -> RunningServer:
    settings = ServerSettings(
        cert_pem=pki.server.cert_pem,
        key_pem=pki.server.key_pem,
        host="127.0.0.1",
        port=0,
        peer_ca_pem=pki.ca.cert_pem,
        mutual=mutual,
        tracker=config or TrackerConfig(lan_mode=True),
    )
    return await start_server(settings)


@pytest_asyncio.fixture
async def server(pki: Pki) -> AsyncIterator[RunningServer]:
    running = await serve(pki)
    yield running
    await running.close()


def client_for(
    server: RunningServer, pki: Pki, peer_id: str, *, cert: IssuedCert | None = None, **kw: object
) -> TrackerClient:
    settings = ClientSettings(
        tracker=server.address,
        ca_pem=pki.ca.cert_pem,
        server_name="localhost",
        cert_pem=cert.cert_pem if cert else None,
        key_pem=cert.key_pem if cert else None,
        local_host="127.0.0.1",
        **kw,  # type: ignore[arg-type]
    )
    return TrackerClient(settings, peer_id)
