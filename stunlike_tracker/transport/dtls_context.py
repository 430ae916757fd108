"""DTLS 1.2 configuration: server and client contexts and the stateless hello check.

:class:`DtlsServerContext` holds the pyOpenSSL context shared by every
server session (certificate, AEAD-only suites, DTLS 1.2 only, client
verification) and the :class:`CookieKeys`; its
:meth:`~DtlsServerContext.check_client_hello_untrusted` is the stateless
pre-check of RFC 6347 §4.2.1 that runs before anything is allocated for a
source address.  :class:`DtlsClientContext` is the peer side, verifying the
tracker against a CA (never an accept-any callback) and, optionally, a
hostname.  Sessions live in :mod:`.dtls`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL, crypto

from .cookies import Address, CookieKeys
from .hello import HelloParseError, build_hello_verify_request, parse_client_hello_untrusted
from .records import MAX_DATAGRAM

__all__ = [
    "AEAD_CIPHERS",
    "DEFAULT_HANDSHAKE_RETRANSMITS",
    "DEFAULT_MTU",
    "DTLS1_2_VERSION",
    "MAX_MESSAGE_SIZE",
    "DtlsClientContext",
    "DtlsError",
    "DtlsServerContext",
    "HelloAction",
    "HelloResult",
]

DTLS1_2_VERSION: Final = 0xFEFD  # RFC 6347 §4.1; pyOpenSSL exports no DTLS constant
DEFAULT_MTU: Final = 1200
MAX_MESSAGE_SIZE: Final = 2**14  # RFC 5246 §6.2.1: one record's plaintext
DEFAULT_HANDSHAKE_RETRANSMITS: Final = 6  # 1+2+4+8+16+32 s, then give up

# PROTOCOL §8: AEAD suites only -- ECDHE with AES-GCM or ChaCha20-Poly1305
# (RFC 5289, RFC 7905).  OpenSSL cipher names, most preferred first.
AEAD_CIPHERS: Final = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ]
)


class DtlsError(Exception):
    """The one error type of this module (configuration, handshake, send)."""


class HelloAction(enum.Enum):
    VERIFY_REQUEST = "verify_request"
    ACCEPT = "accept"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class HelloResult:
    """Outcome of :meth:`DtlsServerContext.check_client_hello_untrusted`.

    ``verify_request`` is the HelloVerifyRequest datagram to send back (only
    for VERIFY_REQUEST); ``reason`` says why (``no-cookie``,
    ``invalid-cookie``) or, for DROP, what was wrong -- a counter label.
    """

    action: HelloAction
    verify_request: bytes = b""
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.action is HelloAction.ACCEPT


_ACCEPTED = HelloResult(HelloAction.ACCEPT, reason="cookie-ok")


# --------------------------------------------------------------------------
# contexts


def _load_chain(cert_pem: bytes) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise DtlsError(f"cannot load certificate PEM: {exc}") from exc
    if not chain:
        raise DtlsError("no certificate in PEM")
    return chain


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DtlsError(f"cannot load private key PEM: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise DtlsError("the private key must be EC or RSA")
    return key


def _base_context(method: int, *, server: bool) -> SSL.Context:
    ctx = SSL.Context(method)
    ctx.set_min_proto_version(DTLS1_2_VERSION)
    ctx.set_max_proto_version(DTLS1_2_VERSION)
    ctx.set_cipher_list(AEAD_CIPHERS.encode("ascii"))
    options = SSL.OP_NO_QUERY_MTU | SSL.OP_NO_COMPRESSION | SSL.OP_NO_TICKET
    options |= SSL.OP_NO_RENEGOTIATION  # RFC 5746 risk avoided: no renegotiation at all
    if server:
        options |= SSL.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_options(options)
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    return ctx


def _use_identity(ctx: SSL.Context, cert_pem: bytes, key_pem: bytes) -> None:
    chain = _load_chain(cert_pem)
    key = _load_key(key_pem)
    try:
        ctx.use_certificate(chain[0])
        for extra in chain[1:]:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(key)
        ctx.check_privatekey()
    except SSL.Error as exc:
        raise DtlsError(f"certificate and key do not fit: {exc}") from exc


def _trust(ctx: SSL.Context, ca_pem: bytes) -> list[x509.Certificate]:
    cas = _load_chain(ca_pem)
    store = ctx.get_cert_store()
    if store is None:  # pragma: no cover - OpenSSL always has one
        raise DtlsError("no certificate store")
    for ca in cas:
        store.add_cert(crypto.X509.from_cryptography(ca))
    return cas


class DtlsServerContext:
    """Server-wide DTLS configuration, the cookie keys and the stateless hello check."""

    def __init__(
        self,
        cert_pem: bytes,
        key_pem: bytes,
        *,
        ca_pem: bytes | None = None,
        require_client_cert: bool = False,
        cookie_keys: CookieKeys,
        mtu: int = DEFAULT_MTU,
        handshake_retransmits: int = DEFAULT_HANDSHAKE_RETRANSMITS,
        record_layer: bool = True,
    ) -> None:
        if require_client_cert and ca_pem is None:
            raise DtlsError("require_client_cert needs ca_pem (the CA issuing peer certificates)")
        if not 256 <= mtu <= MAX_DATAGRAM:
            raise DtlsError("mtu must be between 256 and 65535")
        self.cookie_keys = cookie_keys
        self.mtu = mtu
        self.handshake_retransmits = handshake_retransmits
        self.require_client_cert = require_client_cert
        # After the handshake, sessions seal and open records themselves and
        # drop the OpenSSL connection (:mod:`.record_layer`); False keeps
        # OpenSSL for the whole association (the pyOpenSSL baseline).
        self.record_layer = record_layer
        ctx = _base_context(SSL.DTLS_SERVER_METHOD, server=True)
        _use_identity(ctx, cert_pem, key_pem)
        if ca_pem is not None:
            for ca in _trust(ctx, ca_pem):
                ctx.add_client_ca(ca)
            mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
            if require_client_cert:
                mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
            ctx.set_verify(mode)  # OpenSSL's own chain verification, no callback
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        ctx.set_cookie_generate_callback(self._openssl_generate_cookie)
        ctx.set_cookie_verify_callback(self._openssl_verify_cookie)
        self._ssl_context = ctx

    # -- the stateless pre-check (PROTOCOL §8, RFC 6347 §4.2.1) -------------

    def check_client_hello_untrusted(
        self, datagram: bytes, addr: Address, now: float
    ) -> HelloResult:
        """Decide, without allocating per-client state, what to do with *datagram*.

        VERIFY_REQUEST: send ``result.verify_request`` to *addr* (never larger
        than *datagram*); ACCEPT: create a :class:`DtlsServerSession` and feed
        it this datagram; DROP: count ``result.reason``.
        """
        try:
            hello = parse_client_hello_untrusted(datagram)
        except HelloParseError as exc:
            return HelloResult(HelloAction.DROP, reason=str(exc))
        keys = self.cookie_keys
        if hello.cookie:
            if keys.verify_cookie(hello.cookie, addr, now):
                return _ACCEPTED
            # RFC 6347 §4.2.1: treat a bad cookie like no cookie -- a new HVR.
            reason = "invalid-cookie"
        else:
            reason = "no-cookie"
        hvr = build_hello_verify_request(hello, keys.make_cookie(addr, now))
        if len(hvr) > len(datagram):  # PROTOCOL §8: never amplify toward an unverified address
            return HelloResult(HelloAction.DROP, reason="hvr-larger-than-hello")
        return HelloResult(HelloAction.VERIFY_REQUEST, verify_request=hvr, reason=reason)

    # -- OpenSSL's cookie callbacks, used by DTLSv1_listen() ------------

    def _openssl_generate_cookie(self, conn: SSL.Connection) -> bytes:
        data = conn.get_app_data()
        if not isinstance(data, _ListenData):
            return bytes(16)  # never verifies: no session is listening without data
        return self.cookie_keys.make_cookie(data.addr, data.now)

    def _openssl_verify_cookie(self, conn: SSL.Connection, cookie: bytes) -> bool:
        data = conn.get_app_data()
        if not isinstance(data, _ListenData):
            return False
        return self.cookie_keys.verify_cookie(cookie, data.addr, data.now)


def _hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    """RFC 6125 §6.4 subset: subjectAltName only, one left-most ``*`` label."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    want = hostname.rstrip(".").lower()
    for name in san.get_values_for_type(x509.DNSName):
        pattern = name.rstrip(".").lower()
        if pattern == want:
            return True
        if pattern.startswith("*.") and "." in want:
            head, _, rest = want.partition(".")
            if head and rest == pattern[2:]:
                return True
    return False


