"""Tracker nodes sharing one store (PROTOCOL §9), on loopback ports."""

from __future__ import annotations

import secrets

from stunlike_tracker.core.config import TrackerConfig
from stunlike_tracker.server.app import RunningServer, ServerSettings, start_server
from tests.integration.support import Pki


async def start_nodes(
    pki: Pki, url: str, count: int, config: TrackerConfig | None = None
) -> list[RunningServer]:
    """``count`` nodes of one tracker: same store, certificates and cookie secret."""
    secret = secrets.token_bytes(32)
    nodes = []
    for _ in range(count):
        settings = ServerSettings(
            cert_pem=pki.server.cert_pem,
            key_pem=pki.server.key_pem,
            host="127.0.0.1",
            port=0,
            peer_ca_pem=pki.ca.cert_pem,
            cookie_secret=secret,
            tracker=config or TrackerConfig(lan_mode=True),
            store=url,
        )
        nodes.append(await start_server(settings))
    return nodes
