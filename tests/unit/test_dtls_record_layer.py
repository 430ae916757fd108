"""The server's own record layer after the handshake (RFC 5246 §6.3, RFC 6347 §4.1.2):
interoperates with OpenSSL clients on every PROTOCOL §8 suite, and drops replays,
other epochs, forged tags and truncated records without hurting the session."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stunlike_tracker import certs
from stunlike_tracker.transport import record_layer
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsClientContext,
    DtlsServerContext,
    DtlsServerSession,
)
from stunlike_tracker.transport.pair import DtlsPair
from stunlike_tracker.transport.record_layer import RecordProtection, prf

PEER_ID = "peer-7"
SUITES = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
]


@pytest.fixture(scope="module")
def ca() -> certs.CertificateAuthority:
    return certs.make_ca()


@pytest.fixture(scope="module")
def server_cert(ca: certs.CertificateAuthority) -> certs.IssuedCert:
    return certs.make_server_cert(ca)


def server_ctx(cert: certs.IssuedCert, **kwargs: object) -> DtlsServerContext:
    return DtlsServerContext(
        cert.cert_pem,
        cert.key_pem,
        cookie_keys=CookieKeys.generate(),
        **kwargs,  # type: ignore[arg-type]
    )


def taken_over(pair: DtlsPair) -> DtlsServerSession:
    assert pair.handshake()
    assert pair.client_to_server(b"first") == [b"first"]
    server = pair.server
    assert server is not None and server.record_layer_active
    return server


@pytest.mark.parametrize("suite", SUITES)
def test_openssl_client_and_our_record_layer_talk_both_ways(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert, suite: str
) -> None:
    pair = DtlsPair(
        DtlsClientContext(ca_pem=ca.cert_pem, cipher_list=suite), server_ctx(server_cert)
    )
    server = taken_over(pair)
    assert server.cipher_name == suite and server.protocol_version == "DTLSv1.2"
    for n in range(5):
        assert pair.server_to_client(b"answer %d" % n) == [b"answer %d" % n]
        assert pair.client_to_server(b"request %d" % n) == [b"request %d" % n]
    big = b"x" * server.max_message_size
    assert pair.server_to_client(big) == [big]
    assert server.max_message_size == pair.client.max_message_size
    assert server.dropped_records == 0


def test_the_handshake_object_stays_until_the_first_application_record(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert))
    assert pair.handshake()
    assert pair.server is not None and not pair.server.record_layer_active
    # Until the client proves it has our final flight, OpenSSL answers.
    assert pair.server_to_client(b"early") == [b"early"]
    assert not pair.server.record_layer_active
    assert pair.client_to_server(b"now") == [b"now"]
    assert pair.server.record_layer_active


def test_record_layer_can_be_turned_off(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    pair = DtlsPair(
        DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert, record_layer=False)
    )
    assert pair.handshake()
    assert pair.client_to_server(b"x") == [b"x"]
    assert pair.server is not None and not pair.server.record_layer_active


def test_replays_wrong_epochs_forgeries_and_truncations_are_dropped(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert))
    server = taken_over(pair)
    pair.client.send(b"genuine")
    (genuine,) = pair.client.datagrams_to_send()
    assert server.feed(genuine, 1.0) is True
    assert server.receive() == [b"genuine"]

    bad = {
        "replay": genuine,
        "forged tag": genuine[:-1] + bytes((genuine[-1] ^ 1,)),
        "forged header (AAD)": genuine[:10] + bytes((genuine[10] ^ 0x40,)) + genuine[11:],
        "epoch 0": genuine[:3] + b"\x00\x00" + genuine[5:],
        "epoch 2": genuine[:3] + b"\x00\x02" + genuine[5:],
        "DTLS 1.0 version": genuine[:1] + b"\xfe\xff" + genuine[3:],
        "cut short": genuine[:-5],
        "short record": genuine[:11] + b"\x00\x03abc",
        "header only": genuine[:11] + b"\x00\x00",
    }
    before = server.dropped_records + server.dropped_datagrams
    for name, datagram in bad.items():
        assert server.feed(datagram, 2.0) is False, name
        assert server.receive() == [], name
        assert not server.closed, name
    assert server.dropped_records + server.dropped_datagrams == before + len(bad)
    # A replay of the very first record (OpenSSL decrypted it) is dropped too.
    assert pair.client_to_server(b"still fine") == [b"still fine"]


def test_old_records_outside_the_window_are_dropped_in_order_ones_accepted(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert))
    server = taken_over(pair)
    held = []
    for n in range(70):
        pair.client.send(b"m%d" % n)
        held.extend(pair.client.datagrams_to_send())
    # Deliver newest first: the 64-record window keeps the last 64 only.
    for datagram in reversed(held):
        server.feed(datagram, 1.0)
    got = server.receive()
    assert len(got) == 64 and got[0] == b"m69" and got[-1] == b"m6"
    for datagram in held:  # every one again: all replays now
        assert server.feed(datagram, 2.0) is False


def test_close_notify_both_ways(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert))
    server = taken_over(pair)
    pair.client.close()
    pair.pump()
    assert server.closed and server.error is None
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx(server_cert))
    server = taken_over(pair)
    server.close()
    pair.pump()
    assert pair.client.closed and pair.client.error is None


def test_mutual_mode_keeps_the_peer_certificate(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> None:
    peer = certs.make_peer_cert(ca, PEER_ID)
    ctx = server_ctx(server_cert, ca_pem=ca.cert_pem, require_client_cert=True)
    client = DtlsClientContext(ca_pem=ca.cert_pem, cert_pem=peer.cert_pem, key_pem=peer.key_pem)
    server = taken_over(DtlsPair(client, ctx))
    assert server.peer_certificate_peer_id == PEER_ID
    cert = server.peer_certificate
    assert cert is not None and certs.peer_id_from_certificate(cert) == PEER_ID


def test_prf_matches_the_rfc_5246_definition() -> None:
    # P_SHA256 written out for two blocks (RFC 5246 §5).
    secret, seed = b"s" * 48, b"label" + b"r" * 64
    a1 = hmac.new(secret, seed, hashlib.sha256).digest()
    a2 = hmac.new(secret, a1, hashlib.sha256).digest()
    expected = (
        hmac.new(secret, a1 + seed, hashlib.sha256).digest()
        + hmac.new(secret, a2 + seed, hashlib.sha256).digest()
    )
    assert prf(secret, b"label", b"r" * 64, 40, "sha256") == expected[:40]


@given(data=st.binary(max_size=80))
def test_open_never_crashes_on_garbage(data: bytes) -> None:
    protection = RecordProtection(
        SUITES[0], b"m" * 48, b"c" * 32, b"s" * 32, server=True, epoch=1, next_write_seq=1
    )
    result = protection.open_untrusted(b"\x17\xfe\xfd\x00\x01" + data)
    assert isinstance(result, str)


@given(payloads=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5),
       suite=st.sampled_from(SUITES))  # fmt: skip
def test_seal_and_open_round_trip_between_the_two_sides(payloads: list[bytes], suite: str) -> None:
    keys = (b"m" * 48, b"c" * 32, b"s" * 32)
    server = RecordProtection(suite, *keys, server=True, epoch=1, next_write_seq=1)
    client = RecordProtection(suite, *keys, server=False, epoch=1, next_write_seq=1)
    for payload in payloads:
        assert client.open_untrusted(server.seal(23, payload)) == (23, payload)
        assert server.open_untrusted(client.seal(23, payload)) == (23, payload)


@pytest.mark.parametrize("suite", SUITES)
def test_shared_aead_objects_stay_bounded_and_never_mix_sessions(suite: str) -> None:
    # More sessions than the table of AEAD objects holds: each still seals
    # with its own keys (a record of one does not open in another), and the
    # table starts over instead of growing.
    pairs = []
    for n in range(record_layer.AEAD_CACHE_ENTRIES + 50):
        keys = (n.to_bytes(48, "big"), b"c" * 32, b"s" * 32)
        server = RecordProtection(suite, *keys, server=True, epoch=1, next_write_seq=1)
        client = RecordProtection(suite, *keys, server=False, epoch=1, next_write_seq=1)
        assert client.open_untrusted(server.seal(23, b"hello %d" % n)) == (23, b"hello %d" % n)
        pairs.append((server, client))
    sizes = [len(table) for table in (record_layer._gcm_objects, record_layer._chacha_objects)]
    assert max(sizes) <= record_layer.AEAD_CACHE_ENTRIES
    (first_server, first_client), (_, other_client) = pairs[0], pairs[-1]
    record = first_server.seal(23, b"for the first only")
    assert other_client.open_untrusted(record) == "auth"
    assert first_client.open_untrusted(record) == (23, b"for the first only")
