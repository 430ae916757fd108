"""PPSP message objects to compact UTF-8 XML documents.

Output shape (PROTOCOL §2, draft-07 §7.2): root ``<PPSPTrackerProtocol
version="1.0">``, no namespace, no XML declaration (UTF-8 is the XML
default, and every byte counts against the 1,200-byte datagram budget of
PROTOCOL §4), no whitespace between elements. Whatever ``decode`` reads back
from these documents equals the object encoded, provided the object is one
the parser could have produced (valid IDs, JOIN with a ``peer_mode``,
``Response.text`` None or a non-standard text without surrounding
whitespace).

A value holding a character XML 1.0 cannot carry (NUL, most C0 controls,
lone surrogates, U+FFFE/U+FFFF) raises ``ValueError``: these objects come
from our own code, not from the network.

This is the tracker's hot path (every JOIN/FIND answer), so the common case
is kept cheap: a value with nothing to escape is used as it is, enumeration
attributes are prebuilt, and ``multipart`` encodes each PeerInfo once. The
exact bytes are pinned by tests/unit/test_ppsp_encode_golden.py, against
golden documents and a plain reference encoder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .messages import (
    PROTOCOL_VERSION,
    AddressType,
    AddrType,
    ContentMap,
    IceOffer,
    Indication,
    Method,
    NatAbility,
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
    TurnServer,
)

ROOT_OPEN = f'<PPSPTrackerProtocol version="{PROTOCOL_VERSION}">'
ROOT_CLOSE = "</PPSPTrackerProtocol>"
PEER_GROUP_OPEN = "<PeerGroup>"
PEER_GROUP_CLOSE = "</PeerGroup>"

# XML 1.0 §2.2 Char, complemented.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Text: '&' and '<' must be escaped, '>' too (for "]]>"); CR as a character
# reference, or the parser would turn it into LF (XML 1.0 §2.11).
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# Attributes also: the quote, and TAB/LF/CR, which attribute-value
# normalisation would turn into spaces (XML 1.0 §3.3.3).
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)

# Fast paths. Most values (IDs, addresses, tokens) hold no character that
# needs an escape and none that XML cannot carry; one search of each
# pattern below (the XML Chars minus the escaped ones, complemented) proves
# it, and such a value goes out as it is: the same bytes ``_check`` and
# ``translate`` would give, without the translate.
_TEXT_NEEDS_WORK = re.compile(
    "[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_ATTR_NEEDS_WORK = re.compile(
    "[^\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_text_needs_work = _TEXT_NEEDS_WORK.search
_attr_needs_work = _ATTR_NEEDS_WORK.search


def _check(value: str) -> str:
    if _NOT_XML_CHAR.search(value) is not None:
        raise ValueError("value holds a character XML 1.0 cannot carry")
    return value


def _text(value: str) -> str:
    if _text_needs_work(value) is None:
        return value
    return _check(value).translate(_TEXT_ESCAPES)


def _text_of(value: str | int) -> str:
    """``_text(str(value))``, without the conversions a str or an int
    does not need (an int's decimal digits never need an escape)."""
    if type(value) is str:
        return _text(value)
    if type(value) is int:
        return str(value)
    return _text(str(value))


def _attr(prefix: str, value: str | int | None) -> str:
    """`` name="value"`` with ``prefix`` = `` name="``, or "" for None."""
    if value is None:
        return ""
    if type(value) is int:
        return f'{prefix}{value}"'
    text = value if type(value) is str else str(value)
    if _attr_needs_work(text) is None:
        return f'{prefix}{text}"'
    return f'{prefix}{_check(text).translate(_ATTR_ESCAPES)}"'


def _leaf(name: str, value: str | int | None) -> str:
    if value is None:
        return ""
    return f"<{name}>{_text_of(value)}</{name}>"


def _element(name: str, attrs: str, body: str) -> str:
    if not body:
        return f"<{name}{attrs}/>"
    return f"<{name}{attrs}>{body}</{name}>"


def _document(body: Iterable[str]) -> bytes:
    return (ROOT_OPEN + "".join(body) + ROOT_CLOSE).encode("utf-8")


# The enumerations' attributes and leaves, built once. Looked up only for
# a value of the enumeration's own type; anything else takes the generic
# path (``.value``, then the escapes), exactly as before.
_ADDR_TYPE_ATTR = {m: _attr(' addrType="', m.value) for m in AddrType}
_ADDRESS_TYPE_ATTR = {m: _attr(' type="', m.value) for m in AddressType}
_ABILITY_NAT_ATTR = {m: _attr(' abilityNAT="', m.value) for m in NatAbility}
_PEER_MODE_LEAF = {m: _leaf("PeerMode", m.value) for m in PeerMode}
_METHOD_LEAF = {m: _leaf("Request", m.value) for m in Method}


def _peer_mode_leaf(mode: PeerMode | None) -> str:
    if mode is None:
        return ""
    if type(mode) is PeerMode:
        return _PEER_MODE_LEAF[mode]
    return _leaf("PeerMode", mode.value)


# -- shared parts -----------------------------------------------------------


def peer_address_xml(addr: PeerAddress) -> str:
    family = addr.addr_type
    kind = addr.type
    return (
        "<PeerAddress"
        + (
            _ADDR_TYPE_ATTR[family]
            if type(family) is AddrType
            else _attr(' addrType="', family.value)
        )
        + _attr(' ip="', addr.ip)
        + _attr(' port="', addr.port)
        + (
            ""
            if kind is None
            else _ADDRESS_TYPE_ATTR[kind]
            if type(kind) is AddressType
            else _attr(' type="', kind.value)
        )
        + _attr(' priority="', addr.priority)
        + _attr(' foundation="', addr.foundation)
        + _attr(' connection="', addr.connection)
        + _attr(' asn="', addr.asn)
        + "/>"
    )


def _addresses_xml(addrs: Iterable[PeerAddress]) -> str:
    return "".join(map(peer_address_xml, addrs))


def ice_offer_xml(offer: IceOffer) -> str:
    attrs = (
        _attr(' id="', offer.id)
        + _attr(' ufrag="', offer.ufrag)
        + _attr(' pwd="', offer.pwd)
        + _attr(' fingerprint="', offer.fingerprint)
    )
    return _element("IceOffer", attrs, _addresses_xml(offer.candidates))


def peer_info_xml(info: PeerInfo) -> str:
    """One ``<PeerInfo>``; ``multipart`` sizes responses with it."""
    peer_id = info.peer_id
    offer = info.offer
    body = (
        ("" if peer_id is None else f"<PeerID>{_text_of(peer_id)}</PeerID>")
        + _peer_mode_leaf(info.mode)
        + _addresses_xml(info.addresses)
        + ("" if offer is None else ice_offer_xml(offer))
    )
    return f"<PeerInfo>{body}</PeerInfo>" if body else "<PeerInfo/>"


def peer_group_xml(peers: Iterable[PeerInfo]) -> str:
    body = "".join(map(peer_info_xml, peers))
    return f"{PEER_GROUP_OPEN}{body}{PEER_GROUP_CLOSE}" if body else ""


def _peer_num_xml(num: PeerNum) -> str:
    ability = num.ability_nat
    attrs = (
        (
            ""
            if ability is None
            else _ABILITY_NAT_ATTR[ability]
            if type(ability) is NatAbility
            else _attr(' abilityNAT="', ability.value)
        )
        + _attr(' concurrentLinks="', num.concurrent_links)
        + _attr(' onlineTime="', num.online_time)
        + _attr(' uploadBWlevel="', num.upload_bw_level)
    )
    body = "" if num.count is None else str(num.count)
    return _element("PeerNum", attrs, body)


def _segment_xml(seg: SegmentInfo) -> str:
    attrs = (
        _attr(' startIndex="', seg.start)
        + _attr(' endIndex="', seg.end)
        + _attr(' chunkmapSize="', seg.chunkmap_size)
    )
    return _element("SegmentInfo", attrs, "" if seg.chunk_map is None else _text(seg.chunk_map))


def _representation_xml(rep: Representation) -> str:
    body = "".join(map(_segment_xml, rep.segments))
    return _element("Representation", _attr(' id="', rep.id), body)


def _representations_xml(reps: Iterable[Representation]) -> str:
    return "".join(map(_representation_xml, reps))


def _stat_xml(stat: Stat) -> str:
    if isinstance(stat, ContentMap):
        body = _leaf("SwarmID", stat.swarm_id) + _representations_xml(stat.representations)
        return _element("Stat", ' property="ContentMap"', body)
    body = (
        _leaf("SwarmID", stat.swarm_id)
        + _leaf("UploadedBytes", stat.uploaded_bytes)
        + _leaf("DownloadedBytes", stat.downloaded_bytes)
        + _leaf("AvailBandwidth", stat.avail_bandwidth)
    )
    return _element("Stat", ' property="StreamStatistics"', body)


def _turn_server_xml(turn: TurnServer) -> str:
    attrs = (
        _attr(' uri="', turn.uri)
        + _attr(' username="', turn.username)
        + _attr(' credential="', turn.credential)
        + _attr(' ttl="', turn.ttl)
    )
    return f"<TurnServer{attrs}/>"


# -- documents ----------------------------------------------------------------


def encode_request(r: Request) -> bytes:
    """A request document (PROTOCOL §2, §3, §6)."""
    method = r.method
    body = [
        _METHOD_LEAF[method] if type(method) is Method else _leaf("Request", method.value),
        _leaf("PeerID", r.peer_id),
        _leaf("TransactionID", r.transaction_id),
        _leaf("SwarmID", r.swarm_id),
        _peer_mode_leaf(r.peer_mode),
        "" if r.peer_num is None else _peer_num_xml(r.peer_num),
    ]
    if r.content:
        body.append(_element("ContentGroup", "", _representations_xml(r.content)))
    if r.addresses:
        # [D7 §8.1] the sender's own addresses: PeerGroup/PeerInfo/PeerAddress.
        body.append(
            f"{PEER_GROUP_OPEN}<PeerInfo>{_addresses_xml(r.addresses)}</PeerInfo>{PEER_GROUP_CLOSE}"
        )
    if r.stats is not None:
        body.append(_element("StatisticsGroup", "", "".join(map(_stat_xml, r.stats))))
    if r.ice_offer is not None:
        body.append(ice_offer_xml(r.ice_offer))  # a child of the root (PROTOCOL §6)
    body += [
        _leaf("TargetPeerID", r.target_peer_id),
        _leaf("OfferID", r.offer_id),
        _leaf("IndicationID", r.indication_id),
        _leaf("ReconnectToken", r.reconnect_token),
    ]
    return _document(body)


def encode_response(r: Response) -> bytes:
    """A response document, all of ``r.peers`` in one PeerGroup (PROTOCOL §2)."""
    return _document([response_head_xml(r), peer_group_xml(r.peers)])


def response_head_xml(r: Response) -> str:
    """Everything of a response but its PeerGroup (PROTOCOL §2, §4, §7, §8)."""
    head = response_fields_xml(r)
    return head if r.part is None else head + part_xml(r.part.index, r.part.count)


# ``<Response status reason>text</Response>`` by (status, reason, text):
# a few dozen in use, built once each (bounded against unusual texts).
_STATUS_ELEMENTS: dict[tuple[int, str, str | None], str] = {}
_MAX_STATUS_ELEMENTS = 256


def _status_element(status: int, reason: str, text: str | None) -> str:
    key = (status, reason, text)
    element = _STATUS_ELEMENTS.get(key)
    if element is None:
        shown = text if text is not None else Status.TEXT.get(status, "INTERNAL ERROR")
        element = (
            "<Response"
            + _attr(' status="', status)
            + _attr(' reason="', reason)
            + f">{_text(shown)}</Response>"
        )
        if len(_STATUS_ELEMENTS) < _MAX_STATUS_ELEMENTS:
            _STATUS_ELEMENTS[key] = element
    return element


def response_fields_xml(r: Response) -> str:
    """Everything of a response but its PeerGroup and its Part: what every
    part of a multi-part response repeats (PROTOCOL §4)."""
    head = _status_element(r.status, r.reason, r.text) + _leaf("TransactionID", r.transaction_id)
    swarm_ids = r.swarm_ids
    if swarm_ids:
        head += "".join([f"<SwarmID>{_text_of(swarm)}</SwarmID>" for swarm in swarm_ids])
    if r.keep_alive is not None:
        head += _leaf("KeepAlive", r.keep_alive)
    if r.reconnect_token is not None:
        head += _leaf("ReconnectToken", r.reconnect_token)
    turn_servers = r.turn_servers
    if turn_servers:
        head += "".join(map(_turn_server_xml, turn_servers))
    return head


def bare_response(status: int, reason: str, transaction_id: str) -> bytes:
    """``encode_response(Response(status, transaction_id, reason))``: a
    response with nothing but its status and TransactionID -- the keep-alive
    answer (PROTOCOL §3) -- without building the Response."""
    return (
        ROOT_OPEN
        + _status_element(status, reason, None)
        + f"<TransactionID>{_text(transaction_id)}</TransactionID>"
        + ROOT_CLOSE
    ).encode("utf-8")


def part_xml(index: int, count: int) -> str:
    """``<Part index="i" count="n"/>`` (PROTOCOL §4)."""
    return "<Part" + _attr(' index="', index) + _attr(' count="', count) + "/>"


def encode_indication(i: Indication) -> bytes:
    """The ATTACH indication (PROTOCOL §6); the peer goes in PeerGroup/PeerInfo."""
    return _document(
        [
            _leaf("Indication", i.kind),
            _leaf("TransactionID", i.transaction_id),
            _leaf("SwarmID", i.swarm_id),
            _leaf("OfferID", i.offer_id),
            peer_group_xml((i.peer,)),
        ]
    )
