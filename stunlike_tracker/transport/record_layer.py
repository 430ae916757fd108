"""DTLS 1.2 record protection after the handshake, without OpenSSL (sans-I/O).

Once a server session's handshake is done and the peer has proved it holds
our final flight, all a session needs is its record state: two AEAD keys,
the implicit IVs, our next sequence number and the peer's anti-replay
window. Keeping only that instead of the OpenSSL connection (~70 KiB with
its buffers, FIELD-NOTES) is what makes 100,000 live sessions fit in
memory, and sealing a record with ``cryptography``'s AEAD directly avoids the
memory-BIO round trips.

* Keys: the TLS 1.2 key block (RFC 5246 §6.3) from the master secret and
  both randoms, with the suite's PRF hash (RFC 5246 §5; SHA-384 for the
  AES-256-GCM suites, RFC 5289 §3). AEAD suites have no MAC keys.
* AES-GCM (RFC 5288 §3): nonce = 4-byte salt || 8-byte explicit nonce sent
  in the record; we send the record's epoch||sequence as the explicit
  nonce, like OpenSSL. ChaCha20-Poly1305 (RFC 7905 §2): nonce = 12-byte IV
  XOR the padded epoch||sequence; no explicit nonce.
* Additional data (RFC 5246 §6.2.3.3, RFC 6347 §4.1.2.1): epoch||sequence,
  type, version, plaintext length.
* Receiving (RFC 6347 §4.1.2.6, §4.1.2.7): records of another epoch, with a
  bad version, too short, failing authentication or already seen (64-record
  sliding window, updated only after authentication) are dropped silently;
  the reason is returned so the caller can count it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .records import CONTENT_ALERT, CONTENT_APPLICATION_DATA, RECORD_HEADER_LENGTH

__all__ = [
    "SUITES",
    "RecordProtection",
    "key_block",
    "prf",
]

DTLS12: Final = b"\xfe\xfd"
_TAG: Final = 16
_EXPLICIT: Final = 8
_WINDOW: Final = 64
_MAX_SEQ: Final = (1 << 48) - 1
_HEADER = struct.Struct("!B2sHHIH")  # type, version, epoch, seq (16+32 bits), length
_AAD = struct.Struct("!HHIB2sH")  # epoch, seq hi, seq lo, type, version, length

# OpenSSL suite name -> (AEAD, key length, IV length, PRF hash); PROTOCOL §8 suites only.
SUITES: Final[dict[str, tuple[str, int, int, str]]] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": ("gcm", 16, 4, "sha256"),
    "ECDHE-RSA-AES128-GCM-SHA256": ("gcm", 16, 4, "sha256"),
    "ECDHE-ECDSA-AES256-GCM-SHA384": ("gcm", 32, 4, "sha384"),
    "ECDHE-RSA-AES256-GCM-SHA384": ("gcm", 32, 4, "sha384"),
    "ECDHE-ECDSA-CHACHA20-POLY1305": ("chacha", 32, 12, "sha256"),
    "ECDHE-RSA-CHACHA20-POLY1305": ("chacha", 32, 12, "sha256"),
}


def prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed)."""
    digest: Callable[[], object] = getattr(hashlib, hash_name)
    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, digest).digest()  # type: ignore[arg-type]
        out += hmac.new(secret, a + seed, digest).digest()  # type: ignore[arg-type]
    return out[:length]


def key_block(
    suite: str, master_secret: bytes, client_random: bytes, server_random: bytes
) -> tuple[bytes, bytes, bytes, bytes]:
    """(client key, server key, client IV, server IV) of *suite* (RFC 5246 §6.3)."""
    _, key_len, iv_len, hash_name = SUITES[suite]
    block = prf(
        master_secret,
        b"key expansion",
        server_random + client_random,
        2 * (key_len + iv_len),
        hash_name,
    )
    ck, sk = block[:key_len], block[key_len : 2 * key_len]
    civ = block[2 * key_len : 2 * key_len + iv_len]
    siv = block[2 * key_len + iv_len :]
    return ck, sk, civ, siv


# Building an AEAD object costs ~1.1 µs more than the encryption of a
# keep-alive answer, and keeping one per session costs ~2.5 KiB each (see
# RecordProtection). So the objects of the sessions active lately are shared
# here, per class, by key: at most this many each (two keys a session: 128
# busy sessions, ~0.6 MiB), the table starting over when full. A session
# idle long enough simply builds its object again.
AEAD_CACHE_ENTRIES: Final = 256
_Aead = AESGCM | ChaCha20Poly1305
_gcm_objects: dict[bytes, _Aead] = {}
_chacha_objects: dict[bytes, _Aead] = {}


def _aead_object(table: dict[bytes, _Aead], kind: type[_Aead], key: bytes) -> _Aead:
    aead = table.get(key)
    if aead is None:
        if len(table) >= AEAD_CACHE_ENTRIES:
            table.clear()
        aead = table[key] = kind(key)
    return aead


