"""A small HTTP/1.1 server on asyncio streams (GET and HEAD, one request per
connection). Routes are a table of path -> handler, so that later bindings
(a WebSocket upgrade, HTTPS) can add theirs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from stunlike_tracker.core.tracker import Introduction
from stunlike_tracker.http.metrics import MetricsExporter
from stunlike_tracker.http.status import render_html, render_json
from stunlike_tracker.server.app import RunningServer

log = logging.getLogger(__name__)

# Bounds on what a client may send before we answer or hang up.
MAX_HEADER_BYTES = 8192
READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes


Handler = Callable[[], HttpResponse]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class HttpListener:
    def __init__(self, node: RunningServer, *, recent_introductions: int = 50) -> None:
        self.node = node
        self.metrics = MetricsExporter(node)
        node.tracker.recent_introductions = _resized(
            node.tracker.recent_introductions, recent_introductions
        )
        self.routes: dict[str, Handler] = {
            "/": self._page,
            "/status.json": self._json,
            "/metrics": self._metrics,
        }
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        sockname = self._server.sockets[0].getsockname()
        self.address = (sockname[0], sockname[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    # -- handlers -----------------------------------------------------------
    def _page(self) -> HttpResponse:
        return HttpResponse(200, "text/html; charset=utf-8", render_html(self.node).encode())

    def _json(self) -> HttpResponse:
        return HttpResponse(200, "application/json", render_json(self.node).encode())

    def _metrics(self) -> HttpResponse:
        body, content_type = self.metrics.render()
        return HttpResponse(200, content_type, body)

    # -- protocol -----------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        method, path = request_line_untrusted(head)
        if method is None or len(head) > MAX_HEADER_BYTES:
            response = _text(400, "bad request\n")
        elif method not in ("GET", "HEAD"):
            response = _text(405, "only GET and HEAD\n")
        else:
            handler = self.routes.get(path.split("?", 1)[0])
            if handler is None:
                response = _text(404, "not found\n")
            else:
                try:
                    response = handler()
                except Exception:
                    log.exception("HTTP handler for %s failed", path)
                    response = HttpResponse(500, "text/plain", b"internal error\n")
        reason = _REASONS.get(response.status, "Internal Server Error")
        header = (
            f"HTTP/1.1 {response.status} {reason}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(header if method == "HEAD" else header + response.body)
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def request_line_untrusted(head: bytes) -> tuple[str | None, str]:
    """(method, target) of an HTTP/1.x request head from the network; never
    raises: anything that is not a request line gives (None, "") (answered 400)."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None, ""
    try:
        return parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None, ""


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(status, "text/plain; charset=utf-8", text.encode())


def _resized(old: deque[Introduction], size: int) -> deque[Introduction]:
    return deque(old, maxlen=max(size, 0))


async def start_http(
    node: RunningServer, host: str, port: int, *, recent_introductions: int = 50
) -> HttpListener:
    listener = HttpListener(node, recent_introductions=recent_introductions)
    await listener.start(host, port)
    return listener
