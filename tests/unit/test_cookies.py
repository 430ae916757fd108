from __future__ import annotations

import pytest

from stunlike_tracker.transport.cookies import (
    COOKIE_LENGTH,
    KEY_LENGTH,
    CookieKeys,
    derive_cookie_key,
    encode_address,
)

ADDR = ("203.0.113.5", 40000)


def test_roundtrip_and_length() -> None:
    keys = CookieKeys.generate()
    cookie = keys.make_cookie(ADDR, 1000.0)
    assert len(cookie) == COOKIE_LENGTH
    assert keys.verify_cookie(cookie, ADDR, 1000.0)


def test_bound_to_address() -> None:
    keys = CookieKeys.generate()
    cookie = keys.make_cookie(ADDR, 0.0)
    assert not keys.verify_cookie(cookie, ("203.0.113.5", 40001), 0.0)
    assert not keys.verify_cookie(cookie, ("203.0.113.6", 40000), 0.0)
    v6 = ("2001:db8::1", 40000, 0, 0)
    assert keys.verify_cookie(keys.make_cookie(v6, 0.0), v6, 0.0)
    assert not keys.verify_cookie(keys.make_cookie(v6, 0.0), ("2001:db8::2", 40000, 0, 0), 0.0)


def test_address_encoding_is_canonical() -> None:
    assert encode_address(("::1", 5)) == encode_address(("0:0::1", 5, 0, 0))
    assert encode_address(("127.0.0.1", 5)) != encode_address(("::ffff:127.0.0.1", 5))
    assert encode_address(("not-an-ip", 5)).startswith(b"\x00")


def test_current_and_previous_bucket_only() -> None:
    keys = CookieKeys.generate(bucket_seconds=60.0)
    cookie = keys.make_cookie(ADDR, 120.0)  # bucket 2
    assert keys.verify_cookie(cookie, ADDR, 179.9)  # bucket 2
    assert keys.verify_cookie(cookie, ADDR, 239.9)  # bucket 3: previous bucket accepted
    assert not keys.verify_cookie(cookie, ADDR, 240.0)  # bucket 4: expired
    assert not keys.verify_cookie(cookie, ADDR, 119.9)  # from the future (bucket 1)


def test_bucket_length_is_configurable() -> None:
    keys = CookieKeys.generate(bucket_seconds=5.0)
    cookie = keys.make_cookie(ADDR, 0.0)
    assert keys.verify_cookie(cookie, ADDR, 9.9)
    assert not keys.verify_cookie(cookie, ADDR, 10.0)


def test_rotation_keeps_one_previous_key() -> None:
    keys = CookieKeys.generate()
    cookie = keys.make_cookie(ADDR, 0.0)
    keys.rotate()
    assert keys.verify_cookie(cookie, ADDR, 0.0)
    assert keys.make_cookie(ADDR, 0.0) != cookie
    keys.rotate(b"\x01" * KEY_LENGTH)
    assert not keys.verify_cookie(cookie, ADDR, 0.0)


def test_nodes_sharing_a_secret_accept_each_others_cookies() -> None:
    node_a = CookieKeys.from_shared_key(b"cluster secret of some length")
    node_b = CookieKeys.from_shared_key(b"cluster secret of some length")
    other = CookieKeys.from_shared_key(b"another cluster's secret value")
    cookie = node_a.make_cookie(ADDR, 50.0)
    assert node_b.verify_cookie(cookie, ADDR, 70.0)
    assert not other.verify_cookie(cookie, ADDR, 50.0)
    # rolling the shared secret on every node keeps in-flight cookies valid
    node_b.rotate(derive_cookie_key(b"the next cluster secret"))
    assert node_b.verify_cookie(cookie, ADDR, 70.0)
    with_previous = CookieKeys.from_shared_key(
        b"the next cluster secret", b"cluster secret of some length"
    )
    assert with_previous.verify_cookie(cookie, ADDR, 70.0)


def test_rejects_wrong_sizes() -> None:
    keys = CookieKeys.generate()
    cookie = keys.make_cookie(ADDR, 0.0)
    assert not keys.verify_cookie(cookie[:-1], ADDR, 0.0)
    assert not keys.verify_cookie(cookie + b"\x00", ADDR, 0.0)
    assert not keys.verify_cookie(b"", ADDR, 0.0)
    assert not keys.verify_cookie(bytes(COOKIE_LENGTH), ADDR, 0.0)


@pytest.mark.parametrize("key", [b"", b"x" * 31, b"x" * 33])
def test_key_length_enforced(key: bytes) -> None:
    with pytest.raises(ValueError):
        CookieKeys(key)
    with pytest.raises(ValueError):
        CookieKeys.generate().rotate(key)


def test_shared_secret_minimum_and_bucket_validation() -> None:
    with pytest.raises(ValueError):
        derive_cookie_key(b"short")
    with pytest.raises(ValueError):
        CookieKeys(b"k" * KEY_LENGTH, bucket_seconds=0)
    with pytest.raises(ValueError):
        CookieKeys(b"k" * KEY_LENGTH, bucket_seconds=float("nan"))
    assert CookieKeys(b"k" * KEY_LENGTH, bucket_seconds=30).bucket_seconds == 30.0
