"""The HTTPS listener: RFC 7846 JSON over POST and WebSocket, and the /peer/ page
(PROTOCOL §14.1, §14.7, §14.8).

One TLS listener with the tracker's own certificate. Per connection: HTTP/1.1
requests (keep-alive) until one upgrades to a WebSocket. The JSON work is
the gateway's (``gateway.JsonGateway``); this module does the I/O, the
routes and the budgets of docs/SECURITY.md (connections per address and in
all, requests per connection, message size, idle and header timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import re
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from stunlike_tracker.certs import peer_id_from_certificate
from stunlike_tracker.config import HttpsConfig
from stunlike_tracker.core.ratelimit import RateLimiter
from stunlike_tracker.http.gateway import JsonAnswer, JsonGateway, JsonSession
from stunlike_tracker.http.request_head import HeadError, RequestHead, parse_request_head_untrusted
from stunlike_tracker.http.server import HttpListener, HttpResponse
from stunlike_tracker.http.websocket import (
    CLOSE_GOING_AWAY,
    CLOSE_UNSUPPORTED_DATA,
    BinaryMessage,
    Closed,
    TextMessage,
    WebSocketConnection,
    accept_key,
)
from stunlike_tracker.ppsp import PpspError
from stunlike_tracker.ppsp.json_binding import error_response_json, rfc7846_error_code
from stunlike_tracker.ppsp.messages import Status
from stunlike_tracker.ppsp.reasons import Reason
from stunlike_tracker.server.app import RunningServer

log = logging.getLogger(__name__)

JSON_TYPE = "application/ppsp-tracker+json"
_JSON_TYPES = frozenset({JSON_TYPE, "application/json"})
POST_PATH = "/ppsp"
WS_PATH = "/ppsp/ws"
PAGE_PATH = "/peer/"
STATIC_DIR = Path(__file__).parent / "static" / "peer"
SESSION_HEADER = "ppsp-session"
SESSION_COOKIE = "ppsp_session"
MAX_HEAD = 8192

_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def tls_context(
    cert_pem: bytes, key_pem: bytes, peer_ca_pem: bytes | None = None
) -> ssl.SSLContext:
    """TLS 1.2+ with the tracker's certificate (the one the DTLS side uses).
    With ``peer_ca_pem`` (mutual mode) a client may present a certificate of
    that CA naming its Peer-ID (PROTOCOL §8); browsers usually present none."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    load_certificate(context, cert_pem, key_pem)
    if peer_ca_pem is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=peer_ca_pem.decode("ascii"))
    return context


def certified_peer_id(writer: asyncio.StreamWriter) -> str | None:
    """The Peer-ID the client's verified certificate names, if any."""
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return peer_id_from_certificate(x509.load_der_x509_certificate(der))
    except ValueError:
        return None


def load_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Put a certificate and key into ``context`` (new handshakes use them)."""
    with tempfile.TemporaryDirectory() as directory:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        with open(cert_path, "wb") as cert_file:
            cert_file.write(cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as key_file:
            key_file.write(key_pem)
        context.load_cert_chain(cert_path, key_path)


def source_key(ip: str) -> str:
    """Connections are counted per IPv4 address and per IPv6 /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip


def _error_body(status: int, reason: Reason) -> bytes:
    """An HTTP-level refusal in the JSON answer shape (PROTOCOL §14.7)."""
    error = PpspError(reason)
    body = json.loads(error_response_json(error))
    body["response_type"] = Status.TEXT.get(status, body["response_type"])
    body["status"] = status
    body["error_code"] = rfc7846_error_code(status, body["response_type"])
    return json.dumps(body, separators=(",", ":")).encode()


class _Closing(Exception):
    """The connection is to be closed after what was written."""


