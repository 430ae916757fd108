"""IceOffer <-> WebRTC data-channel SDP (PROTOCOL §6), checked against aiortc's own parser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiortc.sdp import SessionDescription

from stunlike_tracker.ice.candidates import candidate_priority, is_valid_foundation
from stunlike_tracker.ice.sdp import (
    MAX_SDP_CANDIDATES,
    MAX_SDP_LENGTH,
    SdpError,
    canonical_fingerprint,
    check_offer,
    offer_from_sdp_untrusted,
    sdp_from_offer,
)
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress

FP256 = ":".join(f"{i:02X}" for i in range(32))
FP384 = ":".join(["AB"] * 48)
FP512 = ":".join(["CD"] * 64)

# An offer as aiortc 1.16 writes it (trimmed to one candidate per type).
AIORTC_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4004602020 4004602020 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=application 37124 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 10.0.2.2",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 10.0.2.2 37124 typ host",
        "a=candidate:9b8e3a 1 udp 1694498815 203.0.113.7 37124 typ srflx raddr 10.0.2.2 "
        "rport 37124",
        "a=candidate:77aa 1 udp 16777215 198.51.100.9 50000 typ relay raddr 0.0.0.0 rport 9",
        "a=end-of-candidates",
        "a=ice-ufrag:BwNv",
        "a=ice-pwd:s4ldkl3uzWrtuBgS8QF1p1",
        f"a=fingerprint:sha-384 {FP384}",
        f"a=fingerprint:sha-256 {FP256}",
        f"a=fingerprint:sha-512 {FP512}",
        "a=setup:actpass",
        "",
    ]
)


def _offer(*candidates: PeerAddress, **kw: str) -> IceOffer:
    fields = {
        "id": "o-17",
        "ufrag": "x9Qf",
        "pwd": "abcdefghijklmnopqrstuv",
        "fingerprint": f"sha-256 {FP256}",
    }
    fields.update(kw)
    return IceOffer(candidates=candidates, **fields)


HOST = PeerAddress(
    addr_type=AddrType.IPV4,
    ip="10.0.2.2",
    port=51665,
    type=AddressType.HOST,
    priority=2130706431,
    foundation="1",
)
SRFLX = PeerAddress(
    addr_type=AddrType.IPV4,
    ip="203.0.113.7",
    port=51665,
    type=AddressType.REFLEXIVE,
    priority=1694498815,
    foundation="2",
)
RELAY6 = PeerAddress(
    addr_type=AddrType.IPV6,
    ip="2001:db8::9",
    port=3479,
    type=AddressType.RELAYED,
    priority=16777215,
    foundation="3",
)


# --- reading ------------------------------------------------------------------


def test_reads_aiortc_offer() -> None:
    offer = offer_from_sdp_untrusted(AIORTC_OFFER, "o-1")
    assert offer.id == "o-1"
    assert offer.ufrag == "BwNv"
    assert offer.pwd == "s4ldkl3uzWrtuBgS8QF1p1"
    assert offer.fingerprint == f"sha-256 {FP256}"  # sha-256 preferred over the others
    assert [(c.type, c.ip, c.port, c.priority) for c in offer.candidates] == [
        (AddressType.HOST, "10.0.2.2", 37124, 2130706431),
        (AddressType.REFLEXIVE, "203.0.113.7", 37124, 1694498815),
        (AddressType.RELAYED, "198.51.100.9", 50000, 16777215),
    ]
    assert offer.candidates[0].foundation == "16572de626da4e5384a0ce2d0d93678a"


def test_reads_session_level_credentials_and_lf_line_ends() -> None:
    sdp = "\n".join(
        [
            "v=0",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            f"a=fingerprint:SHA-256 {FP256.lower()}",
            "m=application 9 DTLS/SCTP 5000",
            "a=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host",
        ]
    )
    offer = offer_from_sdp_untrusted(sdp, "x")
    assert (offer.ufrag, offer.pwd) == ("abcd", "abcdefghijklmnopqrstuv")
    assert offer.fingerprint == f"sha-256 {FP256}"
    assert len(offer.candidates) == 1


def test_media_level_overrides_session_level() -> None:
    sdp = AIORTC_OFFER.replace("t=0 0", "t=0 0\r\na=ice-ufrag:SESS\r\na=ice-pwd:" + "s" * 22)
    offer = offer_from_sdp_untrusted(sdp, "x")
    assert offer.ufrag == "BwNv"


def test_skips_other_sections_and_stops_after_the_datachannel() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=ice-ufrag:AUDIO",
            "a=candidate:1 1 udp 2130706431 192.0.2.50 1 typ host",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=ice-ufrag:dcuf",
            "a=ice-pwd:abcdefghijklmnopqrstuv",
            f"a=fingerprint:sha-256 {FP256}",
            "a=candidate:2 1 udp 2130706431 192.0.2.2 2 typ host",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=candidate:3 1 udp 2130706431 192.0.2.3 3 typ host",
        ]
    )
    offer = offer_from_sdp_untrusted(sdp, "x")
    assert offer.ufrag == "dcuf"
    assert [c.ip for c in offer.candidates] == ["192.0.2.2"]


@pytest.mark.parametrize(
    "line",
    [
        "a=candidate:1 1 tcp 2130706431 192.0.2.1 9 typ host tcptype active",
        "a=candidate:1 2 udp 2130706431 192.0.2.1 4000 typ host",
        "a=candidate:1 1 udp 2130706431 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 4000 typ host",
        "a=candidate:1 1 udp 2130706431 fe80::1%eth0 4000 typ host",
        "a=candidate:1 1 udp 2130706431 192.0.2.1 4000 typ weird",
        "a=candidate:1 1 udp 2130706431 192.0.2.1 0 typ host",
        "a=candidate:1 1 udp 2130706431 192.0.2.1 65536 typ host",
        "a=candidate:1 1 udp 0 192.0.2.1 4000 typ host",
        "a=candidate:1 1 udp 2147483648 192.0.2.1 4000 typ host",
        "a=candidate:1 1 udp +5 192.0.2.1 4000 typ host",
        "a=candidate:1 1 udp \u0665 192.0.2.1 4000 typ host",  # Arabic-Indic digit
        "a=candidate:1 1 udp 1_0 192.0.2.1 4000 typ host",
        "a=candidate:bad-foundation 1 udp 5 192.0.2.1 4000 typ host",
        "a=candidate:1 1 udp 5 192.0.2.1 4000 host",
        "a=candidate:1 1 udp 5 192.0.2.1",
        "a=candidate:",
    ],
)
def test_skips_unusable_candidates(line: str) -> None:
    sdp = AIORTC_OFFER.replace("a=end-of-candidates", line + "\r\na=end-of-candidates")
    assert len(offer_from_sdp_untrusted(sdp, "x").candidates) == 3


def test_prflx_reads_as_reflexive_and_duplicates_are_dropped() -> None:
    extra = (
        "a=candidate:5 1 udp 1862270975 192.0.2.77 5 typ prflx\r\n"
        "a=candidate:6 1 udp 99 10.0.2.2 37124 typ host\r\n"
    )
    sdp = AIORTC_OFFER.replace("a=end-of-candidates", extra + "a=end-of-candidates")
    offer = offer_from_sdp_untrusted(sdp, "x")
    assert [c.ip for c in offer.candidates] == [
        "10.0.2.2",
        "203.0.113.7",
        "198.51.100.9",
        "192.0.2.77",
    ]
    assert offer.candidates[-1].type is AddressType.REFLEXIVE


def test_candidate_count_is_capped() -> None:
    many = "".join(
        f"a=candidate:{i} 1 udp 5 10.1.{i // 250}.{i % 250 + 1} 4000 typ host\r\n"
        for i in range(100)
    )
    sdp = AIORTC_OFFER.replace("a=end-of-candidates", many + "a=end-of-candidates")
    assert len(offer_from_sdp_untrusted(sdp, "x").candidates) == MAX_SDP_CANDIDATES


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.replace("a=ice-ufrag:BwNv\r\n", ""), "ice-ufrag"),
        (lambda s: s.replace("a=ice-pwd:s4ldkl3uzWrtuBgS8QF1p1\r\n", ""), "ice-pwd"),
        (lambda s: s.replace("a=ice-ufrag:BwNv", "a=ice-ufrag:abc"), "ice-ufrag"),
        (lambda s: s.replace("a=ice-ufrag:BwNv", "a=ice-ufrag:ab cd"), "ice-ufrag"),
        (lambda s: s.replace("a=ice-pwd:s4ldkl3uzWrtuBgS8QF1p1", "a=ice-pwd:short"), "ice-pwd"),
        (lambda s: s + "a=ice-ufrag:other\r\n", "conflicting"),
        (lambda s: s.replace("UDP/DTLS/SCTP", "RTP/AVP"), "webrtc-datachannel"),
        (lambda s: s.replace("m=application", "m=audio"), "webrtc-datachannel"),
        (lambda s: s.replace("a=fingerprint", "a=x-fingerprint"), "fingerprint"),
        (
            lambda s: "\r\n".join(
                x for x in s.split("\r\n") if not x.startswith("a=fingerprint")
            ).replace("a=setup", f"a=fingerprint:sha-1 {':'.join(['AA'] * 20)}\r\na=setup"),
            "fingerprint",
        ),
        (
            lambda s: (
                s.replace(FP256, FP256[:-3])
                .replace("a=fingerprint:sha-384", "a=x:")
                .replace("a=fingerprint:sha-512", "a=x:")
            ),
            "fingerprint",
        ),
        (lambda s: s.replace("s=-", "s=-\r\nnot an sdp line"), "malformed"),
        (lambda s: s.replace("s=-", "s=-\r\nA=upper"), "malformed"),
        (lambda s: s + "x" * MAX_SDP_LENGTH, "too long"),
        (lambda s: "v=0\r\n" * 300, "too many"),
        (lambda s: "", "webrtc-datachannel"),
    ],
)
def test_rejects_unusable_sdp(mutate: Callable[[str], str], message: str) -> None:
    with pytest.raises(SdpError, match=message):
        offer_from_sdp_untrusted(mutate(AIORTC_OFFER), "x")


@pytest.mark.parametrize("offer_id", ["", "x" * 65, "a\nb", "é"])
def test_rejects_bad_offer_id(offer_id: str) -> None:
    with pytest.raises(SdpError):
        offer_from_sdp_untrusted(AIORTC_OFFER, offer_id)


# --- writing ------------------------------------------------------------------


def test_writes_what_aiortc_reads() -> None:
    offer = _offer(HOST, SRFLX, RELAY6)
    text = sdp_from_offer(offer, role="offer")
    assert text.endswith("\r\n") and "\n\n" not in text
    parsed = SessionDescription.parse(text)
    (media,) = parsed.media
    assert (media.kind, media.profile, media.fmt) == (
        "application",
        "UDP/DTLS/SCTP",
        ["webrtc-datachannel"],
    )
    assert media.rtp.muxId == "0"
    assert media.sctp_port == 5000
    assert media.ice is not None and media.dtls is not None
    assert (media.ice.usernameFragment, media.ice.password) == (offer.ufrag, offer.pwd)
    assert [(f.algorithm, f.value) for f in media.dtls.fingerprints] == [("sha-256", FP256)]
    assert media.dtls.role == "auto"  # actpass
    assert media.ice_candidates_complete
    assert [(c.type, c.ip, c.port, c.priority, c.foundation) for c in media.ice_candidates] == [
        ("host", "10.0.2.2", 51665, 2130706431, "1"),
        ("srflx", "203.0.113.7", 51665, 1694498815, "2"),
        ("relay", "2001:db8::9", 3479, 16777215, "3"),
    ]
    assert media.ice_candidates[1].relatedAddress == "0.0.0.0"
    assert media.ice_candidates[2].relatedAddress == "::"
    # The default candidate (m=/c=) is the relayed one.
    assert (media.port, media.host) == (3479, "2001:db8::9")
    assert parsed.group[0].items == ["0"]


def test_answer_role_is_dtls_active() -> None:
    media = SessionDescription.parse(sdp_from_offer(_offer(HOST), role="answer")).media[0]
    assert media.dtls is not None
    assert media.dtls.role == "client"


def test_no_candidates_uses_discard_address() -> None:
    text = sdp_from_offer(_offer(), role="offer")
    assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" in text
    assert "a=candidate" not in text


def test_round_trip_preserves_the_offer() -> None:
    offer = _offer(HOST, SRFLX, RELAY6)
    assert offer_from_sdp_untrusted(sdp_from_offer(offer, role="offer"), offer.id) == offer


def test_unwritable_candidates_are_left_out() -> None:
    proxy = PeerAddress(addr_type=AddrType.IPV4, ip="192.0.2.5", port=1, type=AddressType.PROXY)
    untyped = PeerAddress(addr_type=AddrType.IPV4, ip="192.0.2.6", port=1)
    mismatched = PeerAddress(addr_type=AddrType.IPV6, ip="192.0.2.7", port=1, type=AddressType.HOST)
    name = PeerAddress(addr_type=AddrType.IPV4, ip="a.example", port=1, type=AddressType.HOST)
    injected = PeerAddress(
        addr_type=AddrType.IPV4, ip="192.0.2.8\r\na=x", port=1, type=AddressType.HOST
    )
    bad_prio = PeerAddress(
        addr_type=AddrType.IPV4, ip="192.0.2.9", port=1, type=AddressType.HOST, priority=0
    )
    offer = _offer(proxy, untyped, mismatched, name, injected, bad_prio, HOST)
    back = offer_from_sdp_untrusted(sdp_from_offer(offer, role="offer"), offer.id)
    assert back.candidates == (HOST,)


def test_missing_priority_and_foundation_are_filled_in() -> None:
    bare = PeerAddress(addr_type=AddrType.IPV6, ip="2001:DB8::1", port=9, type=AddressType.HOST)
    weird = PeerAddress(
        addr_type=AddrType.IPV4, ip="192.0.2.1", port=9, type=AddressType.HOST, foundation="x y"
    )
    back = offer_from_sdp_untrusted(sdp_from_offer(_offer(bare, weird), role="offer"), "o")
    assert back.candidates[0].ip == "2001:db8::1"
    assert back.candidates[0].priority == candidate_priority("host")
    assert all(c.foundation and is_valid_foundation(c.foundation) for c in back.candidates)


@pytest.mark.parametrize(
    "kw",
    [
        {"ufrag": "abc"},
        {"ufrag": "abcd\r\na=evil"},
        {"ufrag": "abcd efgh"},
        {"pwd": "tooshort"},
        {"pwd": "abcdefghijklmnopqrstuv\r\n"},
        {"fingerprint": "sha-256"},
        {"fingerprint": f"sha-1 {':'.join(['AA'] * 20)}"},
        {"fingerprint": f"md5 {':'.join(['AA'] * 16)}"},
        {"fingerprint": f"sha-256 {FP256[:-3]}"},
        {"fingerprint": f"sha-256 {FP256}:00"},
        {"fingerprint": f"sha-256  {FP256}"},
        {"fingerprint": f"sha-256 {FP256.replace(':', '-')}"},
        {"fingerprint": f"sha-256 {FP256}\r\na=x"},
        {"id": ""},
        {"id": "x" * 65},
    ],
)
def test_writer_rejects_bad_offers(kw: dict[str, str]) -> None:
    offer = _offer(HOST, **kw)
    with pytest.raises(SdpError):
        check_offer(offer)
    with pytest.raises(SdpError):
        sdp_from_offer(offer, role="offer")


def test_writer_requires_fingerprint() -> None:
    offer = IceOffer(id="o", ufrag="abcd", pwd="abcdefghijklmnopqrstuv")
    with pytest.raises(SdpError, match="fingerprint"):
        sdp_from_offer(offer, role="answer")


def test_writer_rejects_bad_role() -> None:
    with pytest.raises(SdpError):
        sdp_from_offer(_offer(HOST), role="pranswer")  # type: ignore[arg-type]


def test_canonical_fingerprint() -> None:
    assert canonical_fingerprint(f"SHA-256 {FP256.lower()}") == ("sha-256", FP256)
    assert canonical_fingerprint(f"sha-512 {FP512}") == ("sha-512", FP512)