class RecordProtection:
    """One side's record state in one epoch: seal what we send, open what we get."""

    __slots__ = ("_aead", "_chacha", "_objects", "_read", "_read_iv", "_write", "_write_iv",
                 "epoch", "rx_bitmap", "rx_max", "tx_seq")  # fmt: skip

    def __init__(
        self,
        suite: str,
        master_secret: bytes,
        client_random: bytes,
        server_random: bytes,
        *,
        server: bool,
        epoch: int,
        next_write_seq: int,
    ) -> None:
        kind = SUITES[suite][0]
        ck, sk, civ, siv = key_block(suite, master_secret, client_random, server_random)
        # Only the raw keys are kept: a cryptography AEAD object holds an
        # OpenSSL cipher context (~2.5 KiB RSS each); 5 KiB per live session
        # is too much, so the recently active sessions' objects are shared
        # through a bounded table (``_aead_object``).
        self._aead: type[AESGCM] | type[ChaCha20Poly1305] = (
            AESGCM if kind == "gcm" else ChaCha20Poly1305
        )
        self._chacha = kind == "chacha"
        self._objects = _chacha_objects if self._chacha else _gcm_objects
        wk, rk, self._write_iv, self._read_iv = (sk, ck, siv, civ) if server else (ck, sk, civ, siv)
        self._write = wk
        self._read = rk
        self.epoch = epoch
        self.tx_seq = next_write_seq
        self.rx_max = -1
        self.rx_bitmap = 0

    # -- sending ----------------------------------------------------------

    def seal(self, content_type: int, data: bytes) -> bytes:
        """One protected record carrying *data* (RFC 6347 §4.1)."""
        seq = self.tx_seq
        if seq > _MAX_SEQ:  # RFC 6347 §4.1: never wrap; the peer must rehandshake
            raise OverflowError("DTLS sequence number exhausted")
        self.tx_seq = seq + 1
        hi, lo = seq >> 32, seq & 0xFFFFFFFF
        aad = _AAD.pack(self.epoch, hi, lo, content_type, DTLS12, len(data))
        explicit = aad[:8]  # epoch || sequence
        if self._chacha:
            nonce = _xor12(self._write_iv, explicit)
            body = _aead_object(self._objects, self._aead, self._write).encrypt(nonce, data, aad)
        else:
            aead = _aead_object(self._objects, self._aead, self._write)
            body = explicit + aead.encrypt(self._write_iv + explicit, data, aad)
        return _HEADER.pack(content_type, DTLS12, self.epoch, hi, lo, len(body)) + body

    # -- receiving --------------------------------------------------------

    def open_untrusted(self, record: bytes) -> tuple[int, bytes] | str:
        """(content type, plaintext) of an authentic fresh record, else why it was dropped."""
        if len(record) < RECORD_HEADER_LENGTH:
            return "truncated"
        ctype, version, epoch, hi, lo, length = _HEADER.unpack_from(record)
        if version != DTLS12:
            return "version"
        if epoch != self.epoch:
            return "epoch"
        if ctype not in (CONTENT_APPLICATION_DATA, CONTENT_ALERT):
            return "content-type"  # a late handshake record: the handshake is over
        if length != len(record) - RECORD_HEADER_LENGTH:
            return "truncated"
        seq = (hi << 32) | lo
        if self._seen(seq):
            return "replay"
        seq_bytes = record[3:11]
        if self._chacha:
            if length < _TAG:
                return "truncated"
            nonce = _xor12(self._read_iv, seq_bytes)
            ciphertext = record[RECORD_HEADER_LENGTH:]
            plain_len = length - _TAG
        else:
            if length < _EXPLICIT + _TAG:
                return "truncated"
            nonce = self._read_iv + record[13:21]
            ciphertext = record[21:]
            plain_len = length - _EXPLICIT - _TAG
        aad = seq_bytes + bytes((ctype,)) + DTLS12 + plain_len.to_bytes(2, "big")
        try:
            aead = _aead_object(self._objects, self._aead, self._read)
            plaintext = aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            return "auth"
        self.mark_seen(seq)
        return ctype, plaintext

    def _seen(self, seq: int) -> bool:
        top = self.rx_max
        if seq > top:
            return False
        offset = top - seq
        return offset >= _WINDOW or bool(self.rx_bitmap >> offset & 1)

    def mark_seen(self, seq: int) -> None:
        """RFC 6347 §4.1.2.6: slide the window; bit i stands for ``rx_max - i``."""
        top = self.rx_max
        if seq > top:
            shift = seq - top
            self.rx_bitmap = ((self.rx_bitmap << shift) | 1) & ((1 << _WINDOW) - 1)
            self.rx_max = seq
        else:
            self.rx_bitmap |= 1 << (top - seq)


def _xor12(iv: bytes, seq8: bytes) -> bytes:
    return (int.from_bytes(iv, "big") ^ int.from_bytes(seq8, "big")).to_bytes(12, "big")
