from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stunlike_tracker import certs


@pytest.fixture(scope="module")
def ca() -> certs.CertificateAuthority:
    return certs.make_ca()


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_ca_is_self_signed_p256_ca(ca: certs.CertificateAuthority) -> None:
    cert = ca.certificate
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)


def test_server_cert_names_and_issuer(ca: certs.CertificateAuthority) -> None:
    issued = certs.make_server_cert(ca, ["tracker.example", "192.0.2.10"])
    cert = issued.certificate
    cert.verify_directly_issued_by(ca.certificate)
    san = _san(cert)
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "tracker.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.0.2.10"),
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("peer_id", ["peer-1", "A", "x" * 64, "we!rd/id%20?#&=~"])
def test_peer_cert_names_peer_id(ca: certs.CertificateAuthority, peer_id: str) -> None:
    cert = certs.make_peer_cert(ca, peer_id).certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert certs.peer_id_from_certificate(cert) == peer_id
    (cn,) = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == peer_id
    (uri,) = _san(cert).get_values_for_type(x509.UniformResourceIdentifier)
    assert uri.startswith(certs.PEER_ID_URI_PREFIX)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "tab\t", "é"])
def test_invalid_peer_ids_are_refused(ca: certs.CertificateAuthority, bad: str) -> None:
    assert not certs.is_valid_peer_id(bad)
    with pytest.raises(certs.CertError):
        certs.make_peer_cert(ca, bad)


def test_peer_id_disagreement_names_nobody(ca: certs.CertificateAuthority) -> None:
    uri = certs.PEER_ID_URI_PREFIX
    disagree = certs.make_cert(ca, common_name="alice", san_uris=[uri + "bob"]).certificate
    assert certs.peer_id_from_certificate(disagree) is None
    two = certs.make_cert(ca, common_name="x", san_uris=[uri + "a", uri + "b"]).certificate
    assert certs.peer_id_from_certificate(two) is None
    uri_only = certs.make_cert(ca, common_name="carol", san_uris=[uri + "carol"]).certificate
    assert certs.peer_id_from_certificate(uri_only) == "carol"
    cn_only = certs.make_cert(ca, common_name="dave").certificate
    assert certs.peer_id_from_certificate(cn_only) == "dave"
    bad_cn = certs.make_cert(ca, common_name="has space").certificate
    assert certs.peer_id_from_certificate(bad_cn) is None
    bad_pct = certs.make_cert(ca, common_name="e", san_uris=[uri + "%ff%fe"]).certificate
    assert certs.peer_id_from_certificate(bad_pct) is None


def test_rsa_leaf(ca: certs.CertificateAuthority) -> None:
    cert = certs.make_server_cert(ca, key_type="rsa").certificate
    cert.verify_directly_issued_by(ca.certificate)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_dev_certs_writes_and_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    paths = certs.init_dev_certs(directory, ["tracker.test"])
    for path in (paths.ca_cert, paths.ca_key, paths.tracker_cert, paths.tracker_key):
        assert path.exists()
    assert _mode(paths.ca_key) == 0o600
    assert _mode(paths.tracker_key) == 0o600
    tracker = certs.load_certificate(paths.tracker_cert.read_bytes())
    tracker.verify_directly_issued_by(certs.load_certificate(paths.ca_cert.read_bytes()))
    assert "tracker.test" in _san(tracker).get_values_for_type(x509.DNSName)
    before = {p: p.read_bytes() for p in directory.iterdir()}
    again = certs.init_dev_certs(directory)
    assert again == paths
    assert {p: p.read_bytes() for p in directory.iterdir()} == before


def test_init_dev_certs_reissues_missing_tracker_pair_from_existing_ca(tmp_path: Path) -> None:
    paths = certs.init_dev_certs(tmp_path)
    ca_before = paths.ca_cert.read_bytes()
    paths.tracker_cert.unlink()
    paths.tracker_key.unlink()
    certs.init_dev_certs(tmp_path)
    assert paths.ca_cert.read_bytes() == ca_before
    tracker = certs.load_certificate(paths.tracker_cert.read_bytes())
    tracker.verify_directly_issued_by(certs.load_certificate(ca_before))


def test_init_dev_certs_refuses_half_a_pair(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_bytes(b"orphan")
    with pytest.raises(certs.CertError):
        certs.init_dev_certs(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == b"orphan"


def test_issue_peer_cert(tmp_path: Path) -> None:
    paths = certs.init_dev_certs(tmp_path)
    cert_path, key_path = certs.issue_peer_cert(tmp_path, "peer/7")
    assert cert_path.parent == tmp_path
    assert cert_path.name == "peer-peer%2F7.pem"
    assert key_path.name == "peer-peer%2F7.key"
    assert _mode(key_path) == 0o600
    cert = certs.load_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(certs.load_certificate(paths.ca_cert.read_bytes()))
    assert certs.peer_id_from_certificate(cert) == "peer/7"


def test_issue_peer_cert_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(certs.CertError):
        certs.issue_peer_cert(tmp_path, "p")


def test_load_certificate_rejects_garbage() -> None:
    with pytest.raises(certs.CertError):
        certs.load_certificate(b"not pem")
