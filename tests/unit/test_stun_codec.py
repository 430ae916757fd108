"""The STUN codec: RFC 5769 test vectors byte for byte, then the framing rules."""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib

import pytest

from stunlike_tracker.stun import (
    ATTR_ERROR_CODE,
    ATTR_FINGERPRINT,
    ATTR_ICE_CONTROLLED,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_MESSAGE_INTEGRITY_SHA256,
    ATTR_NONCE,
    ATTR_PRIORITY,
    ATTR_REALM,
    ATTR_SOFTWARE,
    ATTR_UNKNOWN_ATTRIBUTES,
    ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS,
    MAGIC_COOKIE,
    METHOD_BINDING,
    REASON_BAD_FINGERPRINT,
    REASON_MALFORMED,
    StunClass,
    StunError,
    compute_fingerprint,
    decode_error_code_untrusted,
    decode_mapped_address_untrusted,
    decode_software_untrusted,
    decode_unknown_attributes_untrusted,
    decode_xor_mapped_address_untrusted,
    encode_error_code,
    encode_mapped_address,
    encode_message,
    encode_software,
    encode_unknown_attributes,
    encode_xor_mapped_address,
    long_term_key,
    message_type,
    parse_header_untrusted,
    parse_message_untrusted,
    short_term_key,
    split_message_type,
    verify_message_integrity,
    verify_message_integrity_sha256,
)


def unhex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 5769 ("Test Vectors for STUN", April 2010), copied verbatim from the RFC
# text. Padding in §2.1-§2.3 is 0x20 on purpose (RFC 5769 §2: "padding
# bytes ... set to a space"); §2.4 pads with zeros.

# RFC 5769 §2.1 "Sample Request": Binding request with SOFTWARE, PRIORITY,
# ICE-CONTROLLED, USERNAME "evtj:h6vY", MESSAGE-INTEGRITY (short-term
# password "VOkJxbRl1RmTxUk/WvJxBt") and FINGERPRINT.
RFC5769_2_1_REQUEST = unhex("""
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf
""")

# RFC 5769 §2.2 "Sample IPv4 Response": SOFTWARE "test vector",
# XOR-MAPPED-ADDRESS 192.0.2.1:32853, MESSAGE-INTEGRITY, FINGERPRINT.
RFC5769_2_2_IPV4_RESPONSE = unhex("""
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96
""")

# RFC 5769 §2.3 "Sample IPv6 Response": XOR-MAPPED-ADDRESS
# [2001:db8:1234:5678:11:2233:4455:6677]:32853.
RFC5769_2_3_IPV6_RESPONSE = unhex("""
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c
""")

# RFC 5769 §2.4 "Sample Request with Long-Term Authentication": USERNAME
# U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9, NONCE, REALM "example.org",
# MESSAGE-INTEGRITY under MD5(username:realm:password), no FINGERPRINT. The
# password is "TheMatrIX" after SASLprep (RFC 5769 §2.4 gives the form before
# it too; RFC 8489's OpaqueString does not map it, so we use the processed one).
RFC5769_2_4_LONG_TERM_REQUEST = unhex("""
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66
""")

RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_TID = unhex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae")
RFC5769_LT_USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
RFC5769_LT_NONCE = "f//499k954d6OL34oL9FSTvy64sA"


def test_rfc5769_2_1_sample_request() -> None:
    msg = parse_message_untrusted(RFC5769_2_1_REQUEST)
    assert (msg.method, msg.cls, msg.classic) == (METHOD_BINDING, StunClass.REQUEST, False)
    assert msg.transaction_id == RFC5769_TID
    assert msg.types() == (
        ATTR_SOFTWARE,
        ATTR_PRIORITY,
        ATTR_ICE_CONTROLLED,
        ATTR_USERNAME,
        ATTR_MESSAGE_INTEGRITY,
        ATTR_FINGERPRINT,
    )
    assert msg.get(ATTR_SOFTWARE) == b"STUN test client"
    assert decode_software_untrusted(msg.get(ATTR_SOFTWARE) or b"") == "STUN test client"
    assert msg.get(ATTR_PRIORITY) == unhex("6e 00 01 ff")
    assert msg.get(ATTR_ICE_CONTROLLED) == unhex("93 2f f9 b1 51 26 3b 36")
    assert msg.get(ATTR_USERNAME) == b"evtj:h6vY"
    key = short_term_key(RFC5769_PASSWORD)
    assert verify_message_integrity(msg, key)
    assert not verify_message_integrity(msg, b"not the password")


