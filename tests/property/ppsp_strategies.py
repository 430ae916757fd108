"""Hypothesis strategies for PPSP messages the parser could produce.

"Could produce" is what makes round-trips exact: IDs already stripped and
valid (PROTOCOL §2.1), IP addresses in canonical form, JOIN with a peer mode,
``Response.text`` None or a non-standard text, no reserved SwarmID outside
DISCONNECT, sizes small enough for the element limit of ``xmlsafe``.
"""

from __future__ import annotations

import base64
from typing import TypeVar

from hypothesis import strategies as st

from stunlike_tracker.ppsp.messages import (
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

XML_WS = " \t\r\n"
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)

# Mostly short, sometimes exactly at the 64-character limit.
ids = st.one_of(
    st.text(alphabet=PRINTABLE, min_size=1, max_size=12),
    st.text(alphabet=PRINTABLE, min_size=64, max_size=64),
)
swarm_ids = ids.filter(lambda s: s not in (SWARM_ALL, SWARM_NIL))
tokens = st.text(alphabet=PRINTABLE, min_size=1, max_size=20)

# Any character XML 1.0 can carry, surrounding XML whitespace excluded.
xml_text = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="\ufffe\uffff",
        min_codepoint=0x09,
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip(XML_WS) and s != "")

# Reasons are attribute values: anything XML can carry, kept verbatim.
reasons = st.one_of(
    st.sampled_from(["", "Not Joined", "Already Connected", "Version Not Supported"]),
    xml_text.map(lambda s: f" {s}\t\n\r"),
    xml_text,
)


_T = TypeVar("_T")


def optional(strategy: st.SearchStrategy[_T]) -> st.SearchStrategy[_T | None]:
    return st.one_of(st.none(), strategy)


@st.composite
def peer_addresses(draw: st.DrawFn) -> PeerAddress:
    family = draw(st.sampled_from(list(AddrType)))
    ip = draw(st.ip_addresses(v=4 if family is AddrType.IPV4 else 6).map(str))
    return PeerAddress(
        addr_type=family,
        ip=ip,
        port=draw(st.integers(0, 65535)),
        type=draw(optional(st.sampled_from(list(AddressType)))),
        priority=draw(optional(UINT32)),
        foundation=draw(optional(tokens)),
        connection=draw(optional(tokens)),
        asn=draw(optional(tokens)),
    )


ice_offers = st.builds(
    IceOffer,
    id=ids,
    ufrag=st.text(alphabet=PRINTABLE, min_size=1, max_size=32),
    pwd=st.text(alphabet=PRINTABLE, min_size=1, max_size=32),
    fingerprint=optional(
        st.text(alphabet=PRINTABLE + " ", min_size=1, max_size=110).filter(
            lambda s: s == s.strip(" ") and s != ""
        )
    ),
    candidates=st.lists(peer_addresses(), max_size=3).map(tuple),
)

peer_infos = st.builds(
    PeerInfo,
    peer_id=optional(ids),
    mode=optional(st.sampled_from(list(PeerMode))),
    addresses=st.lists(peer_addresses(), max_size=3).map(tuple),
    offer=optional(ice_offers),
)

peer_nums = st.builds(
    PeerNum,
    count=optional(UINT32),
    ability_nat=optional(st.sampled_from(list(NatAbility))),
    concurrent_links=optional(tokens),
    online_time=optional(tokens),
    upload_bw_level=optional(tokens),
)


