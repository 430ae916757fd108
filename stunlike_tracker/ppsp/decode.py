"""From a checked XML tree (``xmlsafe.Node``) to PPSP message objects.

Rules enforced here (PROTOCOL §2, §2.1, §6; draft-07 §7):

* root local name ``PPSPTrackerProtocol`` with ``version="1.0"``; another
  version is 400 "VERSION NOT SUPPORTED" [D7 §7.2];
* children in any order; unknown elements and attributes are ignored;
  a singular element given twice is 400;
* every element is read whatever the method, and then each method's
  required elements are checked, so the flat ``Request`` round-trips;
* opaque IDs are 1..64 printable ASCII characters; SwarmID ``ALL``/``nil``
  only in DISCONNECT.

Every failure is a 400 ``PpspError`` with a fixed reason; the caller
(``codec``) adds the TransactionID and PeerID it could read.
"""

from __future__ import annotations

from .errors import PpspError, bad_request
from .messages import (
    PROTOCOL_VERSION,
    SWARM_ALL,
    SWARM_NIL,
    ContentMap,
    IceOffer,
    Indication,
    Method,
    Part,
    PeerAddress,
    PeerInfo,
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
    addr_type,
    address_type,
    candidate_ip,
    ip_address,
    nat_ability,
    opaque_id,
    peer_mode,
    phrase,
    strip_ws,
    token,
    uint,
)
from .xmlsafe import Node

ROOT = "PPSPTrackerProtocol"
KINDS = ("Request", "Response", "Indication")
INDICATION_KINDS = frozenset({"ATTACH"})
"""``<Indication>`` values this binding defines (PROTOCOL §6)."""

MAX_PART_COUNT = 65535
MAX_TEXT_LEN = 256
"""Longest ufrag, pwd, fingerprint and TURN attribute accepted."""

_RESERVED_SWARMS = frozenset({SWARM_ALL, SWARM_NIL})

# Status text -> status, for responses without a status attribute (the
# draft's own examples: <Response>SUCCESSFUL</Response>).
_STATUS_BY_TEXT: dict[str, int] = {text: status for status, text in Status.TEXT.items()}
_STATUS_BY_TEXT[Status.VERSION_NOT_SUPPORTED_TEXT] = Status.BAD_REQUEST

# Methods and the elements they require besides PeerID and TransactionID
# (PROTOCOL §2, §3, §6).
_NEEDS_SWARM = frozenset({Method.JOIN, Method.FIND, Method.DISCONNECT, Method.ATTACH})


class _Children:
    """The children of one element, grouped by local name."""

    def __init__(self, node: Node) -> None:
        self._by_name: dict[str, list[Node]] = {}
        for child in node.children:
            self._by_name.setdefault(child.name, []).append(child)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def one(self, name: str) -> Node | None:
        """A singular element; given twice it is 400 (brief, PROTOCOL §2)."""
        found = self._by_name.get(name)
        if not found:
            return None
        if len(found) > 1:
            raise bad_request(Reason.DUPLICATE, name)
        return found[0]

    def many(self, name: str) -> list[Node]:
        return self._by_name.get(name, [])

    def opt_id(self, name: str) -> str | None:
        node = self.one(name)
        return None if node is None else opaque_id(node.text, name)

    def req_id(self, name: str) -> str:
        value = self.opt_id(name)
        if value is None:
            raise bad_request(Reason.MISSING, name)
        return value

    def opt_uint(self, name: str, max_value: int) -> int | None:
        node = self.one(name)
        return None if node is None else uint(node.text, name, max_value)


def _opt_attr_uint(node: Node, attr: str, what: str, max_value: int) -> int | None:
    raw = node.attrs.get(attr)
    return None if raw is None else uint(raw, what, max_value)


def _req_attr(node: Node, attr: str, what: str) -> str:
    raw = node.attrs.get(attr)
    if raw is None:
        raise bad_request(Reason.MISSING, what)
    return raw


