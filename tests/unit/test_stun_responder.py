"""BindingResponder: PROTOCOL §5 case by case, with every drop counted."""

from __future__ import annotations

import struct
import zlib

import pytest

from stunlike_tracker.stun import (
    ATTR_CHANGE_REQUEST,
    ATTR_ERROR_CODE,
    ATTR_FINGERPRINT,
    ATTR_MAPPED_ADDRESS,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_PRIORITY,
    ATTR_SOFTWARE,
    ATTR_UNKNOWN_ATTRIBUTES,
    ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS,
    MAGIC_COOKIE,
    METHOD_BINDING,
    Address,
    BindingResponder,
    StunClass,
    decode_error_code_untrusted,
    decode_mapped_address_untrusted,
    decode_unknown_attributes_untrusted,
    decode_xor_mapped_address_untrusted,
    encode_message,
    parse_message_untrusted,
)

TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")  # RFC 5769's
TID16 = bytes(range(0xA0, 0xB0))
V4: Address = ("192.0.2.1", 32853)
V6: Address = ("2001:db8::5", 40000, 0, 0)


def request(
    *attrs: tuple[int, bytes], tid: bytes = TID, fingerprint: bool = False, method: int = 1
) -> bytes:
    return encode_message(method, StunClass.REQUEST, tid, attrs, fingerprint=fingerprint)


def change_request(flags: int) -> tuple[int, bytes]:
    return ATTR_CHANGE_REQUEST, struct.pack("!I", flags)


def answer(data: bytes, source: Address = V4, ratio: float = 2.0) -> tuple[bytes, BindingResponder]:
    responder = BindingResponder(max_response_ratio=ratio)
    out = responder.handle_untrusted(data, source)
    assert out is not None, responder.drops
    assert len(out) <= ratio * len(data) or (len(data), len(out)) == (20, 52)  # PROTOCOL §5
    assert responder.answered == 1
    assert not responder.drops
    return out, responder


def dropped(data: bytes, source: Address = V4, ratio: float = 2.0) -> str:
    responder = BindingResponder(max_response_ratio=ratio)
    assert responder.handle_untrusted(data, source) is None
    assert responder.answered == 0
    ((reason, count),) = responder.drops.items()
    assert count == 1
    return reason


# --------------------------------------------------------------------------
# Success responses


def test_bare_rfc8489_request_gets_exactly_the_40_bytes() -> None:
    out, _ = answer(request())
    # Header, XOR-MAPPED-ADDRESS of 192.0.2.1:32853 (the value RFC 5769 §2.2
    # prints for this transaction ID), FINGERPRINT; nothing else (PROTOCOL §5).
    head = bytes.fromhex("0101 0014 2112a442") + TID + bytes.fromhex("0020 0008 0001a147e112a643")
    crc = zlib.crc32(head) ^ 0x5354554E
    assert out == head + bytes.fromhex("8028 0004") + struct.pack("!I", crc)
    assert len(out) == 40


def test_success_response_parses_with_our_codec() -> None:
    out, _ = answer(request(fingerprint=True))
    msg = parse_message_untrusted(out)
    assert (msg.method, msg.cls, msg.transaction_id) == (METHOD_BINDING, StunClass.SUCCESS, TID)
    assert msg.types() == (ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT)
    assert decode_xor_mapped_address_untrusted(msg.get(ATTR_XOR_MAPPED_ADDRESS) or b"", TID) == V4


def test_request_with_known_and_optional_attributes_is_answered() -> None:
    data = request(
        (ATTR_SOFTWARE, b"client 1.0"),
        (ATTR_PRIORITY, b"\x6e\x00\x01\xff"),
        (ATTR_USERNAME, b"a:b"),
        (0x8123, b"whatever"),  # unknown but comprehension-optional: ignored
        fingerprint=True,
    )
    out, _ = answer(data)
    assert parse_message_untrusted(out).types() == (ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (("::ffff:198.51.100.9", 5000, 0, 0), ("198.51.100.9", 5000)),  # dual-stack socket
        (("10.0.0.1", 0), ("10.0.0.1", 0)),
        (("255.255.255.255", 65535), ("255.255.255.255", 65535)),
    ],
)
def test_ipv4_sources(source: Address, expected: tuple[str, int]) -> None:
    out, _ = answer(request(), source)
    assert len(out) == 40
    msg = parse_message_untrusted(out)
    assert (
        decode_xor_mapped_address_untrusted(msg.get(ATTR_XOR_MAPPED_ADDRESS) or b"", TID)
        == expected
    )


