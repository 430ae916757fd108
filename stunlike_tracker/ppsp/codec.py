"""The PPSP codec's entry points: untrusted bytes in, messages out.

``parse_*_untrusted`` are the only functions that read network input
(ARCHITECTURE habit 4): whatever goes wrong inside them leaves as a
``PpspError``, never as another exception (PROTOCOL §2: "XML is untrusted
input"). The error carries the TransactionID and PeerID whenever they could
be read, even from a document refused for another reason, so the tracker can
answer 400 to a request it can match (PROTOCOL §2, §4).

The encoders live in ``encode`` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .decode import (
    check_root,
    decode_indication,
    decode_request,
    decode_response,
    message_kind,
    salvage_ids,
)
from .encode import encode_indication, encode_request, encode_response
from .errors import PpspError, bad_request
from .fastparse import parse_request_fast
from .messages import Indication, Request, Response
from .reasons import Reason
from .xmlsafe import Node, XmlRejected, parse_tree

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_REQUEST_SIZE",
    "encode_indication",
    "encode_request",
    "encode_response",
    "parse_indication_untrusted",
    "parse_message_untrusted",
    "parse_request_untrusted",
    "parse_response_untrusted",
]

DEFAULT_MAX_REQUEST_SIZE = 2048
"""PROTOCOL §4: request documents up to 2,048 bytes are accepted."""

DEFAULT_MAX_MESSAGE_SIZE = 65536
"""Responses and indications: bounded by the UDP datagram itself."""

_T = TypeVar("_T")


def _parse_guarded(data: bytes, max_size: int, decode: Callable[[Node], _T]) -> _T:
    root: Node | None = None
    try:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise bad_request(Reason.NOT_BYTES)
        data = bytes(data)
        try:
            root = parse_tree(data, max_size=max_size)
        except XmlRejected as exc:
            root = exc.partial
            raise PpspError(exc.kind, exc.subject, text=exc.text) from None
        check_root(root)
        return decode(root)
    except PpspError as exc:
        transaction_id, peer_id = salvage_ids(root)
        raise exc.with_ids(transaction_id, peer_id) from None
    except Exception as exc:
        # Defensive: a bug in the codec still must not let anything but
        # PpspError out of a parser (ARCHITECTURE habit 4).
        transaction_id, peer_id = salvage_ids(root)
        raise bad_request(Reason.MALFORMED_MESSAGE).with_ids(transaction_id, peer_id) from exc


def _expect(kind: str, decode: Callable[[Node], _T]) -> Callable[[Node], _T]:
    def run(root: Node) -> _T:
        message_kind(root, kind)
        return decode(root)

    return run


_request = _expect("Request", decode_request)
_response = _expect("Response", decode_response)
_indication = _expect("Indication", decode_indication)


def _any(root: Node) -> Request | Response | Indication:
    kind = message_kind(root)
    if kind == "Request":
        return decode_request(root)
    if kind == "Response":
        return decode_response(root)
    return decode_indication(root)


def parse_request_untrusted(data: bytes, *, max_size: int = DEFAULT_MAX_REQUEST_SIZE) -> Request:
    """One request datagram (PROTOCOL §2, §3, §4, §6); raises only PpspError."""
    if type(data) is bytes and len(data) <= max_size:
        request = parse_request_fast(data)  # the commonest shapes, same verdicts
        if request is not None:
            return request
    return _parse_guarded(data, max_size, _request)


def parse_response_untrusted(data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Response:
    """One response datagram, possibly one part of several (PROTOCOL §4)."""
    return _parse_guarded(data, max_size, _response)


def parse_indication_untrusted(
    data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Indication:
    """One ATTACH indication from the tracker (PROTOCOL §6)."""
    return _parse_guarded(data, max_size, _indication)


def parse_message_untrusted(
    data: bytes, *, max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Request | Response | Indication:
    """Any PPSP document, told apart by its Request/Response/Indication element."""
    return _parse_guarded(data, max_size, _any)
