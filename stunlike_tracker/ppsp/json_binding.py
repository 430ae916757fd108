"""The RFC 7846 JSON binding of the PPSP messages (PROTOCOL §14).

Pure: bytes in, message objects out, and back. The JSON documents map onto
the same dataclasses as the XML binding (``messages``), so the tracker core
serves both bindings alike. What RFC 7846 has and draft-07 has not (a
CONNECT carrying swarm actions) is kept beside the ``Request``
(``JsonRequest.swarm_actions``) and expanded into the draft-07 requests the
core executes (``expand_swarm_actions``, PROTOCOL §14.2).

Untrusted input is checked before any object is built (PROTOCOL §14.6): the
size cap, the nesting depth (counted on the raw text, so a deep document
never reaches the recursive JSON parser), UTF-8, no duplicate member names,
no NaN/Infinity, integers that are JSON integers (not floats, not booleans).
Every failure is a 400 ``PpspError`` with a fixed reason naming the member
after our own schema (never text from the input) and, when the document's
top level could be read, its ``transaction_id`` and ``peer_id``. Unknown
members are ignored, as unknown XML elements are (PROTOCOL §2).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from .errors import PpspError, bad_request
from .messages import (
    SWARM_ALL,
    SWARM_NIL,
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    Indication,
    Method,
    NatAbility,
    Part,
    PeerAddress,
    PeerInfo,
    PeerMode,
    PeerNum,
    Representation,
    Request,
    Response,
    SegmentInfo,
    Stat,
    Status,
    StreamStatistics,
    TurnServer,
)
from .reasons import Reason
from .values import (
    MAX_ID_LEN,
    UINT32_MAX,
    UINT64_MAX,
    candidate_ip,
    is_mdns_hostname,
    opaque_id,
    phrase,
    token,
)
from .values import ip_address as checked_ip

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_MAX_JSON_SIZE",
    "JSON_VERSION",
    "ActionResult",
    "JsonRequest",
    "JsonResponse",
    "SwarmAction",
    "encode_indication_json",
    "encode_request_json",
    "encode_response_json",
    "error_response_json",
    "expand_swarm_actions",
    "is_mdns_hostname",
    "parse_json_indication_untrusted",
    "parse_json_request_untrusted",
    "parse_json_response_untrusted",
]

JSON_VERSION: Final = 1
"""RFC 7846 §3.2.1: the version member is the integer 1."""

DEFAULT_MAX_JSON_SIZE: Final = 8192
"""PROTOCOL §14.6: request documents up to 8 KiB (JSON is wordier than XML)."""

DEFAULT_MAX_JSON_DEPTH: Final = 10
"""PROTOCOL §14.6: objects and arrays nested at most 10 deep."""

MAX_ARRAY_LEN: Final = 64
"""PROTOCOL §14.6: no array in a document holds more entries."""

MAX_TEXT_LEN: Final = 256
MAX_REASON_LEN: Final = 256
MAX_PART_COUNT: Final = 65535

ACTION_JOIN: Final = "JOIN"
ACTION_LEAVE: Final = "LEAVE"

_REQUEST_TYPES = {m.value: m for m in Method}
_ADDR_TYPES = {m.value: m for m in AddrType}
_ADDRESS_TYPES = {m.value: m for m in AddressType}
_PEER_MODES = {"LEECH": PeerMode.LEECH, "SEED": PeerMode.SEED, "SEEDER": PeerMode.SEED}
# RFC 7846 §3.2.2 writes NO_NAT; draft-07's NoNAT is accepted too.
_NAT_ABILITIES = {"NO_NAT": NatAbility.NO_NAT, **{m.value: m for m in NatAbility}}
_NAT_ABILITY_NAMES = {
    NatAbility.NO_NAT: "NO_NAT",
    NatAbility.STUN: "STUN",
    NatAbility.TURN: "TURN",
    NatAbility.PROXY: "PROXY",
}
_STATUS_BY_TEXT = {text: status for status, text in Status.TEXT.items()}
# RFC 7846's error codes (its IANA "PPSTP Error Code" registry, PROTOCOL §14.9):
# ``error_code`` carries these; the draft-07 status travels as ``status``.
ERROR_NONE = 0
ERROR_BAD_REQUEST = 1
ERROR_UNSUPPORTED_VERSION = 2
ERROR_FORBIDDEN_ACTION = 3
ERROR_INTERNAL = 4
ERROR_SERVICE_UNAVAILABLE = 5
ERROR_AUTHENTICATION_REQUIRED = 6
_ERROR_CODE_BY_STATUS = {
    Status.OK: ERROR_NONE,
    Status.BAD_REQUEST: ERROR_BAD_REQUEST,
    Status.UNAUTHORIZED: ERROR_AUTHENTICATION_REQUIRED,
    Status.FORBIDDEN: ERROR_FORBIDDEN_ACTION,
    # RFC 7846 has no "not found": the request named what does not exist.
    Status.NOT_FOUND: ERROR_BAD_REQUEST,
    Status.INTERNAL: ERROR_INTERNAL,
    Status.OVERLOADED: ERROR_SERVICE_UNAVAILABLE,
}
_STATUS_BY_ERROR_CODE = {
    ERROR_NONE: Status.OK,
    ERROR_BAD_REQUEST: Status.BAD_REQUEST,
    ERROR_UNSUPPORTED_VERSION: Status.BAD_REQUEST,
    ERROR_FORBIDDEN_ACTION: Status.FORBIDDEN,
    ERROR_INTERNAL: Status.INTERNAL,
    ERROR_SERVICE_UNAVAILABLE: Status.OVERLOADED,
    ERROR_AUTHENTICATION_REQUIRED: Status.UNAUTHORIZED,
}


def rfc7846_error_code(status: int, text: str | None = None) -> int:
    """The RFC 7846 ``error_code`` of a draft-07 status (PROTOCOL §14.9)."""
    if text == Status.VERSION_NOT_SUPPORTED_TEXT:
        return ERROR_UNSUPPORTED_VERSION
    code = _ERROR_CODE_BY_STATUS.get(status)
    if code is not None:
        return code
    if 200 <= status < 300:
        return ERROR_NONE
    return ERROR_BAD_REQUEST if status < 500 else ERROR_INTERNAL


_STREAM_STATISTICS = "StreamStatistics"
_CONTENT_MAP = "ContentMap"


# ---------------------------------------------------------------------------
# message objects the JSON binding adds (PROTOCOL §14.2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwarmAction:
    """One RFC 7846 swarm action of a CONNECT: JOIN a swarm (as LEECH or
    SEED) or LEAVE it."""

    swarm_id: str
    action: str
    peer_mode: PeerMode | None = None


@dataclass(frozen=True, slots=True)
class JsonRequest:
    """A JSON request: the draft-07 ``Request`` and, for CONNECT, its swarm actions."""

    request: Request
    swarm_actions: tuple[SwarmAction, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one swarm action in a CONNECT answer."""

    swarm_id: str
    action: str
    status: int
    reason: str = ""
    peers: tuple[PeerInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class JsonResponse:
    """A JSON answer: the draft-07 ``Response`` and the swarm actions' outcomes."""

    response: Response
    actions: tuple[ActionResult, ...] = ()
    # POST binding: the session this CONNECT opened (PROTOCOL §14.7).
    session_token: str | None = None


# ---------------------------------------------------------------------------
# the raw layer: bytes -> checked JSON value
# ---------------------------------------------------------------------------


class _Members:
    """``object_pairs_hook`` that notes a duplicate member name (RFC 8259
    §4 leaves them undefined; we refuse them) and keeps parsing, so the
    error can still carry the transaction id."""

    __slots__ = ("duplicate",)

    def __init__(self) -> None:
        self.duplicate = False

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            self.duplicate = True
        return result


def _no_constant(_name: str) -> Any:
    raise bad_request(Reason.INVALID, "number")


def _depth_of(text: str, limit: int) -> bool:
    """True when no object/array nests deeper than ``limit`` (counted on the
    raw text, strings skipped), before the recursive parser sees it."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _load(data: bytes, max_size: int, max_depth: int) -> tuple[Any, bool]:
    """The JSON value, and whether some object named a member twice."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise bad_request(Reason.NOT_BYTES)
    data = bytes(data)
    if len(data) > max_size:
        raise bad_request(Reason.MESSAGE_TOO_LARGE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(Reason.NOT_UTF8) from None
    if not _depth_of(text, max_depth):
        raise bad_request(Reason.TOO_DEEP)
    members = _Members()
    try:
        value = json.loads(text, object_pairs_hook=members, parse_constant=_no_constant)
    except PpspError:
        raise
    except (ValueError, RecursionError):
        raise bad_request(Reason.MALFORMED_MESSAGE) from None
    return value, members.duplicate


# ---------------------------------------------------------------------------
# typed access with our own member names in the errors
# ---------------------------------------------------------------------------

_T = TypeVar("_T")


class _Obj:
    """A JSON object read member by member; ``where`` is the schema path
    used in error reasons ("request_data peer_num")."""

    __slots__ = ("value", "where")

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise bad_request(Reason.NOT_AN, f"object {where}".strip())
        self.value: dict[str, Any] = value
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where} {key}".strip()

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.value.get(key)

    def obj(self, key: str) -> _Obj | None:
        raw = self.value.get(key)
        return None if raw is None else _Obj(raw, self._name(key))

    def req_obj(self, key: str) -> _Obj:
        found = self.obj(key)
        if found is None:
            raise bad_request(Reason.MISSING, self._name(key))
        return found

    def objs(self, key: str) -> list[_Obj]:
        raw = self.value.get(key)
        if raw is None:
            return []
        name = self._name(key)
        if not isinstance(raw, list):
            raise bad_request(Reason.NOT_AN, f"array {name}")
        if len(raw) > MAX_ARRAY_LEN:
            raise bad_request(Reason.TOO_MANY_ELEMENTS)
        return [_Obj(item, name) for item in raw]

    def string(self, key: str) -> str | None:
        raw = self.value.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise bad_request(Reason.INVALID, self._name(key))
        return raw

    def req_string(self, key: str) -> str:
        raw = self.string(key)
        if raw is None:
            raise bad_request(Reason.MISSING, self._name(key))
        return raw

    def opt_id(self, key: str) -> str | None:
        raw = self.string(key)
        return None if raw is None else opaque_id(raw, self._name(key))

    def req_id(self, key: str) -> str:
        return opaque_id(self.req_string(key), self._name(key))

    def opt_token(self, key: str, max_len: int = MAX_ID_LEN) -> str | None:
        raw = self.string(key)
        return None if raw is None else token(raw, self._name(key), max_len)

    def loose_token(self, key: str) -> str | None:
        """A token that RFC 7846 writes as a number and draft-07 as text."""
        raw = self.value.get(key)
        if raw is None:
            return None
        if _is_int(raw) and raw >= 0:
            raw = str(raw)
        if not isinstance(raw, str):
            raise bad_request(Reason.INVALID, self._name(key))
        return token(raw, self._name(key), MAX_ID_LEN)

    def uint(self, key: str, max_value: int) -> int | None:
        raw = self.value.get(key)
        if raw is None:
            return None
        if not _is_int(raw) or not 0 <= raw <= max_value:
            raise bad_request(Reason.INVALID, self._name(key))
        return int(raw)

    def req_uint(self, key: str, max_value: int) -> int:
        found = self.uint(key, max_value)
        if found is None:
            raise bad_request(Reason.MISSING, self._name(key))
        return found

    def choice(self, key: str, table: dict[str, _T]) -> _T | None:
        raw = self.string(key)
        if raw is None:
            return None
        found = table.get(raw)
        if found is None:
            raise bad_request(Reason.INVALID, self._name(key))
        return found


def _is_int(raw: object) -> bool:
    return type(raw) is int


def _top(value: Any) -> _Obj:
    if not isinstance(value, dict):
        raise bad_request(Reason.NOT_A_PPSP_DOCUMENT)
    return _Obj(value, "")


def _check_version(top: _Obj) -> None:
    raw = top.raw("version")
    if raw is None:
        raise bad_request(Reason.MISSING, "version")
    if not _is_int(raw) or raw != JSON_VERSION:
        raise PpspError(Reason.VERSION_NOT_SUPPORTED, text=Status.VERSION_NOT_SUPPORTED_TEXT)


def _salvage(value: Any) -> tuple[str | None, str | None]:
    """(transaction_id, peer_id) of a top-level object, when valid."""
    if not isinstance(value, dict):
        return None, None

    def one(key: str) -> str | None:
        raw = value.get(key)
        if not isinstance(raw, str):
            return None
        try:
            return opaque_id(raw, key)
        except PpspError:
            return None

    return one("transaction_id"), one("peer_id")


def _guarded(data: bytes, max_size: int, max_depth: int, decode: Callable[[_Obj], _T]) -> _T:
    value: Any = None
    try:
        value, duplicate = _load(data, max_size, max_depth)
        top = _top(value)
        if duplicate:
            raise bad_request(Reason.DUPLICATE, "member")
        _check_version(top)
        return decode(top)
    except PpspError as exc:
        transaction_id, peer_id = _salvage(value)
        raise exc.with_ids(transaction_id, peer_id) from None
    except Exception as exc:
        # Defensive: nothing but PpspError leaves a parser (ARCHITECTURE habit 4).
        transaction_id, peer_id = _salvage(value)
        raise bad_request(Reason.MALFORMED_MESSAGE).with_ids(transaction_id, peer_id) from exc


# ---------------------------------------------------------------------------
# decoding the shared parts
# ---------------------------------------------------------------------------


def _peer_address(node: _Obj, *, mdns: bool = False) -> PeerAddress:
    ip = node.req_obj("ip_address")
    family = ip.choice("address_type", _ADDR_TYPES)
    if family is None:
        raise bad_request(Reason.MISSING, "peer_addr ip_address address_type")
    raw_ip = ip.req_string("address")
    what = "peer_addr ip_address address"
    try:
        address = candidate_ip(raw_ip, family) if mdns else checked_ip(raw_ip, family)
    except PpspError:
        raise bad_request(Reason.INVALID, what) from None
    port = node.req_uint("port", 65535)
    return PeerAddress(
        addr_type=family,
        ip=address,
        port=port,
        type=node.choice("type", _ADDRESS_TYPES),
        priority=node.uint("priority", UINT32_MAX),
        foundation=node.opt_token("foundation"),
        connection=node.opt_token("connection"),
        asn=node.opt_token("asn"),
    )


def _ice_offer(node: _Obj) -> IceOffer:
    fingerprint = node.string("fingerprint")
    return IceOffer(
        id=node.req_id("id"),
        ufrag=token(node.req_string("ufrag"), "ice_offer ufrag", MAX_TEXT_LEN),
        pwd=token(node.req_string("pwd"), "ice_offer pwd", MAX_TEXT_LEN),
        fingerprint=(
            None
            if fingerprint is None
            else phrase(fingerprint, "ice_offer fingerprint", MAX_TEXT_LEN)
        ),
        candidates=tuple(_peer_address(c, mdns=True) for c in node.objs("candidates")),
    )


def _peer_info(node: _Obj) -> PeerInfo:
    offer = node.obj("ice_offer")
    return PeerInfo(
        peer_id=node.opt_id("peer_id"),
        mode=node.choice("peer_mode", _PEER_MODES),
        addresses=tuple(_peer_address(a) for a in node.objs("peer_addr")),
        offer=None if offer is None else _ice_offer(offer),
    )


def _peer_num(node: _Obj) -> PeerNum:
    return PeerNum(
        count=node.uint("peer_count", UINT32_MAX),
        ability_nat=node.choice("ability_nat", _NAT_ABILITIES),
        concurrent_links=node.loose_token("concurrent_links"),
        online_time=node.loose_token("online_time"),
        upload_bw_level=node.loose_token("upload_bandwidth"),
    )


def _segment(node: _Obj) -> SegmentInfo:
    start = node.uint("start_index", UINT64_MAX)
    end = node.uint("end_index", UINT64_MAX)
    if start is not None and end is not None and end < start:
        raise bad_request(Reason.INVALID, "segment_info range")
    chunk_map = node.string("chunk_map")
    if chunk_map is not None and len(chunk_map) > MAX_TEXT_LEN * 16:
        raise bad_request(Reason.INVALID, "segment_info chunk_map")
    return SegmentInfo(
        start=start,
        end=end,
        chunkmap_size=node.uint("chunkmap_size", UINT64_MAX),
        chunk_map=chunk_map or None,
    )


def _representation(node: _Obj) -> Representation:
    rep_id = token(node.req_string("id"), "representation id", MAX_ID_LEN)
    return Representation(id=rep_id, segments=tuple(_segment(s) for s in node.objs("segment_info")))


def _not_reserved(swarm_id: str) -> str:
    if swarm_id in (SWARM_ALL, SWARM_NIL):
        raise bad_request(Reason.RESERVED_SWARM_ID)
    return swarm_id


def _stat(node: _Obj) -> Stat | None:
    """A ``stat`` entry; no ``property`` is RFC 7846's plain statistics."""
    prop = node.string("property") or _STREAM_STATISTICS
    if prop == _STREAM_STATISTICS:
        return StreamStatistics(
            swarm_id=_not_reserved(node.req_id("swarm_id")),
            uploaded_bytes=node.uint("uploaded_bytes", UINT64_MAX),
            downloaded_bytes=node.uint("downloaded_bytes", UINT64_MAX),
            avail_bandwidth=node.uint("available_bandwidth", UINT64_MAX),
        )
    if prop == _CONTENT_MAP:
        return ContentMap(
            swarm_id=_not_reserved(node.req_id("swarm_id")),
            representations=tuple(_representation(r) for r in node.objs("representation")),
        )
    return None


def _swarm_action(node: _Obj) -> SwarmAction:
    action = node.req_string("action")
    if action not in (ACTION_JOIN, ACTION_LEAVE):
        raise bad_request(Reason.INVALID, "swarm_action action")
    return SwarmAction(
        swarm_id=_not_reserved(node.req_id("swarm_id")),
        action=action,
        peer_mode=node.choice("peer_mode", _PEER_MODES),
    )


# ---------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------

_NEEDS_SWARM = frozenset({Method.JOIN, Method.FIND, Method.DISCONNECT, Method.ATTACH})


def _decode_request(top: _Obj) -> JsonRequest:
    raw_type = top.req_string("request_type")
    method = _REQUEST_TYPES.get(raw_type)
    if method is None:
        raise bad_request(Reason.UNKNOWN_REQUEST)
    transaction_id = top.req_id("transaction_id")
    peer_id = top.req_id("peer_id")
    data = top.obj("request_data") or _Obj({}, "request_data")

    swarm_id = data.opt_id("swarm_id")
    if swarm_id is None and method in _NEEDS_SWARM:
        raise bad_request(Reason.MISSING, "swarm_id")
    if swarm_id is not None and method is not Method.DISCONNECT:
        _not_reserved(swarm_id)
    peer_num = data.obj("peer_num")
    offer = data.obj("ice_offer")
    stats: tuple[Stat, ...] | None = None
    if data.has("stat"):
        found = (_stat(s) for s in data.objs("stat"))
        stats = tuple(s for s in found if s is not None)
    actions = tuple(_swarm_action(a) for a in data.objs("swarm_action"))
    if actions and method is not Method.CONNECT:
        raise bad_request(Reason.INVALID, "swarm_action")
    request = Request(
        method=method,
        peer_id=peer_id,
        transaction_id=transaction_id,
        swarm_id=swarm_id,
        peer_mode=data.choice("peer_mode", _PEER_MODES),
        peer_num=None if peer_num is None else _peer_num(peer_num),
        content=tuple(_representation(r) for r in data.objs("representation")),
        addresses=tuple(_peer_address(a) for a in data.objs("peer_addr")),
        stats=stats,
        ice_offer=None if offer is None else _ice_offer(offer),
        target_peer_id=data.opt_id("target_peer_id"),
        offer_id=data.opt_id("offer_id"),
        indication_id=data.opt_id("indication_id"),
        reconnect_token=data.opt_id("reconnect_token"),
    )
    if method is Method.ATTACH:
        if request.target_peer_id is None:
            raise bad_request(Reason.MISSING, "target_peer_id")
        if request.ice_offer is None:
            raise bad_request(Reason.MISSING, "ice_offer")
    if method is Method.ATTACH_ACK and request.indication_id is None:
        raise bad_request(Reason.MISSING, "indication_id")
    return JsonRequest(request, actions)


def parse_json_request_untrusted(
    data: bytes,
    *,
    max_size: int = DEFAULT_MAX_JSON_SIZE,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> JsonRequest:
    """One JSON request document (PROTOCOL §14.2); raises only PpspError."""
    return _guarded(data, max_size, max_depth, _decode_request)


def _derived_transaction_id(transaction_id: str, index: int) -> str:
    """PROTOCOL §14.2: the n-th swarm action of CONNECT ``t`` runs as ``t/n``
    (cut to fit the 64-character limit)."""
    suffix = f"/{index}"
    return transaction_id[: MAX_ID_LEN - len(suffix)] + suffix


def expand_swarm_actions(json_request: JsonRequest) -> tuple[Request, ...]:
    """The draft-07 requests a JSON request stands for (PROTOCOL §14.2): the
    request itself, then one JOIN or DISCONNECT per swarm action, in order.
    The CONNECT's ``peer_num``, start point and ICE offer go with its first
    JOIN (a peer publishes an offer once)."""
    request = json_request.request
    expanded = [request]
    offer = request.ice_offer
    for index, action in enumerate(json_request.swarm_actions, start=1):
        transaction_id = _derived_transaction_id(request.transaction_id, index)
        if action.action == ACTION_JOIN:
            expanded.append(
                Request(
                    method=Method.JOIN,
                    peer_id=request.peer_id,
                    transaction_id=transaction_id,
                    swarm_id=action.swarm_id,
                    peer_mode=action.peer_mode,
                    peer_num=request.peer_num,
                    content=request.content,
                    ice_offer=offer,
                )
            )
            offer = None
        else:
            expanded.append(
                Request(
                    method=Method.DISCONNECT,
                    peer_id=request.peer_id,
                    transaction_id=transaction_id,
                    swarm_id=action.swarm_id,
                )
            )
    return tuple(expanded)


# ---------------------------------------------------------------------------
# responses and indications (decoding: for clients and tests)
# ---------------------------------------------------------------------------


def _status(node: _Obj) -> tuple[int, str | None]:
    """(status, text): ``status`` (else derived from RFC 7846's ``error_code``)
    and ``response_type``; the text is None when it is the status's standard one."""
    status = node.uint("status", 599)
    text = node.string("response_type")
    if text is not None and len(text) > MAX_REASON_LEN:
        raise bad_request(Reason.INVALID, "response_type")
    if status is None:
        code = node.uint("error_code", ERROR_AUTHENTICATION_REQUIRED)
        if code is not None:
            status = _STATUS_BY_ERROR_CODE[code]
    if status is None:
        found = _STATUS_BY_TEXT.get(text or "")
        if found is None:
            raise bad_request(Reason.UNKNOWN_RESPONSE_STATUS)
        status = found
    if status < 100:
        raise bad_request(Reason.INVALID, "error_code")
    standard = Response(status=status, transaction_id="-").status_text
    return status, (None if text in (None, standard) else text)


def _reason(node: _Obj) -> str:
    reason = node.string("reason") or ""
    if len(reason) > MAX_REASON_LEN:
        raise bad_request(Reason.INVALID, "reason")
    return reason


def _turn_server(node: _Obj) -> TurnServer:
    def text(key: str) -> str:
        return token(node.req_string(key), f"turn_server {key}", MAX_TEXT_LEN)

    return TurnServer(
        uri=text("uri"),
        username=text("username"),
        credential=text("credential"),
        ttl=node.req_uint("ttl", UINT32_MAX),
    )


def _part(node: _Obj) -> Part:
    index = node.req_uint("index", MAX_PART_COUNT)
    count = node.req_uint("count", MAX_PART_COUNT)
    if count < 1 or index >= count:
        raise bad_request(Reason.INVALID, "part")
    return Part(index=index, count=count)


def _action_result(node: _Obj) -> ActionResult:
    action = node.req_string("action")
    if action not in (ACTION_JOIN, ACTION_LEAVE):
        raise bad_request(Reason.INVALID, "swarm_action action")
    status, _text = _status(node)
    return ActionResult(
        swarm_id=node.req_id("swarm_id"),
        action=action,
        status=status,
        reason=_reason(node),
        peers=tuple(_peer_info(p) for p in node.objs("peer_group")),
    )


def _decode_response(top: _Obj) -> JsonResponse:
    transaction_id = top.req_id("transaction_id")
    status, text = _status(top)
    data = top.obj("response_data") or _Obj({}, "response_data")
    swarm_ids = data.raw("swarm_ids")
    if swarm_ids is None:
        swarm_ids = []
    if not isinstance(swarm_ids, list) or len(swarm_ids) > MAX_ARRAY_LEN:
        raise bad_request(Reason.INVALID, "response_data swarm_ids")
    checked = []
    for raw in swarm_ids:
        if not isinstance(raw, str):
            raise bad_request(Reason.INVALID, "response_data swarm_ids")
        checked.append(_not_reserved(opaque_id(raw, "response_data swarm_ids")))
    part = data.obj("part")
    response = Response(
        status=status,
        transaction_id=transaction_id,
        reason=_reason(top),
        peers=tuple(_peer_info(p) for p in data.objs("peer_group")),
        swarm_ids=tuple(checked),
        keep_alive=data.uint("keep_alive", UINT32_MAX),
        turn_servers=tuple(_turn_server(t) for t in data.objs("turn_server")),
        reconnect_token=data.opt_id("reconnect_token"),
        part=None if part is None else _part(part),
        text=text,
    )
    actions = tuple(_action_result(a) for a in data.objs("swarm_action"))
    return JsonResponse(response, actions, data.opt_id("session_token"))


def parse_json_response_untrusted(
    data: bytes,
    *,
    max_size: int = 1 << 20,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> JsonResponse:
    """One JSON answer from the tracker (PROTOCOL §14.3); raises only PpspError."""
    return _guarded(data, max_size, max_depth, _decode_response)


def _decode_indication(top: _Obj) -> Indication:
    kind = top.req_string("indication_type")
    if kind != "ATTACH":
        raise bad_request(Reason.UNKNOWN_INDICATION)
    data = top.req_obj("indication_data")
    peer = _peer_info(data.req_obj("peer_info"))
    if peer.peer_id is None:
        raise bad_request(Reason.MISSING, "peer_info peer_id")
    return Indication(
        transaction_id=top.req_id("transaction_id"),
        swarm_id=_not_reserved(data.req_id("swarm_id")),
        peer=peer,
        offer_id=data.opt_id("offer_id"),
    )


def parse_json_indication_untrusted(
    data: bytes,
    *,
    max_size: int = 1 << 16,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> Indication:
    """One JSON ATTACH indication (PROTOCOL §14.4); raises only PpspError."""
    return _guarded(data, max_size, max_depth, _decode_indication)


# ---------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != () and value != []:
        target[key] = value


def peer_address_json(addr: PeerAddress) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ip_address": {"address_type": addr.addr_type.value, "address": addr.ip},
        "port": addr.port,
    }
    _put(out, "type", None if addr.type is None else addr.type.value)
    _put(out, "priority", addr.priority)
    _put(out, "foundation", addr.foundation)
    _put(out, "connection", addr.connection)
    _put(out, "asn", addr.asn)
    return out


def ice_offer_json(offer: IceOffer) -> dict[str, Any]:
    out: dict[str, Any] = {"id": offer.id, "ufrag": offer.ufrag, "pwd": offer.pwd}
    _put(out, "fingerprint", offer.fingerprint)
    out["candidates"] = [peer_address_json(c) for c in offer.candidates]
    return out


def peer_info_json(info: PeerInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "peer_id", info.peer_id)
    _put(out, "peer_mode", None if info.mode is None else info.mode.value)
    out["peer_addr"] = [peer_address_json(a) for a in info.addresses]
    if info.offer is not None:
        out["ice_offer"] = ice_offer_json(info.offer)
    return out


def _peer_num_json(num: PeerNum) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "peer_count", num.count)
    _put(
        out,
        "ability_nat",
        None if num.ability_nat is None else _NAT_ABILITY_NAMES[num.ability_nat],
    )
    _put(out, "concurrent_links", num.concurrent_links)
    _put(out, "online_time", num.online_time)
    _put(out, "upload_bandwidth", num.upload_bw_level)
    return out


def _segment_json(seg: SegmentInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "start_index", seg.start)
    _put(out, "end_index", seg.end)
    _put(out, "chunkmap_size", seg.chunkmap_size)
    _put(out, "chunk_map", seg.chunk_map)
    return out


def _representation_json(rep: Representation) -> dict[str, Any]:
    return {"id": rep.id, "segment_info": [_segment_json(s) for s in rep.segments]}


def _stat_json(stat: Stat) -> dict[str, Any]:
    if isinstance(stat, StreamStatistics):
        out: dict[str, Any] = {"property": _STREAM_STATISTICS, "swarm_id": stat.swarm_id}
        _put(out, "uploaded_bytes", stat.uploaded_bytes)
        _put(out, "downloaded_bytes", stat.downloaded_bytes)
        _put(out, "available_bandwidth", stat.avail_bandwidth)
        return out
    return {
        "property": _CONTENT_MAP,
        "swarm_id": stat.swarm_id,
        "representation": [_representation_json(r) for r in stat.representations],
    }


def encode_request_json(json_request: JsonRequest | Request) -> bytes:
    """A request document (PROTOCOL §14.2), for clients and tests."""
    if isinstance(json_request, Request):
        json_request = JsonRequest(json_request)
    r = json_request.request
    data: dict[str, Any] = {}
    _put(data, "swarm_id", r.swarm_id)
    _put(data, "peer_mode", None if r.peer_mode is None else r.peer_mode.value)
    if r.peer_num is not None:
        data["peer_num"] = _peer_num_json(r.peer_num)
    _put(data, "representation", [_representation_json(rep) for rep in r.content])
    _put(data, "peer_addr", [peer_address_json(a) for a in r.addresses])
    if r.stats is not None:
        data["stat"] = [_stat_json(s) for s in r.stats]
    if r.ice_offer is not None:
        data["ice_offer"] = ice_offer_json(r.ice_offer)
    _put(data, "target_peer_id", r.target_peer_id)
    _put(data, "offer_id", r.offer_id)
    _put(data, "indication_id", r.indication_id)
    _put(data, "reconnect_token", r.reconnect_token)
    actions = []
    for action in json_request.swarm_actions:
        entry: dict[str, Any] = {"swarm_id": action.swarm_id, "action": action.action}
        _put(entry, "peer_mode", None if action.peer_mode is None else action.peer_mode.value)
        actions.append(entry)
    _put(data, "swarm_action", actions)
    return _dump(
        {
            "version": JSON_VERSION,
            "request_type": r.method.value,
            "transaction_id": r.transaction_id,
            "peer_id": r.peer_id,
            "request_data": data,
        }
    )


def _status_json(out: dict[str, Any], status: int, text: str, reason: str) -> None:
    out["error_code"] = rfc7846_error_code(status, text)
    out["status"] = status
    out["response_type"] = text
    out["reason"] = reason


def encode_response_json(
    response: Response | JsonResponse,
    actions: Iterable[ActionResult] = (),
    *,
    session_token: str | None = None,
) -> bytes:
    """An answer document (PROTOCOL §14.3). ``error_code`` is RFC 7846's
    error code, ``status`` the PROTOCOL §2 status, ``response_type`` its
    text, ``reason`` the phrase."""
    if isinstance(response, JsonResponse):
        actions = (*response.actions, *actions)
        session_token = session_token or response.session_token
        response = response.response
    out: dict[str, Any] = {"version": JSON_VERSION, "transaction_id": response.transaction_id}
    _status_json(out, response.status, response.status_text, response.reason)
    data: dict[str, Any] = {}
    _put(data, "swarm_ids", list(response.swarm_ids))
    _put(data, "peer_group", [peer_info_json(p) for p in response.peers])
    _put(data, "keep_alive", response.keep_alive)
    _put(data, "reconnect_token", response.reconnect_token)
    _put(
        data,
        "turn_server",
        [
            {"uri": t.uri, "username": t.username, "credential": t.credential, "ttl": t.ttl}
            for t in response.turn_servers
        ],
    )
    if response.part is not None:
        data["part"] = {"index": response.part.index, "count": response.part.count}
    results = []
    for result in actions:
        entry: dict[str, Any] = {"swarm_id": result.swarm_id, "action": result.action}
        text = Status.TEXT.get(result.status, "INTERNAL ERROR")
        _status_json(entry, result.status, text, result.reason)
        entry["peer_group"] = [peer_info_json(p) for p in result.peers]
        results.append(entry)
    _put(data, "swarm_action", results)
    _put(data, "session_token", session_token)
    out["response_data"] = data
    return _dump(out)


def error_response_json(error: PpspError) -> bytes:
    """The answer to a request that could not be accepted (PROTOCOL §14.6):
    like any answer, with ``transaction_id`` null when it could not be read."""
    out: dict[str, Any] = {"version": JSON_VERSION, "transaction_id": error.transaction_id}
    text = error.text if error.text is not None else Status.TEXT.get(error.status, "INTERNAL ERROR")
    _status_json(out, error.status, text, error.reason)
    out["response_data"] = {}
    return _dump(out)


def encode_indication_json(indication: Indication) -> bytes:
    """The ATTACH indication pushed to a WebSocket peer (PROTOCOL §14.4)."""
    data: dict[str, Any] = {"swarm_id": indication.swarm_id}
    _put(data, "offer_id", indication.offer_id)
    data["peer_info"] = peer_info_json(indication.peer)
    return _dump(
        {
            "version": JSON_VERSION,
            "indication_type": indication.kind,
            "transaction_id": indication.transaction_id,
            "indication_data": data,
        }
    )