class DtlsClientContext:
    """Client-side DTLS configuration; verifies the tracker against *ca_pem*.

    With ``ca_pem=None`` the system trust store is used.  *verify_hostname*
    (a DNS name or IP literal) is checked against the server certificate's
    subjectAltName on top of OpenSSL's chain verification.
    """

    def __init__(
        self,
        *,
        ca_pem: bytes | None,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        verify_hostname: str | None = None,
        mtu: int = DEFAULT_MTU,
        handshake_retransmits: int = DEFAULT_HANDSHAKE_RETRANSMITS,
        cipher_list: str | None = None,
    ) -> None:
        if (cert_pem is None) != (key_pem is None):
            raise DtlsError("cert_pem and key_pem go together")
        if not 256 <= mtu <= MAX_DATAGRAM:
            raise DtlsError("mtu must be between 256 and 65535")
        self.mtu = mtu
        self.handshake_retransmits = handshake_retransmits
        self.verify_hostname = verify_hostname
        ctx = _base_context(SSL.DTLS_CLIENT_METHOD, server=False)
        if cipher_list is not None:  # tests only: prove the server refuses non-AEAD
            try:
                ctx.set_cipher_list(cipher_list.encode("ascii"))
            except SSL.Error as exc:
                raise DtlsError(f"bad cipher list: {exc}") from exc
        if cert_pem is not None and key_pem is not None:
            _use_identity(ctx, cert_pem, key_pem)
        if ca_pem is not None:
            _trust(ctx, ca_pem)
        else:
            ctx.set_default_verify_paths()
        if verify_hostname is not None:
            ctx.set_verify(SSL.VERIFY_PEER, self._verify_with_hostname)
        else:
            ctx.set_verify(SSL.VERIFY_PEER)
        self._ssl_context = ctx

    def _verify_with_hostname(
        self, conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        # OpenSSL's verdict stands; the hostname can only turn a pass into a fail.
        if not ok:
            return False
        if depth == 0 and self.verify_hostname is not None:
            return _hostname_matches(cert.to_cryptography(), self.verify_hostname)
        return True


@dataclass(slots=True)
class _ListenData:
    """App data of a server connection for the cookie callbacks (quirk 4).

    Kept for the connection's life: OpenSSL checks the cookie again when
    ``do_handshake()`` processes the ClientHello that ``DTLSv1_listen()``
    accepted.  Not the session itself, to avoid a reference cycle.
    """

    addr: Address
    now: float