@pytest.mark.parametrize(
    ("source", "host"),
    [(V6, "2001:db8::5"), (("::1", 40000), "::1"), (("fe80::1%lo", 40000, 0, 1), "fe80::1")],
)
def test_ipv6_sources_are_answered_when_the_request_is_large_enough(
    source: Address, host: str
) -> None:
    data = request((ATTR_SOFTWARE, b"pad"), fingerprint=True)  # 36 bytes: 52 <= 72
    out, _ = answer(data, source)
    assert len(out) == 52
    msg = parse_message_untrusted(out)
    assert decode_xor_mapped_address_untrusted(msg.get(ATTR_XOR_MAPPED_ADDRESS) or b"", TID) == (
        host,
        40000,
    )


@pytest.mark.parametrize("source", [V6, ("::1", 40000)])
def test_bare_request_from_ipv6_gets_its_52_byte_answer(source: Address) -> None:
    # PROTOCOL §5's one exception to the 2x rule: 52 > 2 x 20, answered anyway.
    out, _ = answer(request(), source)
    assert len(out) == 52
    msg = parse_message_untrusted(out)
    assert msg.types() == (ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT)
    assert decode_xor_mapped_address_untrusted(msg.get(ATTR_XOR_MAPPED_ADDRESS) or b"", TID) == (
        source[0],
        40000,
    )


def test_the_ipv6_exception_is_only_for_a_bare_rfc8489_request() -> None:
    # RFC 3489 from IPv6: 44 > 2 x 20 and no exception, so it is dropped.
    assert dropped(struct.pack("!HH16s", 0x0001, 0, TID16), V6) == "stun-response-too-large"
    # A stricter ratio still bounds everything else: 52 > 1.2 x 28 (FINGERPRINT).
    assert dropped(request(fingerprint=True), V6, ratio=1.2) == "stun-response-too-large"
    # An IPv4 client seen through the dual-stack socket gets the 40-byte answer.
    out, _ = answer(request(), ("::ffff:192.0.2.1", 40000, 0, 0))
    assert len(out) == 40


def test_rfc3489_request_gets_mapped_address_and_echoed_id() -> None:
    data = struct.pack("!HH16s", 0x0001, 0, TID16)
    out, _ = answer(data)
    assert len(out) == 32
    assert out[:4] == b"\x01\x01\x00\x0c"
    assert out[4:20] == TID16  # byte for byte (RFC 8489 §11)
    msg = parse_message_untrusted(out)
    assert msg.classic and msg.transaction_id == TID16
    assert msg.types() == (ATTR_MAPPED_ADDRESS,)  # no FINGERPRINT for RFC 3489
    assert decode_mapped_address_untrusted(msg.get(ATTR_MAPPED_ADDRESS) or b"") == V4


def test_rfc3489_test_one_change_request_without_flags_is_answered() -> None:
    # stun-client sends CHANGE-REQUEST 0 with its Test I; nothing to change.
    data = request(change_request(0), tid=TID16)
    out, _ = answer(data)
    assert out[4:20] == TID16
    out6, _ = answer(data, V6)  # 44 bytes <= 2 x 28
    assert decode_mapped_address_untrusted(
        parse_message_untrusted(out6).get(ATTR_MAPPED_ADDRESS) or b""
    ) == (
        "2001:db8::5",
        40000,
    )


def test_rfc8489_change_request_without_flags_is_answered() -> None:
    out, _ = answer(request(change_request(0)))
    assert parse_message_untrusted(out).types() == (ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT)


# --------------------------------------------------------------------------
# 420