def _not_reserved(swarm_id: str) -> str:
    # PROTOCOL §2.1: ALL and nil are reserved for DISCONNECT.
    if swarm_id in _RESERVED_SWARMS:
        raise bad_request(Reason.RESERVED_SWARM_ID)
    return swarm_id


# -- the document -----------------------------------------------------------


def check_root(root: Node) -> None:
    """Root name and version [D7 §7.2, PROTOCOL §2]."""
    if root.name != ROOT:
        raise bad_request(Reason.NOT_A_PPSP_DOCUMENT)
    version = root.attrs.get("version")
    if version is None:
        raise bad_request(Reason.MISSING, "Version")
    if strip_ws(version) != PROTOCOL_VERSION:
        raise PpspError(
            Reason.VERSION_NOT_SUPPORTED,
            text=Status.VERSION_NOT_SUPPORTED_TEXT,
        )


def salvage_ids(root: Node | None) -> tuple[str | None, str | None]:
    """(TransactionID, PeerID) if each is present once, complete and valid.

    Used for errors only, so it never raises: PROTOCOL §2 wants every error
    answered with the request's TransactionID whenever it can be read.
    """
    if root is None or root.name != ROOT:
        return None, None
    return _salvage_one(root, "TransactionID"), _salvage_one(root, "PeerID")


def _salvage_one(root: Node, name: str) -> str | None:
    found = [child for child in root.children if child.name == name]
    if len(found) != 1 or not found[0].closed:
        return None
    try:
        return opaque_id(found[0].text, name)
    except PpspError:
        return None


def message_kind(root: Node, expected: str | None = None) -> str:
    """Which of ``Request``/``Response``/``Indication`` the document is;
    with ``expected``, anything else is a 400."""
    present = [kind for kind in KINDS if any(child.name == kind for child in root.children)]
    if len(present) > 1:
        raise bad_request(Reason.AMBIGUOUS_MESSAGE)
    if not present:
        raise (
            bad_request(Reason.UNKNOWN_MESSAGE)
            if expected is None
            else bad_request(Reason.MISSING, expected)
        )
    if expected is not None and present[0] != expected:
        raise bad_request(Reason.NOT_AN if expected[0] in "AEIOU" else Reason.NOT_A, expected)
    return present[0]


# -- shared parts -----------------------------------------------------------


def decode_peer_address(node: Node, *, mdns: bool = False) -> PeerAddress:
    """``PeerAddress`` attributes (PROTOCOL §2.1); ``mdns``: an offer's
    candidate, whose ``ip`` may be a browser's mDNS name (PROTOCOL §14.5)."""
    family = addr_type(_req_attr(node, "addrType", "PeerAddress addrType"))
    raw_ip = _req_attr(node, "ip", "PeerAddress ip")
    ip = candidate_ip(raw_ip, family) if mdns else ip_address(raw_ip, family)
    port = uint(_req_attr(node, "port", "PeerAddress port"), "PeerAddress port", 65535)
    raw_type = node.attrs.get("type")
    attrs = node.attrs
    return PeerAddress(
        addr_type=family,
        ip=ip,
        port=port,
        type=None if raw_type is None else address_type(raw_type),
        priority=_opt_attr_uint(node, "priority", "PeerAddress priority", UINT32_MAX),
        foundation=(
            None
            if "foundation" not in attrs
            else token(attrs["foundation"], "PeerAddress foundation", MAX_ID_LEN)
        ),
        connection=(
            None
            if "connection" not in attrs
            else token(attrs["connection"], "PeerAddress connection", MAX_ID_LEN)
        ),
        asn=None if "asn" not in attrs else token(attrs["asn"], "PeerAddress asn", MAX_ID_LEN),
    )


def _addresses(nodes: list[Node]) -> tuple[PeerAddress, ...]:
    return tuple(decode_peer_address(node) for node in nodes)