class HttpsListener:
    def __init__(self, node: RunningServer, config: HttpsConfig, context: ssl.SSLContext) -> None:
        self.node = node
        self.config = config
        self.context = context
        self.gateway = JsonGateway(
            node.endpoint,
            max_message_size=config.max_message_size,
            max_json_depth=config.max_json_depth,
            answer_timeout=config.answer_timeout,
        )
        self.counters: Counter[str] = node.endpoint.counters
        self.drops: Counter[str] = node.endpoint.drops
        # The plain listener's routes, served here too (docs/OPERATIONS.md).
        self.plain = HttpListener(
            node, recent_introductions=node.tracker.recent_introductions.maxlen or 50
        )
        self.rates = RateLimiter(config.message_rate, config.message_burst)
        self.mutual = node.settings is not None and node.settings.mutual
        self.per_source: Counter[str] = Counter()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str, port: int) -> None:
        # The budgets are checked once the handshake is done (asyncio's server
        # side start_tls hangs on uvloop); a handshake takes header_timeout at most.
        self._server = await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=self.context,
            ssl_handshake_timeout=self.config.header_timeout,
        )
        sockname = self._server.sockets[0].getsockname()
        self.address = (sockname[0], sockname[1])
        self._housekeeping = asyncio.create_task(self._expire_sessions())

    def reload_certificate(self, cert_pem: bytes, key_pem: bytes) -> None:
        """SIGHUP: the renewed certificate for new connections; open ones stay."""
        load_certificate(self.context, cert_pem, key_pem)

    async def close(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self.node.endpoint.json_sessions = None

    async def _expire_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.config.idle_timeout / 2))
            self.gateway.expire_idle(self.config.idle_timeout)
            self.rates.prune(time.monotonic())

    # ------------------------------------------------------------------
    # one connection
    # ------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        source = source_key(address[0])
        config = self.config
        if (
            self.connections >= config.max_connections
            or self.per_source[source] >= config.max_connections_per_address
        ):
            self.drops["https-connections-over-budget"] += 1
            writer.close()
            return
        self.connections += 1
        self.per_source[source] += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.counters["https-connections"] += 1
        try:
            identity = certified_peer_id(writer) if self.mutual else None
            await self._serve(reader, writer, address, identity)
        except (_Closing, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            self.drops["https-internal-error"] += 1
            log.exception("HTTPS connection failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            self.connections -= 1
            self.per_source[source] -= 1
            if self.per_source[source] <= 0:
                del self.per_source[source]
            writer.close()

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: tuple[str, int],
        identity: str | None,
    ) -> None:
        key = f"{address[0]}:{address[1]}:{id(writer)}"
        first = True
        while True:
            # The first head within header_timeout; later ones (keep-alive) idle_timeout.
            timeout = self.config.header_timeout if first else self.config.idle_timeout
            first = False
            try:
                raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except asyncio.LimitOverrunError:
                await self._write(writer, 431, "text/plain", b"header too large\n", close=True)
                return
            except (TimeoutError, asyncio.IncompleteReadError):
                return
            if len(raw) > MAX_HEAD:
                await self._write(writer, 431, "text/plain", b"header too large\n", close=True)
                return
            try:
                head = parse_request_head_untrusted(raw)
            except HeadError as error:
                self.drops["https-bad-head"] += 1
                body = _error_body(error.status, Reason.MALFORMED_MESSAGE)
                await self._write(writer, error.status, JSON_TYPE, body, close=True)
                return
            if head.path == WS_PATH:
                await self._websocket(head, reader, writer, address, key, identity)
                return
            keep = await self._http(head, reader, writer, address, key, identity)
            if not keep:
                return

    async def _http(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: tuple[str, int],
        key: str,
        identity: str | None,
    ) -> bool:
        """One plain request; False when the connection is to close."""
        keep = head.keep_alive
        if head.path == POST_PATH:
            return await self._post(head, reader, writer, address, key, identity)
        if head.content_length:
            await self._write(writer, 413, "text/plain", b"no body expected\n", close=True)
            return False
        if head.method not in ("GET", "HEAD"):
            await self._write(writer, 405, "text/plain", b"only GET and HEAD\n", close=not keep)
            return keep
        response = self._get(head.path)
        await self._write(
            writer,
            response.status,
            response.content_type,
            response.body,
            close=not keep,
            head_only=head.method == "HEAD",
            extra=self._extra_headers(head.path, response.status),
        )
        return keep

    def _extra_headers(self, path: str, status: int) -> str:
        if status == 301:
            return f"Location: {PAGE_PATH}\r\n"
        return ""

    def _get(self, path: str) -> HttpResponse:
        if path == PAGE_PATH.rstrip("/"):
            return HttpResponse(301, "text/plain", b"moved to /peer/\n")
        if path.startswith(PAGE_PATH):
            return self._static(path[len(PAGE_PATH) :])
        handler = self.plain.routes.get(path)
        if handler is None:
            return HttpResponse(404, "text/plain", b"not found\n")
        try:
            return handler()
        except Exception:
            log.exception("HTTP handler for %s failed", path)
            return HttpResponse(500, "text/plain", b"internal error\n")

    def _static(self, name: str) -> HttpResponse:
        """The browser page's files (PROTOCOL §14.1); config.json names the
        WebSocket path and the tracker's UDP port for STUN."""
        if name == "config.json":
            body = json.dumps({"ws": WS_PATH, "stun_port": self.node.address[1]}).encode()
            return HttpResponse(200, "application/json", body)
        name = name or "index.html"
        if _STATIC_NAME.fullmatch(name) is None:
            return HttpResponse(404, "text/plain", b"not found\n")
        path = STATIC_DIR / name
        content_type = _CONTENT_TYPES.get(path.suffix)
        try:
            if content_type is None or not path.is_file():
                return HttpResponse(404, "text/plain", b"not found\n")
            return HttpResponse(200, content_type, path.read_bytes())
        except OSError:
            return HttpResponse(404, "text/plain", b"not found\n")

    # ------------------------------------------------------------------
    # POST /ppsp (PROTOCOL §14.7)
    # ------------------------------------------------------------------
    async def _post(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: tuple[str, int],
        key: str,
        identity: str | None,
    ) -> bool:
        keep = head.keep_alive
        config = self.config
        if head.method != "POST":
            body = _error_body(405, Reason.MALFORMED_MESSAGE)
            await self._write(writer, 405, JSON_TYPE, body, close=True, extra="Allow: POST\r\n")
            return False
        if "content-length" not in head.headers:
            await self._write(writer, 411, JSON_TYPE, _error_body(411, Reason.MALFORMED_MESSAGE))
            return False
        length = head.content_length
        if length > config.max_message_size:
            self.drops["https-body-too-large"] += 1
            body = _error_body(413, Reason.MESSAGE_TOO_LARGE)
            await self._write(writer, 413, JSON_TYPE, body, close=True)
            return False
        try:
            data = await asyncio.wait_for(reader.readexactly(length), config.header_timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        media = (head.header("content-type") or "").split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES:
            body = _error_body(415, Reason.MALFORMED_MESSAGE)
            await self._write(writer, 415, JSON_TYPE, body, close=not keep)
            return keep
        if not self.rates.allow(key, time.monotonic()):
            self.drops["https-rate-limited"] += 1
            body = _error_body(503, Reason.RATE_LIMITED)
            await self._write(writer, 503, JSON_TYPE, body, close=not keep)
            return keep
        js = self.gateway.post_session(_session_token(head), address, identity)
        answer = await self.gateway.handle(js, data)
        if answer.new_token is None and js.token is None:
            self.gateway.close_session(js)  # no session was opened: nothing to keep
        extra = ""
        if answer.new_token is not None:
            extra = (
                f"Set-Cookie: {SESSION_COOKIE}={answer.new_token}; HttpOnly; Secure; "
                f"SameSite=Strict; Path={POST_PATH}\r\n"
            )
        await self._write(
            writer, _http_status(answer), JSON_TYPE, answer.body, close=not keep, extra=extra
        )
        return keep

    # ------------------------------------------------------------------
    # WebSocket /ppsp/ws (PROTOCOL §14.8)
    # ------------------------------------------------------------------
    async def _websocket(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: tuple[str, int],
        key: str,
        identity: str | None,
    ) -> None:
        client_key = head.header("sec-websocket-key") or ""
        if (
            head.method != "GET"
            or "websocket" not in head.tokens("upgrade")
            or "upgrade" not in head.tokens("connection")
            or head.header("sec-websocket-version") != "13"
            or not _valid_key(client_key)
            or head.content_length
        ):
            self.drops["https-bad-upgrade"] += 1
            body = _error_body(426, Reason.MALFORMED_MESSAGE)
            extra = "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"
            await self._write(writer, 426, JSON_TYPE, body, close=True, extra=extra)
            return
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(client_key)}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        config = self.config
        ws = WebSocketConnection(config.max_message_size)
        transport = writer.transport

        def flush() -> None:
            data = ws.data_to_send()
            if not data or transport.is_closing():
                return
            if transport.get_write_buffer_size() > config.max_write_buffer:
                # A reader that does not read: drop it rather than buffer without end.
                self.drops["https-write-buffer-full"] += 1
                transport.abort()
                return
            writer.write(data)

        def push(body: bytes) -> None:
            ws.send_text(body)
            flush()

        js = self.gateway.open_session(address, push, identity)
        self.counters["websocket-sessions"] += 1
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not ws.closed:
                try:
                    data = await asyncio.wait_for(reader.read(65536), config.idle_timeout)
                except TimeoutError:
                    self.drops["websocket-idle"] += 1
                    ws.close(CLOSE_GOING_AWAY, "idle")
                    break
                if not data:
                    break
                for event in ws.receive_data(data):
                    if isinstance(event, TextMessage):
                        self._ws_request(ws, js, key, event.text, in_flight, flush)
                    elif isinstance(event, BinaryMessage):
                        ws.close(CLOSE_UNSUPPORTED_DATA, "text messages only")
                    elif isinstance(event, Closed) and event.code != 1000:
                        self.drops["websocket-closed-on-error"] += 1
                flush()
            flush()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.drain()
        finally:
            for task in in_flight:
                task.cancel()
            self.gateway.close_session(js)

    def _ws_request(
        self,
        ws: WebSocketConnection,
        js: JsonSession,
        key: str,
        text: str,
        in_flight: set[asyncio.Task[None]],
        flush: Callable[[], None],
    ) -> None:
        data = text.encode("utf-8")
        allowed = self.rates.allow(key, time.monotonic())
        if not allowed or len(in_flight) >= self.config.max_in_flight:
            self.drops["websocket-rate-limited"] += 1
            ws.send_text(_refusal_with_id(data, Reason.RATE_LIMITED))
            flush()
            return

        async def answer() -> None:
            reply = await self.gateway.handle(js, data)
            ws.send_text(reply.body)
            flush()

        task = asyncio.create_task(answer())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    # ------------------------------------------------------------------
    async def _write(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        content_type: str,
        body: bytes,
        *,
        close: bool = False,
        head_only: bool = False,
        extra: str = "",
    ) -> None:
        reason = _REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            f"X-Content-Type-Options: nosniff\r\n{extra}"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        ).encode()
        writer.write(head if head_only else head + body)
        await writer.drain()
        if close:
            raise _Closing