def test_unknown_comprehension_required_attribute_gets_420() -> None:
    data = request((0x7777, b""), (ATTR_SOFTWARE, b"x"), (0x0002, b"12345678"), (0x7777, b"again"))
    out, responder = answer(data)
    assert responder.errors_sent == 1
    msg = parse_message_untrusted(out)  # checks the FINGERPRINT too
    assert (msg.method, msg.cls, msg.transaction_id) == (METHOD_BINDING, StunClass.ERROR, TID)
    assert msg.types() == (ATTR_ERROR_CODE, ATTR_UNKNOWN_ATTRIBUTES, ATTR_FINGERPRINT)
    assert decode_error_code_untrusted(msg.get(ATTR_ERROR_CODE) or b"") == (
        420,
        "Unknown Attribute",
    )
    # Each unknown type once, in order of appearance (RFC 8489 §14.13).
    assert decode_unknown_attributes_untrusted(msg.get(ATTR_UNKNOWN_ATTRIBUTES) or b"") == (
        0x7777,
        0x0002,
    )


@pytest.mark.parametrize("source", [V4, V6])
def test_minimal_420_fits_in_twice_the_request_by_dropping_the_phrase(source: Address) -> None:
    data = request((0x7777, b""))  # 24 bytes; with the phrase the answer would be 60
    out, _ = answer(data, source)
    assert len(out) == 44
    error_code = parse_message_untrusted(out).get(ATTR_ERROR_CODE) or b""
    assert decode_error_code_untrusted(error_code) == (420, "")


def test_rfc3489_420_repeats_an_odd_list_and_has_no_fingerprint() -> None:
    data = request((0x0002, b"\x00\x01\x00\x01\x7f\x00\x00\x01"), tid=TID16)  # RESPONSE-ADDRESS
    out, _ = answer(data)
    msg = parse_message_untrusted(out)
    assert msg.classic and msg.transaction_id == TID16
    assert msg.types() == (ATTR_ERROR_CODE, ATTR_UNKNOWN_ATTRIBUTES)
    assert decode_unknown_attributes_untrusted(msg.get(ATTR_UNKNOWN_ATTRIBUTES) or b"") == (
        0x0002,
        0x0002,
    )
    # RFC 3489 §11.2.9: the phrase is padded with spaces to a multiple of 4.
    error_code = msg.get(ATTR_ERROR_CODE) or b""
    assert decode_error_code_untrusted(error_code) == (420, "Unknown Attribute   ")


def test_unknown_attribute_after_message_integrity_is_ignored() -> None:
    signed = encode_message(
        METHOD_BINDING, StunClass.REQUEST, TID, [(ATTR_USERNAME, b"u:v")], integrity_key=b"k"
    )
    data = signed + struct.pack("!HH", 0x7777, 0)
    data = data[:2] + struct.pack("!H", len(data) - 20) + data[4:]
    out, _ = answer(data)
    assert parse_message_untrusted(out).cls == StunClass.SUCCESS
    assert parse_message_untrusted(signed).find(ATTR_MESSAGE_INTEGRITY) is not None


# --------------------------------------------------------------------------
# Drops


@pytest.mark.parametrize("flags", [0x04, 0x02, 0x06, 0x07])
@pytest.mark.parametrize("tid", [TID, TID16])
def test_change_request_with_flags_is_dropped(flags: int, tid: bytes) -> None:
    assert dropped(request(change_request(flags), tid=tid)) == "stun-change-request"


def test_change_request_with_unknown_attribute_is_still_dropped() -> None:
    assert dropped(request(change_request(4), (0x7777, b""))) == "stun-change-request"


