"""Property tests for the STUN codec and the Binding responder.

* never crash: arbitrary bytes and mutations of valid requests give bytes or
  ``None`` from the responder, and only :class:`StunError` from parsers;
* every answer is at most twice its request, parses, and echoes the ID;
* the responder's fast walker agrees with a reference model built on the
  codec's parser (two implementations of one rule set);
* round trips: build -> parse gives back the attributes; addresses and
  message types survive encode -> decode.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from stunlike_tracker.stun import (
    ATTR_CHANGE_REQUEST,
    ATTR_ERROR_CODE,
    ATTR_FINGERPRINT,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_MESSAGE_INTEGRITY_SHA256,
    ATTR_UNKNOWN_ATTRIBUTES,
    ATTR_XOR_MAPPED_ADDRESS,
    KNOWN_REQUEST_ATTRIBUTES,
    MAGIC_COOKIE,
    Address,
    BindingResponder,
    StunClass,
    StunError,
    decode_error_code_untrusted,
    decode_mapped_address_untrusted,
    decode_software_untrusted,
    decode_unknown_attributes_untrusted,
    decode_xor_mapped_address_untrusted,
    encode_mapped_address,
    encode_message,
    encode_xor_mapped_address,
    message_type,
    parse_header_untrusted,
    parse_message_untrusted,
    split_message_type,
    verify_message_integrity,
    verify_message_integrity_sha256,
)

TID = b"0123456789ab"
TID16 = b"0123456789abcdef"

SEEDS: list[bytes] = [
    encode_message(1, StunClass.REQUEST, TID),
    encode_message(1, StunClass.REQUEST, TID16),
    encode_message(1, StunClass.REQUEST, TID, fingerprint=True),
    encode_message(
        1,
        StunClass.REQUEST,
        TID,
        [(0x8022, b"software"), (0x0024, b"\x00\x00\x00\x01")],
        fingerprint=True,
    ),
    encode_message(
        1, StunClass.REQUEST, TID, [(0x0006, b"user:name")], integrity_key=b"k", fingerprint=True
    ),
    encode_message(
        1, StunClass.REQUEST, TID, [(0x0006, b"u")], integrity_key=b"k", integrity_sha256_key=b"k"
    ),
    encode_message(1, StunClass.REQUEST, TID16, [(ATTR_CHANGE_REQUEST, b"\x00\x00\x00\x00")]),
    encode_message(1, StunClass.REQUEST, TID, [(ATTR_CHANGE_REQUEST, b"\x00\x00\x00\x06")]),
    encode_message(1, StunClass.REQUEST, TID, [(0x7777, b"abc"), (0x0002, b"")], fingerprint=True),
    encode_message(1, StunClass.INDICATION, TID, fingerprint=True),
    encode_message(
        1, StunClass.SUCCESS, TID, [(0x0020, encode_xor_mapped_address("192.0.2.1", 1, TID))]
    ),
]

SOURCES: list[Address] = [
    ("192.0.2.1", 32853),
    ("10.0.0.1", 0),
    ("::ffff:198.51.100.7", 65535, 0, 0),
    ("2001:db8::1", 4000, 0, 0),
    ("::1", 1),
]
sources = st.sampled_from(SOURCES)


def blobs(max_size: int) -> st.SearchStrategy[bytes]:
    """Binary strings up to ``max_size``, never drawn as ``b""``.

    Hypothesis keeps choice sequences in dicts; ``hash(b"") == hash(0)``, so
    an empty bytes choice can be compared with an int, and ``python -bb``
    turns that comparison into an error inside Hypothesis. Drawing one byte
    more and dropping it keeps every drawn bytes value non-empty.
    """
    return st.binary(min_size=1, max_size=max_size + 1).map(lambda b: b[1:])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "extend", "insert", "set"]))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif op == "extend":
            data += draw(blobs(12))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(blobs(8).filter(bool))
        elif op == "set" and len(data) >= 2:
            i = draw(st.integers(0, len(data) - 2))
            data[i : i + 2] = struct.pack("!H", draw(st.integers(0, 0xFFFF)))
    if draw(st.booleans()) and 20 <= len(data) <= 0xFFFF + 20:
        # Fix the length field so the mutation reaches the attribute walk.
        data[2:4] = struct.pack("!H", len(data) - 20)
    return bytes(data)


def check_answer(data: bytes, out: bytes | None) -> None:
    if out is None:
        return
    assert isinstance(out, bytes)
    # PROTOCOL §5: at most 2x, except 52 bytes for a bare request (from IPv6).
    assert len(out) <= 2 * len(data) or (len(data), len(out)) == (20, 52)
    msg = parse_message_untrusted(out)
    assert msg.cls in (StunClass.SUCCESS, StunClass.ERROR)
    assert out[4:20] == data[4:20]  # cookie + ID, or the RFC 3489 ID, echoed


@settings(max_examples=500)
@given(data=blobs(120), source=sources)
def test_responder_never_raises_on_arbitrary_bytes(data: bytes, source: Address) -> None:
    responder = BindingResponder()
    out = responder.handle_untrusted(data, source)
    check_answer(data, out)
    assert responder.answered + sum(responder.drops.values()) == 1


@settings(max_examples=1000)
@given(data=mutated(), source=sources)
def test_responder_never_raises_on_mutated_requests(data: bytes, source: Address) -> None:
    responder = BindingResponder()
    out = responder.handle_untrusted(data, source)
    check_answer(data, out)
    assert responder.answered + sum(responder.drops.values()) == 1


@settings(max_examples=500)
@given(data=st.one_of(blobs(120), mutated()))
def test_parsers_raise_only_stun_error(data: bytes) -> None:
    for parse in (parse_header_untrusted, parse_message_untrusted):
        try:
            parse(data)
        except StunError as err:
            assert err.reason.startswith("stun-")
    body = data[20:]
    for decode in (
        decode_mapped_address_untrusted,
        decode_error_code_untrusted,
        decode_unknown_attributes_untrusted,
        decode_software_untrusted,
    ):
        with contextlib.suppress(StunError):
            decode(body)
    for tid in (TID, b"short"):
        with contextlib.suppress(StunError):
            decode_xor_mapped_address_untrusted(body, tid)


# --------------------------------------------------------------------------
# The responder against a reference model built on the codec's parser.

attribute_types = st.one_of(
    st.sampled_from(sorted(KNOWN_REQUEST_ATTRIBUTES)),
    st.sampled_from([0x0002, 0x0004, 0x0026, 0x0027, 0x7777, 0x8022, 0x8123, 0xFFFF]),
    st.integers(0, 0xFFFF),
)


@st.composite
def attribute(draw: st.DrawFn) -> tuple[int, bytes]:
    attr_type = draw(attribute_types)
    if attr_type == ATTR_CHANGE_REQUEST and draw(st.booleans()):
        return attr_type, struct.pack("!I", draw(st.sampled_from([0, 2, 4, 6, 1, 8])))
    if attr_type == ATTR_MESSAGE_INTEGRITY and draw(st.booleans()):
        return attr_type, bytes(20)
    if attr_type == ATTR_MESSAGE_INTEGRITY_SHA256 and draw(st.booleans()):
        return attr_type, bytes(draw(st.sampled_from([16, 20, 32])))
    return attr_type, draw(blobs(24))


@st.composite
def structured_request(draw: st.DrawFn) -> bytes:
    method, cls = draw(
        st.sampled_from(
            [(1, StunClass.REQUEST)] * 4
            + [
                (1, StunClass.INDICATION),
                (1, StunClass.SUCCESS),
                (1, StunClass.ERROR),
                (3, StunClass.REQUEST),
            ]
        )
    )
    tid = draw(st.sampled_from([TID, TID16]))
    attrs = draw(st.lists(attribute(), max_size=6))
    data = encode_message(method, cls, tid, attrs, fingerprint=draw(st.booleans()))
    if draw(st.booleans()) and len(data) > 20:  # sometimes damage one byte
        i = draw(st.integers(20, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    return data


def model(data: bytes, source: Address) -> tuple[str, tuple[int, ...]]:
    """What PROTOCOL §5 says should happen, computed from the codec's parse."""
    try:
        msg = parse_message_untrusted(data)
    except StunError as err:
        return "drop:" + err.reason, ()
    flags = 0
    for attr in msg.attributes:
        if attr.type == ATTR_CHANGE_REQUEST:
            if len(attr.value) != 4:
                return "drop:stun-malformed", ()
            flags |= struct.unpack("!I", attr.value)[0]
    if msg.cls == StunClass.INDICATION:
        return "drop:stun-indication", ()
    if msg.cls != StunClass.REQUEST:
        return "drop:stun-not-request", ()
    if msg.method != 1:
        return "drop:stun-not-binding", ()
    if flags & 0x06:
        return "drop:stun-change-request", ()
    unknown: list[int] = []
    for t in msg.types():
        if t < 0x8000 and t not in KNOWN_REQUEST_ATTRIBUTES and t not in unknown:
            unknown.append(t)
    if unknown:
        return "420", tuple(unknown)
    v6 = ":" in source[0] and not source[0].startswith("::ffff:")
    size = (44 if v6 else 32) if msg.classic else (52 if v6 else 40)
    if size > 2 * len(data) and (size, len(data)) != (52, 20):  # PROTOCOL §5's exception
        return "drop:stun-response-too-large", ()
    return "success", ()


