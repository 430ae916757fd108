"""The configuration file: one TOML document, generated from the dataclasses.

Every section of the file is a frozen dataclass (``SECTIONS``); every key is
one of its fields, with its default and ``metadata={"doc": ...}``. The
reference printed by ``stunlike-tracker print-config`` and the loader used by
``serve --config`` are both derived from those dataclasses, so a new field
appears in both without touching this module. A field may add to its
metadata ``"min"``/``"max"`` (numbers; the minimum defaults to 0) or
``"choices"`` (strings).

Errors are one line naming the key: ``[tracker] keep_alive: must be an
integer, got a string``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stunlike_tracker.core.config import TrackerConfig, TurnConfig
from stunlike_tracker.server.budgets import BudgetLimits
from stunlike_tracker.server.endpoint import EndpointLimits


class ConfigError(Exception):
    """A bad config file, key or value: one line for the operator."""


# ----------------------------------------------------------------------
# the sections this module owns
# ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = field(
        default="::",
        metadata={"doc": "address to bind the UDP port to ('::': IPv4 and IPv6)"},
    )
    port: int = field(
        default=3478, metadata={"doc": "UDP port (STUN + DTLS); 0 picks a free one", "max": 65535}
    )
    certs: str = field(
        default="certs",
        metadata={
            "doc": "directory of ca.pem, tracker.pem, tracker.key "
            "(development certificates are created there when missing)"
        },
    )
    certificate: str | None = field(
        default=None,
        metadata={"doc": "the tracker's certificate chain (PEM); unset: <certs>/tracker.pem"},
    )
    private_key: str | None = field(
        default=None,
        metadata={"doc": "the tracker's private key (PEM); unset: <certs>/tracker.key"},
    )
    peer_ca: str | None = field(
        default=None,
        metadata={"doc": "CA that issues peer certificates (mutual mode); unset: <certs>/ca.pem"},
    )
    mutual: bool = field(
        default=False,
        metadata={"doc": "mutual mode: peers present a certificate naming their Peer-ID"},
    )
    cookie_secret: str | None = field(
        default=None,
        metadata={
            "doc": "DTLS cookie secret shared by every node of one tracker; unset: random per start"
        },
    )
    receive_buffer: int = field(
        default=4 * 1024 * 1024, metadata={"doc": "SO_RCVBUF of the UDP socket, bytes"}
    )
    drain_seconds: float = field(
        default=1.0,
        metadata={
            "doc": "on SIGTERM: keep answering established peers this long, then exit",
            "max": 4.0,
        },
    )


@dataclass(frozen=True, slots=True)
class TurnSettings:
    uris: tuple[str, ...] = field(
        default=(),
        metadata={"doc": "TURN relay URIs handed to peers in CONNECT, e.g. turn:relay:3478"},
    )
    secrets: tuple[str, ...] = field(
        default=(),
        metadata={
            "doc": "coturn static-auth-secret(s); the first signs, list the old one while rotating"
        },
    )
    ttl: int = field(default=600, metadata={"doc": "TURN credential lifetime, seconds", "min": 1})

    def turn_config(self) -> TurnConfig | None:
        if not self.uris:
            return None
        return TurnConfig(self.uris, tuple(s.encode() for s in self.secrets), self.ttl)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = field(
        default="memory",
        metadata={
            "doc": "'memory' (embedded, one node), or shared by the nodes of one tracker: "
            "redis://HOST:PORT/DB, rediss://HOST:PORT/DB, redis+cluster://HOST:PORT"
        },
    )


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: str | None = field(
        default=None,
        metadata={"doc": "HOST:PORT of the HTTP listener (/metrics, /, /status.json); unset: off"},
    )
    recent_introductions: int = field(
        default=50, metadata={"doc": "ATTACH outcomes kept for the status page"}
    )


@dataclass(frozen=True, slots=True)
class HttpsConfig:
    """The HTTPS listener of the JSON binding (PROTOCOL §14, docs/SECURITY.md)."""

    listen: str | None = field(
        default=None,
        metadata={
            "doc": "HOST:PORT of the HTTPS listener (RFC 7846 JSON over POST /ppsp and "
            "WebSocket /ppsp/ws, the /peer/ page); unset: off"
        },
    )
    max_message_size: int = field(
        default=8192, metadata={"doc": "largest JSON request (POST body or message), bytes"}
    )
    max_json_depth: int = field(
        default=10, metadata={"doc": "deepest nesting of JSON objects and arrays"}
    )
    max_connections: int = field(
        default=10_000, metadata={"doc": "TCP connections held at once (beyond: closed)"}
    )
    max_connections_per_address: int = field(
        default=32, metadata={"doc": "TCP connections from one address (IPv6: /64) at once"}
    )
    message_rate: float = field(
        default=20.0, metadata={"doc": "JSON requests per second per connection (then 503)"}
    )
    message_burst: int = field(
        default=40, metadata={"doc": "JSON requests one connection may send at once"}
    )
    max_in_flight: int = field(
        default=8, metadata={"doc": "requests one WebSocket may have unanswered (then 503)"}
    )
    idle_timeout: float = field(
        default=120.0,
        metadata={"doc": "a silent WebSocket or POST session is dropped after, seconds"},
    )
    header_timeout: float = field(
        default=10.0, metadata={"doc": "a request head or body must arrive within, seconds"}
    )
    answer_timeout: float = field(
        default=15.0, metadata={"doc": "the core's answer is awaited at most, seconds (then 500)"}
    )
    max_write_buffer: int = field(
        default=1024 * 1024,
        metadata={"doc": "a connection whose unsent data exceeds this is closed, bytes"},
    )


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: str = field(
        default="auto",
        metadata={
            "doc": "text, json, or auto (json when stderr is not a terminal)",
            "choices": ("auto", "text", "json"),
        },
    )
    level: str = field(
        default="warning",
        metadata={
            "doc": "debug, info, warning or error (-v: info, -vv: debug)",
            "choices": ("debug", "info", "warning", "error"),
        },
    )


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    cls: type[Any]
    doc: str
    # Fields that are not file keys (set from another section).
    derived: frozenset[str] = frozenset()


# The order of the printed file. A new section is one line here plus its
# attribute in ``Settings``.
SECTIONS: tuple[Section, ...] = (
    Section("server", ServerConfig, "the UDP port, certificates and identity mode"),
    Section(
        "tracker",
        TrackerConfig,
        "protocol timers, limits and policy (docs/PROTOCOL.md)",
        derived=frozenset({"turn", "identity_mode"}),
    ),
    Section("endpoint", EndpointLimits, "sessions, idle eviction and the send buffer"),
    Section("budgets", BudgetLimits, "what one source may cost, checked before decryption"),
    Section("turn", TurnSettings, "TURN REST credentials for a coturn relay"),
    Section("store", StoreConfig, "where registrations and swarms live"),
    Section("http", HttpConfig, "metrics and the status page"),
    Section("https", HttpsConfig, "RFC 7846 JSON over HTTPS and WebSocket, the browser page"),
    Section("logging", LoggingConfig, "log lines on stderr"),
)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    endpoint: EndpointLimits = field(default_factory=EndpointLimits)
    budgets: BudgetLimits = field(default_factory=BudgetLimits)
    turn: TurnSettings = field(default_factory=TurnSettings)
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    https: HttpsConfig = field(default_factory=HttpsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


# ----------------------------------------------------------------------
# field types
# ----------------------------------------------------------------------
def _keys(section: Section) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(section.cls) if f.name not in section.derived]


def _hints(section: Section) -> dict[str, Any]:
    return typing.get_type_hints(section.cls)


def _optional(hint: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None was allowed)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _convert(value: object, hint: Any) -> object:
    """``value`` (a TOML value or a flag's) as the field's type; ValueError
    with what was expected."""
    inner, optional = _optional(hint)
    if value is None and optional:
        return None
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("must be true or false")
    if inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError("must be an integer")
    if inner is float:
        if _is_number(value) and math.isfinite(float(value)):  # type: ignore[arg-type]
            return float(value)  # type: ignore[arg-type]
        raise ValueError("must be a number")
    if inner is str:
        if isinstance(value, str):
            return value
        raise ValueError("must be a string")
    if origin in (tuple, frozenset) and args and args[0] in (str, float, int):
        item = args[0]
        if isinstance(value, list | tuple | frozenset):
            converted = [_convert(v, item) for v in value]
            return tuple(converted) if origin is tuple else frozenset(converted)
        raise ValueError(f"must be a list of {_plural(item)}")
    raise TypeError(f"a field of type {hint} cannot be set in a config file")


def _plural(item: Any) -> str:
    return {str: "strings", float: "numbers", int: "integers"}.get(item, "values")


def _check_range(value: object, meta: Mapping[str, Any]) -> None:
    values: Iterable[object] = value if isinstance(value, tuple | frozenset) else (value,)
    for v in values:
        if _is_number(v):
            low = meta.get("min", 0)
            high = meta.get("max")
            if v < low:
                raise ValueError(f"must be at least {low}")
            if high is not None and v > high:
                raise ValueError(f"must be at most {high}")
        choices = meta.get("choices")
        if choices is not None and isinstance(v, str) and v not in choices:
            raise ValueError("must be one of " + ", ".join(choices))


def check_value(section: Section, name: str, value: object) -> object:
    """One key's value, converted and range-checked, or ConfigError."""
    fields = {f.name: f for f in _keys(section)}
    if name not in fields:
        raise ConfigError(f"[{section.name}] {name}: unknown key")
    try:
        converted = _convert(value, _hints(section)[name])
        _check_range(converted, fields[name].metadata)
    except ValueError as error:
        raise ConfigError(
            f"[{section.name}] {name}: {error}, got {_describe(value)} {_shown(name, value)}"
        ) from None
    return converted


def _shown(name: str, value: object) -> str:
    if "secret" in name or "token" in name or "key" in name:
        return "(value not shown)"
    text = json.dumps(value) if isinstance(value, str | int | float | bool) else None
    if text is None or len(text) > 40:
        return ""
    return text


# ----------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------
def read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"bad config {path}: {error}") from None


