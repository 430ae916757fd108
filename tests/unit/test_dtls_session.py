"""DTLS sessions through the in-memory pair (no sockets, no sleeping)."""

from __future__ import annotations

import random

import pytest

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    AEAD_CIPHERS,
    DtlsClientContext,
    DtlsClientSession,
    DtlsError,
    DtlsServerContext,
    DtlsServerSession,
)
from stunlike_tracker.transport.pair import Direction, DtlsPair
from stunlike_tracker.transport.records import split_records_untrusted

PEER_ID = "peer-42"


@pytest.fixture(scope="module")
def ca() -> certs.CertificateAuthority:
    return certs.make_ca()


@pytest.fixture(scope="module")
def server_cert(ca: certs.CertificateAuthority) -> certs.IssuedCert:
    return certs.make_server_cert(ca)


@pytest.fixture(scope="module")
def peer_cert(ca: certs.CertificateAuthority) -> certs.IssuedCert:
    return certs.make_peer_cert(ca, PEER_ID)


@pytest.fixture
def server_ctx(server_cert: certs.IssuedCert) -> DtlsServerContext:
    return DtlsServerContext(
        server_cert.cert_pem, server_cert.key_pem, cookie_keys=CookieKeys.generate()
    )


@pytest.fixture
def mutual_server_ctx(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert
) -> DtlsServerContext:
    return DtlsServerContext(
        server_cert.cert_pem,
        server_cert.key_pem,
        ca_pem=ca.cert_pem,
        require_client_cert=True,
        cookie_keys=CookieKeys.generate(),
    )


@pytest.fixture
def client_ctx(ca: certs.CertificateAuthority) -> DtlsClientContext:
    return DtlsClientContext(ca_pem=ca.cert_pem, verify_hostname="localhost")


def established(client_ctx: DtlsClientContext, server_ctx: DtlsServerContext) -> DtlsPair:
    pair = DtlsPair(client_ctx, server_ctx)
    assert pair.handshake(), (pair.client.error, pair.server and pair.server.error)
    return pair


# -- handshake -------------------------------------------------------------