def decode_ice_offer(node: Node) -> IceOffer:
    """``<IceOffer id ufrag pwd fingerprint>`` + PeerAddress candidates (PROTOCOL §6)."""
    fingerprint = node.attrs.get("fingerprint")
    return IceOffer(
        id=opaque_id(_req_attr(node, "id", "IceOffer id"), "IceOffer id"),
        ufrag=token(_req_attr(node, "ufrag", "IceOffer ufrag"), "IceOffer ufrag", MAX_TEXT_LEN),
        pwd=token(_req_attr(node, "pwd", "IceOffer pwd"), "IceOffer pwd", MAX_TEXT_LEN),
        fingerprint=(
            None
            if fingerprint is None
            else phrase(fingerprint, "IceOffer fingerprint", MAX_TEXT_LEN)
        ),
        candidates=tuple(
            decode_peer_address(c, mdns=True) for c in _Children(node).many("PeerAddress")
        ),
    )


def decode_peer_info(node: Node) -> PeerInfo:
    """``PeerGroup/PeerInfo`` in responses and indications (PROTOCOL §2.1)."""
    children = _Children(node)
    mode_node = children.one("PeerMode")
    offer_node = children.one("IceOffer")
    return PeerInfo(
        peer_id=children.opt_id("PeerID"),
        mode=None if mode_node is None else peer_mode(mode_node.text),
        addresses=_addresses(children.many("PeerAddress")),
        offer=None if offer_node is None else decode_ice_offer(offer_node),
    )


def decode_peer_num(node: Node) -> PeerNum:
    """``<PeerNum>`` count and preferences; the core clamps (PROTOCOL §2.1)."""
    count_text = strip_ws(node.text)
    attrs = node.attrs
    ability = attrs.get("abilityNAT")
    return PeerNum(
        count=None if not count_text else uint(count_text, "PeerNum", UINT32_MAX),
        ability_nat=None if ability is None else nat_ability(ability),
        concurrent_links=_opt_token(node, "concurrentLinks", "PeerNum concurrentLinks"),
        online_time=_opt_token(node, "onlineTime", "PeerNum onlineTime"),
        upload_bw_level=_opt_token(node, "uploadBWlevel", "PeerNum uploadBWlevel"),
    )


def _opt_token(node: Node, attr: str, what: str) -> str | None:
    raw = node.attrs.get(attr)
    return None if raw is None else token(raw, what, MAX_ID_LEN)


def decode_segment(node: Node) -> SegmentInfo:
    """``SegmentInfo@startIndex,@endIndex,@chunkmapSize``; the text is the
    chunk map, kept as sent (minus surrounding whitespace) even when it is
    not valid Base64 (the draft's V9 example is not)."""
    start = _opt_attr_uint(node, "startIndex", "SegmentInfo startIndex", UINT64_MAX)
    end = _opt_attr_uint(node, "endIndex", "SegmentInfo endIndex", UINT64_MAX)
    if start is not None and end is not None and end < start:
        raise bad_request(Reason.INVALID, "SegmentInfo range")
    chunk_map = strip_ws(node.text)
    return SegmentInfo(
        start=start,
        end=end,
        chunkmap_size=_opt_attr_uint(node, "chunkmapSize", "SegmentInfo chunkmapSize", UINT64_MAX),
        chunk_map=chunk_map or None,
    )


def decode_representation(node: Node) -> Representation:
    rep_id = token(_req_attr(node, "id", "Representation id"), "Representation id", MAX_ID_LEN)
    segments = tuple(decode_segment(seg) for seg in _Children(node).many("SegmentInfo"))
    return Representation(id=rep_id, segments=segments)


def _representations(node: Node) -> tuple[Representation, ...]:
    return tuple(decode_representation(rep) for rep in _Children(node).many("Representation"))


