"""The stateless ClientHello pre-check and the hand-built HelloVerifyRequest."""

from __future__ import annotations

import os
import random
import sys
import tracemalloc
from types import FrameType
from typing import Any

import pytest
from OpenSSL import SSL

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsClientContext,
    DtlsClientSession,
    DtlsServerContext,
    HelloAction,
)
from stunlike_tracker.transport.hello import (
    ClientHelloInfo,
    HelloParseError,
    build_hello_verify_request,
    parse_client_hello_untrusted,
)

ADDR = ("192.0.2.1", 5555)


@pytest.fixture(scope="module")
def ca() -> certs.CertificateAuthority:
    return certs.make_ca()


@pytest.fixture
def server_ctx(ca: certs.CertificateAuthority) -> DtlsServerContext:
    issued = certs.make_server_cert(ca)
    return DtlsServerContext(issued.cert_pem, issued.key_pem, cookie_keys=CookieKeys.generate())


@pytest.fixture(scope="module")
def client_ctx(ca: certs.CertificateAuthority) -> DtlsClientContext:
    return DtlsClientContext(ca_pem=ca.cert_pem)


def first_hello(client_ctx: DtlsClientContext) -> tuple[DtlsClientSession, bytes]:
    client = DtlsClientSession(client_ctx)
    client.start(0.0)
    (hello,) = client.datagrams_to_send()
    return client, hello


def with_cookie(hello: bytes, cookie: bytes) -> bytes:
    """Re-encode a single-record ClientHello with another cookie."""
    sid_len = hello[13 + 12 + 34]
    at = 13 + 12 + 35 + sid_len
    old_len = hello[at]
    body = hello[25:at] + bytes((len(cookie),)) + cookie + hello[at + 1 + old_len :]
    blen = len(body).to_bytes(3, "big")
    handshake = hello[13:14] + blen + hello[17:19] + b"\x00\x00\x00" + blen + body
    return hello[:11] + len(handshake).to_bytes(2, "big") + handshake


def test_openssl_client_hello_parses(client_ctx: DtlsClientContext) -> None:
    _, hello = first_hello(client_ctx)
    info = parse_client_hello_untrusted(hello)
    assert info.cookie == b""
    assert info.message_seq == 0
    assert info.client_version == 0xFEFD
    assert info.record_sequence == hello[5:11]


def test_verify_request_format(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    _, hello = first_hello(client_ctx)
    result = server_ctx.check_client_hello_untrusted(hello, ADDR, 10.0)
    assert result.action is HelloAction.VERIFY_REQUEST
    assert result.reason == "no-cookie"
    hvr = result.verify_request
    assert len(hvr) <= len(hello)  # PROTOCOL §8: no amplification
    # RFC 6347 §4.2.1: record version DTLS 1.0, epoch 0, ClientHello's record seq
    assert hvr[0] == 22 and hvr[1:3] == b"\xfe\xff" and hvr[3:5] == b"\x00\x00"
    assert hvr[5:11] == hello[5:11]
    assert int.from_bytes(hvr[11:13], "big") == len(hvr) - 13
    # handshake header: hello_verify_request(3), message_seq copied, unfragmented
    assert hvr[13] == 3
    body_len = int.from_bytes(hvr[14:17], "big")
    assert hvr[17:19] == hello[17:19]
    assert hvr[19:22] == b"\x00\x00\x00"
    assert int.from_bytes(hvr[22:25], "big") == body_len == len(hvr) - 25
    # body: server_version DTLS 1.0, cookie
    assert hvr[25:27] == b"\xfe\xff"
    cookie = hvr[28 : 28 + hvr[27]]
    assert server_ctx.cookie_keys.verify_cookie(cookie, ADDR, 10.0)


def test_openssl_client_accepts_our_verify_request(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    client, hello = first_hello(client_ctx)
    hvr = server_ctx.check_client_hello_untrusted(hello, ADDR, 0.0).verify_request
    client.feed(hvr, 0.0)
    (second,) = client.datagrams_to_send()
    info = parse_client_hello_untrusted(second)
    assert info.message_seq == 1  # RFC 6347 §4.2.2
    assert info.cookie == hvr[28:]
    result = server_ctx.check_client_hello_untrusted(second, ADDR, 30.0)
    assert result.action is HelloAction.ACCEPT
    # same cookie from another source address: a fresh HVR, never accept
    moved = server_ctx.check_client_hello_untrusted(second, ("192.0.2.1", 5556), 30.0)
    assert moved.action is HelloAction.VERIFY_REQUEST
    assert moved.reason == "invalid-cookie"
    # three buckets later the cookie has expired
    late = server_ctx.check_client_hello_untrusted(second, ADDR, 180.0)
    assert late.action is HelloAction.VERIFY_REQUEST


def test_cookie_survives_one_rotation_not_two(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext
) -> None:
    client, hello = first_hello(client_ctx)
    client.feed(server_ctx.check_client_hello_untrusted(hello, ADDR, 0.0).verify_request, 0.0)
    (second,) = client.datagrams_to_send()
    server_ctx.cookie_keys.rotate()
    assert server_ctx.check_client_hello_untrusted(second, ADDR, 1.0).accepted
    server_ctx.cookie_keys.rotate()
    assert not server_ctx.check_client_hello_untrusted(second, ADDR, 1.0).accepted


def test_spoofed_hellos_never_accept_and_allocate_nothing(
    client_ctx: DtlsClientContext,
    server_ctx: DtlsServerContext,
) -> None:
    _, hello = first_hello(client_ctx)
    # Every SSL.Connection built is seen by a profiler hook (no patching).
    connection_init = SSL.Connection.__init__.__code__
    created = 0

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        nonlocal created
        if event == "call" and frame.f_code is connection_init:
            created += 1

    rng = random.Random(7)
    spoofed = [
        (
            with_cookie(hello, os.urandom(rng.choice([1, 15, 16, 17, 32, 255]))),
            (f"198.51.{rng.randrange(256)}.{rng.randrange(256)}", rng.randrange(1, 65536)),
        )
        for _ in range(2000)
    ]
    sys.setprofile(profile)
    try:
        DtlsClientSession(client_ctx)  # the hook sees a connection being built ...
        assert created == 1
        for datagram, addr in spoofed:  # ... and none for a spoofed hello
            result = server_ctx.check_client_hello_untrusted(datagram, addr, 42.0)
            assert result.action is HelloAction.VERIFY_REQUEST
            assert result.reason == "invalid-cookie"
            assert len(result.verify_request) <= len(datagram)
    finally:
        sys.setprofile(None)
    assert created == 1
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for datagram, addr in spoofed:
            server_ctx.check_client_hello_untrusted(datagram, addr, 42.0)
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert retained < 4096  # nothing per source address survives the call


def _hello_info() -> ClientHelloInfo:
    return ClientHelloInfo(
        record_sequence=bytes(6), message_seq=0, client_version=0xFEFD, cookie=b""
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h[:20], "short"),
        (lambda h: b"\x17" + h[1:], "not-handshake"),
        (lambda h: h[:1] + b"\x03\x03" + h[3:], "bad-record-version"),
        (lambda h: h[:4] + b"\x01" + h[5:], "bad-epoch"),
        (lambda h: h + b"\x00", "bad-record-length"),
        (lambda h: h[:13] + b"\x02" + h[14:], "not-client-hello"),
        (lambda h: h[:19] + b"\x00\x00\x01" + h[22:], "fragmented"),
        (lambda h: h[:25] + b"\xfe\xff" + h[27:], "unsupported-version"),
        (lambda h: h[:25] + b"\x03\x03" + h[27:], "bad-client-version"),
    ],
)
def test_malformed_hellos_drop_with_reason(
    client_ctx: DtlsClientContext, server_ctx: DtlsServerContext, mutate: Any, reason: str
) -> None:
    _, hello = first_hello(client_ctx)
    bad = mutate(hello)
    with pytest.raises(HelloParseError, match=reason):
        parse_client_hello_untrusted(bad)
    result = server_ctx.check_client_hello_untrusted(bad, ADDR, 0.0)
    assert result.action is HelloAction.DROP
    assert result.reason == reason


