"""DTLS 1.2 sessions over pyOpenSSL memory BIOs, sans-I/O (datagrams in, datagrams out).

Theory of operation
-------------------
The API follows aioquic: the caller feeds received datagrams with
:meth:`feed`, sends whatever :meth:`datagrams_to_send` returns, reads
decrypted application messages with :meth:`receive`, and keeps one timer
armed at :meth:`get_timer`, calling :meth:`handle_timer` when it fires.
Nothing here reads a clock or touches a socket: ``now`` is passed in.

Server side, two steps (PROTOCOL §8, RFC 6347 §4.2.1):

1. :meth:`DtlsServerContext.check_client_hello_untrusted` runs on every
   DTLS datagram from an address that has no session yet.  It hand-parses
   the ClientHello (:mod:`.hello`) and, statelessly, either answers with a
   HelloVerifyRequest carrying a fresh cookie (:mod:`.cookies`), accepts a
   ClientHello whose cookie checks out, or drops.  No pyOpenSSL object is
   created for a hello that has not proved its source address.
2. On *accept* the caller creates a :class:`DtlsServerSession` and feeds it
   the same datagram.

How OpenSSL's own cookie exchange fits in: the session's first datagram
goes through ``DTLSv1_listen()``, which is what puts an OpenSSL server
connection into the state RFC 6347 §4.2.2 needs after a stateless
exchange (the second ClientHello carries ``message_seq`` 1 and the server's
next flight must continue from it; a plain ``do_handshake()`` on a fresh
connection would wait forever for message 0).  ``DTLSv1_listen()`` checks
the cookie through the context's cookie callbacks, which use the *same*
:class:`CookieKeys` with the session's address and ``now`` as app data
(FIELD-NOTES quirk 4) -- the cookie is verified twice, once by us before
allocating, once by OpenSSL; both agree because they share keys, address
and ``now``.  The OpenSSL in pyOpenSSL 26's wheel (4.0) keeps the
ClientHello that ``DTLSv1_listen()`` accepted and answers it on the first
``do_handshake()``; FIELD-NOTES quirk 2 saw builds that consumed it, so if
that first ``do_handshake()`` produces nothing the datagram is written
again (a duplicate is harmless: OpenSSL drops it as a replay).

Retransmission and time
-----------------------
OpenSSL runs its DTLS handshake timer on its own wall clock (RFC 6347
§4.2.4: 1 s initial, doubling, 60 s cap) and pyOpenSSL has no hook to
change that (FIELD-NOTES quirk 5).  The session therefore keeps the
timer in caller time: when OpenSSL sends a flight and arms its timer, the
session's deadline becomes ``now + OpenSSL's timeout``.  When
:meth:`handle_timer` runs past that deadline it first asks OpenSSL
(``DTLSv1_handle_timeout``), which retransmits with fresh record sequence
numbers if its clock agrees (the normal case in production, where caller
time is real time).  If OpenSSL's clock says "not yet" (a test driving
``now`` forward), the session resends the last flight's datagrams byte for
byte and doubles its own timeout.  A byte-identical copy is still a valid
retransmission (RFC 6347 §4.1.2.6: only records already *received* are
discarded as replays).  One case needs help: a server that completed the
handshake drops a byte-identical copy of the client's last flight as a
replay and so would never repeat its own final flight (RFC 6347 §4.2.4,
the server's "FINISHED" state) -- the server session therefore resends its
final flight itself when handshake records arrive after completion and
OpenSSL stayed silent, until the first application record proves the
client finished.

Output: a memory BIO is a byte stream, so OpenSSL's output is split at
record boundaries and packed into datagrams of at most ``mtu`` bytes
(:mod:`.records`, FIELD-NOTES quirk 3); ``set_ciphertext_mtu`` is set on
every connection (quirk 1) together with ``OP_NO_QUERY_MTU``.

Failures: no OpenSSL exception leaves this module.  Errors while feeding or
on a timer mark the session failed (``closed`` true, ``error`` set; any
fatal alert OpenSSL produced is still in :meth:`datagrams_to_send`);
:meth:`send` on a session that cannot send raises :class:`DtlsError`.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from ..certs import peer_id_from_certificate
from .cookies import Address
from .dtls_context import (
    AEAD_CIPHERS,
    DEFAULT_HANDSHAKE_RETRANSMITS,
    DEFAULT_MTU,
    MAX_MESSAGE_SIZE,
    DtlsClientContext,
    DtlsError,
    DtlsServerContext,
    HelloAction,
    HelloResult,
    _ListenData,
)
from .record_layer import SUITES, RecordProtection
from .records import (
    CONTENT_ALERT,
    CONTENT_APPLICATION_DATA,
    CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE,
    RECORD_HEADER_LENGTH,
    RecordError,
    pack_datagrams,
    split_records_untrusted,
)

__all__ = [
    "AEAD_CIPHERS",
    "DEFAULT_HANDSHAKE_RETRANSMITS",
    "DEFAULT_MTU",
    "MAX_MESSAGE_SIZE",
    "DtlsClientContext",
    "DtlsClientSession",
    "DtlsError",
    "DtlsServerContext",
    "DtlsServerSession",
    "HelloAction",
    "HelloResult",
]

_MAX_RTO: Final = 60.0  # RFC 6347 §4.2.4.1
_MIN_RTO: Final = 0.05
# pyOpenSSL allocates (and zeroes) a buffer of the requested size on every
# bio_read()/recv() call, so ask for what one datagram or record can hold,
# and stop reading the BIO as soon as it returns less than that.
_BIO_CHUNK: Final = 4096
_RECV_SIZE: Final = MAX_MESSAGE_SIZE


# --------------------------------------------------------------------------
# sessions


class _DtlsSession:
    """What client and server sessions share: pumping OpenSSL, output, timers."""

    __slots__ = (
        "_app_in",
        "_conn",
        "_deadline",
        "_flight",
        "_max_retransmits",
        "_mtu",
        "_out",
        "_retransmits",
        "_rto",
        "_write_epoch",
        "_write_seq",
        "closed",
        "dropped_datagrams",
        "error",
        "handshake_complete",
        "last_activity",
        "peer_certificate_peer_id",
    )

    def __init__(
        self, ssl_context: SSL.Context, mtu: int, max_retransmits: int, now: float
    ) -> None:
        try:
            conn = SSL.Connection(ssl_context, None)
            conn.set_ciphertext_mtu(mtu)  # FIELD-NOTES quirk 1: without it, "Unexpected EOF"
        except SSL.Error as exc:  # pragma: no cover - allocation failure inside OpenSSL
            raise DtlsError(f"cannot create a DTLS connection: {_describe(exc)}") from exc
        self._conn = conn
        self._mtu = mtu
        self._max_retransmits = max_retransmits
        self._out: list[bytes] = []
        self._app_in: list[bytes] = []
        self._flight: list[bytes] = []
        self._deadline: float | None = None
        self._rto = 1.0
        self._retransmits = 0
        self.closed = False
        self.error: str | None = None
        self.handshake_complete = False
        self.peer_certificate_peer_id: str | None = None
        self.last_activity = now
        self.dropped_datagrams = 0
        # The newest epoch OpenSSL wrote in and the sequence number after the
        # last record it wrote there (what a record layer taking over continues).
        self._write_epoch = 0
        self._write_seq = 0

    # -- public API -----------------------------------------------------

    def datagrams_to_send(self) -> list[bytes]:
        """Datagrams to send to the peer, oldest first (clears the queue)."""
        out, self._out = self._out, []
        return out

    def receive(self) -> list[bytes]:
        """Application messages decrypted so far, one per record (clears the queue)."""
        data, self._app_in = self._app_in, []
        return data

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (caller's clock), or None."""
        return None if self.closed else self._deadline

    @property
    def max_message_size(self) -> int:
        """Largest message that still fits one datagram of ``mtu`` bytes."""
        try:
            return int(self._conn.get_cleartext_mtu())
        except (SSL.Error, NotImplementedError):  # pragma: no cover
            return self._mtu - 64

    @property
    def cipher_name(self) -> str | None:
        return self._conn.get_cipher_name()

    @property
    def protocol_version(self) -> str:
        return self._conn.get_protocol_version_name()

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        if not self.handshake_complete:
            return None
        return self._conn.get_peer_certificate(as_cryptography=True)

    def send(self, data: bytes) -> None:
        """Encrypt *data* as one application-data record (one datagram).

        Up to :data:`MAX_MESSAGE_SIZE` bytes are accepted, but only messages
        of at most :attr:`max_message_size` bytes keep the datagram within
        ``mtu`` (PROTOCOL §4: never rely on IP fragmentation).
        """
        if self.closed:
            raise DtlsError("session is closed")
        if not self.handshake_complete:
            raise DtlsError("handshake not complete")
        if not 0 < len(data) <= MAX_MESSAGE_SIZE:
            raise DtlsError(f"a message is 1..{MAX_MESSAGE_SIZE} bytes")
        try:
            self._conn.send(data)
        except SSL.Error as exc:
            self._fail(f"send failed: {exc}")
            raise DtlsError(self.error) from exc
        self._drain_output(now=None)

    def close(self) -> None:
        """Send close_notify (if the handshake completed) and stop."""
        if self.closed:
            return
        if self.handshake_complete:
            with contextlib.suppress(SSL.Error):  # a failed alert write changes nothing
                self._conn.shutdown()
            self._drain_output(now=None)
        self._stop()

    def handle_timer(self, now: float) -> None:
        """Retransmit the handshake flight if the deadline has passed (RFC 6347 §4.2.4)."""
        deadline = self._deadline
        if self.closed or deadline is None or now < deadline:
            return
        self._retransmits += 1
        if self._retransmits > self._max_retransmits:
            self._fail("handshake timed out")
            return
        try:
            native = self._conn.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(f"handshake failed: {exc}")
            self._drain_output(now=None)
            return
        produced = self._drain_output(now=now) if native else 0
        if produced:
            self._set_deadline_from_openssl(now)
        else:
            # OpenSSL's wall clock disagrees with the caller's: resend ourselves.
            self._out.extend(self._flight)
            self._rto = min(self._rto * 2.0, _MAX_RTO)
            self._deadline = now + self._rto

    # -- internals ------------------------------------------------------

    def _stop(self) -> None:
        self.closed = True
        self._deadline = None
        self._flight = []

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
        self._stop()

    def _drain_output(self, now: float | None) -> int:
        """Move OpenSSL's output to the send queue; with *now*, remember it as
        the current handshake flight.  Returns the number of datagrams."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._conn.bio_read(_BIO_CHUNK)
            except SSL.WantReadError:
                break
            except SSL.Error:  # pragma: no cover - a memory BIO read does not fail
                break
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) < _BIO_CHUNK:  # the memory BIO is empty now
                break
        if not chunks:
            return 0
        try:
            records = split_records_untrusted(b"".join(chunks))
        except RecordError:  # pragma: no cover - OpenSSL's own output
            records = chunks
        for record in records:
            epoch = int.from_bytes(record[3:5], "big")
            seq = int.from_bytes(record[5:11], "big")
            if epoch > self._write_epoch:
                self._write_epoch, self._write_seq = epoch, seq + 1
            elif epoch == self._write_epoch and seq >= self._write_seq:
                self._write_seq = seq + 1
        datagrams = pack_datagrams(records, self._mtu)
        self._out.extend(datagrams)
        if now is not None:
            self._flight = datagrams
        return len(datagrams)

    def _set_deadline_from_openssl(self, now: float) -> None:
        if self.handshake_complete or self.closed:
            self._deadline = None
            return
        remaining = self._conn.DTLSv1_get_timeout()
        if remaining is None:
            self._deadline = None
            return
        self._rto = max(float(remaining), _MIN_RTO)
        self._deadline = now + self._rto

    def _handshake_step(self) -> None:
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as exc:
            self._fail(f"handshake failed: {_describe(exc)}")
            return
        self.handshake_complete = True
        self._retransmits = 0

    def _read_application_data(self) -> bool:
        """Decrypt every pending record; True if application data arrived."""
        got = False
        while not self.closed:
            try:
                data = self._conn.recv(_RECV_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # close_notify (RFC 5246 §7.2.1)
                self._stop()
                break
            except SSL.Error as exc:
                self._fail(f"receive failed: {_describe(exc)}")
                break
            if data:
                self._app_in.append(data)
                got = True
        return got

    def _feed_records(self, datagram: bytes, now: float) -> list[bytes] | None:
        """Common entry checks; the records of *datagram*, or None to ignore it."""
        if self.closed:
            return None
        try:
            records = split_records_untrusted(datagram)
        except RecordError:
            self.dropped_datagrams += 1
            return None
        if not records:
            return None
        self.last_activity = now
        return records

    def _process(self, datagram: bytes, records: list[bytes], now: float) -> bool:
        """Run *datagram* through OpenSSL; True if it carried authenticated
        application data or completed the handshake."""
        was_complete = self.handshake_complete
        self._conn.bio_write(datagram)
        if not self.handshake_complete:
            self._handshake_step()
        got_app = False
        if self.handshake_complete and not self.closed:
            got_app = self._read_application_data()
        produced = self._drain_output(now=now if not was_complete else None)
        if was_complete:
            self._after_complete(records, produced, got_app)
        elif self.handshake_complete:
            self._on_complete()
        if produced and not was_complete:
            self._retransmits = 0  # the peer's flight got us to our next one
            self._set_deadline_from_openssl(now)
        elif self.handshake_complete:
            self._deadline = None
        return got_app or (self.handshake_complete and not was_complete)

    def _on_complete(self) -> None:
        """Hook: the handshake just completed."""

    def _after_complete(self, records: list[bytes], produced: int, got_app: bool) -> None:
        """Hook: a datagram arrived after the handshake had completed."""


def _epoch_bytes(protection: RecordProtection) -> bytes:
    return protection.epoch.to_bytes(2, "big")


_WARNING, _FATAL, _CLOSE_NOTIFY = 1, 2, 0  # RFC 5246 §7.2


def _describe(exc: SSL.Error) -> str:
    args = exc.args[0] if exc.args else None
    if isinstance(args, list) and args:
        parts = [str(item[-1]) for item in args if isinstance(item, tuple) and item]
        if parts:
            return "; ".join(parts)
    return str(exc) or type(exc).__name__


class DtlsServerSession(_DtlsSession):
    """One client's DTLS association; create it only after the hello check accepted."""

    __slots__ = ("_listen_data", "_listened", "_peer_cert_der", "_protection", "_record_layer",
                 "_suite", "addr", "dropped_records")  # fmt: skip

    def __init__(
        self, ctx: DtlsServerContext, addr: Address, *, now: float = 0.0, mtu: int | None = None
    ) -> None:
        """``mtu`` (default ``ctx.mtu``): this path's datagram size limit."""
        super().__init__(ctx._ssl_context, mtu or ctx.mtu, ctx.handshake_retransmits, now)
        self.addr = addr
        self._listened = False
        self._listen_data: _ListenData | None = _ListenData(addr, now)
        self._conn.set_app_data(self._listen_data)  # FIELD-NOTES quirk 4
        self._conn.set_accept_state()
        self._record_layer = ctx.record_layer
        self._protection: RecordProtection | None = None
        self._suite: str | None = None
        self._peer_cert_der: bytes | None = None
        # Records dropped by our record layer: replays, other epochs, forgeries.
        self.dropped_records = 0

    def feed(self, datagram: bytes, now: float) -> bool:
        """Process one datagram received from :attr:`addr`.

        True if it carried at least one authenticated record (application
        data, an alert, or the flight that completed the handshake): only
        those prove the peer is alive.
        """
        if self._protection is not None:
            return self._feed_protected(datagram, now)
        records = self._feed_records(datagram, now)
        if records is None or self._listen_data is None:
            return False
        self._listen_data.now = now
        if not self._listened:
            self._listen(datagram, now)
            return False
        return self._process(datagram, records, now)

    # -- after the handshake: our own record layer --------------------------

    @property
    def record_layer_active(self) -> bool:
        """True once the OpenSSL connection is gone and records are ours."""
        return self._protection is not None

    def _take_over(self, records: list[bytes]) -> None:
        """Keep only the record state (RFC 5246 §6.3 keys, sequence numbers).

        Called when the peer's first application record authenticated: it
        holds our final flight, so the handshake object is no longer needed.
        """
        conn = self._conn
        suite = conn.get_cipher_name()
        if not self._record_layer or suite not in SUITES or self._write_epoch == 0:
            return
        master, client_random, server_random = (
            conn.master_key(),
            conn.client_random(),
            conn.server_random(),
        )
        if master is None or client_random is None or server_random is None:
            return  # pragma: no cover - a completed handshake has all three
        try:
            protection = RecordProtection(
                suite,
                master,
                client_random,
                server_random,
                server=True,
                epoch=self._write_epoch,
                next_write_seq=self._write_seq,
            )
        except (SSL.Error, ValueError):  # pragma: no cover - keep OpenSSL then
            return
        for record in records:  # what OpenSSL already accepted is not accepted again
            if record[0] == CONTENT_APPLICATION_DATA and record[3:5] == _epoch_bytes(protection):
                protection.mark_seen(int.from_bytes(record[5:11], "big"))
        self._suite = suite
        self._protection = protection
        self._conn = None  # type: ignore[assignment]  # frees OpenSSL's ~70 KiB
        self._listen_data = None
        self._flight = []

    def _feed_protected(self, datagram: bytes, now: float) -> bool:
        protection = self._protection
        if self.closed or protection is None:
            return False
        try:
            records = split_records_untrusted(datagram)
        except RecordError:
            self.dropped_datagrams += 1
            return False
        authenticated = False
        for record in records:
            opened = protection.open_untrusted(record)
            if isinstance(opened, str):
                self.dropped_records += 1
                continue
            authenticated = True
            ctype, plaintext = opened
            if ctype == CONTENT_APPLICATION_DATA:
                if plaintext:
                    self._app_in.append(plaintext)
            elif ctype == CONTENT_ALERT and len(plaintext) == 2:
                if plaintext[1] == _CLOSE_NOTIFY:  # RFC 5246 §7.2.1
                    self._stop()
                    break
                if plaintext[0] == _FATAL:
                    self._fail(f"peer sent fatal alert {plaintext[1]}")
                    break
        if authenticated:
            self.last_activity = now
        return authenticated

    def send(self, data: bytes) -> None:
        protection = self._protection
        if protection is None:
            super().send(data)
            return
        if self.closed:
            raise DtlsError("session is closed")
        if not 0 < len(data) <= MAX_MESSAGE_SIZE:
            raise DtlsError(f"a message is 1..{MAX_MESSAGE_SIZE} bytes")
        try:
            self._out.append(protection.seal(CONTENT_APPLICATION_DATA, data))
        except OverflowError as exc:
            self._fail(str(exc))
            raise DtlsError(str(exc)) from exc

    def close(self) -> None:
        protection = self._protection
        if protection is None:
            super().close()
            return
        if self.closed:
            return
        with contextlib.suppress(OverflowError):
            self._out.append(protection.seal(CONTENT_ALERT, bytes((_WARNING, _CLOSE_NOTIFY))))
        self._stop()

    @property
    def max_message_size(self) -> int:
        if self._protection is None:
            return super().max_message_size
        overhead = RECORD_HEADER_LENGTH + 16 + (0 if "CHACHA" in (self._suite or "") else 8)
        return self._mtu - overhead

    @property
    def cipher_name(self) -> str | None:
        return self._suite if self._protection is not None else super().cipher_name

    @property
    def protocol_version(self) -> str:
        return "DTLSv1.2" if self._protection is not None else super().protocol_version

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        if self._protection is None:
            return super().peer_certificate
        if self._peer_cert_der is None:
            return None
        return x509.load_der_x509_certificate(self._peer_cert_der)

    def _listen(self, datagram: bytes, now: float) -> None:
        conn = self._conn
        try:
            conn.bio_write(datagram)
            conn.DTLSv1_listen()
        except SSL.WantReadError:
            # Not a ClientHello with a valid cookie: the pre-check should have
            # said so.  Whatever OpenSSL queued (an HVR) is not ours to send.
            self._discard_output()
            self._fail("first datagram is not a ClientHello with a valid cookie")
            return
        except SSL.Error as exc:
            self._discard_output()
            self._fail(f"listen failed: {_describe(exc)}")
            return
        self._listened = True
        self._handshake_step()
        produced = self._drain_output(now=now)
        if not produced and not self.closed and not self.handshake_complete:
            # FIELD-NOTES quirk 2 (OpenSSL < 3): listen consumed the hello.
            conn.bio_write(datagram)
            self._handshake_step()
            produced = self._drain_output(now=now)
        if produced:
            self._set_deadline_from_openssl(now)

    def _discard_output(self) -> None:
        while True:
            try:
                if not self._conn.bio_read(_BIO_CHUNK):
                    break
            except SSL.Error:
                break

    def _on_complete(self) -> None:
        # OpenSSL verified the chain (VERIFY_PEER with the configured CA) before
        # completing; only then does the certificate name anybody (PROTOCOL §8).
        cert = self._conn.get_peer_certificate(as_cryptography=True)
        if cert is not None:
            self.peer_certificate_peer_id = peer_id_from_certificate(cert)
            self._peer_cert_der = cert.public_bytes(serialization.Encoding.DER)

    def _after_complete(self, records: list[bytes], produced: int, got_app: bool) -> None:
        if got_app:
            # The client sent application data, so it has our Finished.
            self._flight = []
            self._take_over(records)
            return
        if produced or not self._flight:
            return
        # The client repeated its last flight (handshake/CCS records) and
        # OpenSSL dropped the copy as a replay: repeat our final flight
        # (RFC 6347 §4.2.4), at most handshake_retransmits times.
        if any(r[0] in (CONTENT_HANDSHAKE, CONTENT_CHANGE_CIPHER_SPEC) for r in records):
            self._retransmits += 1
            if self._retransmits <= self._max_retransmits:
                self._out.extend(self._flight)
            else:
                self._flight = []


class DtlsClientSession(_DtlsSession):
    """The peer's side of a DTLS association with the tracker."""

    __slots__ = ("_started",)

    def __init__(self, ctx: DtlsClientContext, *, now: float = 0.0) -> None:
        super().__init__(ctx._ssl_context, ctx.mtu, ctx.handshake_retransmits, now)
        self._started = False
        host = ctx.verify_hostname
        if host is not None and not _is_ip_literal(host):
            self._conn.set_tlsext_host_name(host.encode("idna"))  # SNI, RFC 6066 §3
        self._conn.set_connect_state()

    def start(self, now: float) -> None:
        """Send the first ClientHello."""
        if self._started or self.closed:
            return
        self._started = True
        self.last_activity = now
        self._handshake_step()
        if self._drain_output(now=now):
            self._set_deadline_from_openssl(now)

    def feed(self, datagram: bytes, now: float) -> bool:
        """Process one datagram received from the tracker; True if authenticated."""
        if not self._started:
            return False
        records = self._feed_records(datagram, now)
        if records is None:
            return False
        return self._process(datagram, records, now)

    def _on_complete(self) -> None:
        self._flight = []


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