def decode_stat(node: Node) -> Stat | None:
    """One ``StatisticsGroup/Stat``; an unknown ``property`` is ignored."""
    prop = strip_ws(node.attrs.get("property", ""))
    children = _Children(node)
    if prop == "StreamStatistics":
        return StreamStatistics(
            swarm_id=_not_reserved(children.req_id("SwarmID")),
            uploaded_bytes=children.opt_uint("UploadedBytes", UINT64_MAX),
            downloaded_bytes=children.opt_uint("DownloadedBytes", UINT64_MAX),
            avail_bandwidth=children.opt_uint("AvailBandwidth", UINT64_MAX),
        )
    if prop == "ContentMap":
        return ContentMap(
            swarm_id=_not_reserved(children.req_id("SwarmID")),
            representations=_representations(node),
        )
    return None


def decode_stats(node: Node) -> tuple[Stat, ...]:
    stats = (decode_stat(stat) for stat in _Children(node).many("Stat"))
    return tuple(stat for stat in stats if stat is not None)


# -- requests -----------------------------------------------------------------


def decode_request(root: Node) -> Request:
    """A request document (PROTOCOL §2, §3, §6)."""
    top = _Children(root)
    method_node = top.one("Request")
    if method_node is None:
        raise bad_request(Reason.MISSING, "Request")
    try:
        # Case-sensitive (PROTOCOL §2).
        method = Method(strip_ws(method_node.text))
    except ValueError:
        raise bad_request(Reason.UNKNOWN_REQUEST) from None
    transaction_id = top.req_id("TransactionID")
    peer_id = top.req_id("PeerID")

    swarm_id = top.opt_id("SwarmID")
    if swarm_id is None and method in _NEEDS_SWARM:
        raise bad_request(Reason.MISSING, "SwarmID")
    if swarm_id is not None and method is not Method.DISCONNECT:
        _not_reserved(swarm_id)

    mode_node = top.one("PeerMode")
    # An omitted PeerMode stays None: the core decides (a first JOIN is
    # LEECH, a re-JOIN keeps the current mode).
    mode = None if mode_node is None else peer_mode(mode_node.text)

    num_node = top.one("PeerNum")
    content_node = top.one("ContentGroup")
    stats_node = top.one("StatisticsGroup")
    offer_node = top.one("IceOffer")
    request = Request(
        method=method,
        peer_id=peer_id,
        transaction_id=transaction_id,
        swarm_id=swarm_id,
        peer_mode=mode,
        peer_num=None if num_node is None else decode_peer_num(num_node),
        content=() if content_node is None else _representations(content_node),
        addresses=_request_addresses(top),
        stats=None if stats_node is None else decode_stats(stats_node),
        ice_offer=None if offer_node is None else decode_ice_offer(offer_node),
        target_peer_id=top.opt_id("TargetPeerID"),
        offer_id=top.opt_id("OfferID"),
        indication_id=top.opt_id("IndicationID"),
        reconnect_token=top.opt_id("ReconnectToken"),
    )
    _check_required(request)
    return request


def _request_addresses(top: _Children) -> tuple[PeerAddress, ...]:
    """CONNECT's own addresses: PeerGroup/PeerInfo/PeerAddress [D7 §8.1].

    The sender describes one peer (itself), so PeerInfo is singular here;
    its other children are not read.
    """
    group = top.one("PeerGroup")
    if group is None:
        return ()
    info = _Children(group).one("PeerInfo")
    if info is None:
        return ()
    return _addresses(_Children(info).many("PeerAddress"))


def _check_required(request: Request) -> None:
    # PROTOCOL §6: ATTACH names its target and carries the requester's answer;
    # ATTACH_ACK names the indication it acknowledges.
    if request.method is Method.ATTACH:
        if request.target_peer_id is None:
            raise bad_request(Reason.MISSING, "TargetPeerID")
        if request.ice_offer is None:
            raise bad_request(Reason.MISSING, "IceOffer")
    if request.method is Method.ATTACH_ACK and request.indication_id is None:
        raise bad_request(Reason.MISSING, "IndicationID")


# -- responses and indications ---------------------------------------------------