@settings(max_examples=1000)
@given(data=st.one_of(structured_request(), mutated()), source=sources)
def test_responder_agrees_with_the_reference_model(data: bytes, source: Address) -> None:
    responder = BindingResponder()
    out = responder.handle_untrusted(data, source)
    expected, unknown = model(data, source)
    if out is None:
        ((reason, _),) = responder.drops.items()
        assert "drop:" + reason == expected
        return
    check_answer(data, out)
    msg = parse_message_untrusted(out)
    if msg.cls == StunClass.ERROR:
        assert expected == "420"
        listed = decode_unknown_attributes_untrusted(msg.get(ATTR_UNKNOWN_ATTRIBUTES) or b"")
        if msg.classic and len(unknown) % 2:
            listed = listed[:-1]  # RFC 3489 padding repeats the last one
        assert listed == unknown
        assert decode_error_code_untrusted(msg.get(ATTR_ERROR_CODE) or b"")[0] == 420
    else:
        assert expected == "success"
        assert msg.types() == (
            (0x0001,) if msg.classic else (ATTR_XOR_MAPPED_ADDRESS, ATTR_FINGERPRINT)
        )


# --------------------------------------------------------------------------
# Round trips


@st.composite
def message_parts(draw: st.DrawFn) -> tuple[int, StunClass, bytes, list[tuple[int, bytes]]]:
    method = draw(st.integers(0, 0xFFF))
    cls = draw(st.sampled_from(list(StunClass)))
    tid = draw(st.one_of(st.binary(min_size=12, max_size=12), st.binary(min_size=16, max_size=16)))
    if len(tid) == 16 and tid[:4] == struct.pack("!I", MAGIC_COOKIE):
        tid = b"\x00" + tid[1:]  # a 16-byte ID starting with the cookie reads as RFC 8489
    reserved = {ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_FINGERPRINT}
    attrs = draw(
        st.lists(
            st.tuples(st.integers(0, 0xFFFF).filter(lambda t: t not in reserved), blobs(40)),
            max_size=8,
        )
    )
    return method, cls, tid, attrs