@st.composite
def segments(draw: st.DrawFn) -> SegmentInfo:
    start = draw(optional(UINT64))
    end = draw(optional(st.integers(start or 0, 2**64 - 1)))
    chunk_map = draw(optional(st.one_of(xml_text, st.binary(max_size=12).map(_b64))))
    return SegmentInfo(
        start=start, end=end, chunkmap_size=draw(optional(UINT64)), chunk_map=chunk_map or None
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


representations = st.builds(
    Representation,
    id=tokens,
    segments=st.lists(segments(), max_size=3).map(tuple),
)
stream_stats = st.builds(
    StreamStatistics,
    swarm_id=swarm_ids,
    uploaded_bytes=optional(UINT64),
    downloaded_bytes=optional(UINT64),
    avail_bandwidth=optional(UINT64),
)
content_maps = st.builds(
    ContentMap,
    swarm_id=swarm_ids,
    representations=st.lists(representations, max_size=2).map(tuple),
)
stats: st.SearchStrategy[Stat] = st.one_of(stream_stats, content_maps)


@st.composite
def requests(draw: st.DrawFn, method: Method | None = None) -> Request:
    """Any request; fields a method does not need are still drawn (the
    codec reads every element whatever the method)."""
    if method is None:
        method = draw(st.sampled_from(list(Method)))
    swarm: str | None
    if method is Method.DISCONNECT:
        swarm = draw(st.one_of(swarm_ids, st.sampled_from([SWARM_ALL, SWARM_NIL])))
    elif method in (Method.JOIN, Method.FIND, Method.ATTACH):
        swarm = draw(swarm_ids)
    else:
        swarm = draw(optional(swarm_ids))
    mode = draw(optional(st.sampled_from(list(PeerMode))))
    offer = draw(ice_offers if method is Method.ATTACH else optional(ice_offers))
    target = draw(ids if method is Method.ATTACH else optional(ids))
    indication = draw(ids if method is Method.ATTACH_ACK else optional(ids))
    return Request(
        method=method,
        peer_id=draw(ids),
        transaction_id=draw(ids),
        swarm_id=swarm,
        peer_mode=mode,
        peer_num=draw(optional(peer_nums)),
        content=tuple(draw(st.lists(representations, max_size=2))),
        addresses=tuple(draw(st.lists(peer_addresses(), max_size=3))),
        stats=draw(optional(st.lists(stats, max_size=3).map(tuple))),
        ice_offer=offer,
        target_peer_id=target,
        offer_id=draw(optional(ids)),
        indication_id=indication,
        reconnect_token=draw(optional(ids)),
    )


turn_servers = st.builds(
    TurnServer,
    uri=st.text(alphabet=PRINTABLE, min_size=1, max_size=40),
    username=tokens,
    credential=tokens,
    ttl=UINT32,
)


@st.composite
def parts(draw: st.DrawFn) -> Part:
    count = draw(st.integers(1, 65535))
    return Part(index=draw(st.integers(0, count - 1)), count=count)


@st.composite
def responses(draw: st.DrawFn, max_peers: int = 8, with_part: bool = True) -> Response:
    status = draw(st.one_of(st.sampled_from(sorted(Status.TEXT)), st.integers(100, 599)))
    standard = Response(status=status, transaction_id="x").status_text
    text = draw(
        optional(
            st.one_of(
                st.sampled_from(sorted({*Status.TEXT.values(), Status.VERSION_NOT_SUPPORTED_TEXT})),
                xml_text,
            ).filter(lambda t: t != standard)
        )
    )
    return Response(
        status=status,
        transaction_id=draw(ids),
        reason=draw(reasons),
        peers=tuple(draw(st.lists(peer_infos, max_size=max_peers))),
        swarm_ids=tuple(draw(st.lists(swarm_ids, max_size=3))),
        keep_alive=draw(optional(UINT32)),
        turn_servers=tuple(draw(st.lists(turn_servers, max_size=2))),
        reconnect_token=draw(optional(ids)),
        part=draw(optional(parts())) if with_part else None,
        text=text,
    )


indications = st.builds(
    Indication,
    transaction_id=ids,
    swarm_id=swarm_ids,
    peer=st.builds(
        PeerInfo,
        peer_id=ids,
        mode=optional(st.sampled_from(list(PeerMode))),
        addresses=st.lists(peer_addresses(), max_size=3).map(tuple),
        offer=optional(ice_offers),
    ),
    offer_id=optional(ids),
)
