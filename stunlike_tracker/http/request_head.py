"""HTTP/1.1 request heads from the network (RFC 9112 §2-§5), for the HTTPS
listener (PROTOCOL §14.1).

``parse_request_head_untrusted`` takes the bytes up to and including the
blank line and returns the method, target, version and headers, or raises
``HeadError`` with the HTTP status to answer (400, 414, 431, 501, 505).
Strict where leniency is a known smuggling vector: no obsolete line
folding, no whitespace before the colon, one Content-Length (digits only)
and no Transfer-Encoding (this server reads no chunked bodies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_HEADERS", "HeadError", "RequestHead", "parse_request_head_untrusted"]

MAX_HEADERS = 64
MAX_TARGET = 2048

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_DIGITS = re.compile(r"[0-9]{1,10}")


class HeadError(Exception):
    """A request head that cannot be served; ``status`` is the answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    # Lower-case names; a repeated header's values joined with ", ".
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def tokens(self, name: str) -> set[str]:
        """A comma-separated header's tokens, lower-cased (Connection, Upgrade)."""
        raw = self.headers.get(name, "")
        return {t.strip().lower() for t in raw.split(",") if t.strip()}

    @property
    def content_length(self) -> int:
        raw = self.headers.get("content-length")
        return 0 if raw is None else int(raw)

    @property
    def keep_alive(self) -> bool:
        connection = self.tokens("connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def parse_request_head_untrusted(head: bytes) -> RequestHead:
    """The request line and header fields; raises only ``HeadError``."""
    if not head.endswith(b"\r\n\r\n"):
        raise HeadError(400, "head not terminated")
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HeadError(400, "bad request line")
    raw_method, raw_target, raw_version = parts
    if _TOKEN.fullmatch(raw_method) is None:
        raise HeadError(400, "bad method")
    if len(raw_target) > MAX_TARGET:
        raise HeadError(414, "target too long")
    if _TARGET.fullmatch(raw_target) is None:
        raise HeadError(400, "bad target")
    if raw_version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if raw_version.startswith(b"HTTP/"):
            raise HeadError(505, "version not supported")
        raise HeadError(400, "bad version")
    if len(lines) - 1 > MAX_HEADERS:
        raise HeadError(431, "too many header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise HeadError(400, "bad header field")  # also obs-fold and "Name :"
        value = value.strip(b" \t")
        if _VALUE.fullmatch(value) is None:
            raise HeadError(400, "bad header value")
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        if key in headers:
            if key in ("content-length", "host"):
                raise HeadError(400, f"repeated {key}")
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text
    if "transfer-encoding" in headers:
        raise HeadError(501, "transfer-encoding not supported")
    length = headers.get("content-length")
    if length is not None and _DIGITS.fullmatch(length) is None:
        raise HeadError(400, "bad content-length")
    return RequestHead(
        method=raw_method.decode("ascii"),
        target=raw_target.decode("ascii"),
        version=raw_version.decode("ascii"),
        headers=headers,
    )
