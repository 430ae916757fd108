"""RFC 6455 framing and HTTP request heads from the network (PROTOCOL §14.8):
frames round-trip, any bytes give a frame, "need more" or FrameError, and
the connection never raises and never passes a violation through."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker.http.request_head import (
    HeadError,
    RequestHead,
    parse_request_head_untrusted,
)
from stunlike_tracker.http.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    BinaryMessage,
    Closed,
    FrameError,
    TextMessage,
    WebSocketConnection,
    encode_frame,
    parse_frame_untrusted,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
masks = st.binary(min_size=4, max_size=4)


@SETTINGS
@given(
    st.sampled_from([OP_TEXT, OP_BINARY, OP_CONTINUATION]),
    st.binary(max_size=70_000),
    st.booleans(),
    masks,
)
def test_data_frames_round_trip(opcode: int, payload: bytes, fin: bool, mask: bytes) -> None:
    data = encode_frame(opcode, payload, fin=fin, mask=mask)
    parsed = parse_frame_untrusted(data + b"tail", 1 << 20)
    assert parsed is not None
    frame, used = parsed
    assert (frame.opcode, frame.payload, frame.fin, used) == (opcode, payload, fin, len(data))
    # Every proper prefix needs more bytes.
    cut = len(data) // 2
    assert parse_frame_untrusted(data[:cut], 1 << 20) is None


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_give_a_frame_more_or_frame_error(data: bytes) -> None:
    for require_mask in (True, False):
        try:
            parsed = parse_frame_untrusted(data, 1000, require_mask=require_mask)
        except FrameError as error:
            assert error.code in (1002, 1009)
            continue
        if parsed is not None:
            frame, used = parsed
            assert 2 <= used <= len(data)
            assert len(frame.payload) <= 1000


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from([OP_TEXT, OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_CLOSE]),
            st.binary(max_size=140),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.binary(max_size=40),
    masks,
    st.integers(1, 64),
)
def test_the_connection_never_raises(
    frames: list[tuple[int, bytes, bool]], junk: bytes, mask: bytes, chunk: int
) -> None:
    ws = WebSocketConnection(max_message=256)
    stream = b"".join(encode_frame(op, body, fin=fin, mask=mask) for op, body, fin in frames)
    stream += junk
    events = []
    for start in range(0, len(stream), chunk):
        events += ws.receive_data(stream[start : start + chunk])
    for event in events:
        assert isinstance(event, TextMessage | BinaryMessage | Closed)
        if isinstance(event, BinaryMessage):
            assert len(event.data) <= 256
        if isinstance(event, TextMessage):
            assert len(event.text.encode()) <= 256
    if any(isinstance(e, Closed) for e in events):
        assert ws.closed
        assert ws.receive_data(b"\x81\x80" + mask) == []  # nothing after the close


@SETTINGS
@given(st.lists(st.text(max_size=30), min_size=1, max_size=4), masks)
def test_fragmented_text_is_reassembled(pieces: list[str], mask: bytes) -> None:
    text = "".join(pieces)
    encoded = text.encode()
    ws = WebSocketConnection(max_message=1 << 16)
    cuts = [len("".join(pieces[: i + 1]).encode()) for i in range(len(pieces))]
    stream = b""
    start = 0
    for index, end in enumerate(cuts):
        op = OP_TEXT if index == 0 else OP_CONTINUATION
        stream += encode_frame(op, encoded[start:end], fin=index == len(cuts) - 1, mask=mask)
        start = end
    stream += encode_frame(OP_PING, b"p", mask=mask)
    assert ws.receive_data(stream) == [TextMessage(text)]
    assert ws.data_to_send() == encode_frame(OP_PONG, b"p")


@SETTINGS
@given(st.binary(max_size=300))
def test_any_head_parses_or_gives_an_http_status(data: bytes) -> None:
    for head in (data, data + b"\r\n\r\n", b"GET / HTTP/1.1\r\n" + data + b"\r\n\r\n"):
        try:
            parsed = parse_request_head_untrusted(head)
        except HeadError as error:
            assert error.status in (400, 414, 431, 501, 505)
            continue
        assert isinstance(parsed, RequestHead)
        assert parsed.target.startswith("/")


token_chars = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=12,
)


@SETTINGS
@given(
    st.sampled_from(["GET", "POST", "HEAD"]),
    st.text(alphabet="abcdefghij/._-~?=&", max_size=30).map(lambda t: "/" + t),
    st.dictionaries(
        token_chars.filter(lambda n: n.lower() not in ("content-length", "transfer-encoding")),
        st.text(alphabet="abc xyz=;,/0123456789", max_size=20).map(str.strip),
        max_size=8,
    ),
)
def test_heads_read_back(method: str, target: str, headers: dict[str, str]) -> None:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
    if "host" in lowered and sum(1 for n in headers if n.lower() == "host") > 1:
        return
    lines = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers.items())]
    head = parse_request_head_untrusted(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert (head.method, head.target, head.version) == (method, target, "HTTP/1.1")
    assert head.headers == lowered