def build_client_hello(
    *,
    cookie: bytes = b"",
    session_id: bytes = b"",
    suites: bytes = b"\xc0\x2b",
    compression: bytes = b"\x00",
    extensions: bytes | None = b"",
    tail: bytes = b"",
    version: bytes = b"\xfe\xfd",
    message_seq: int = 0,
    record_seq: int = 0,
) -> bytes:
    """A synthetic single-record ClientHello, every length consistent."""
    body = (
        version
        + bytes(32)
        + bytes((len(session_id),))
        + session_id
        + bytes((len(cookie),))
        + cookie
        + len(suites).to_bytes(2, "big")
        + suites
        + bytes((len(compression),))
        + compression
    )
    if extensions is not None:
        body += len(extensions).to_bytes(2, "big") + extensions
    body += tail
    blen = len(body).to_bytes(3, "big")
    handshake = b"\x01" + blen + message_seq.to_bytes(2, "big") + b"\x00\x00\x00" + blen + body
    return (
        b"\x16\xfe\xff\x00\x00"
        + record_seq.to_bytes(6, "big")
        + len(handshake).to_bytes(2, "big")
        + handshake
    )


def test_synthetic_hello_parses() -> None:
    info = parse_client_hello_untrusted(
        build_client_hello(cookie=b"c" * 16, message_seq=1, record_seq=9, extensions=None)
    )
    assert info.cookie == b"c" * 16
    assert info.message_seq == 1
    assert info.record_sequence == (9).to_bytes(6, "big")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"session_id": bytes(33)}, "bad-session-id"),
        ({"suites": b""}, "bad-cipher-suites"),
        ({"suites": b"\xc0"}, "bad-cipher-suites"),
        ({"compression": b""}, "bad-compression-methods"),
        ({"extensions": None, "tail": b"\x00"}, "bad-extensions"),
        ({"extensions": b"", "tail": b"\x00"}, "bad-extensions"),
    ],
)
def test_bad_inner_lengths_drop(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(HelloParseError, match=reason):
        parse_client_hello_untrusted(build_client_hello(**kwargs))


def test_truncated_bodies_drop() -> None:
    hello = build_client_hello(cookie=b"k" * 16, session_id=b"s" * 8)
    body_start = 25
    no_extensions = len(hello) - 2  # cutting the empty extensions block is valid
    for cut in range(body_start, len(hello)):
        if cut == no_extensions:
            continue
        body = hello[body_start:cut]
        blen = len(body).to_bytes(3, "big")
        handshake = hello[13:14] + blen + hello[17:19] + b"\x00\x00\x00" + blen + body
        short = hello[:11] + len(handshake).to_bytes(2, "big") + handshake
        with pytest.raises(HelloParseError):
            parse_client_hello_untrusted(short)


def test_build_hello_verify_request_limits() -> None:
    with pytest.raises(ValueError):
        build_hello_verify_request(_hello_info(), bytes(256))
    assert len(build_hello_verify_request(_hello_info(), bytes(255))) == 13 + 12 + 3 + 255
