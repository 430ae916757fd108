"""Hostile datagrams never make a session raise (no raw OpenSSL exception escapes)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import DtlsClientContext, DtlsServerContext
from stunlike_tracker.transport.pair import DtlsPair

_CA = certs.make_ca()
_SERVER = certs.make_server_cert(_CA)
_SERVER_CTX = DtlsServerContext(
    _SERVER.cert_pem, _SERVER.key_pem, cookie_keys=CookieKeys.generate()
)
_CLIENT_CTX = DtlsClientContext(ca_pem=_CA.cert_pem)


def record_like(ctype: int, epoch: int, seq: int, body: bytes) -> bytes:
    return (
        bytes((ctype,))
        + b"\xfe\xfd"
        + epoch.to_bytes(2, "big")
        + seq.to_bytes(6, "big")
        + len(body).to_bytes(2, "big")
        + body
    )


datagrams = st.one_of(
    st.binary(max_size=300),
    st.builds(
        record_like,
        st.sampled_from([20, 21, 22, 23]),
        st.integers(0, 3),
        st.integers(0, 2**48 - 1),
        st.binary(max_size=200),
    ),
)

_slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_slow
@given(st.lists(datagrams, max_size=6))
def test_established_sessions_survive_hostile_datagrams(junk: list[bytes]) -> None:
    pair = DtlsPair(_CLIENT_CTX, _SERVER_CTX)
    assert pair.handshake()
    server = pair.server
    assert server is not None
    for datagram in junk:
        server.feed(datagram, 1.0)
        pair.client.feed(datagram, 1.0)
        server.handle_timer(2.0)
        pair.client.handle_timer(2.0)
    server.datagrams_to_send()
    pair.client.datagrams_to_send()
    server.receive()
    pair.client.receive()
    # forged records cannot end the association (RFC 6347 §4.1.2.7: discard)
    if not server.closed and not pair.client.closed:
        assert pair.client_to_server(b"after") == [b"after"]


@_slow
@given(st.lists(datagrams, max_size=6), st.integers(0, 3))
def test_handshaking_sessions_never_raise(junk: list[bytes], delivered: int) -> None:
    # deliver only the first `delivered` datagrams each way, then inject junk
    pair = DtlsPair(_CLIENT_CTX, _SERVER_CTX, loss=lambda _d, i, _b: i >= delivered)
    pair.client.start(0.0)
    pair.pump()
    for datagram in junk:
        pair.client.feed(datagram, 0.5)
        if pair.server is not None:
            pair.server.feed(datagram, 0.5)
    pair.loss = None
    pair.now = 10.0
    pair.fire_timers()
    pair.pump()
