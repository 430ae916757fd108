"""Property tests: the SDP reader never crashes; offers survive the SDP round trip."""

from __future__ import annotations

import ipaddress

from aiortc.sdp import SessionDescription
from hypothesis import given, settings
from hypothesis import strategies as st

from stunlike_tracker.ice.sdp import SdpError, offer_from_sdp_untrusted, sdp_from_offer
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress

ICE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"

ice_text = st.text(alphabet=ICE_CHARS, min_size=1, max_size=32)
ufrags = st.text(alphabet=ICE_CHARS, min_size=4, max_size=256)
pwds = st.text(alphabet=ICE_CHARS, min_size=22, max_size=256)
fingerprints = st.sampled_from([("sha-256", 32), ("sha-384", 48), ("sha-512", 64)]).flatmap(
    lambda alg: st.binary(min_size=alg[1], max_size=alg[1]).map(
        lambda digest: f"{alg[0]} " + ":".join(f"{b:02X}" for b in digest)
    )
)
offer_ids = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@st.composite
def candidates(draw: st.DrawFn) -> PeerAddress:
    ip = draw(st.one_of(ipv4, ipv6))
    family = AddrType.IPV4 if ipaddress.ip_address(ip).version == 4 else AddrType.IPV6
    return PeerAddress(
        addr_type=family,
        ip=ip,
        port=draw(st.integers(1, 65535)),
        type=draw(st.sampled_from([AddressType.HOST, AddressType.REFLEXIVE, AddressType.RELAYED])),
        priority=draw(st.integers(1, 2**31 - 1)),
        foundation=draw(ice_text),
    )


@st.composite
def offers(draw: st.DrawFn) -> IceOffer:
    cands = draw(st.lists(candidates(), max_size=8, unique_by=lambda c: (c.ip, c.port)))
    return IceOffer(
        id=draw(offer_ids.filter(lambda s: len(s) <= 64)),
        ufrag=draw(ufrags),
        pwd=draw(pwds),
        fingerprint=draw(fingerprints),
        candidates=tuple(cands),
    )


@given(offers(), st.sampled_from(["offer", "answer"]))
def test_round_trip(offer: IceOffer, role: str) -> None:
    text = sdp_from_offer(offer, role="offer" if role == "offer" else "answer")
    assert offer_from_sdp_untrusted(text, offer.id) == offer


@given(offers())
def test_aiortc_reads_what_we_write(offer: IceOffer) -> None:
    media = SessionDescription.parse(sdp_from_offer(offer, role="offer")).media[0]
    assert media.ice is not None
    assert media.ice.usernameFragment == offer.ufrag
    assert media.ice.password == offer.pwd
    assert [(c.ip, c.port) for c in media.ice_candidates] == [
        (c.ip, c.port) for c in offer.candidates
    ]


def _reads_or_rejects(text: str) -> None:
    try:
        offer = offer_from_sdp_untrusted(text, "x")
    except SdpError:
        return
    assert isinstance(offer, IceOffer)
    # Whatever was accepted can be written again.
    sdp_from_offer(offer, role="answer")


@settings(max_examples=300)
@given(st.text(max_size=3000))
def test_never_crashes_on_text(text: str) -> None:
    _reads_or_rejects(text)


SDP_LINES = st.one_of(
    st.sampled_from(
        [
            "v=0",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "m=application 9 DTLS/SCTP 5000",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            "a=fingerprint:sha-256 " + ":".join(["AA"] * 32),
            "a=end-of-candidates",
            "a=candidate:1 1 udp 2130706431 192.0.2.1 4000 typ host",
            "a=candidate:1 1 udp 2130706431 ::1 4000 typ relay raddr :: rport 9",
        ]
    ),
    st.builds(
        lambda *f: "a=candidate:" + " ".join(f),
        ice_text,
        st.sampled_from(["1", "2", "x", ""]),
        st.sampled_from(["udp", "UDP", "tcp"]),
        st.one_of(st.integers(-5, 2**32).map(str), st.text(max_size=5)),
        st.one_of(ipv4, ipv6, st.text(max_size=10)),
        st.one_of(st.integers(-1, 70000).map(str), st.text(max_size=5)),
        st.sampled_from(["typ", "type"]),
        st.sampled_from(["host", "srflx", "prflx", "relay", "x"]),
    ),
    st.builds(lambda k, v: f"{k}={v}", st.characters(), st.text(max_size=40)),
)


@settings(max_examples=500)
@given(
    st.lists(SDP_LINES, max_size=40),
    st.sampled_from(["\r\n", "\n", "\r"]),
)
def test_never_crashes_on_sdp_like_input(lines: list[str], sep: str) -> None:
    _reads_or_rejects(sep.join(lines))