def test_rfc5769_2_1_reencodes_byte_for_byte() -> None:
    msg = parse_message_untrusted(RFC5769_2_1_REQUEST)
    signed = (ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT)
    body = [(a.type, a.value) for a in msg.attributes if a.type not in signed]
    again = encode_message(
        METHOD_BINDING,
        StunClass.REQUEST,
        RFC5769_TID,
        body,
        integrity_key=short_term_key(RFC5769_PASSWORD),
        fingerprint=True,
        padding=0x20,
    )
    assert again == RFC5769_2_1_REQUEST


@pytest.mark.parametrize(
    ("vector", "host"),
    [
        (RFC5769_2_2_IPV4_RESPONSE, "192.0.2.1"),
        (RFC5769_2_3_IPV6_RESPONSE, "2001:db8:1234:5678:11:2233:4455:6677"),
    ],
)
def test_rfc5769_2_2_and_2_3_responses(vector: bytes, host: str) -> None:
    msg = parse_message_untrusted(vector)
    assert (msg.method, msg.cls) == (METHOD_BINDING, StunClass.SUCCESS)
    assert msg.get(ATTR_SOFTWARE) == b"test vector"
    xma = msg.get(ATTR_XOR_MAPPED_ADDRESS)
    assert xma is not None
    assert decode_xor_mapped_address_untrusted(xma, msg.transaction_id) == (host, 32853)
    assert verify_message_integrity(msg, short_term_key(RFC5769_PASSWORD))
    # Byte-exact re-encoding from the decoded values (RFC 5769 pads with spaces).
    again = encode_message(
        METHOD_BINDING,
        StunClass.SUCCESS,
        RFC5769_TID,
        [
            (ATTR_SOFTWARE, encode_software("test vector")),
            (ATTR_XOR_MAPPED_ADDRESS, encode_xor_mapped_address(host, 32853, RFC5769_TID)),
        ],
        integrity_key=short_term_key(RFC5769_PASSWORD),
        fingerprint=True,
        padding=0x20,
    )
    assert again == vector


def test_rfc5769_2_4_long_term_request() -> None:
    msg = parse_message_untrusted(RFC5769_2_4_LONG_TERM_REQUEST)
    assert msg.transaction_id == unhex("78 ad 34 33 c6 ad 72 c0 29 da 41 2e")
    assert msg.types() == (ATTR_USERNAME, ATTR_NONCE, ATTR_REALM, ATTR_MESSAGE_INTEGRITY)
    assert msg.get(ATTR_USERNAME) == RFC5769_LT_USERNAME.encode()
    assert msg.get(ATTR_NONCE) == RFC5769_LT_NONCE.encode()
    assert msg.get(ATTR_REALM) == b"example.org"
    assert msg.find(ATTR_FINGERPRINT) is None
    key = long_term_key(RFC5769_LT_USERNAME, "example.org", "TheMatrIX")
    assert key == hashlib.md5(f"{RFC5769_LT_USERNAME}:example.org:TheMatrIX".encode()).digest()
    assert verify_message_integrity(msg, key)
    assert not verify_message_integrity(
        msg, long_term_key(RFC5769_LT_USERNAME, "example.org", "TheMatrix")
    )
    again = encode_message(
        METHOD_BINDING,
        StunClass.REQUEST,
        msg.transaction_id,
        [
            (ATTR_USERNAME, RFC5769_LT_USERNAME.encode()),
            (ATTR_NONCE, RFC5769_LT_NONCE.encode()),
            (ATTR_REALM, b"example.org"),
        ],
        integrity_key=key,
    )
    assert again == RFC5769_2_4_LONG_TERM_REQUEST


