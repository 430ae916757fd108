"""A small RFC 7846 JSON test client: HTTPS POST and WebSocket over real TLS
(stdlib ssl, the tracker's own RFC 6455 framing with client masking)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

from stunlike_tracker.http.websocket import (
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    close_payload,
    encode_frame,
    parse_frame_untrusted,
)


def client_context(ca_pem: bytes, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    context.check_hostname = True
    if cert is not None:
        with tempfile.TemporaryDirectory() as directory:
            cert_path, key_path = Path(directory, "c.pem"), Path(directory, "k.pem")
            cert_path.write_bytes(cert[0])
            key_path.write_bytes(cert[1])
            context.load_cert_chain(cert_path, key_path)
    return context


async def read_http(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 10) if length else b""
    return status, headers, body


class HttpsClient:
    """One keep-alive HTTPS connection."""

    def __init__(self, address: tuple[str, int], ca_pem: bytes) -> None:
        self.address = address
        self.ca_pem = ca_pem
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.session: str | None = None

    async def open(self) -> HttpsClient:
        self.reader, self.writer = await asyncio.open_connection(
            self.address[0],
            self.address[1],
            ssl=client_context(self.ca_pem),
            server_hostname="localhost",
        )
        return self

    async def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        await self.writer.drain()
        return await read_http(self.reader)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return await self.raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def post(self, document: dict[str, Any] | bytes) -> tuple[int, dict[str, Any]]:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        headers = {"Content-Type": "application/ppsp-tracker+json"}
        if self.session is not None:
            headers["PPSP-Session"] = self.session
        status, _headers, answer = await self.request("POST", "/ppsp", body, headers)
        parsed: dict[str, Any] = json.loads(answer)
        token = parsed.get("response_data", {}).get("session_token")
        if token:
            self.session = token
        return status, parsed

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WsClient:
    """A WebSocket to /ppsp/ws: send JSON requests, receive answers and indications."""

    def __init__(
        self, address: tuple[str, int], ca_pem: bytes, cert: tuple[bytes, bytes] | None = None
    ) -> None:
        self.address = address
        self.ca_pem = ca_pem
        self.cert = cert
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._buffer = bytearray()
        self.messages: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.close_code: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, path: str = "/ppsp/ws") -> WsClient:
        self.reader, self.writer = await asyncio.open_connection(
            self.address[0],
            self.address[1],
            ssl=client_context(self.ca_pem, self.cert),
            server_hostname="localhost",
        )
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status, _headers, _body = await read_http(self.reader)
        assert status == 101, status
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self._buffer += data
                while True:
                    parsed = parse_frame_untrusted(self._buffer, 1 << 20, require_mask=False)
                    if parsed is None:
                        break
                    frame, used = parsed
                    del self._buffer[:used]
                    if frame.opcode == OP_TEXT:
                        await self.messages.put(json.loads(frame.payload))
                    elif frame.opcode == OP_CLOSE:
                        self.close_code = int.from_bytes(frame.payload[:2], "big")
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            await self.messages.put(None)

    def send_frame(self, frame: bytes) -> None:
        assert self.writer is not None
        self.writer.write(frame)

    def send(self, document: dict[str, Any] | bytes) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.send_frame(encode_frame(OP_TEXT, body, mask=os.urandom(4)))

    def ping(self) -> None:
        self.send_frame(encode_frame(OP_PING, b"hi", mask=os.urandom(4)))

    async def receive(self, wait: float = 10.0) -> dict[str, Any] | None:
        return await asyncio.wait_for(self.messages.get(), wait)

    async def answer(self, transaction_id: str, wait: float = 10.0) -> dict[str, Any]:
        """The answer to ``transaction_id`` (indications meanwhile are kept)."""
        kept: list[dict[str, Any] | None] = []
        try:
            while True:
                message = await self.receive(wait)
                assert message is not None, "socket closed"
                if message.get("transaction_id") == transaction_id and "error_code" in message:
                    return message
                kept.append(message)
        finally:
            for message in kept:
                self.messages.put_nowait(message)

    async def call(self, document: dict[str, Any]) -> dict[str, Any]:
        self.send(document)
        return await self.answer(str(document["transaction_id"]))

    async def indication(self, wait: float = 10.0) -> dict[str, Any]:
        kept: list[dict[str, Any] | None] = []
        try:
            while True:
                message = await self.receive(wait)
                assert message is not None, "socket closed"
                if "indication_type" in message:
                    return message
                kept.append(message)
        finally:
            for message in kept:
                self.messages.put_nowait(message)

    async def close(self, code: int = 1000) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.send_frame(encode_frame(OP_CLOSE, close_payload(code), mask=os.urandom(4)))
            self.writer.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, 5)


def request(kind: str, transaction_id: str, peer_id: str, **data: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "request_type": kind,
        "transaction_id": transaction_id,
        "peer_id": peer_id,
        "request_data": data,
    }
