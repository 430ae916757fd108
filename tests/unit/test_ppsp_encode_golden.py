"""Byte-exact pins of the PPSP encoders (PROTOCOL §2, §4).

The encoders are tuned for speed (one encoding per PeerInfo, a skeleton
computed once, cheap escaping); none of that may change a byte on the wire.
Two nets hold them to it:

* golden bytes: literal documents (and, for long multi-part answers, the
  datagrams in tests/golden/datagrams/, one per line) produced by the straightforward encoder before
  any tuning, for a varied set of messages;
* a reference encoder kept in this file, a copy of that straightforward
  encoder (every field through one generic escape, every part encoded from
  scratch), compared by hypothesis with the real one on messages far wider
  than the parser could produce: any text, escapes, non-ASCII, characters
  XML cannot carry (both must raise ``ValueError``), any budget.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import (
    encode_indication,
    encode_request,
    encode_response,
    encode_response_datagrams,
)
from stunlike_tracker.ppsp.messages import (
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
    StreamStatistics,
    TurnServer,
)

# =============================================================================
# The reference encoder (the implementation before tuning, kept verbatim in
# behaviour; only the names changed).
# =============================================================================

MAX_ELEMENTS = 256  # xmlsafe.MAX_ELEMENTS when this reference was written
_ROOT_OPEN = '<PPSPTrackerProtocol version="1.0">'
_ROOT_CLOSE = "</PPSPTrackerProtocol>"
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
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
    return "" if value is None else f"<{name}>{_text(str(value))}</{name}>"


def _element(name: str, attrs: str, body: str) -> str:
    return f"<{name}{attrs}/>" if not body else f"<{name}{attrs}>{body}</{name}>"


def _document(body: Iterable[str]) -> bytes:
    return (_ROOT_OPEN + "".join(body) + _ROOT_CLOSE).encode("utf-8")


def _address(a: PeerAddress) -> str:
    attrs = _attrs(
        (
            ("addrType", a.addr_type.value),
            ("ip", a.ip),
            ("port", a.port),
            ("type", None if a.type is None else a.type.value),
            ("priority", a.priority),
            ("foundation", a.foundation),
            ("connection", a.connection),
            ("asn", a.asn),
        )
    )
    return f"<PeerAddress{attrs}/>"


def _addresses(addrs: Iterable[PeerAddress]) -> str:
    return "".join(_address(a) for a in addrs)


def _offer(o: IceOffer) -> str:
    attrs = _attrs(
        (("id", o.id), ("ufrag", o.ufrag), ("pwd", o.pwd), ("fingerprint", o.fingerprint))
    )
    return _element("IceOffer", attrs, _addresses(o.candidates))


def _peer_info(p: PeerInfo) -> str:
    body = (
        _leaf("PeerID", p.peer_id)
        + _leaf("PeerMode", None if p.mode is None else p.mode.value)
        + _addresses(p.addresses)
        + ("" if p.offer is None else _offer(p.offer))
    )
    return _element("PeerInfo", "", body)


def _peer_group(peers: Iterable[PeerInfo]) -> str:
    body = "".join(_peer_info(p) for p in peers)
    return f"<PeerGroup>{body}</PeerGroup>" if body else ""


def _peer_num(n: PeerNum) -> str:
    attrs = _attrs(
        (
            ("abilityNAT", None if n.ability_nat is None else n.ability_nat.value),
            ("concurrentLinks", n.concurrent_links),
            ("onlineTime", n.online_time),
            ("uploadBWlevel", n.upload_bw_level),
        )
    )
    return _element("PeerNum", attrs, "" if n.count is None else str(n.count))


def _segment(s: SegmentInfo) -> str:
    attrs = _attrs(
        (("startIndex", s.start), ("endIndex", s.end), ("chunkmapSize", s.chunkmap_size))
    )
    return _element("SegmentInfo", attrs, "" if s.chunk_map is None else _text(s.chunk_map))


def _representations(reps: Iterable[Representation]) -> str:
    return "".join(
        _element(
            "Representation", _attrs((("id", r.id),)), "".join(_segment(s) for s in r.segments)
        )
        for r in reps
    )


def _stat(s: Stat) -> str:
    if isinstance(s, ContentMap):
        body = _leaf("SwarmID", s.swarm_id) + _representations(s.representations)
        return _element("Stat", ' property="ContentMap"', body)
    body = (
        _leaf("SwarmID", s.swarm_id)
        + _leaf("UploadedBytes", s.uploaded_bytes)
        + _leaf("DownloadedBytes", s.downloaded_bytes)
        + _leaf("AvailBandwidth", s.avail_bandwidth)
    )
    return _element("Stat", ' property="StreamStatistics"', body)


def _turn(t: TurnServer) -> str:
    attrs = _attrs(
        (("uri", t.uri), ("username", t.username), ("credential", t.credential), ("ttl", t.ttl))
    )
    return f"<TurnServer{attrs}/>"


def ref_encode_request(r: Request) -> bytes:
    body = [
        _leaf("Request", r.method.value),
        _leaf("PeerID", r.peer_id),
        _leaf("TransactionID", r.transaction_id),
        _leaf("SwarmID", r.swarm_id),
        _leaf("PeerMode", None if r.peer_mode is None else r.peer_mode.value),
        "" if r.peer_num is None else _peer_num(r.peer_num),
    ]
    if r.content:
        body.append(_element("ContentGroup", "", _representations(r.content)))
    if r.addresses:
        body.append(f"<PeerGroup><PeerInfo>{_addresses(r.addresses)}</PeerInfo></PeerGroup>")
    if r.stats is not None:
        body.append(_element("StatisticsGroup", "", "".join(_stat(s) for s in r.stats)))
    if r.ice_offer is not None:
        body.append(_offer(r.ice_offer))
    body += [
        _leaf("TargetPeerID", r.target_peer_id),
        _leaf("OfferID", r.offer_id),
        _leaf("IndicationID", r.indication_id),
        _leaf("ReconnectToken", r.reconnect_token),
    ]
    return _document(body)


def _response_head(r: Response) -> str:
    head = f"<Response{_attrs((('status', r.status), ('reason', r.reason)))}>"
    parts = [
        f"{head}{_text(r.status_text)}</Response>",
        _leaf("TransactionID", r.transaction_id),
        *(_leaf("SwarmID", swarm) for swarm in r.swarm_ids),
        _leaf("KeepAlive", r.keep_alive),
        _leaf("ReconnectToken", r.reconnect_token),
        *(_turn(t) for t in r.turn_servers),
    ]
    if r.part is not None:
        parts.append(f"<Part{_attrs((('index', r.part.index), ('count', r.part.count)))}/>")
    return "".join(parts)


def ref_encode_response(r: Response) -> bytes:
    return _document([_response_head(r), _peer_group(r.peers)])


def ref_encode_indication(i: Indication) -> bytes:
    return _document(
        [
            _leaf("Indication", i.kind),
            _leaf("TransactionID", i.transaction_id),
            _leaf("SwarmID", i.swarm_id),
            _leaf("OfferID", i.offer_id),
            _peer_group((i.peer,)),
        ]
    )


def _head_elements(r: Response) -> int:
    optional = (r.keep_alive, r.reconnect_token)
    return 5 + len(r.swarm_ids) + len(r.turn_servers) + sum(v is not None for v in optional)


def _peer_elements(p: PeerInfo) -> int:
    offer = 0 if p.offer is None else 1 + len(p.offer.candidates)
    return 1 + (p.peer_id is not None) + (p.mode is not None) + len(p.addresses) + offer


def _overhead(r: Response, digits: int) -> int:
    widest = 10**digits - 1
    skeleton = ref_encode_response(
        dataclasses.replace(r, peers=(), part=Part(index=widest, count=widest))
    )
    return len(skeleton) + len("<PeerGroup>") + len("</PeerGroup>")


def _pack(r: Response, sizes: list[int], counts: list[int], budget: int) -> list[list[int]]:
    element_room = MAX_ELEMENTS - _head_elements(r)
    digits = 1
    while True:
        room = budget - _overhead(r, digits)
        groups: list[list[int]] = []
        used = elements = 0
        for i, (size, count) in enumerate(zip(sizes, counts, strict=True)):
            if groups and used + size <= room and elements + count <= element_room:
                groups[-1].append(i)
                used += size
                elements += count
            else:
                groups.append([i])
                used, elements = size, count
        if len(str(len(groups))) <= digits:
            return groups
        digits = len(str(len(groups)))


def ref_encode_response_datagrams(r: Response, budget: int = 1200) -> list[bytes]:
    whole = dataclasses.replace(r, part=None)
    encoded = ref_encode_response(whole)
    counts = [_peer_elements(p) for p in whole.peers]
    fits = len(encoded) <= budget and _head_elements(whole) + sum(counts) <= MAX_ELEMENTS
    if fits or len(whole.peers) < 2:
        return [encoded]
    sizes = [len(_peer_info(p).encode("utf-8")) for p in whole.peers]
    groups = _pack(whole, sizes, counts, budget)
    if len(groups) == 1:
        return [encoded]
    return [
        ref_encode_response(
            dataclasses.replace(
                whole,
                peers=tuple(whole.peers[i] for i in group),
                part=Part(index=index, count=len(groups)),
            )
        )
        for index, group in enumerate(groups)
    ]


# =============================================================================
# Fixed messages and their golden bytes (produced by the encoder before tuning)
# =============================================================================

NASTY = "a&b<c>d\"e'f\tg\nh\ri]]>j é€😀"


def addr(n: int, **kw: object) -> PeerAddress:
    fields: dict[str, object] = {
        "addr_type": AddrType.IPV4,
        "ip": f"198.51.100.{n % 250 + 1}",
        "port": 40000 + n,
        "type": AddressType.REFLEXIVE,
        "priority": 1694498815,
    }
    fields.update(kw)
    return PeerAddress(**fields)  # type: ignore[arg-type]


def offer(n: int, candidates: int = 2, fingerprint: str | None = "sha-256 AB:CD") -> IceOffer:
    return IceOffer(
        id=f"offer-{n}",
        ufrag="x9Qf",
        pwd="0123456789abcdefghijkl",
        fingerprint=fingerprint,
        candidates=tuple(
            addr(
                n,
                ip=f"10.0.{n % 250}.{i + 1}",
                port=50000 + i,
                type=AddressType.HOST,
                priority=2130706431 - i,
                foundation=str(i),
            )
            for i in range(candidates)
        ),
    )


def peer(n: int, candidates: int = 2) -> PeerInfo:
    return PeerInfo(
        peer_id=f"peer-{n:04d}",
        mode=PeerMode.SEED if n % 3 == 0 else PeerMode.LEECH,
        addresses=(addr(n),),
        offer=offer(n, candidates),
    )


FULL_ADDRESS = PeerAddress(
    addr_type=AddrType.IPV6,
    ip="2001:db8::1",
    port=0,
    type=AddressType.RELAYED,
    priority=0,
    foundation="f1",
    connection="udp",
    asn="64496",
)

REQUESTS: dict[str, Request] = {
    "connect": Request(
        Method.CONNECT,
        "656164657221",
        "12345",
        addresses=(addr(1, type=AddressType.HOST, priority=None), FULL_ADDRESS),
    ),
    "join": Request(
        Method.JOIN,
        "656164657221",
        "12346",
        swarm_id="1111",
        peer_mode=PeerMode.LEECH,
        peer_num=PeerNum(5, NatAbility.STUN, "HIGH", "NORMAL", "NORMAL"),
        content=(
            Representation("tag0", (SegmentInfo(start=20),)),
            Representation("tag6", (SegmentInfo(start=20, end=40, chunkmap_size=21),)),
        ),
        ice_offer=offer(7, candidates=1),
    ),
    "find": Request(Method.FIND, "p", "t", swarm_id="s", peer_num=PeerNum(10)),
    "stat_report": Request(
        Method.STAT_REPORT,
        "p",
        "t",
        stats=(
            StreamStatistics("s", 1, 2, 3),
            StreamStatistics("s2"),
            ContentMap("s", (Representation("r", (SegmentInfo(0, 7, 8, "gA=="), SegmentInfo())),)),
            ContentMap("s3"),
        ),
        peer_num=PeerNum(),
    ),
    "keepalive_empty_stats": Request(Method.STAT_REPORT, "p", "t", stats=()),
    "disconnect": Request(Method.DISCONNECT, "p", "t", swarm_id="ALL"),
    "attach": Request(
        Method.ATTACH,
        "p",
        "t",
        swarm_id="s",
        ice_offer=offer(3, candidates=0, fingerprint=None),
        target_peer_id="q",
        offer_id="o1",
        reconnect_token="rt",
    ),
    "attach_ack": Request(Method.ATTACH_ACK, "p", "t", indication_id="i9"),
    "nasty": Request(
        Method.FIND,
        NASTY,
        "t" + NASTY,
        swarm_id=NASTY,
        peer_mode=PeerMode.SEED,
        peer_num=PeerNum(None, NatAbility.NO_NAT, NASTY, None, "\r\n"),
        content=(Representation(NASTY, (SegmentInfo(start=1, chunk_map=NASTY),)),),
        addresses=(addr(2, ip=NASTY, foundation=NASTY, connection="", asn=" "),),
    ),
}

RESPONSES: dict[str, Response] = {
    "ok": Response(200, "T"),
    "forbidden": Response(403, "T", reason="Not Joined"),
    "version": Response(400, "T", reason="Version Not Supported", text="VERSION NOT SUPPORTED"),
    "unknown_status": Response(299, "T"),
    "connect": Response(
        200,
        "T",
        peers=(PeerInfo(addresses=(addr(5),)),),
        swarm_ids=("s1", "s2"),
        keep_alive=25,
        turn_servers=(
            TurnServer("turn:relay.example:3478?transport=udp", "1700000000:p", "c2VjcmV0", 600),
            TurnServer("turns:relay.example", "u", "c", 0),
        ),
        reconnect_token="tok",
    ),
    "with_part": Response(200, "T", peers=(peer(1),), part=Part(3, 7)),
    "odd_peers": Response(
        200,
        "T",
        swarm_ids=("s",),
        peers=(
            PeerInfo(),
            PeerInfo(peer_id="only-id"),
            PeerInfo(mode=PeerMode.LEECH),
            PeerInfo(peer_id="a", offer=IceOffer("o", "u", "p")),
            PeerInfo(peer_id="b", addresses=(FULL_ADDRESS, addr(9)), offer=offer(9, 3)),
        ),
    ),
    "nasty": Response(
        503,
        NASTY,
        reason=" " + NASTY + "\t\n\r",
        peers=(PeerInfo(peer_id=NASTY, addresses=(addr(3, asn=NASTY),)),),
        swarm_ids=(NASTY,),
        reconnect_token=NASTY,
        turn_servers=(TurnServer(NASTY, NASTY, NASTY, 1),),
        text=NASTY,
    ),
}

INDICATIONS: dict[str, Indication] = {
    "attach": Indication("I", "S", PeerInfo("A")),
    "attach_offer": Indication("I", "S", peer(4), offer_id="o4"),
    "nasty": Indication(
        NASTY, NASTY, PeerInfo(NASTY, addresses=(addr(1, ip=NASTY),)), NASTY, NASTY
    ),
}


def find_response(npeers: int, candidates: int = 2, **kw: object) -> Response:
    return Response(
        status=200,
        transaction_id="tx-42",
        swarm_ids=("swarm-1",),
        peers=tuple(peer(n, candidates) for n in range(npeers)),
        **kw,  # type: ignore[arg-type]
    )


def small_peer(n: int) -> PeerInfo:
    return PeerInfo(peer_id=f"p{n}", addresses=(addr(n, type=None, priority=None),))


# (response, budget): the multi-part paths, compared by digest.
DATAGRAMS: dict[str, tuple[Response, int]] = {
    "one_peer": (find_response(1), 1200),
    "ten_peers": (find_response(10), 1200),
    "thirty_peers": (find_response(30, keep_alive=25, reconnect_token="tok"), 1200),
    "ten_plain": (Response(200, "t", peers=tuple(small_peer(n) for n in range(10))), 1200),
    "two_digit_parts": (find_response(30), 810),
    "budget_4000": (find_response(30), 4000),
    "element_limit": (find_response(30, candidates=8), 60000),
    "oversized_peer": (
        Response(200, "t", peers=(peer(0, 0), peer(99, 12), peer(1, 0), peer(2, 0))),
        900,
    ),
    "single_too_large": (Response(200, "t", peers=(peer(1, 20),)), 300),
    "no_peers": (
        Response(200, "t", turn_servers=(TurnServer("turn:x", "u" * 40, "c", 1),) * 20),
        50,
    ),
    "existing_part": (find_response(1, part=Part(3, 7)), 1200),
    "existing_part_split": (find_response(5, part=Part(3, 7)), 1200),
    "budget_zero_three_digits": (Response(200, "t", peers=tuple(map(small_peer, range(120)))), 0),
    "non_ascii": (
        Response(
            200,
            "t€",
            reason="é",
            peers=tuple(PeerInfo(peer_id="😀" * (n + 1) + "&") for n in range(40)),
        ),
        400,
    ),
}

GOLDEN_REQUESTS: dict[str, bytes] = {
    "connect": (
        b'<PPSPTrackerProtocol version="1.0"><Request>CONNECT</Request><PeerID>656164657221'
        b"</PeerID><TransactionID>12345</TransactionID><PeerGroup><PeerInfo><PeerAddress ad"
        b'drType="ipv4" ip="198.51.100.2" port="40001" type="HOST"/><PeerAddress addrType="'
        b'ipv6" ip="2001:db8::1" port="0" type="RELAYED" priority="0" foundation="f1" conne'
        b'ction="udp" asn="64496"/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
    "join": (
        b'<PPSPTrackerProtocol version="1.0"><Request>JOIN</Request><PeerID>656164657221</P'
        b"eerID><TransactionID>12346</TransactionID><SwarmID>1111</SwarmID><PeerMode>LEECH<"
        b'/PeerMode><PeerNum abilityNAT="STUN" concurrentLinks="HIGH" onlineTime="NORMAL" u'
        b'ploadBWlevel="NORMAL">5</PeerNum><ContentGroup><Representation id="tag0"><Segment'
        b'Info startIndex="20"/></Representation><Representation id="tag6"><SegmentInfo sta'
        b'rtIndex="20" endIndex="40" chunkmapSize="21"/></Representation></ContentGroup><Ic'
        b'eOffer id="offer-7" ufrag="x9Qf" pwd="0123456789abcdefghijkl" fingerprint="sha-25'
        b'6 AB:CD"><PeerAddress addrType="ipv4" ip="10.0.7.1" port="50000" type="HOST" prio'
        b'rity="2130706431" foundation="0"/></IceOffer></PPSPTrackerProtocol>'
    ),
    "find": (
        b'<PPSPTrackerProtocol version="1.0"><Request>FIND</Request><PeerID>p</PeerID><Tran'
        b"sactionID>t</TransactionID><SwarmID>s</SwarmID><PeerNum>10</PeerNum></PPSPTracker"
        b"Protocol>"
    ),
    "stat_report": (
        b'<PPSPTrackerProtocol version="1.0"><Request>STAT_REPORT</Request><PeerID>p</PeerI'
        b'D><TransactionID>t</TransactionID><PeerNum/><StatisticsGroup><Stat property="Stre'
        b'amStatistics"><SwarmID>s</SwarmID><UploadedBytes>1</UploadedBytes><DownloadedByte'
        b's>2</DownloadedBytes><AvailBandwidth>3</AvailBandwidth></Stat><Stat property="Str'
        b'eamStatistics"><SwarmID>s2</SwarmID></Stat><Stat property="ContentMap"><SwarmID>s'
        b'</SwarmID><Representation id="r"><SegmentInfo startIndex="0" endIndex="7" chunkma'
        b'pSize="8">gA==</SegmentInfo><SegmentInfo/></Representation></Stat><Stat property='
        b'"ContentMap"><SwarmID>s3</SwarmID></Stat></StatisticsGroup></PPSPTrackerProtocol>'
    ),
    "keepalive_empty_stats": (
        b'<PPSPTrackerProtocol version="1.0"><Request>STAT_REPORT</Request><PeerID>p</PeerI'
        b"D><TransactionID>t</TransactionID><StatisticsGroup/></PPSPTrackerProtocol>"
    ),
    "disconnect": (
        b'<PPSPTrackerProtocol version="1.0"><Request>DISCONNECT</Request><PeerID>p</PeerID'
        b"><TransactionID>t</TransactionID><SwarmID>ALL</SwarmID></PPSPTrackerProtocol>"
    ),
    "attach": (
        b'<PPSPTrackerProtocol version="1.0"><Request>ATTACH</Request><PeerID>p</PeerID><Tr'
        b'ansactionID>t</TransactionID><SwarmID>s</SwarmID><IceOffer id="offer-3" ufrag="x9'
        b'Qf" pwd="0123456789abcdefghijkl"/><TargetPeerID>q</TargetPeerID><OfferID>o1</Offe'
        b"rID><ReconnectToken>rt</ReconnectToken></PPSPTrackerProtocol>"
    ),
    "attach_ack": (
        b'<PPSPTrackerProtocol version="1.0"><Request>ATTACH_ACK</Request><PeerID>p</PeerID'
        b"><TransactionID>t</TransactionID><IndicationID>i9</IndicationID></PPSPTrackerProt"
        b"ocol>"
    ),
    "nasty": (
        b'<PPSPTrackerProtocol version="1.0"><Request>FIND</Request><PeerID>a&amp;b&lt;c&gt'
        b";d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</PeerID><Transact"
        b"ionID>ta&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
        b"\x80</TransactionID><SwarmID>a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9"
        b"\xe2\x82\xac\xf0\x9f\x98\x80</SwarmID><PeerMode>SEED</PeerMode><PeerNum abilityNA"
        b'T="NoNAT" concurrentLinks="a&amp;b&lt;c&gt;d&quot;e\'f&#9;g&#10;h&#13;i]]&gt;j '
        b'\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" uploadBWlevel="&#13;&#10;"/><ContentGroup><'
        b"Representation id=\"a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9"
        b'\xe2\x82\xac\xf0\x9f\x98\x80"><SegmentInfo startIndex="1">a&amp;b&lt;c&gt;d"e\'f'
        b"\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</SegmentInfo></Represent"
        b'ation></ContentGroup><PeerGroup><PeerInfo><PeerAddress addrType="ipv4" ip="a&amp;'
        b"b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
        b'" port="40002" type="REFLEXIVE" priority="1694498815" foundation="a&amp;b&lt;c&gt'
        b";d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" connec"
        b'tion="" asn=" "/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
}
GOLDEN_RESPONSES: dict[str, bytes] = {
    "ok": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b"esponse><TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    ),
    "forbidden": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="403" reason="Not Joined">MES'
        b"SAGE FORBIDDEN</Response><TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    ),
    "version": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="400" reason="Version Not Sup'
        b'ported">VERSION NOT SUPPORTED</Response><TransactionID>T</TransactionID></PPSPTra'
        b"ckerProtocol>"
    ),
    "unknown_status": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="299" reason="">INTERNAL ERRO'
        b"R</Response><TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    ),
    "connect": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b"esponse><TransactionID>T</TransactionID><SwarmID>s1</SwarmID><SwarmID>s2</SwarmID"
        b'><KeepAlive>25</KeepAlive><ReconnectToken>tok</ReconnectToken><TurnServer uri="tu'
        b'rn:relay.example:3478?transport=udp" username="1700000000:p" credential="c2VjcmV0'
        b'" ttl="600"/><TurnServer uri="turns:relay.example" username="u" credential="c" tt'
        b'l="0"/><PeerGroup><PeerInfo><PeerAddress addrType="ipv4" ip="198.51.100.6" port="'
        b'40005" type="REFLEXIVE" priority="1694498815"/></PeerInfo></PeerGroup></PPSPTrack'
        b"erProtocol>"
    ),
    "with_part": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b'esponse><TransactionID>T</TransactionID><Part index="3" count="7"/><PeerGroup><Pe'
        b"erInfo><PeerID>peer-0001</PeerID><PeerMode>LEECH</PeerMode><PeerAddress addrType="
        b'"ipv4" ip="198.51.100.2" port="40001" type="REFLEXIVE" priority="1694498815"/><Ic'
        b'eOffer id="offer-1" ufrag="x9Qf" pwd="0123456789abcdefghijkl" fingerprint="sha-25'
        b'6 AB:CD"><PeerAddress addrType="ipv4" ip="10.0.1.1" port="50000" type="HOST" prio'
        b'rity="2130706431" foundation="0"/><PeerAddress addrType="ipv4" ip="10.0.1.2" port'
        b'="50001" type="HOST" priority="2130706430" foundation="1"/></IceOffer></PeerInfo>'
        b"</PeerGroup></PPSPTrackerProtocol>"
    ),
    "odd_peers": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b"esponse><TransactionID>T</TransactionID><SwarmID>s</SwarmID><PeerGroup><PeerInfo/"
        b"><PeerInfo><PeerID>only-id</PeerID></PeerInfo><PeerInfo><PeerMode>LEECH</PeerMode"
        b'></PeerInfo><PeerInfo><PeerID>a</PeerID><IceOffer id="o" ufrag="u" pwd="p"/></Pee'
        b'rInfo><PeerInfo><PeerID>b</PeerID><PeerAddress addrType="ipv6" ip="2001:db8::1" p'
        b'ort="0" type="RELAYED" priority="0" foundation="f1" connection="udp" asn="64496"/'
        b'><PeerAddress addrType="ipv4" ip="198.51.100.10" port="40009" type="REFLEXIVE" pr'
        b'iority="1694498815"/><IceOffer id="offer-9" ufrag="x9Qf" pwd="0123456789abcdefghi'
        b'jkl" fingerprint="sha-256 AB:CD"><PeerAddress addrType="ipv4" ip="10.0.9.1" port='
        b'"50000" type="HOST" priority="2130706431" foundation="0"/><PeerAddress addrType="'
        b'ipv4" ip="10.0.9.2" port="50001" type="HOST" priority="2130706430" foundation="1"'
        b'/><PeerAddress addrType="ipv4" ip="10.0.9.3" port="50002" type="HOST" priority="2'
        b'130706429" foundation="2"/></IceOffer></PeerInfo></PeerGroup></PPSPTrackerProtoco'
        b"l>"
    ),
    "nasty": (
        b'<PPSPTrackerProtocol version="1.0"><Response status="503" reason=" a&amp;b&lt;c&g'
        b"t;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80&#9;&#10"
        b';&#13;">a&amp;b&lt;c&gt;d"e\'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f'
        b"\x98\x80</Response><TransactionID>a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3"
        b"\xa9\xe2\x82\xac\xf0\x9f\x98\x80</TransactionID><SwarmID>a&amp;b&lt;c&gt;d\"e'f\t"
        b"g\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</SwarmID><ReconnectToken>a"
        b"&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</Re"
        b"connectToken><TurnServer uri=\"a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j"
        b' \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" username="a&amp;b&lt;c&gt;d&quot;e\'f&#9;g'
        b'&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" credential="a&amp;b&lt;'
        b"c&gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\" tt"
        b'l="1"/><PeerGroup><PeerInfo><PeerID>a&amp;b&lt;c&gt;d"e\'f\tg\nh&#13;i]]&gt;j '
        b'\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</PeerID><PeerAddress addrType="ipv4" ip="198'
        b'.51.100.4" port="40003" type="REFLEXIVE" priority="1694498815" asn="a&amp;b&lt;c&'
        b"gt;d&quot;e'f&#9;g&#10;h&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"/></P"
        b"eerInfo></PeerGroup></PPSPTrackerProtocol>"
    ),
}
GOLDEN_INDICATIONS: dict[str, bytes] = {
    "attach": (
        b'<PPSPTrackerProtocol version="1.0"><Indication>ATTACH</Indication><TransactionID>'
        b"I</TransactionID><SwarmID>S</SwarmID><PeerGroup><PeerInfo><PeerID>A</PeerID></Pee"
        b"rInfo></PeerGroup></PPSPTrackerProtocol>"
    ),
    "attach_offer": (
        b'<PPSPTrackerProtocol version="1.0"><Indication>ATTACH</Indication><TransactionID>'
        b"I</TransactionID><SwarmID>S</SwarmID><OfferID>o4</OfferID><PeerGroup><PeerInfo><P"
        b'eerID>peer-0004</PeerID><PeerMode>LEECH</PeerMode><PeerAddress addrType="ipv4" ip'
        b'="198.51.100.5" port="40004" type="REFLEXIVE" priority="1694498815"/><IceOffer id'
        b'="offer-4" ufrag="x9Qf" pwd="0123456789abcdefghijkl" fingerprint="sha-256 AB:CD">'
        b'<PeerAddress addrType="ipv4" ip="10.0.4.1" port="50000" type="HOST" priority="213'
        b'0706431" foundation="0"/><PeerAddress addrType="ipv4" ip="10.0.4.2" port="50001" '
        b'type="HOST" priority="2130706430" foundation="1"/></IceOffer></PeerInfo></PeerGro'
        b"up></PPSPTrackerProtocol>"
    ),
    "nasty": (
        b'<PPSPTrackerProtocol version="1.0"><Indication>a&amp;b&lt;c&gt;d"e\'f\tg\nh&#13;i'
        b"]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</Indication><TransactionID>a&amp;b&l"
        b"t;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</Transactio"
        b"nID><SwarmID>a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0"
        b"\x9f\x98\x80</SwarmID><OfferID>a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9"
        b"\xe2\x82\xac\xf0\x9f\x98\x80</OfferID><PeerGroup><PeerInfo><PeerID>a&amp;b&lt;c&g"
        b"t;d\"e'f\tg\nh&#13;i]]&gt;j \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80</PeerID><PeerAdd"
        b'ress addrType="ipv4" ip="a&amp;b&lt;c&gt;d&quot;e\'f&#9;g&#10;h&#13;i]]&gt;j \xc3'
        b'\xa9\xe2\x82\xac\xf0\x9f\x98\x80" port="40001" type="REFLEXIVE" priority="1694498'
        b'815"/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
}
# name -> the datagrams, one per line, in tests/golden/datagrams/NAME.xml
# (no datagram holds a raw newline: the encoder escapes it).
GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden" / "datagrams"


def golden_datagrams(name: str) -> list[bytes]:
    return (GOLDEN_DIR / f"{name}.xml").read_bytes().split(b"\n")[:-1]


# The smallest split answers in full.
GOLDEN_SPLIT_LITERAL: list[bytes] = [
    (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b'esponse><TransactionID>t</TransactionID><SwarmID>s</SwarmID><Part index="0" count'
        b'="3"/><PeerGroup><PeerInfo><PeerID>p0</PeerID><PeerAddress addrType="ipv4" ip="19'
        b'8.51.100.1" port="40000"/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
    (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b'esponse><TransactionID>t</TransactionID><SwarmID>s</SwarmID><Part index="1" count'
        b'="3"/><PeerGroup><PeerInfo><PeerID>p1</PeerID><PeerAddress addrType="ipv4" ip="19'
        b'8.51.100.2" port="40001"/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
    (
        b'<PPSPTrackerProtocol version="1.0"><Response status="200" reason="">SUCCESSFUL</R'
        b'esponse><TransactionID>t</TransactionID><SwarmID>s</SwarmID><Part index="2" count'
        b'="3"/><PeerGroup><PeerInfo><PeerID>p2</PeerID><PeerAddress addrType="ipv4" ip="19'
        b'8.51.100.3" port="40002"/></PeerInfo></PeerGroup></PPSPTrackerProtocol>'
    ),
]


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_golden(name: str) -> None:
    assert encode_request(REQUESTS[name]) == GOLDEN_REQUESTS[name]
    assert ref_encode_request(REQUESTS[name]) == GOLDEN_REQUESTS[name]


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_golden(name: str) -> None:
    assert encode_response(RESPONSES[name]) == GOLDEN_RESPONSES[name]
    assert ref_encode_response(RESPONSES[name]) == GOLDEN_RESPONSES[name]


@pytest.mark.parametrize("name", sorted(INDICATIONS))
def test_indication_golden(name: str) -> None:
    assert encode_indication(INDICATIONS[name]) == GOLDEN_INDICATIONS[name]
    assert ref_encode_indication(INDICATIONS[name]) == GOLDEN_INDICATIONS[name]


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_datagrams_golden(name: str) -> None:
    response, budget = DATAGRAMS[name]
    golden = golden_datagrams(name)
    assert golden and all(b"\n" not in datagram for datagram in golden)
    assert encode_response_datagrams(response, budget) == golden
    assert ref_encode_response_datagrams(response, budget) == golden


def test_every_golden_file_has_a_case() -> None:
    assert {path.stem for path in GOLDEN_DIR.glob("*.xml")} == set(DATAGRAMS)


def test_split_golden_literal() -> None:
    r = Response(200, "t", swarm_ids=("s",), peers=tuple(map(small_peer, range(3))))
    assert encode_response_datagrams(r, 250) == GOLDEN_SPLIT_LITERAL
    assert ref_encode_response_datagrams(r, 250) == GOLDEN_SPLIT_LITERAL


def test_default_budget_is_1200() -> None:
    r = find_response(10)
    assert encode_response_datagrams(r) == ref_encode_response_datagrams(r, 1200)


@pytest.mark.parametrize("bad", ["\x00", "\x1b", "\ud800", "\udfff", "\ufffe", "\uffff"])
def test_characters_xml_cannot_carry_raise_everywhere(bad: str) -> None:
    many = find_response(10)
    cases: list[Callable[[], object]] = [
        lambda: encode_request(dataclasses.replace(REQUESTS["join"], peer_id=bad)),
        lambda: encode_request(
            dataclasses.replace(REQUESTS["connect"], addresses=(addr(1, ip=bad),))
        ),
        lambda: encode_response(Response(200, "t", reason=bad)),
        lambda: encode_response(Response(200, "t", text=bad)),
        lambda: encode_indication(Indication("i", "s", PeerInfo("p"), kind=bad)),
        lambda: encode_response_datagrams(
            dataclasses.replace(many, peers=(*many.peers, PeerInfo(peer_id=bad)))
        ),
        lambda: encode_response_datagrams(
            dataclasses.replace(many, turn_servers=(TurnServer("turn:x", "u", bad, 1),))
        ),
        lambda: encode_response_datagrams(
            dataclasses.replace(many, peers=(PeerInfo(addresses=(addr(1, asn=bad),)), *many.peers))
        ),
    ]
    for case in cases:
        with pytest.raises(ValueError, match=r"XML 1\.0 cannot carry"):
            case()


# =============================================================================
# Hypothesis: the real encoders against the reference, on wide inputs
# =============================================================================

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Plain ASCII (the fast paths), the characters that need an escape,
# any character XML 1.0 can carry (non-ASCII, astral), and, rarely enough
# that most messages still encode (1 field in 1,000), a character XML
# 1.0 cannot carry, which must raise ValueError in both encoders.
_SPECIALS = "&<>\"'\t\n\r]\x7f\x85\u2028é€😀 "
_xml_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff").filter(
    lambda c: c in "\t\n\r" or ord(c) >= 0x20
)
_not_xml_chars = st.sampled_from(
    ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ud800", "\udfff", "\ufffe"]
)
_valid_texts = st.one_of(
    st.text(alphabet="abcXYZ019.:-_/+= ", max_size=12),
    st.text(alphabet="ab" + _SPECIALS, max_size=12),
    st.text(alphabet=_xml_chars, max_size=6),
)
_invalid_texts = st.tuples(_valid_texts, _not_xml_chars, _valid_texts).map("".join)
texts = st.integers(0, 999).flatmap(lambda k: _invalid_texts if k == 537 else _valid_texts)
opt_texts = st.one_of(st.none(), texts)
ints = st.one_of(st.integers(0, 2**32 - 1), st.integers(-(2**70), 2**70))
opt_ints = st.one_of(st.none(), ints)


def _enum_or_none(
    enum: type[AddrType | AddressType | PeerMode | NatAbility],
) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), st.sampled_from(list(enum)))


addresses = st.builds(
    PeerAddress,
    addr_type=st.sampled_from(list(AddrType)),
    ip=texts,
    port=ints,
    type=_enum_or_none(AddressType),
    priority=opt_ints,
    foundation=opt_texts,
    connection=opt_texts,
    asn=opt_texts,
)
offers = st.builds(
    IceOffer,
    id=texts,
    ufrag=texts,
    pwd=texts,
    fingerprint=opt_texts,
    candidates=st.lists(addresses, max_size=4).map(tuple),
)
peer_infos = st.builds(
    PeerInfo,
    peer_id=opt_texts,
    mode=_enum_or_none(PeerMode),
    addresses=st.lists(addresses, max_size=3).map(tuple),
    offer=st.one_of(st.none(), offers),
)
segments = st.builds(
    SegmentInfo, start=opt_ints, end=opt_ints, chunkmap_size=opt_ints, chunk_map=opt_texts
)
representations = st.builds(
    Representation, id=texts, segments=st.lists(segments, max_size=3).map(tuple)
)
stats: st.SearchStrategy[Stat] = st.one_of(
    st.builds(
        StreamStatistics,
        swarm_id=texts,
        uploaded_bytes=opt_ints,
        downloaded_bytes=opt_ints,
        avail_bandwidth=opt_ints,
    ),
    st.builds(
        ContentMap, swarm_id=texts, representations=st.lists(representations, max_size=2).map(tuple)
    ),
)
requests = st.builds(
    Request,
    method=st.sampled_from(list(Method)),
    peer_id=texts,
    transaction_id=texts,
    swarm_id=opt_texts,
    peer_mode=_enum_or_none(PeerMode),
    peer_num=st.one_of(
        st.none(),
        st.builds(
            PeerNum,
            count=opt_ints,
            ability_nat=_enum_or_none(NatAbility),
            concurrent_links=opt_texts,
            online_time=opt_texts,
            upload_bw_level=opt_texts,
        ),
    ),
    content=st.lists(representations, max_size=2).map(tuple),
    addresses=st.lists(addresses, max_size=3).map(tuple),
    stats=st.one_of(st.none(), st.lists(stats, max_size=3).map(tuple)),
    ice_offer=st.one_of(st.none(), offers),
    target_peer_id=opt_texts,
    offer_id=opt_texts,
    indication_id=opt_texts,
    reconnect_token=opt_texts,
)
turn_servers = st.builds(TurnServer, uri=texts, username=texts, credential=texts, ttl=ints)
parts = st.builds(Part, index=ints, count=ints)


def responses(max_peers: int) -> st.SearchStrategy[Response]:
    return st.builds(
        Response,
        status=st.one_of(st.sampled_from([200, 400, 401, 403, 404, 500, 503]), ints),
        transaction_id=texts,
        reason=texts,
        peers=st.lists(peer_infos, max_size=max_peers).map(tuple),
        swarm_ids=st.lists(texts, max_size=3).map(tuple),
        keep_alive=opt_ints,
        turn_servers=st.lists(turn_servers, max_size=2).map(tuple),
        reconnect_token=opt_texts,
        part=st.one_of(st.none(), parts),
        text=opt_texts,
    )


indications = st.builds(
    Indication,
    transaction_id=texts,
    swarm_id=texts,
    peer=peer_infos,
    offer_id=opt_texts,
    kind=texts,
)


def outcome(encode: Callable[[], object]) -> object:
    """The encoder's output, or the fact that it raised ValueError."""
    try:
        return encode()
    except ValueError as exc:
        return ("ValueError", str(exc))


