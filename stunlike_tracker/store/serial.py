"""Store records to and from JSON text, for network stores (PROTOCOL §9).

Records are frozen dataclasses of strings, numbers, enums, bytes and tuples;
this turns them into compact JSON (a dataclass is the list of its field
values, bytes are hex) and back, driven by the type hints. Nothing here
evaluates code from the store (no pickle): a compromised store can hand us
wrong data, not run code.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from stunlike_tracker.store.records import CachedResponse, PeerRecord

T = TypeVar("T")


class SerialError(ValueError):
    """Stored text that does not decode as the record it should be."""


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [_plain(getattr(value, name)) for name, _ in _fields(type(value))]
    raise TypeError(f"cannot store {type(value).__name__}")


def _typed(hint: Any, value: object) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is not type(None):
                return _typed(option, value)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise SerialError("expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], v) for v in value)
        if len(args) != len(value):
            raise SerialError("tuple length")
        return tuple(_typed(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return hint(value)
        if hint is bytes:
            if not isinstance(value, str):
                raise SerialError("expected hex")
            return bytes.fromhex(value)
        if hint is float and isinstance(value, int | float):
            return float(value)
        if dataclasses.is_dataclass(hint):
            fields = _fields(hint)
            if not isinstance(value, list) or len(value) != len(fields):
                raise SerialError(f"bad {hint.__name__}")
            return hint(**{n: _typed(h, v) for (n, h), v in zip(fields, value, strict=True)})
        if isinstance(value, hint):
            return value
    raise SerialError(f"expected {hint!r}")


def dumps(record: object) -> str:
    return json.dumps(_plain(record), separators=(",", ":"))


def loads(cls: type[T], text: str | bytes) -> T:
    try:
        return typing.cast(T, _typed(cls, json.loads(text)))
    except (ValueError, TypeError, KeyError) as error:
        raise SerialError(str(error)) from error


def dumps_peer(record: PeerRecord) -> str:
    return dumps(record)


def loads_peer(text: str | bytes) -> PeerRecord:
    return loads(PeerRecord, text)


def dumps_cached(entry: CachedResponse) -> str:
    return dumps(entry)


def loads_cached(text: str | bytes) -> CachedResponse:
    return loads(CachedResponse, text)