def decode_response(root: Node) -> Response:
    """A response document (PROTOCOL §2, §4, §7, §8)."""
    top = _Children(root)
    head = top.one("Response")
    if head is None:
        raise bad_request(Reason.MISSING, "Response")
    transaction_id = top.req_id("TransactionID")
    text = strip_ws(head.text)
    raw_status = head.attrs.get("status")
    if raw_status is not None:
        status = uint(raw_status, "Response status", 599)
        if status < 100:
            raise bad_request(Reason.INVALID, "Response status")
    else:
        # The draft's examples carry only the text (PROTOCOL §2).
        found = _STATUS_BY_TEXT.get(text)
        if found is None:
            raise bad_request(Reason.UNKNOWN_RESPONSE_STATUS)
        status = found
    standard = Response(status=status, transaction_id=transaction_id).status_text
    group = top.one("PeerGroup")
    peers = () if group is None else _peer_infos(group)
    turn = tuple(decode_turn_server(node) for node in top.many("TurnServer"))
    part_node = top.one("Part")
    return Response(
        status=status,
        transaction_id=transaction_id,
        reason=head.attrs.get("reason", ""),
        peers=peers,
        swarm_ids=tuple(
            _not_reserved(opaque_id(node.text, "SwarmID")) for node in top.many("SwarmID")
        ),
        keep_alive=top.opt_uint("KeepAlive", UINT32_MAX),
        turn_servers=turn,
        reconnect_token=top.opt_id("ReconnectToken"),
        part=None if part_node is None else decode_part(part_node),
        text=None if text in ("", standard) else text,
    )


def _peer_infos(group: Node) -> tuple[PeerInfo, ...]:
    return tuple(decode_peer_info(info) for info in _Children(group).many("PeerInfo"))


def decode_turn_server(node: Node) -> TurnServer:
    """``<TurnServer uri username credential ttl/>`` (PROTOCOL §7)."""

    def text_attr(attr: str) -> str:
        what = f"TurnServer {attr}"
        return token(_req_attr(node, attr, what), what, MAX_TEXT_LEN)

    return TurnServer(
        uri=text_attr("uri"),
        username=text_attr("username"),
        credential=text_attr("credential"),
        ttl=uint(_req_attr(node, "ttl", "TurnServer ttl"), "TurnServer ttl", UINT32_MAX),
    )


def decode_part(node: Node) -> Part:
    """``<Part index="i" count="n"/>``, 0 <= i < n (PROTOCOL §4)."""
    index = uint(_req_attr(node, "index", "Part index"), "Part index", MAX_PART_COUNT)
    count = uint(_req_attr(node, "count", "Part count"), "Part count", MAX_PART_COUNT)
    if count < 1 or index >= count:
        raise bad_request(Reason.INVALID, "Part")
    return Part(index=index, count=count)


def decode_indication(root: Node) -> Indication:
    """The tracker's ATTACH indication (PROTOCOL §6): TransactionID, SwarmID,
    OfferID and the requester's PeerInfo (PeerGroup/PeerInfo, exactly one,
    with its PeerID)."""
    top = _Children(root)
    head = top.one("Indication")
    if head is None:
        raise bad_request(Reason.MISSING, "Indication")
    kind = strip_ws(head.text)
    if kind not in INDICATION_KINDS:
        raise bad_request(Reason.UNKNOWN_INDICATION)
    transaction_id = top.req_id("TransactionID")
    swarm_id = _not_reserved(top.req_id("SwarmID"))
    group = top.one("PeerGroup")
    info = None if group is None else _Children(group).one("PeerInfo")
    if info is None:
        raise bad_request(Reason.MISSING, "PeerInfo")
    peer = decode_peer_info(info)
    if peer.peer_id is None:
        raise bad_request(Reason.MISSING, "PeerID")
    return Indication(
        transaction_id=transaction_id,
        swarm_id=swarm_id,
        peer=peer,
        offer_id=top.opt_id("OfferID"),
        kind=kind,
    )