def _http_status(answer: JsonAnswer) -> int:
    """PROTOCOL §14.7: the HTTP status is the answer's ``status``."""
    return answer.status if answer.status in _REASONS else 500


def _session_token(head: RequestHead) -> str | None:
    token = head.header(SESSION_HEADER)
    if token:
        return token.strip()
    for item in (head.header("cookie") or "").split(";"):
        name, _, value = item.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def _valid_key(key: str) -> bool:
    """RFC 6455 §4.2.1: the key is 16 random bytes in base64 (24 characters)."""
    return len(key) == 24 and re.fullmatch(r"[A-Za-z0-9+/]{22}==", key) is not None


def _refusal_with_id(data: bytes, reason: Reason) -> bytes:
    """A 503 for a message not parsed; its transaction id when cheaply found."""
    transaction_id = None
    with contextlib.suppress(Exception):
        value = json.loads(data) if len(data) <= 8192 else None
        if isinstance(value, dict) and isinstance(value.get("transaction_id"), str):
            candidate = value["transaction_id"]
            if 1 <= len(candidate) <= 64 and candidate.isprintable() and " " not in candidate:
                transaction_id = candidate
    return error_response_json(PpspError(reason, transaction_id=transaction_id))


async def start_https(
    node: RunningServer, config: HttpsConfig, host: str, port: int
) -> HttpsListener:
    assert node.settings is not None
    settings = node.settings
    peer_ca = settings.peer_ca_pem if settings.mutual else None
    context = tls_context(settings.cert_pem, settings.key_pem, peer_ca)
    listener = HttpsListener(node, config, context)
    await listener.start(host, port)
    return listener
