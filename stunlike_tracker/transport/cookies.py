"""Stateless DTLS cookies (RFC 6347 §4.2.1), shareable between tracker nodes.

A cookie is ``HMAC-SHA256(key, label || time bucket || client address)``
truncated to :data:`COOKIE_LENGTH` bytes.  Nothing is stored per client: the
server recomputes the MAC when the ClientHello comes back (PROTOCOL §8: "no
per-client state before the cookie checks out").

* The time bucket is ``floor(now / bucket_seconds)``; a cookie verifies in
  its own bucket and the next one, so it lives between one and two bucket
  lengths (default 60 s).
* :class:`CookieKeys` holds a current and a previous 32-byte secret.
  Cookies are made with the current one and verified against both, so one
  :meth:`CookieKeys.rotate` keeps outstanding cookies valid and a second
  one retires them.  Nodes of one logical tracker (PROTOCOL §9) share the key:
  build it with :meth:`CookieKeys.from_shared_key` from the same secret.
* Every comparison is :func:`hmac.compare_digest` (RFC 6347 §4.2.1 asks for
  a cookie an attacker cannot forge; a timing leak would help forging).

Pure: no clock read and no socket (``socket.inet_pton`` only converts
text), the caller passes ``now`` (seconds, any monotonic base
shared by the nodes -- wall-clock time when keys are shared across hosts).
"""

from __future__ import annotations

import hmac
import math
import os
import socket
import struct
from typing import Any

__all__ = [
    "COOKIE_LENGTH",
    "KEY_LENGTH",
    "Address",
    "CookieKeys",
    "derive_cookie_key",
    "encode_address",
]

KEY_LENGTH = 32
COOKIE_LENGTH = 16
"""128 bits of MAC: forging needs 2^127 online guesses per address and bucket."""

_LABEL = b"stunlike-tracker dtls cookie v1\x00"
_DERIVE_LABEL = b"stunlike-tracker dtls cookie key v1"
_BUCKET = struct.Struct("!q")
_PORT = struct.Struct("!H")

Address = tuple[Any, ...]
"""A socket address as asyncio reports it: ``(host, port)`` or ``(host, port, flow, scope)``."""


def encode_address(addr: Address) -> bytes:
    """A canonical byte string for a UDP source address (family, IP, port).

    ``inet_pton`` (not :mod:`ipaddress`, 20x slower) canonicalises the text
    form, so ``::1`` and ``0:0::1`` give the same bytes; an IPv6 zone
    (``%eth0``) is not part of the address.  Anything that is not an IP
    literal is encoded as tagged text.
    """
    host, port = addr[0], addr[1]
    port_bytes = _PORT.pack(int(port) & 0xFFFF)
    if isinstance(host, str):
        try:
            if ":" in host:
                return (
                    b"\x06" + socket.inet_pton(socket.AF_INET6, host.partition("%")[0]) + port_bytes
                )
            return b"\x04" + socket.inet_pton(socket.AF_INET, host) + port_bytes
        except OSError:
            pass
    raw = str(host).encode("utf-8", "surrogateescape")
    return b"\x00" + _PORT.pack(len(raw) & 0xFFFF) + raw + port_bytes


def derive_cookie_key(shared_secret: bytes) -> bytes:
    """A 32-byte cookie key derived from a shared secret of any length ≥ 16."""
    if len(shared_secret) < 16:
        raise ValueError("the shared cookie secret must be at least 16 bytes")
    return hmac.digest(shared_secret, _DERIVE_LABEL, "sha256")


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_LENGTH:
        raise ValueError(f"a cookie key is exactly {KEY_LENGTH} bytes")
    return key


class CookieKeys:
    """The current and previous cookie secrets and the time-bucket length."""

    __slots__ = ("_bucket_seconds", "_current", "_previous")

    def __init__(
        self,
        current: bytes,
        previous: bytes | None = None,
        *,
        bucket_seconds: float = 60.0,
    ) -> None:
        if not (bucket_seconds > 0 and math.isfinite(bucket_seconds)):
            raise ValueError("bucket_seconds must be a positive finite number")
        self._current = _check_key(current)
        self._previous = _check_key(previous) if previous is not None else None
        self._bucket_seconds = float(bucket_seconds)

    @classmethod
    def generate(cls, *, bucket_seconds: float = 60.0) -> CookieKeys:
        """Fresh random keys (a single-node tracker)."""
        return cls(os.urandom(KEY_LENGTH), bucket_seconds=bucket_seconds)

    @classmethod
    def from_shared_key(
        cls,
        shared_secret: bytes,
        previous_shared_secret: bytes | None = None,
        *,
        bucket_seconds: float = 60.0,
    ) -> CookieKeys:
        """Keys every node derives identically from the configured shared secret(s)."""
        previous = (
            derive_cookie_key(previous_shared_secret)
            if previous_shared_secret is not None
            else None
        )
        return cls(derive_cookie_key(shared_secret), previous, bucket_seconds=bucket_seconds)

    @property
    def bucket_seconds(self) -> float:
        return self._bucket_seconds

    def rotate(self, new_key: bytes | None = None) -> None:
        """Make *new_key* (random if None) current; the current key becomes previous."""
        new = _check_key(new_key) if new_key is not None else os.urandom(KEY_LENGTH)
        self._previous, self._current = self._current, new

    def bucket(self, now: float) -> int:
        return math.floor(now / self._bucket_seconds)

    @staticmethod
    def _mac(key: bytes, bucket: int, addr_bytes: bytes) -> bytes:
        msg = _LABEL + _BUCKET.pack(bucket) + addr_bytes
        return hmac.digest(key, msg, "sha256")[:COOKIE_LENGTH]

    def make_cookie(self, client_addr: Address, now: float) -> bytes:
        """A cookie for *client_addr* in the current bucket, with the current key."""
        return self._mac(self._current, self.bucket(now), encode_address(client_addr))

    def verify_cookie(self, cookie: bytes, client_addr: Address, now: float) -> bool:
        """True if *cookie* was made for *client_addr* in this or the previous
        bucket, with the current or the previous key."""
        if len(cookie) != COOKIE_LENGTH:
            return False
        addr_bytes = encode_address(client_addr)
        bucket = self.bucket(now)
        keys = (self._current,) if self._previous is None else (self._current, self._previous)
        ok = False
        for key in keys:
            for b in (bucket, bucket - 1):
                # no early exit: the work done does not depend on which candidate matched
                ok |= hmac.compare_digest(self._mac(key, b, addr_bytes), cookie)
        return ok
