"""Never-crash and never-accept properties of the stateless ClientHello pre-check."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker import certs
from stunlike_tracker.transport.cookies import CookieKeys
from stunlike_tracker.transport.dtls import (
    DtlsClientContext,
    DtlsClientSession,
    DtlsServerContext,
    HelloAction,
)
from stunlike_tracker.transport.hello import HelloParseError, parse_client_hello_untrusted
from stunlike_tracker.transport.records import RecordError, split_records_untrusted
from tests.unit.test_dtls_hello import build_client_hello

_CA = certs.make_ca()
_SERVER = certs.make_server_cert(_CA)
_CTX = DtlsServerContext(_SERVER.cert_pem, _SERVER.key_pem, cookie_keys=CookieKeys.generate())


def _real_hello() -> bytes:
    client = DtlsClientSession(DtlsClientContext(ca_pem=_CA.cert_pem))
    client.start(0.0)
    (hello,) = client.datagrams_to_send()
    return hello


_HELLO = _real_hello()

addresses = st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)),
    st.tuples(st.ip_addresses(v=6).map(str), st.integers(1, 65535)),
)


def _check(datagram: bytes, addr: tuple[str, int], now: float) -> None:
    result = _CTX.check_client_hello_untrusted(datagram, addr, now)
    assert result.action is not HelloAction.ACCEPT
    if result.action is HelloAction.VERIFY_REQUEST:
        assert 0 < len(result.verify_request) <= len(datagram)
        assert result.reason in ("no-cookie", "invalid-cookie")
    else:
        assert result.reason


@given(st.binary(max_size=600), addresses, st.floats(-1e9, 1e9))
def test_arbitrary_bytes_never_crash(datagram: bytes, addr: tuple[str, int], now: float) -> None:
    try:
        parse_client_hello_untrusted(datagram)
    except HelloParseError as exc:
        assert str(exc)  # every drop has a reason
    _check(datagram, addr, now)


@given(
    st.binary(max_size=255),
    st.binary(max_size=40),
    st.binary(max_size=64),
    st.binary(min_size=0, max_size=4),
    st.one_of(st.none(), st.binary(max_size=64)),
    st.binary(max_size=3),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**48 - 1),
    addresses,
)
def test_structured_hellos_with_forged_cookies_never_accept(
    cookie: bytes,
    session_id: bytes,
    suites: bytes,
    compression: bytes,
    extensions: bytes | None,
    tail: bytes,
    message_seq: int,
    record_seq: int,
    addr: tuple[str, int],
) -> None:
    datagram = build_client_hello(
        cookie=cookie,
        session_id=session_id,
        suites=suites,
        compression=compression,
        extensions=extensions,
        tail=tail,
        message_seq=message_seq,
        record_seq=record_seq,
    )
    _check(datagram, addr, 1000.0)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(_HELLO) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(_HELLO)),
    st.binary(max_size=16),
    addresses,
)
def test_mutated_real_hellos_never_crash(
    flips: list[tuple[int, int]], cut: int, extra: bytes, addr: tuple[str, int]
) -> None:
    data = bytearray(_HELLO)
    for index, value in flips:
        data[index] = value
    datagram = bytes(data[:cut]) + extra
    _check(datagram, addr, 5.0)


@given(st.binary(max_size=400))
def test_record_splitter_raises_one_error_type(data: bytes) -> None:
    try:
        records = split_records_untrusted(data)
    except RecordError:
        return
    assert b"".join(records) == data