@pytest.mark.parametrize(
    "vector",
    [RFC5769_2_1_REQUEST, RFC5769_2_2_IPV4_RESPONSE, RFC5769_2_3_IPV6_RESPONSE],
)
def test_rfc5769_fingerprints_check_and_any_flip_breaks_them(vector: bytes) -> None:
    parse_message_untrusted(vector)  # FINGERPRINT is checked by default
    for i in range(20, len(vector) - 8, 3):
        flipped = bytearray(vector)
        flipped[i] ^= 0x01
        with pytest.raises(StunError) as info:
            parse_message_untrusted(bytes(flipped))
        assert info.value.reason in (REASON_BAD_FINGERPRINT, REASON_MALFORMED)


# --------------------------------------------------------------------------
# Header


@pytest.mark.parametrize(
    ("method", "cls", "msg_type"),
    [
        (0x001, StunClass.REQUEST, 0x0001),
        (0x001, StunClass.INDICATION, 0x0011),
        (0x001, StunClass.SUCCESS, 0x0101),
        (0x001, StunClass.ERROR, 0x0111),
        (0x003, StunClass.REQUEST, 0x0003),
        (0x009, StunClass.SUCCESS, 0x0109),
        (0x006, StunClass.INDICATION, 0x0016),
        (0xFFF, StunClass.ERROR, 0x3FFF),
        (0x080, StunClass.REQUEST, 0x0200),
    ],
)
def test_message_type_interleaving(method: int, cls: StunClass, msg_type: int) -> None:
    # RFC 8489 §5, Figure 3: M11..M7 C1 M6..M4 C0 M3..M0.
    assert message_type(method, cls) == msg_type
    assert split_message_type(msg_type) == (method, cls)


def test_message_type_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        message_type(0x1000, 0)
    with pytest.raises(ValueError):
        message_type(1, 4)


def test_header_rfc8489_and_rfc3489() -> None:
    modern = struct.pack("!HHI12s", 0x0001, 0, MAGIC_COOKIE, b"A" * 12)
    header = parse_header_untrusted(modern)
    assert (header.method, header.cls, header.length) == (1, StunClass.REQUEST, 0)
    assert header.transaction_id == b"A" * 12
    assert not header.classic
    classic = struct.pack("!HH16s", 0x0001, 0, b"0123456789abcdef")
    header = parse_header_untrusted(classic)
    assert header.classic
    # RFC 3489 §11.1: the 16 bytes after the length are the transaction ID.
    assert header.transaction_id == b"0123456789abcdef"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 11,  # 19 bytes: truncated header
        b"\x40\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 12,  # top bits set
        b"\x80\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 12,
        b"\x00\x01\x00\x02\x21\x12\xa4\x42" + b"x" * 12 + b"ab",  # length % 4 != 0
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + b"x" * 12,  # length past the datagram
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"x" * 12 + b"\x00" * 4,  # trailing bytes
    ],
)
def test_header_framing_errors(data: bytes) -> None:
    with pytest.raises(StunError) as info:
        parse_header_untrusted(data)
    assert info.value.reason == REASON_MALFORMED
    with pytest.raises(StunError):
        parse_message_untrusted(data)


# --------------------------------------------------------------------------
# Attributes and their framing


def _request(body: bytes, msg_type: int = 0x0001) -> bytes:
    return struct.pack("!HHI12s", msg_type, len(body), MAGIC_COOKIE, b"T" * 12) + body


def test_attribute_overrunning_the_message_is_malformed() -> None:
    # SOFTWARE claims 9 bytes: padded to 12, but only 8 follow.
    data = _request(struct.pack("!HH", ATTR_SOFTWARE, 9) + b"12345678")
    with pytest.raises(StunError) as info:
        parse_message_untrusted(data)
    assert info.value.reason == REASON_MALFORMED