def build_settings(
    document: Mapping[str, Any], overrides: Mapping[str, Mapping[str, object]] | None = None
) -> Settings:
    """Settings from a parsed TOML document, then ``overrides`` (from flags:
    section -> key -> value) on top. Unknown sections or keys and bad values
    raise ConfigError naming the key."""
    by_name = {s.name: s for s in SECTIONS}
    values: dict[str, dict[str, object]] = {s.name: {} for s in SECTIONS}
    for section_name, table in document.items():
        section = by_name.get(section_name)
        if section is None:
            raise ConfigError(f"[{section_name}]: unknown section")
        if not isinstance(table, dict):
            raise ConfigError(f"{section_name}: must be a table [{section_name}]")
        for key, value in table.items():
            name = key.replace("-", "_")
            values[section_name][name] = check_value(section, name, value)
    for section_name, table in (overrides or {}).items():
        section = by_name[section_name]
        for name, value in table.items():
            values[section_name][name] = check_value(section, name, value)
    built: dict[str, object] = {}
    for section in SECTIONS:
        try:
            built[section.name] = section.cls(**values[section.name])
        except (TypeError, ValueError) as error:
            raise ConfigError(f"[{section.name}]: {error}") from None
    settings = Settings(**built)  # type: ignore[arg-type]
    _check_across(settings)
    return settings


