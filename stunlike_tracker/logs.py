"""Log lines on stderr: text for a terminal, JSON lines for a log collector.

Per-peer context travels in ``extra={"peer_id": ..., "address": ...}`` and
becomes fields of the JSON object (``key=value`` in text). Secrets (TURN
secrets, ReconnectTokens, keys, the cookie secret) are never passed to a
logger: nothing here filters them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

CONTEXT_FIELDS = ("peer_id", "address", "swarm_id", "session_id", "reason")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = _plain(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={_plain(record.__dict__[name])}"
            for name in CONTEXT_FIELDS
            if record.__dict__.get(name) is not None
        ]
        return line + (" " + " ".join(context) if context else "")


def _plain(value: object) -> object:
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return value if isinstance(value, str | int | float | bool) else str(value)


def resolve_format(name: str, stream: TextIO) -> str:
    """``auto`` is json unless ``stream`` is a terminal."""
    if name != "auto":
        return name
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


class _OurHandler(logging.StreamHandler[TextIO]):
    """Ours, so that reconfiguring replaces it and leaves others' handlers."""


def configure(log_format: str = "auto", level: str | int = "warning") -> None:
    """(Re)configure the root logger's one stderr handler."""
    stream = sys.stderr
    handler = _OurHandler(stream)
    formatter = JsonFormatter() if resolve_format(log_format, stream) == "json" else TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _OurHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level] if isinstance(level, str) else level)