def test_handshake_with_cookie_exchange(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    pair = established(client_ctx, server_ctx)
    assert pair.stats.verify_requests == 1
    assert pair.stats.sessions_created == 1
    assert pair.stats.verify_request_sizes[0] <= pair.stats.hello_sizes[0]
    assert pair.now == 0.0  # no timer was needed
    server = pair.server
    assert server is not None
    for session in (pair.client, server):
        assert session.protocol_version == "DTLSv1.2"
        assert session.cipher_name in AEAD_CIPHERS.split(":")
        assert session.get_timer() is None
        assert not session.closed and session.error is None
    assert server.peer_certificate_peer_id is None  # no client certificate asked for
    assert pair.stats.datagrams == {"c2s": 3, "s2c": 3}


def test_flights_fit_the_mtu(
    ca: certs.CertificateAuthority,
    peer_cert: certs.IssuedCert,
    mutual_server_ctx: DtlsServerContext,
) -> None:
    # A tiny MTU forces OpenSSL to fragment handshake messages (RFC 6347 §4.2.3);
    # the client's records are packed into datagrams no larger than its MTU.
    seen: list[tuple[Direction, bytes]] = []

    def record_all(direction: Direction, index: int, datagram: bytes) -> bool:
        seen.append((direction, datagram))
        return False

    client_ctx = DtlsClientContext(
        ca_pem=ca.cert_pem, cert_pem=peer_cert.cert_pem, key_pem=peer_cert.key_pem, mtu=300
    )
    pair = DtlsPair(client_ctx, mutual_server_ctx, loss=record_all)
    assert pair.handshake()
    assert pair.server is not None and pair.server.peer_certificate_peer_id == PEER_ID
    assert sum(d == "c2s" for d, _ in seen) > 3  # the client's Certificate was fragmented
    for direction, datagram in seen:
        assert len(datagram) <= (300 if direction == "c2s" else mutual_server_ctx.mtu)
        assert split_records_untrusted(datagram)
    assert any(len(split_records_untrusted(d)) > 1 for _, d in seen)  # glued records packed


def test_application_data_both_ways(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    pair = established(client_ctx, server_ctx)
    assert pair.client_to_server(b"<PPSPTrackerProtocol/>") == [b"<PPSPTrackerProtocol/>"]
    assert pair.server_to_client(b"response") == [b"response"]
    # one record per message, one datagram per record
    pair.client.send(b"a")
    pair.client.send(b"b")
    out = pair.client.datagrams_to_send()
    assert len(out) == 2
    assert all(len(split_records_untrusted(d)) == 1 for d in out)
    server = pair.server
    assert server is not None
    for datagram in out:
        server.feed(datagram, 5.0)
    assert server.receive() == [b"a", b"b"]
    assert server.last_activity == 5.0


def test_largest_message_fits_one_datagram(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    pair = established(client_ctx, server_ctx)
    limit = pair.client.max_message_size
    assert 1100 < limit < 1200
    pair.client.send(b"x" * limit)
    (datagram,) = pair.client.datagrams_to_send()
    assert len(datagram) <= 1200
    with pytest.raises(DtlsError):
        pair.client.send(b"")
    with pytest.raises(DtlsError):
        pair.client.send(b"x" * (2**14 + 1))


def test_mutual_mode_names_the_peer(
    ca: certs.CertificateAuthority,
    peer_cert: certs.IssuedCert,
    mutual_server_ctx: DtlsServerContext,
) -> None:
    client_ctx = DtlsClientContext(
        ca_pem=ca.cert_pem,
        cert_pem=peer_cert.cert_pem,
        key_pem=peer_cert.key_pem,
        verify_hostname="127.0.0.1",
    )
    pair = established(client_ctx, mutual_server_ctx)
    assert pair.server is not None
    assert pair.server.peer_certificate_peer_id == PEER_ID
    cert = pair.server.peer_certificate
    assert cert is not None
    assert certs.peer_id_from_certificate(cert) == PEER_ID


def test_optional_client_certificate(
    ca: certs.CertificateAuthority,
    server_cert: certs.IssuedCert,
    peer_cert: certs.IssuedCert,
) -> None:
    server_ctx = DtlsServerContext(
        server_cert.cert_pem,
        server_cert.key_pem,
        ca_pem=ca.cert_pem,
        cookie_keys=CookieKeys.generate(),
    )
    anonymous = established(DtlsClientContext(ca_pem=ca.cert_pem), server_ctx)
    assert anonymous.server is not None
    assert anonymous.server.peer_certificate_peer_id is None
    named = established(
        DtlsClientContext(
            ca_pem=ca.cert_pem, cert_pem=peer_cert.cert_pem, key_pem=peer_cert.key_pem
        ),
        server_ctx,
    )
    assert named.server is not None
    assert named.server.peer_certificate_peer_id == PEER_ID


def _fails(pair: DtlsPair) -> None:
    assert not pair.handshake()
    assert pair.client.closed or (pair.server is not None and pair.server.closed)
    with pytest.raises(DtlsError):
        pair.client.send(b"must not go out")


def test_client_with_wrong_ca_fails(server_ctx: DtlsServerContext) -> None:
    other_ca = certs.make_ca("someone else")
    pair = DtlsPair(DtlsClientContext(ca_pem=other_ca.cert_pem), server_ctx)
    _fails(pair)
    assert pair.client.error is not None
    assert "certificate verify failed" in pair.client.error


def test_hostname_mismatch_fails(
    ca: certs.CertificateAuthority, server_ctx: DtlsServerContext
) -> None:
    pair = DtlsPair(
        DtlsClientContext(ca_pem=ca.cert_pem, verify_hostname="tracker.example"), server_ctx
    )
    _fails(pair)
    wrong_ip = DtlsPair(
        DtlsClientContext(ca_pem=ca.cert_pem, verify_hostname="192.0.2.99"), server_ctx
    )
    _fails(wrong_ip)


def test_client_without_cert_rejected_when_required(
    ca: certs.CertificateAuthority, mutual_server_ctx: DtlsServerContext
) -> None:
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem), mutual_server_ctx)
    _fails(pair)
    assert pair.server is not None and pair.server.error is not None
    assert not pair.server.handshake_complete


def test_client_cert_from_another_ca_rejected(
    ca: certs.CertificateAuthority, mutual_server_ctx: DtlsServerContext
) -> None:
    stranger = certs.make_peer_cert(certs.make_ca("rogue"), PEER_ID)
    client_ctx = DtlsClientContext(
        ca_pem=ca.cert_pem, cert_pem=stranger.cert_pem, key_pem=stranger.key_pem
    )
    pair = DtlsPair(client_ctx, mutual_server_ctx)
    _fails(pair)
    assert pair.server is not None and pair.server.peer_certificate_peer_id is None


def test_non_aead_client_cannot_negotiate(
    ca: certs.CertificateAuthority, server_ctx: DtlsServerContext
) -> None:
    cbc_only = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA"
    pair = DtlsPair(DtlsClientContext(ca_pem=ca.cert_pem, cipher_list=cbc_only), server_ctx)
    _fails(pair)
    assert pair.server is not None and not pair.server.handshake_complete


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-GCM-SHA384"])
def test_rsa_server_certificate(ca: certs.CertificateAuthority, cipher: str) -> None:
    rsa = certs.make_server_cert(ca, key_type="rsa")
    server_ctx = DtlsServerContext(rsa.cert_pem, rsa.key_pem, cookie_keys=CookieKeys.generate())
    pair = established(DtlsClientContext(ca_pem=ca.cert_pem, cipher_list=cipher), server_ctx)
    assert pair.client.cipher_name == cipher


def test_bad_configuration_raises_dtls_error(
    ca: certs.CertificateAuthority, server_cert: certs.IssuedCert, peer_cert: certs.IssuedCert
) -> None:
    keys = CookieKeys.generate()
    with pytest.raises(DtlsError):
        DtlsServerContext(server_cert.cert_pem, peer_cert.key_pem, cookie_keys=keys)
    with pytest.raises(DtlsError):
        DtlsServerContext(b"junk", server_cert.key_pem, cookie_keys=keys)
    with pytest.raises(DtlsError):
        DtlsServerContext(server_cert.cert_pem, b"junk", cookie_keys=keys)
    with pytest.raises(DtlsError):
        DtlsServerContext(
            server_cert.cert_pem, server_cert.key_pem, require_client_cert=True, cookie_keys=keys
        )
    with pytest.raises(DtlsError):
        DtlsServerContext(server_cert.cert_pem, server_cert.key_pem, cookie_keys=keys, mtu=100)
    with pytest.raises(DtlsError):
        DtlsClientContext(ca_pem=ca.cert_pem, cert_pem=peer_cert.cert_pem)
    with pytest.raises(DtlsError):
        DtlsClientContext(ca_pem=ca.cert_pem, cipher_list="NO-SUCH-CIPHER")


# -- loss and timers ---------------------------------------------------------


@pytest.mark.parametrize("direction", ["c2s", "s2c"])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_single_loss_recovers_via_timer(
    client_ctx: DtlsClientContext,
    server_ctx: DtlsServerContext,
    direction: Direction,
    index: int,
) -> None:
    def drop_one(d: Direction, i: int, datagram: bytes) -> bool:
        return d == direction and i == index

    pair = DtlsPair(client_ctx, server_ctx, loss=drop_one)
    assert pair.handshake(), (pair.client.error, pair.server and pair.server.error)
    assert pair.stats.lost[direction] == 1
    assert 0.9 <= pair.now <= 1.1  # one retransmission after the 1 s initial timeout
    pair.loss = None
    assert pair.client_to_server(b"ping") == [b"ping"]


def test_lost_final_flight_is_repeated_by_the_server(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    # s2c #2 is the server's ChangeCipherSpec+Finished: the client retransmits
    # its last flight and the completed server must answer it (RFC 6347 §4.2.4).
    pair = DtlsPair(client_ctx, server_ctx, loss=lambda d, i, _: d == "s2c" and i in (2, 3))
    assert pair.handshake()
    assert pair.stats.lost["s2c"] == 2
    assert 2.9 <= pair.now <= 3.1  # timeouts of 1 s then 2 s
    pair.loss = None
    assert pair.server_to_client(b"pong") == [b"pong"]


def test_random_loss_recovers(client_ctx: DtlsClientContext, server_ctx: DtlsServerContext) -> None:
    durations = []
    for seed in range(40):
        rng = random.Random(seed)
        pair = DtlsPair(client_ctx, server_ctx, loss=lambda *_, rng=rng: rng.random() < 0.2)
        if pair.handshake():
            durations.append(pair.now)
            pair.loss = None
            assert pair.client_to_server(b"ok") == [b"ok"]
    assert len(durations) >= 38
    assert sorted(durations)[len(durations) // 2] <= 3.0


def test_timer_schedule_and_give_up(client_ctx: DtlsClientContext) -> None:
    client = DtlsClientSession(client_ctx, now=100.0)
    assert client.get_timer() is None
    client.start(100.0)
    (hello,) = client.datagrams_to_send()
    deadline = client.get_timer()
    assert deadline is not None and 100.9 <= deadline <= 101.0
    client.handle_timer(100.5)  # too early: nothing
    assert client.datagrams_to_send() == []
    waits = []
    now = deadline
    while not client.closed:
        client.handle_timer(now)
        out = client.datagrams_to_send()
        if client.closed:
            break
        assert len(out) == 1 and out[0][13:] == hello[13:]  # the same ClientHello
        nxt = client.get_timer()
        assert nxt is not None
        waits.append(round(nxt - now, 1))
        now = nxt
    assert waits[:3] == [2.0, 4.0, 8.0]  # RFC 6347 §4.2.4.1: doubling
    assert client.error == "handshake timed out"
    assert client.get_timer() is None


# -- life cycle and hostile input ---------------------------------------------


def test_close_notify(client_ctx: DtlsClientContext, server_ctx: DtlsServerContext) -> None:
    pair = established(client_ctx, server_ctx)
    server = pair.server
    assert server is not None
    pair.client.close()
    assert pair.client.closed
    pair.pump()
    assert server.closed and server.error is None
    with pytest.raises(DtlsError):
        server.send(b"late")
    pair.client.close()  # idempotent


def test_server_close_reaches_client(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    pair = established(client_ctx, server_ctx)
    assert pair.server is not None
    pair.server.close()
    pair.pump()
    assert pair.client.closed and pair.client.error is None


def test_garbage_and_forgeries_do_not_hurt_an_established_session(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    pair = established(client_ctx, server_ctx)
    server = pair.server
    assert server is not None
    server.feed(b"\x17\xfe\xfd garbage that is not a record", 1.0)
    assert server.dropped_datagrams == 1
    pair.client.send(b"genuine")
    (genuine,) = pair.client.datagrams_to_send()
    forged = genuine[:-1] + bytes((genuine[-1] ^ 1,))  # bad AEAD tag: discarded
    server.feed(forged, 2.0)
    replay_target = genuine
    server.feed(genuine, 3.0)
    server.feed(replay_target, 4.0)  # replay: discarded (RFC 6347 §4.1.2.6)
    assert server.receive() == [b"genuine"]
    assert not server.closed and server.error is None
    assert pair.client_to_server(b"still fine") == [b"still fine"]


def test_server_session_needs_an_accepted_hello(server_ctx: DtlsServerContext) -> None:
    session = DtlsServerSession(server_ctx, ("192.0.2.1", 1), now=0.0)
    session.feed(bytes.fromhex("16fefd000000000000000000010e00"), 0.0)
    assert session.dropped_datagrams == 1  # not even a whole record
    assert not session.closed
    client = DtlsClientSession(DtlsClientContext(ca_pem=None))
    client.start(0.0)
    (hello_without_cookie,) = client.datagrams_to_send()
    session.feed(hello_without_cookie, 0.0)
    assert session.closed and session.error is not None
    assert session.datagrams_to_send() == []  # OpenSSL's own HVR is not sent


def test_client_ignores_input_before_start(client_ctx: DtlsClientContext) -> None:
    client = DtlsClientSession(client_ctx)
    client.feed(b"\x16\xfe\xfd", 0.0)
    assert client.datagrams_to_send() == [] and not client.closed
    with pytest.raises(DtlsError):
        client.send(b"x")