@settings(max_examples=300)
@given(
    parts=message_parts(),
    key=st.one_of(st.none(), st.binary(min_size=1, max_size=32)),
    key256=st.one_of(st.none(), st.binary(min_size=1, max_size=32)),
    fingerprint=st.booleans(),
    padding=st.integers(0, 255),
)
def test_build_parse_round_trip(
    parts: tuple[int, StunClass, bytes, list[tuple[int, bytes]]],
    key: bytes | None,
    key256: bytes | None,
    fingerprint: bool,
    padding: int,
) -> None:
    method, cls, tid, attrs = parts
    data = encode_message(
        method,
        cls,
        tid,
        attrs,
        integrity_key=key,
        integrity_sha256_key=key256,
        fingerprint=fingerprint,
        padding=padding,
    )
    assert len(data) % 4 == 0
    msg = parse_message_untrusted(data)
    assert (msg.method, msg.cls, msg.transaction_id, msg.classic) == (
        method,
        cls,
        tid,
        len(tid) == 16,
    )
    assert [(a.type, a.value) for a in msg.attributes if a.type < 0x10000][: len(attrs)] == attrs
    extra = tuple(
        t
        for t, present in (
            (ATTR_MESSAGE_INTEGRITY, key is not None),
            (ATTR_MESSAGE_INTEGRITY_SHA256, key256 is not None),
            (ATTR_FINGERPRINT, fingerprint),
        )
        if present
    )
    assert msg.types()[len(attrs) :] == extra
    if key is not None:
        assert verify_message_integrity(msg, key)
        assert not verify_message_integrity(msg, key + b"x")
    if key256 is not None:
        assert verify_message_integrity_sha256(msg, key256)


@given(
    ip=st.ip_addresses(),
    port=st.integers(0, 0xFFFF),
    tid=st.binary(min_size=12, max_size=12),
)
def test_address_round_trip(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, tid: bytes
) -> None:
    expected = str(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        expected = str(ip.ipv4_mapped)
    assert decode_xor_mapped_address_untrusted(
        encode_xor_mapped_address(str(ip), port, tid), tid
    ) == (
        expected,
        port,
    )
    assert decode_mapped_address_untrusted(encode_mapped_address(str(ip), port)) == (expected, port)


@given(method=st.integers(0, 0xFFF), cls=st.sampled_from(list(StunClass)))
def test_message_type_round_trip(method: int, cls: StunClass) -> None:
    msg_type = message_type(method, cls)
    assert msg_type & 0xC000 == 0
    assert split_message_type(msg_type) == (method, cls)