def test_padding_is_ignored_and_zero_length_attributes_parse() -> None:
    data = _request(
        struct.pack("!HH", ATTR_SOFTWARE, 1) + b"x\xff\xfe\xfd" + struct.pack("!HH", 0x8123, 0)
    )
    msg = parse_message_untrusted(data)
    assert [(a.type, a.value, a.offset) for a in msg.attributes] == [
        (ATTR_SOFTWARE, b"x", 20),
        (0x8123, b"", 28),
    ]


def test_fingerprint_must_be_last() -> None:
    good = encode_message(METHOD_BINDING, StunClass.REQUEST, b"T" * 12, fingerprint=True)
    trailing = good + struct.pack("!HH", ATTR_SOFTWARE, 0)
    trailing = trailing[:2] + struct.pack("!H", len(trailing) - 20) + trailing[4:]
    with pytest.raises(StunError) as info:
        parse_message_untrusted(trailing)
    assert info.value.reason == REASON_BAD_FINGERPRINT


def test_fingerprint_value_and_length() -> None:
    good = encode_message(METHOD_BINDING, StunClass.REQUEST, b"T" * 12, fingerprint=True)
    assert len(good) == 28
    # RFC 8489 §14.7: CRC-32 of the message before it, XOR 0x5354554E.
    assert struct.unpack("!I", good[-4:])[0] == zlib.crc32(good[:20]) ^ 0x5354554E
    assert compute_fingerprint(good[:20]) == struct.unpack("!I", good[-4:])[0]
    bad = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(StunError) as info:
        parse_message_untrusted(bad)
    assert info.value.reason == REASON_BAD_FINGERPRINT
    assert parse_message_untrusted(bad, check_fingerprint=False).find(ATTR_FINGERPRINT) is not None
    wrong_length = _request(struct.pack("!HH", ATTR_FINGERPRINT, 8) + b"\x00" * 8)
    with pytest.raises(StunError) as info:
        parse_message_untrusted(wrong_length)
    assert info.value.reason == REASON_MALFORMED


def test_attributes_after_message_integrity_are_ignored() -> None:
    key = b"secret"
    signed = encode_message(
        METHOD_BINDING, StunClass.REQUEST, b"T" * 12, [(ATTR_SOFTWARE, b"abc")], integrity_key=key
    )
    extra = struct.pack("!HH", ATTR_REALM, 4) + b"evil"
    tampered = signed + extra
    tampered = tampered[:2] + struct.pack("!H", len(tampered) - 20) + tampered[4:]
    msg = parse_message_untrusted(tampered)
    # RFC 8489 §14.5: REALM after MESSAGE-INTEGRITY is ignored; the MAC holds.
    assert msg.types() == (ATTR_SOFTWARE, ATTR_MESSAGE_INTEGRITY)
    assert verify_message_integrity(msg, key)


def test_message_integrity_and_sha256_together_and_truncated() -> None:
    for length in (16, 20, 24, 28, 32):
        data = encode_message(
            METHOD_BINDING,
            StunClass.SUCCESS,
            b"S" * 12,
            [(ATTR_SOFTWARE, b"x")],
            integrity_key=b"k1",
            integrity_sha256_key=b"k2",
            integrity_sha256_length=length,
            fingerprint=True,
        )
        msg = parse_message_untrusted(data)
        assert msg.types() == (
            ATTR_SOFTWARE,
            ATTR_MESSAGE_INTEGRITY,
            ATTR_MESSAGE_INTEGRITY_SHA256,
            ATTR_FINGERPRINT,
        )
        assert verify_message_integrity(msg, b"k1")
        assert verify_message_integrity_sha256(msg, b"k2")
        assert not verify_message_integrity_sha256(msg, b"k1")
        assert not verify_message_integrity(msg, b"k2")
    # Computed independently: HMAC-SHA256 over the message up to the attribute,
    # with the length field ending right after it (RFC 8489 §14.6).
    data = encode_message(METHOD_BINDING, StunClass.REQUEST, b"S" * 12, integrity_sha256_key=b"k")
    text = data[:2] + struct.pack("!H", 36) + data[4:20]
    assert data[24:] == hmac.new(b"k", text, hashlib.sha256).digest()
    with pytest.raises(ValueError):
        encode_message(
            METHOD_BINDING, 0, b"S" * 12, integrity_sha256_key=b"k", integrity_sha256_length=18
        )


