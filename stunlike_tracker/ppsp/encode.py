"""PPSP message objects to compact UTF-8 XML documents.

Output shape (SPEC §2, draft-07 §7.2): root ``<PPSPTrackerProtocol
version="1.0">``, no namespace, no XML declaration (UTF-8 is the XML
default, and every byte counts against the 1,200-byte datagram budget of
SPEC §4), no whitespace between elements. Whatever ``decode`` reads back
from these documents equals the object encoded, provided the object is one
the parser could have produced (valid IDs, JOIN with a ``peer_mode``,
``Response.text`` None or a non-standard text without surrounding
whitespace).

A value holding a character XML 1.0 cannot carry (NUL, most C0 controls,
lone surrogates, U+FFFE/U+FFFF) raises ``ValueError``: these objects come
from our own code, not from the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .messages import (
    PROTOCOL_VERSION,
    ContentMap,
    IceOffer,
    Indication,
    PeerAddress,
    PeerInfo,
    PeerNum,
    Representation,
    Request,
    Response,
    SegmentInfo,
    Stat,
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


def _check(value: str) -> str:
    if _NOT_XML_CHAR.search(value) is not None:
        raise ValueError("value holds a character XML 1.0 cannot carry")
    return value


def _text(value: str) -> str:
    return _check(value).translate(_TEXT_ESCAPES)


def _attrs(pairs: Iterable[tuple[str, str | int | None]]) -> str:
    out = []
    for name, value in pairs:
        if value is not None:
            out.append(f' {name}="{_check(str(value)).translate(_ATTR_ESCAPES)}"')
    return "".join(out)


def _leaf(name: str, value: str | int | None) -> str:
    if value is None:
        return ""
    return f"<{name}>{_text(str(value))}</{name}>"


def _element(name: str, attrs: str, body: str) -> str:
    if not body:
        return f"<{name}{attrs}/>"
    return f"<{name}{attrs}>{body}</{name}>"


def _document(body: Iterable[str]) -> bytes:
    return (ROOT_OPEN + "".join(body) + ROOT_CLOSE).encode("utf-8")


# -- shared parts -----------------------------------------------------------


def peer_address_xml(addr: PeerAddress) -> str:
    attrs = _attrs(
        (
            ("addrType", addr.addr_type.value),
            ("ip", addr.ip),
            ("port", addr.port),
            ("type", None if addr.type is None else addr.type.value),
            ("priority", addr.priority),
            ("foundation", addr.foundation),
            ("connection", addr.connection),
            ("asn", addr.asn),
        )
    )
    return f"<PeerAddress{attrs}/>"


def _addresses_xml(addrs: Iterable[PeerAddress]) -> str:
    return "".join(peer_address_xml(addr) for addr in addrs)


def ice_offer_xml(offer: IceOffer) -> str:
    attrs = _attrs(
        (
            ("id", offer.id),
            ("ufrag", offer.ufrag),
            ("pwd", offer.pwd),
            ("fingerprint", offer.fingerprint),
        )
    )
    return _element("IceOffer", attrs, _addresses_xml(offer.candidates))


def peer_info_xml(info: PeerInfo) -> str:
    """One ``<PeerInfo>``; ``multipart`` sizes responses with it."""
    body = (
        _leaf("PeerID", info.peer_id)
        + _leaf("PeerMode", None if info.mode is None else info.mode.value)
        + _addresses_xml(info.addresses)
        + ("" if info.offer is None else ice_offer_xml(info.offer))
    )
    return _element("PeerInfo", "", body)


def peer_group_xml(peers: Iterable[PeerInfo]) -> str:
    body = "".join(peer_info_xml(peer) for peer in peers)
    return f"{PEER_GROUP_OPEN}{body}{PEER_GROUP_CLOSE}" if body else ""


def _peer_num_xml(num: PeerNum) -> str:
    attrs = _attrs(
        (
            ("abilityNAT", None if num.ability_nat is None else num.ability_nat.value),
            ("concurrentLinks", num.concurrent_links),
            ("onlineTime", num.online_time),
            ("uploadBWlevel", num.upload_bw_level),
        )
    )
    body = "" if num.count is None else str(num.count)
    return _element("PeerNum", attrs, body)


def _segment_xml(seg: SegmentInfo) -> str:
    attrs = _attrs(
        (
            ("startIndex", seg.start),
            ("endIndex", seg.end),
            ("chunkmapSize", seg.chunkmap_size),
        )
    )
    return _element("SegmentInfo", attrs, "" if seg.chunk_map is None else _text(seg.chunk_map))


def _representation_xml(rep: Representation) -> str:
    body = "".join(_segment_xml(seg) for seg in rep.segments)
    return _element("Representation", _attrs((("id", rep.id),)), body)


def _representations_xml(reps: Iterable[Representation]) -> str:
    return "".join(_representation_xml(rep) for rep in reps)


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
    attrs = _attrs(
        (
            ("uri", turn.uri),
            ("username", turn.username),
            ("credential", turn.credential),
            ("ttl", turn.ttl),
        )
    )
    return f"<TurnServer{attrs}/>"


# -- documents ----------------------------------------------------------------


def encode_request(r: Request) -> bytes:
    """A request document (SPEC §2, §3, §6)."""
    body = [
        _leaf("Request", r.method.value),
        _leaf("PeerID", r.peer_id),
        _leaf("TransactionID", r.transaction_id),
        _leaf("SwarmID", r.swarm_id),
        _leaf("PeerMode", None if r.peer_mode is None else r.peer_mode.value),
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
        body.append(_element("StatisticsGroup", "", "".join(_stat_xml(s) for s in r.stats)))
    if r.ice_offer is not None:
        body.append(ice_offer_xml(r.ice_offer))  # a child of the root (SPEC §6)
    body += [
        _leaf("TargetPeerID", r.target_peer_id),
        _leaf("OfferID", r.offer_id),
        _leaf("IndicationID", r.indication_id),
        _leaf("ReconnectToken", r.reconnect_token),
    ]
    return _document(body)


def encode_response(r: Response) -> bytes:
    """A response document, all of ``r.peers`` in one PeerGroup (SPEC §2)."""
    return _document([response_head_xml(r), peer_group_xml(r.peers)])


def response_head_xml(r: Response) -> str:
    """Everything of a response but its PeerGroup (SPEC §2, §4, §7, §8)."""
    head = f"<Response{_attrs((('status', r.status), ('reason', r.reason)))}>"
    parts = [
        f"{head}{_text(r.status_text)}</Response>",
        _leaf("TransactionID", r.transaction_id),
        *(_leaf("SwarmID", swarm) for swarm in r.swarm_ids),
        _leaf("KeepAlive", r.keep_alive),
        _leaf("ReconnectToken", r.reconnect_token),
        *(_turn_server_xml(turn) for turn in r.turn_servers),
    ]
    if r.part is not None:
        parts.append(f"<Part{_attrs((('index', r.part.index), ('count', r.part.count)))}/>")
    return "".join(parts)


def encode_indication(i: Indication) -> bytes:
    """The ATTACH indication (SPEC §6); the peer goes in PeerGroup/PeerInfo."""
    return _document(
        [
            _leaf("Indication", i.kind),
            _leaf("TransactionID", i.transaction_id),
            _leaf("SwarmID", i.swarm_id),
            _leaf("OfferID", i.offer_id),
            peer_group_xml((i.peer,)),
        ]
    )
