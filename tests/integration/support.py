"""Helpers for loopback tests: certificates made in code, a tracker on port 0."""

from __future__ import annotations

from dataclasses import dataclass

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
from stunlike_tracker.server.clock import Clock
from stunlike_tracker.server.endpoint import EndpointLimits


@dataclass
class Pki:
    ca: CertificateAuthority
    server: IssuedCert

    def peer(self, peer_id: str) -> IssuedCert:
        return make_peer_cert(self.ca, peer_id)


def make_pki() -> Pki:
    ca = make_ca()
    return Pki(ca, make_server_cert(ca))


async def serve(
    pki: Pki,
    config: TrackerConfig | None = None,
    *,
    mutual: bool = False,
    limits: EndpointLimits | None = None,
    clock: Clock | None = None,
) -> RunningServer:
    settings = ServerSettings(
        cert_pem=pki.server.cert_pem,
        key_pem=pki.server.key_pem,
        host="127.0.0.1",
        port=0,
        peer_ca_pem=pki.ca.cert_pem,
        mutual=mutual,
        tracker=config or TrackerConfig(lan_mode=True),
        limits=limits or EndpointLimits(),
    )
    return await start_server(settings, clock=clock)


def client_settings(
    server: RunningServer, pki: Pki, *, cert: IssuedCert | None = None
) -> ClientSettings:
    return ClientSettings(
        tracker=server.address,
        ca_pem=pki.ca.cert_pem,
        server_name="localhost",
        cert_pem=cert.cert_pem if cert else None,
        key_pem=cert.key_pem if cert else None,
        local_host="127.0.0.1",
    )


def client_for(
    server: RunningServer, pki: Pki, peer_id: str, *, cert: IssuedCert | None = None
) -> TrackerClient:
    return TrackerClient(client_settings(server, pki, cert=cert), peer_id)
