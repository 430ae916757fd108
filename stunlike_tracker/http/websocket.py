"""RFC 6455 WebSocket framing, sans-I/O (PROTOCOL §14.8).

``parse_frame_untrusted`` reads one frame from received bytes;
``WebSocketConnection`` is the server side of one socket after the opening
handshake: bytes in, events (text messages, the close) and bytes to send
out. It reassembles fragmented messages, answers pings, runs the close
handshake, and turns every protocol violation into a close with the RFC
6455 §7.4.1 code (1002 protocol error, 1007 bad UTF-8, 1009 too big), never
an exception to the caller. No extensions are negotiated, so RSV bits must
be 0. ``encode_frame`` writes frames (masked for the client side in tests).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "CLOSE_UNSUPPORTED_DATA",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "BinaryMessage",
    "Closed",
    "Frame",
    "FrameError",
    "TextMessage",
    "WebSocketConnection",
    "accept_key",
    "close_payload",
    "encode_frame",
    "parse_frame_untrusted",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_DATA_OPS = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
_CONTROL_OPS = frozenset({OP_CLOSE, OP_PING, OP_PONG})

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_BAD_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


class FrameError(Exception):
    """A frame that breaks RFC 6455; ``code`` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool = False


def parse_frame_untrusted(
    data: bytes | bytearray, max_payload: int, *, require_mask: bool = True
) -> tuple[Frame, int] | None:
    """One frame from the start of ``data``: (frame, bytes used), or None
    when more bytes are needed. Raises only ``FrameError``: RSV bits set,
    an unknown opcode, a control frame fragmented or over 125 bytes, a
    length not in its shortest form or over ``max_payload``, an unmasked
    frame when ``require_mask`` (client frames, RFC 6455 §5.1)."""
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    if first & 0x70:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
    fin = bool(first & 0x80)
    opcode = first & 0x0F
    if opcode not in _DATA_OPS and opcode not in _CONTROL_OPS:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "unknown opcode")
    masked = bool(second & 0x80)
    if require_mask and not masked:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "client frame not masked")
    length = second & 0x7F
    offset = 2
    if length == 126:
        if len(data) < 4:
            return None
        length = struct.unpack_from("!H", data, 2)[0]
        offset = 4
        if length < 126:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "length not minimal")
    elif length == 127:
        if len(data) < 10:
            return None
        length = struct.unpack_from("!Q", data, 2)[0]
        offset = 10
        if length < 65536 or length >> 63:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "length not minimal")
    if opcode in _CONTROL_OPS and (not fin or length > 125):
        raise FrameError(CLOSE_PROTOCOL_ERROR, "bad control frame")
    if length > max_payload:
        raise FrameError(CLOSE_TOO_BIG, "message too big")
    mask = b""
    if masked:
        if len(data) < offset + 4:
            return None
        mask = bytes(data[offset : offset + 4])
        offset += 4
    end = offset + length
    if len(data) < end:
        return None
    payload = bytes(data[offset:end])
    if masked:
        payload = _unmask(payload, mask)
    return Frame(fin, opcode, payload, masked), end


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One frame; ``mask`` (4 bytes) for client frames, None for the server's."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    length = len(payload)
    if length < 126:
        head.append(mask_bit | length)
    elif length < 65536:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if mask is not None:
        head += mask
        payload = _unmask(payload, mask)
    return bytes(head) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")[:123]


def random_mask() -> bytes:
    return os.urandom(4)


@dataclass(frozen=True, slots=True)
class TextMessage:
    text: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The socket is closed (by the peer, or by us after a violation);
    ``code`` is the one we sent or received."""

    code: int
    reason: str = ""


Event = TextMessage | BinaryMessage | Closed


class WebSocketConnection:
    """The server side of one WebSocket after the handshake."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._out = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_op: int | None = None
        self._fragment_size = 0
        self.close_sent = False
        self.closed = False

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send_text(self, text: str | bytes) -> None:
        if self.close_sent:
            return
        payload = text.encode("utf-8") if isinstance(text, str) else text
        self._out += encode_frame(OP_TEXT, payload)

    def send_ping(self, payload: bytes = b"") -> None:
        if not self.close_sent:
            self._out += encode_frame(OP_PING, payload[:125])

    def close(self, code: int, reason: str = "") -> Closed:
        """Start (or finish) the close handshake."""
        if not self.close_sent:
            self._out += encode_frame(OP_CLOSE, close_payload(code, reason))
            self.close_sent = True
        self.closed = True
        return Closed(code, reason)

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed received bytes; the complete messages and the close, if any."""
        if self.closed:
            return []
        self._buffer += data
        events: list[Event] = []
        while not self.closed:
            try:
                parsed = parse_frame_untrusted(self._buffer, self.max_message)
            except FrameError as error:
                events.append(self.close(error.code, error.reason))
                break
            if parsed is None:
                break
            frame, used = parsed
            del self._buffer[:used]
            event = self._on_frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _on_frame(self, frame: Frame) -> Event | None:
        op = frame.opcode
        if op == OP_PING:
            self._out += encode_frame(OP_PONG, frame.payload)
            return None
        if op == OP_PONG:
            return None
        if op == OP_CLOSE:
            return self._on_close(frame.payload)
        if op == OP_CONTINUATION:
            if self._fragment_op is None:
                return self.close(CLOSE_PROTOCOL_ERROR, "continuation without a message")
        elif self._fragment_op is not None:
            return self.close(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        else:
            self._fragment_op = op
        self._fragment_size += len(frame.payload)
        if self._fragment_size > self.max_message:
            return self.close(CLOSE_TOO_BIG, "message too big")
        self._fragments.append(frame.payload)
        if not frame.fin:
            return None
        message = b"".join(self._fragments)
        kind = self._fragment_op
        self._fragments = []
        self._fragment_op = None
        self._fragment_size = 0
        if kind == OP_BINARY:
            return BinaryMessage(message)
        try:
            return TextMessage(message.decode("utf-8"))
        except UnicodeDecodeError:
            return self.close(CLOSE_BAD_DATA, "text not UTF-8")

    def _on_close(self, payload: bytes) -> Closed:
        if len(payload) == 1:
            return self.close(CLOSE_PROTOCOL_ERROR, "bad close payload")
        code = struct.unpack("!H", payload[:2])[0] if payload else CLOSE_NORMAL
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return self.close(CLOSE_BAD_DATA, "close reason not UTF-8")
        # Echo the code (RFC 6455 §5.5.1); 1005/1006/1015 are never sent.
        echo = code if 1000 <= code <= 4999 and code not in (1004, 1005, 1006, 1015) else None
        if echo is None:
            return self.close(CLOSE_PROTOCOL_ERROR, "bad close code")
        self.close(echo)
        return Closed(code, reason)