def _check_across(settings: Settings) -> None:
    turn = settings.turn
    if turn.uris and not turn.secrets:
        raise ConfigError("[turn] secrets: needed when uris is set")
    for name, listen in (("http", settings.http.listen), ("https", settings.https.listen)):
        if listen is not None:
            try:
                parse_listen(listen)
            except ValueError as error:
                raise ConfigError(f"[{name}] listen: {error}") from None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> (host, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def tracker_config(settings: Settings) -> TrackerConfig:
    """The core's config with the fields other sections decide."""
    mode = "mutual" if settings.server.mutual else "open"
    return dataclasses.replace(
        settings.tracker, turn=settings.turn.turn_config(), identity_mode=mode
    )


# ----------------------------------------------------------------------
# print-config
# ----------------------------------------------------------------------
def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (escapes are TOML's too)
    if isinstance(value, tuple | frozenset | list):
        items = sorted(value) if isinstance(value, frozenset) else list(value)
        return "[" + ", ".join(_toml(v) for v in items) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _example(hint: Any) -> str:
    inner, _ = _optional(hint)
    origin = typing.get_origin(inner)
    if origin in (tuple, frozenset):
        return "[]"
    return {str: '""', int: "0", float: "0.0", bool: "false"}.get(inner, '""')


def render_config() -> str:
    """The whole file with every default and a comment per key; ``serve
    --config`` accepts it unchanged."""
    lines = [
        "# stunlike-tracker configuration (TOML): every key with its default.",
        "# `stunlike-tracker serve --config FILE` reads it; command-line flags win.",
        "# Keys shown commented out are unset by default.",
    ]
    for section in SECTIONS:
        lines += ["", f"# {section.doc}", f"[{section.name}]"]
        hints = _hints(section)
        for f in _keys(section):
            doc = f.metadata.get("doc")
            if not doc:
                raise TypeError(f"{section.cls.__name__}.{f.name} has no metadata doc")
            default = _default(f)
            _convert(default, hints[f.name])  # a type the loader cannot read fails here
            lines.append(f"# {doc}")
            if default is None:
                lines.append(f"# {f.name} = {_example(hints[f.name])}")
            else:
                lines.append(f"{f.name} = {_toml(default)}")
    return "\n".join(lines) + "\n"


def _default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{f.name} has no default")
