"""TURN REST credentials (PROTOCOL §7; coturn --use-auth-secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from stunlike_tracker.core.config import TurnConfig
from stunlike_tracker.ppsp.messages import TurnServer


def turn_credentials(secret: bytes, peer_id: str, expiry: int) -> tuple[str, str]:
    """username ``expiry:peerid``, password base64(HMAC-SHA1(secret, username))."""
    username = f"{expiry}:{peer_id}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def turn_servers(config: TurnConfig, peer_id: str, now: float) -> tuple[TurnServer, ...]:
    if not config.secrets:
        return ()
    username, password = turn_credentials(config.secrets[0], peer_id, int(now) + config.ttl)
    return tuple(TurnServer(uri, username, password, config.ttl) for uri in config.uris)
