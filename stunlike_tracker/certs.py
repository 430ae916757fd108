"""Development certificates: a CA, the tracker's server certificate, peer certificates.

Everything is generated with ``cryptography`` (EC P-256 keys, ECDSA-SHA256
signatures unless RSA is asked for).  Two layers:

* in-memory helpers (:func:`make_ca`, :func:`make_cert`,
  :func:`make_server_cert`, :func:`make_peer_cert`) returning PEM bytes, so
  tests build their own certificates in code;
* file helpers (:func:`init_dev_certs`, :func:`issue_peer_cert`) writing the
  ``certs/`` directory used for manual runs.  Private keys are written with
  mode 0600.

Peer identity (PROTOCOL §8, mutual DTLS mode)
-----------------------------------------
A peer certificate names its Peer-ID twice:

* the subject ``commonName`` is the Peer-ID verbatim, and
* a subjectAltName ``uniformResourceIdentifier`` ``ppsp:peer:<pct-encoded
  Peer-ID>`` (RFC 3986 percent-encoding of every byte outside the unreserved
  set, so any printable Peer-ID fits a URI).

:func:`peer_id_from_certificate` prefers the URI; when only a CN is present it
uses the CN.  If the certificate carries several ``ppsp:peer:`` URIs naming
different Peer-IDs, or a URI and a CN that disagree, it names nobody (None).
A Peer-ID is 1..64 characters in 0x21..0x7E (PROTOCOL §2.1, "printable ASCII";
space is excluded so that an identity never depends on whitespace handling).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "PEER_ID_URI_PREFIX",
    "CertError",
    "CertPaths",
    "CertificateAuthority",
    "IssuedCert",
    "KeyType",
    "init_dev_certs",
    "is_valid_peer_id",
    "issue_peer_cert",
    "load_certificate",
    "make_ca",
    "make_cert",
    "make_peer_cert",
    "make_server_cert",
    "peer_cert_filename",
    "peer_id_from_certificate",
]

PEER_ID_URI_PREFIX = "ppsp:peer:"
"""Scheme-specific prefix of the subjectAltName URI naming a Peer-ID."""

KeyType = Literal["ec", "rsa"]

_PEER_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
_CLOCK_SKEW = datetime.timedelta(minutes=5)
_DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


class CertError(Exception):
    """A certificate could not be made, loaded or written."""


@dataclass(frozen=True)
class IssuedCert:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


@dataclass(frozen=True)
class CertificateAuthority(IssuedCert):
    """A CA certificate and key (PEM) that can sign further certificates."""


@dataclass(frozen=True)
class CertPaths:
    """Where :func:`init_dev_certs` put (or found) the files."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    tracker_cert: Path
    tracker_key: Path


# --------------------------------------------------------------------------
# identity


def is_valid_peer_id(peer_id: str) -> bool:
    """True for 1..64 characters in 0x21..0x7E."""
    return _PEER_ID_RE.fullmatch(peer_id) is not None


def _peer_id_uri(peer_id: str) -> str:
    return PEER_ID_URI_PREFIX + quote(peer_id, safe="")


def peer_id_from_certificate(cert: x509.Certificate) -> str | None:
    """The Peer-ID a peer certificate names, or None (see the module doc)."""
    from_uri: set[str] = set()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:  # a malformed extension: name nobody
        return None
    if san is not None:
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(PEER_ID_URI_PREFIX):
                try:
                    from_uri.add(unquote(uri[len(PEER_ID_URI_PREFIX) :], errors="strict"))
                except UnicodeDecodeError:
                    return None
    try:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    cn_values = {a.value for a in cns if isinstance(a.value, str)}
    if len(from_uri) > 1 or len(cn_values) > 1:
        return None
    if from_uri:
        (peer_id,) = from_uri
        if cn_values and cn_values != {peer_id}:
            return None
    elif cn_values:
        (peer_id,) = cn_values
    else:
        return None
    return peer_id if is_valid_peer_id(peer_id) else None


# --------------------------------------------------------------------------
# in-memory generation