@pytest.mark.parametrize(
    ("msg_type", "reason"),
    [
        (0x0011, "stun-indication"),  # Binding indication (keepalive)
        (0x0101, "stun-not-request"),  # Binding success
        (0x0111, "stun-not-request"),  # Binding error
        (0x0003, "stun-not-binding"),  # Allocate request
        (0x0002, "stun-not-binding"),  # RFC 3489 Shared Secret request
        (0x0016, "stun-indication"),  # Send indication
    ],
)
def test_non_binding_and_non_requests_are_dropped(msg_type: int, reason: str) -> None:
    data = struct.pack("!HHI12s", msg_type, 0, MAGIC_COOKIE, TID)
    assert dropped(data) == reason


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        request()[:19],  # truncated header
        request((ATTR_SOFTWARE, b"abcd"))[:-4],  # truncated body (length says more)
        request() + b"\x00\x00\x00\x00",  # trailing bytes: length says less
        b"\x00\x01\x00\x02" + request()[4:] + b"\x00\x00",  # length not a multiple of 4
        b"\x40\x01" + request()[2:],  # top bits set
        b"\xc0\x01" + request()[2:],
        # SOFTWARE claims 200 bytes in a 28-byte message.
        struct.pack("!HHI12sHH", 1, 8, MAGIC_COOKIE, TID, ATTR_SOFTWARE, 200) + b"abcd",
        # CHANGE-REQUEST of the wrong size.
        request((ATTR_CHANGE_REQUEST, b"\x00\x00\x00\x00\x00\x00\x00\x00")),
        request((ATTR_FINGERPRINT, b"\x00" * 8)),  # FINGERPRINT of the wrong size
        request((ATTR_MESSAGE_INTEGRITY, b"\x00" * 4)),
        request((0x001C, b"\x00" * 8)),  # MESSAGE-INTEGRITY-SHA256 too short
    ],
)
def test_malformed_is_dropped(data: bytes) -> None:
    assert dropped(data) == "stun-malformed"


def test_bad_fingerprint_is_dropped() -> None:
    good = request((ATTR_SOFTWARE, b"abc"), fingerprint=True)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert dropped(bad) == "stun-bad-fingerprint"
    # An attribute after FINGERPRINT: FINGERPRINT must be last (RFC 8489 §14.7).
    after = good + struct.pack("!HH", 0x8123, 0)
    after = after[:2] + struct.pack("!H", len(after) - 20) + after[4:]
    assert dropped(after) == "stun-bad-fingerprint"


@pytest.mark.parametrize("data", [request(), request(tid=TID16), request(fingerprint=True)])
@pytest.mark.parametrize(
    "source", [("not-an-ip", 1), ("192.0.2.1", 70000), ("192.0.2.1", -1), ("zz::1", 1)]
)
def test_bad_source_is_counted_not_raised(data: bytes, source: Address) -> None:
    assert dropped(data, source) == "stun-bad-source"


def test_counters_accumulate() -> None:
    responder = BindingResponder()
    for _ in range(3):
        assert responder.handle_untrusted(request(), V4) is not None
    responder.handle_untrusted(b"junk", V4)
    responder.handle_untrusted(request(change_request(6)), V4)
    responder.handle_untrusted(request((0x7777, b"")), V4)
    assert responder.answered == 4
    assert responder.errors_sent == 1
    assert responder.drops == {"stun-malformed": 1, "stun-change-request": 1}


def test_ratio_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BindingResponder(max_response_ratio=0)


# --------------------------------------------------------------------------
# PROTOCOL §5: never more than twice the request, for every answered case.

ANSWERED_CASES: list[tuple[bytes, Address]] = [
    (request(), V4),
    (request(fingerprint=True), V4),
    (request(fingerprint=True), V6),
    (request((ATTR_SOFTWARE, b"x")), V6),
    (request(tid=TID16), V4),
    (request(change_request(0), tid=TID16), V4),
    (request(change_request(0), tid=TID16), V6),
    (request((0x7777, b"")), V4),
    (request((0x7777, b"")), V6),
    (request((0x7777, b""), tid=TID16), V4),
    (request((0x0002, b""), (0x0005, b""), (0x0026, b""), fingerprint=True), V6),
]


@pytest.mark.parametrize(("data", "source"), ANSWERED_CASES)
def test_every_answer_is_at_most_twice_its_request(data: bytes, source: Address) -> None:
    responder = BindingResponder()
    out = responder.handle_untrusted(data, source)
    assert out is not None, responder.drops
    assert len(out) <= 2 * len(data)
