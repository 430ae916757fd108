"""aioice's STUN codec as an independent oracle, both directions.

aioice builds the requests, our responder answers, aioice parses the answer
(and checks its FINGERPRINT); then aioice parses what our encoder writes, and
our parser reads what aioice writes.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest
from aioice import stun as aio

from stunlike_tracker.stun import (
    ATTR_ERROR_CODE,
    ATTR_FINGERPRINT,
    ATTR_ICE_CONTROLLING,
    ATTR_MAPPED_ADDRESS,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_NONCE,
    ATTR_PRIORITY,
    ATTR_REALM,
    ATTR_SOFTWARE,
    ATTR_USE_CANDIDATE,
    ATTR_USERNAME,
    ATTR_XOR_MAPPED_ADDRESS,
    METHOD_BINDING,
    Address,
    BindingResponder,
    StunClass,
    decode_error_code_untrusted,
    decode_mapped_address_untrusted,
    decode_software_untrusted,
    decode_xor_mapped_address_untrusted,
    encode_error_code,
    encode_mapped_address,
    encode_message,
    encode_software,
    encode_xor_mapped_address,
    parse_message_untrusted,
    verify_message_integrity,
)

KEY = b"0123456789abcdefghijkl"

IPV4_SOURCES: list[Address] = [
    ("192.0.2.1", 32853),
    ("203.0.113.200", 1),
    ("10.255.0.7", 65535),
    ("::ffff:198.51.100.3", 3478, 0, 0),
]
IPV6_SOURCES: list[Address] = [
    ("2001:db8::1", 40000, 0, 0),
    ("::1", 5000),
    ("2001:db8:1234:5678:11:2233:4455:6677", 32853, 0, 0),
]


def aio_request(attributes: dict[str, Any], finish: str) -> bytes:
    msg = aio.Message(
        message_method=aio.Method.BINDING,
        message_class=aio.Class.REQUEST,
        attributes=dict(attributes),
    )
    if finish == "fingerprint":
        msg.add_fingerprint()
    elif finish == "integrity":
        msg.add_message_integrity(KEY)  # adds FINGERPRINT after it
    return bytes(msg)


ATTRIBUTE_SETS: list[dict[str, Any]] = [
    {},
    {"SOFTWARE": "aioice oracle"},
    {"PRIORITY": 0x6E0001FF, "ICE-CONTROLLING": 0x0102030405060708, "USERNAME": "abcd:efgh"},
    {"PRIORITY": 1, "ICE-CONTROLLED": 99, "USE-CANDIDATE": None, "USERNAME": "u:v"},
]


def expected_host(source: Address) -> str:
    host = source[0]
    return host.removeprefix("::ffff:") if host.startswith("::ffff:") else host


@pytest.mark.parametrize("attributes", ATTRIBUTE_SETS)
@pytest.mark.parametrize("finish", ["none", "fingerprint", "integrity"])
@pytest.mark.parametrize("source", IPV4_SOURCES + IPV6_SOURCES)
def test_aioice_request_gets_its_source_back(
    attributes: dict[str, Any], finish: str, source: Address
) -> None:
    data = aio_request(attributes, finish)
    responder = BindingResponder()
    out = responder.handle_untrusted(data, source)
    assert out is not None, responder.drops
    # PROTOCOL §5: at most 2x the request, except a bare one from IPv6 (52 bytes).
    assert len(out) <= 2 * len(data) or (len(data), len(out)) == (20, 52)
    response = aio.parse_message(out)  # raises if the FINGERPRINT is wrong
    assert response.message_method == aio.Method.BINDING
    assert response.message_class == aio.Class.RESPONSE
    assert response.transaction_id == data[8:20]
    assert response.attributes["XOR-MAPPED-ADDRESS"] == (expected_host(source), source[1])
    assert set(response.attributes) == {"XOR-MAPPED-ADDRESS", "FINGERPRINT"}


@pytest.mark.parametrize(
    "attributes",
    [
        {"LIFETIME": 600},
        {"REQUESTED-TRANSPORT": 0x11000000},
        {"SOFTWARE": "x", "CHANNEL-NUMBER": 0x4000},
    ],
)
def test_aioice_sees_420_for_comprehension_required_attributes(attributes: dict[str, Any]) -> None:
    data = aio_request(attributes, "fingerprint")
    out = BindingResponder().handle_untrusted(data, ("192.0.2.1", 1))
    assert out is not None
    response = aio.parse_message(out)
    assert response.message_class == aio.Class.ERROR
    assert response.error_code == 420
    assert response.transaction_id == data[8:20]


@pytest.mark.parametrize("flags", [2, 4, 6])
def test_aioice_change_request_is_dropped(flags: int) -> None:
    responder = BindingResponder()
    assert (
        responder.handle_untrusted(aio_request({"CHANGE-REQUEST": flags}, "none"), ("192.0.2.1", 1))
        is None
    )
    assert responder.drops == {"stun-change-request": 1}


def test_aioice_binding_indication_and_response_are_dropped() -> None:
    responder = BindingResponder()
    for cls in (aio.Class.INDICATION, aio.Class.RESPONSE, aio.Class.ERROR):
        data = bytes(aio.Message(message_method=aio.Method.BINDING, message_class=cls))
        assert responder.handle_untrusted(data, ("192.0.2.1", 1)) is None
    assert responder.drops == {"stun-indication": 1, "stun-not-request": 2}


# --------------------------------------------------------------------------
# Our encoder, aioice's parser.


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::7", "::ffff:10.0.0.1"])
def test_aioice_parses_our_success_response(host: str) -> None:
    tid = os.urandom(12)
    data = encode_message(
        METHOD_BINDING,
        StunClass.SUCCESS,
        tid,
        [
            (ATTR_SOFTWARE, encode_software("stunlike-tracker")),
            (ATTR_XOR_MAPPED_ADDRESS, encode_xor_mapped_address(host, 4242, tid)),
            (ATTR_MAPPED_ADDRESS, encode_mapped_address(host, 4242)),
        ],
        fingerprint=True,
    )
    msg = aio.parse_message(data)
    plain = host.removeprefix("::ffff:")
    assert msg.transaction_id == tid
    assert (msg.message_method, msg.message_class) == (aio.Method.BINDING, aio.Class.RESPONSE)
    assert msg.attributes == {
        "SOFTWARE": "stunlike-tracker",
        "XOR-MAPPED-ADDRESS": (plain, 4242),
        "MAPPED-ADDRESS": (plain, 4242),
        "FINGERPRINT": struct.unpack("!I", data[-4:])[0],
    }


def test_aioice_parses_our_ice_style_request_with_integrity() -> None:
    tid = os.urandom(12)
    data = encode_message(
        METHOD_BINDING,
        StunClass.REQUEST,
        tid,
        [
            (ATTR_USERNAME, b"remote:local"),
            (ATTR_PRIORITY, struct.pack("!I", 1853817087)),
            (ATTR_ICE_CONTROLLING, struct.pack("!Q", 2**63 + 5)),
            (ATTR_USE_CANDIDATE, b""),
        ],
        integrity_key=KEY,
        fingerprint=True,
    )
    msg = aio.parse_message(data)
    assert msg.attributes["USERNAME"] == "remote:local"
    assert msg.attributes["PRIORITY"] == 1853817087
    assert msg.attributes["ICE-CONTROLLING"] == 2**63 + 5
    assert msg.attributes["USE-CANDIDATE"] is None
    assert msg.check_message_integrity(KEY)
    assert not msg.check_message_integrity(b"wrong")


def test_aioice_parses_our_error_response() -> None:
    tid = os.urandom(12)
    data = encode_message(
        METHOD_BINDING,
        StunClass.ERROR,
        tid,
        [
            (ATTR_ERROR_CODE, encode_error_code(438, "Stale Nonce")),
            (ATTR_REALM, b"example.org"),
            (ATTR_NONCE, b"n0nce"),
        ],
        fingerprint=True,
    )
    msg = aio.parse_message(data)
    assert msg.message_class == aio.Class.ERROR
    assert msg.attributes["ERROR-CODE"] == (438, "Stale Nonce")
    assert msg.attributes["REALM"] == "example.org"
    assert msg.attributes["NONCE"] == b"n0nce"


# --------------------------------------------------------------------------
# aioice's encoder, our parser.


def test_we_parse_what_aioice_writes() -> None:
    tid = os.urandom(12)
    msg = aio.Message(
        message_method=aio.Method.BINDING,
        message_class=aio.Class.RESPONSE,
        transaction_id=tid,
        attributes={
            "XOR-MAPPED-ADDRESS": ("2001:db8::99", 6000),
            "MAPPED-ADDRESS": ("198.51.100.1", 6001),
            "SOFTWARE": "aioice",
            "ERROR-CODE": (487, "Role Conflict"),
        },
    )
    msg.add_message_integrity(KEY)
    data = bytes(msg)
    ours = parse_message_untrusted(data)  # checks FINGERPRINT
    assert (ours.method, ours.cls, ours.transaction_id) == (METHOD_BINDING, StunClass.SUCCESS, tid)
    assert ours.types()[-2:] == (ATTR_MESSAGE_INTEGRITY, ATTR_FINGERPRINT)
    assert decode_xor_mapped_address_untrusted(ours.get(ATTR_XOR_MAPPED_ADDRESS) or b"", tid) == (
        "2001:db8::99",
        6000,
    )
    assert decode_mapped_address_untrusted(ours.get(ATTR_MAPPED_ADDRESS) or b"") == (
        "198.51.100.1",
        6001,
    )
    assert decode_software_untrusted(ours.get(ATTR_SOFTWARE) or b"") == "aioice"
    assert decode_error_code_untrusted(ours.get(ATTR_ERROR_CODE) or b"") == (487, "Role Conflict")
    assert verify_message_integrity(ours, KEY)
    assert not verify_message_integrity(ours, b"wrong")