def test_integrity_absent_is_false() -> None:
    msg = parse_message_untrusted(encode_message(METHOD_BINDING, 0, b"S" * 12))
    assert not verify_message_integrity(msg, b"k")
    assert not verify_message_integrity_sha256(msg, b"k")


@pytest.mark.parametrize(
    ("attr_type", "length"),
    [
        (ATTR_MESSAGE_INTEGRITY, 16),
        (ATTR_MESSAGE_INTEGRITY_SHA256, 12),
        (ATTR_MESSAGE_INTEGRITY_SHA256, 36),
    ],
)
def test_integrity_attribute_lengths_are_checked(attr_type: int, length: int) -> None:
    data = _request(struct.pack("!HH", attr_type, length) + b"\x00" * length)
    with pytest.raises(StunError) as info:
        parse_message_untrusted(data)
    assert info.value.reason == REASON_MALFORMED


def test_short_term_key_applies_opaque_string_mapping() -> None:
    # RFC 8265 §4.2: non-ASCII spaces map to U+0020, then NFC.
    assert short_term_key("a\u00a0b") == b"a b"
    assert short_term_key("e\u0301") == "\u00e9".encode()
    assert long_term_key("u", "r", "p", algorithm="sha256") == hashlib.sha256(b"u:r:p").digest()
    with pytest.raises(ValueError):
        long_term_key("u", "r", "p", algorithm="sha1")


def test_classic_messages_encode_and_parse() -> None:
    tid16 = bytes(range(16))
    data = encode_message(
        METHOD_BINDING,
        StunClass.SUCCESS,
        tid16,
        [(0x0001, encode_mapped_address("10.1.2.3", 4000))],
    )
    assert data[4:20] == tid16
    msg = parse_message_untrusted(data)
    assert msg.classic and msg.transaction_id == tid16
    assert decode_mapped_address_untrusted(msg.get(0x0001) or b"") == ("10.1.2.3", 4000)
    with pytest.raises(ValueError):
        encode_message(METHOD_BINDING, 0, b"short")


# --------------------------------------------------------------------------
# Attribute values


@pytest.mark.parametrize(
    ("host", "port", "expected_host", "size"),
    [
        ("192.0.2.1", 32853, "192.0.2.1", 8),
        ("2001:db8::1", 1, "2001:db8::1", 20),
        ("::ffff:198.51.100.7", 65535, "198.51.100.7", 8),  # IPv4-mapped is IPv4
        ("fe80::1%eth0", 9, "fe80::1", 20),  # scope ID is not on the wire
        ("::", 0, "::", 20),
    ],
)
def test_address_values_round_trip(host: str, port: int, expected_host: str, size: int) -> None:
    tid = b"0123456789ab"
    xma = encode_xor_mapped_address(host, port, tid)
    ma = encode_mapped_address(host, port)
    assert len(xma) == len(ma) == size
    assert decode_xor_mapped_address_untrusted(xma, tid) == (expected_host, port)
    assert decode_mapped_address_untrusted(ma) == (expected_host, port)