def _new_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _utcnow(now: datetime.datetime | None) -> datetime.datetime:
    return now if now is not None else datetime.datetime.now(datetime.UTC)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    start: datetime.datetime,
    valid_days: int,
) -> x509.CertificateBuilder:
    """Subject, issuer, key, a random serial and the validity window."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=valid_days))
    )


def _key_usage(*, cert_sign: bool, key_encipherment: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a leaf signs (and with RSA, enciphers keys)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    common_name: str = "stunlike-tracker dev CA",
    *,
    valid_days: int = 3650,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """A self-signed EC P-256 CA certificate (basicConstraints CA:true, critical)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = _utcnow(now) - _CLOCK_SKEW
    cert = (
        _builder(name, name, key, start, valid_days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True, key_encipherment=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def make_cert(
    ca: CertificateAuthority,
    *,
    common_name: str,
    san_names: Sequence[str] = (),
    san_uris: Sequence[str] = (),
    server: bool = False,
    client: bool = False,
    key_type: KeyType = "ec",
    valid_days: int = 825,
    now: datetime.datetime | None = None,
) -> IssuedCert:
    """A leaf certificate signed by *ca*.

    *san_names* become dNSName or iPAddress entries (IP literals are detected),
    *san_uris* uniformResourceIdentifier entries.  *server*/*client* set the
    extendedKeyUsage (serverAuth / clientAuth).
    """
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    except ValueError as exc:
        raise CertError(f"cannot load the CA: {exc}") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertError("the CA key must be EC or RSA")
    key = _new_key(key_type)
    start = _utcnow(now) - _CLOCK_SKEW
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, ca_cert.subject, key, start, valid_days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(cert_sign=False, key_encipherment=key_type == "rsa"), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    general = _general_names(san_names) + [x509.UniformResourceIdentifier(u) for u in san_uris]
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_server_cert(
    ca: CertificateAuthority,
    extra_names: Sequence[str] = (),
    *,
    key_type: KeyType = "ec",
    now: datetime.datetime | None = None,
) -> IssuedCert:
    """The tracker's certificate: SAN localhost, 127.0.0.1, ::1 plus *extra_names*."""
    names = list(dict.fromkeys([*_DEFAULT_SERVER_NAMES, *extra_names]))
    return make_cert(
        ca,
        common_name=extra_names[0] if extra_names else "localhost",
        san_names=names,
        server=True,
        key_type=key_type,
        now=now,
    )


def make_peer_cert(
    ca: CertificateAuthority,
    peer_id: str,
    *,
    key_type: KeyType = "ec",
    now: datetime.datetime | None = None,
) -> IssuedCert:
    """A client certificate naming *peer_id* (CN and ``ppsp:peer:`` URI)."""
    if not is_valid_peer_id(peer_id):
        raise CertError("a Peer-ID is 1..64 characters in 0x21..0x7E")
    return make_cert(
        ca,
        common_name=peer_id,
        san_uris=[_peer_id_uri(peer_id)],
        client=True,
        key_type=key_type,
        now=now,
    )


def load_certificate(pem: bytes) -> x509.Certificate:
    """Parse one PEM certificate (CertError on failure)."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertError(f"not a PEM certificate: {exc}") from exc


# --------------------------------------------------------------------------
# files


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_pair(cert_path: Path, key_path: Path) -> CertificateAuthority | None:
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if not have_cert and not have_key:
        return None
    if have_cert != have_key:
        raise CertError(
            f"only one of {cert_path.name} and {key_path.name} exists in "
            f"{cert_path.parent}; remove it or supply the other"
        )
    return CertificateAuthority(cert_path.read_bytes(), key_path.read_bytes())


def init_dev_certs(directory: Path, extra_names: Sequence[str] = ()) -> CertPaths:
    """Create ``ca.pem``/``ca.key``/``tracker.pem``/``tracker.key`` in *directory*.

    Idempotent: existing files are kept (a missing tracker pair is issued from
    the existing CA).  Keys are written 0600, certificates 0644.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertPaths(
        directory=directory,
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        tracker_cert=directory / "tracker.pem",
        tracker_key=directory / "tracker.key",
    )
    ca = _read_pair(paths.ca_cert, paths.ca_key)
    if ca is None:
        ca = make_ca()
        _write_atomic(paths.ca_key, ca.key_pem, 0o600)
        _write_atomic(paths.ca_cert, ca.cert_pem, 0o644)
    if _read_pair(paths.tracker_cert, paths.tracker_key) is None:
        server = make_server_cert(ca, extra_names)
        _write_atomic(paths.tracker_key, server.key_pem, 0o600)
        _write_atomic(paths.tracker_cert, server.cert_pem, 0o644)
    return paths


def peer_cert_filename(peer_id: str) -> str:
    """``peer-<id>`` with every character outside ``[A-Za-z0-9._~-]`` percent-encoded."""
    return "peer-" + quote(peer_id, safe="")


def issue_peer_cert(directory: Path, peer_id: str) -> tuple[Path, Path]:
    """Issue ``peer-<id>.pem``/``.key`` in *directory*, signed by its ``ca.key``.

    Re-issuing replaces the pair (a new key each time).  Returns (cert, key).
    """
    ca = _read_pair(directory / "ca.pem", directory / "ca.key")
    if ca is None:
        raise CertError(f"no CA in {directory}; run init_dev_certs first")
    issued = make_peer_cert(ca, peer_id)
    stem = peer_cert_filename(peer_id)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    _write_atomic(key_path, issued.key_pem, 0o600)
    _write_atomic(cert_path, issued.cert_pem, 0o644)
    return cert_path, key_path