@SETTINGS
@given(requests)
def test_request_matches_reference(r: Request) -> None:
    assert outcome(lambda: encode_request(r)) == outcome(lambda: ref_encode_request(r))


@SETTINGS
@given(responses(max_peers=6))
def test_response_matches_reference(r: Response) -> None:
    assert outcome(lambda: encode_response(r)) == outcome(lambda: ref_encode_response(r))


@SETTINGS
@given(indications)
def test_indication_matches_reference(i: Indication) -> None:
    assert outcome(lambda: encode_indication(i)) == outcome(lambda: ref_encode_indication(i))


@SETTINGS
@given(responses(max_peers=14), st.one_of(st.integers(-10, 600), st.integers(600, 3000)))
def test_datagrams_match_reference(r: Response, budget: int) -> None:
    assert outcome(lambda: encode_response_datagrams(r, budget)) == outcome(
        lambda: ref_encode_response_datagrams(r, budget)
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 12), min_size=2, max_size=40),
    st.integers(0, 2),
    st.integers(-10, 5000),
)
def test_many_peers_split_like_reference(candidates: list[int], extra: int, budget: int) -> None:
    # Larger answers than above: the element limit and several digit widths.
    r = Response(
        200,
        "tx",
        swarm_ids=("s",) * extra,
        keep_alive=None if extra else 25,
        peers=tuple(peer(n, c) for n, c in enumerate(candidates)),
    )
    assert encode_response_datagrams(r, budget) == ref_encode_response_datagrams(r, budget)