def test_xor_mapped_address_matches_rfc5769_bytes() -> None:
    assert encode_xor_mapped_address("192.0.2.1", 32853, RFC5769_TID) == unhex(
        "00 01 a1 47 e1 12 a6 43"
    )
    assert encode_xor_mapped_address(
        "2001:db8:1234:5678:11:2233:4455:6677", 32853, RFC5769_TID
    ) == unhex("00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9")


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x00\x01\x00\x00\x01\x02\x03",  # IPv4, 3 address bytes
        b"\x00\x02\x00\x00\x01\x02\x03\x04",  # IPv6 family with an IPv4 length
        b"\x00\x03\x00\x00\x01\x02\x03\x04",  # unknown family
        b"\x00\x01" + b"\x00" * 18,  # IPv4 family with an IPv6 length
    ],
)
def test_bad_address_values(value: bytes) -> None:
    with pytest.raises(StunError):
        decode_mapped_address_untrusted(value)
    with pytest.raises(StunError):
        decode_xor_mapped_address_untrusted(value, b"0123456789ab")


def test_address_encoders_reject_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_mapped_address("192.0.2.1", 70000)
    with pytest.raises(OSError):
        encode_mapped_address("not-an-ip", 1)
    with pytest.raises(ValueError):
        encode_xor_mapped_address("192.0.2.1", 1, b"short")
    with pytest.raises(StunError):
        decode_xor_mapped_address_untrusted(b"\x00\x01\x00\x00\x01\x02\x03\x04", b"short")


def test_error_code_values() -> None:
    value = encode_error_code(420, "Unknown Attribute")
    assert value[:4] == b"\x00\x00\x04\x14"
    assert decode_error_code_untrusted(value) == (420, "Unknown Attribute")
    assert decode_error_code_untrusted(encode_error_code(699)) == (699, "")
    for bad in (b"\x00\x00\x04", b"\x00\x00\x02\x00", b"\x00\x00\x04\x64", b"\x00\x00\x04\x14\xff"):
        with pytest.raises(StunError):
            decode_error_code_untrusted(bad)
    for code in (299, 700):
        with pytest.raises(ValueError):
            encode_error_code(code)
    with pytest.raises(ValueError):
        encode_error_code(400, "x" * 128)


def test_unknown_attributes_values() -> None:
    assert encode_unknown_attributes([0x0002, 0x7777, 0x0026]) == unhex("0002 7777 0026")
    # RFC 3489 §11.2.12: an odd list repeats an entry to fill 4 bytes.
    assert encode_unknown_attributes([0x0002], classic=True) == unhex("0002 0002")
    assert decode_unknown_attributes_untrusted(unhex("0002 7777")) == (0x0002, 0x7777)
    with pytest.raises(StunError):
        decode_unknown_attributes_untrusted(b"\x00\x02\x00")
    with pytest.raises(ValueError):
        encode_unknown_attributes([0x10000])


def test_software_values() -> None:
    assert encode_software("stunlike-tracker") == b"stunlike-tracker"
    assert decode_software_untrusted("\u00e9t\u00e9".encode()) == "\u00e9t\u00e9"
    with pytest.raises(ValueError):
        encode_software("x" * 128)
    with pytest.raises(StunError):
        decode_software_untrusted(b"\xff\xfe")
    with pytest.raises(StunError):
        decode_software_untrusted(b"x" * 128)


def test_error_response_parses_with_all_its_attributes() -> None:
    data = encode_message(
        METHOD_BINDING,
        StunClass.ERROR,
        b"E" * 12,
        [
            (ATTR_ERROR_CODE, encode_error_code(420, "Unknown Attr")),
            (ATTR_UNKNOWN_ATTRIBUTES, encode_unknown_attributes([0x7777])),
        ],
        fingerprint=True,
    )
    msg = parse_message_untrusted(data)
    assert msg.cls == StunClass.ERROR
    assert decode_error_code_untrusted(msg.get(ATTR_ERROR_CODE) or b"") == (420, "Unknown Attr")
    assert decode_unknown_attributes_untrusted(msg.get(ATTR_UNKNOWN_ATTRIBUTES) or b"") == (0x7777,)


def test_parse_accepts_bytes_like_input() -> None:
    msg = parse_message_untrusted(memoryview(bytearray(RFC5769_2_1_REQUEST)))
    assert isinstance(msg.raw, bytes)
    assert verify_message_integrity(msg, short_term_key(RFC5769_PASSWORD))
