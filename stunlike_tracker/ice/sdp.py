"""One ``IceOffer`` <-> one WebRTC data-channel SDP (PROTOCOL §6; RFC 8839, RFC 8841).

Pure: strings in, strings or frozen dataclasses out.

An ICE offer carries exactly what a WebRTC data-channel description needs
beyond constants: ICE ufrag/pwd, the DTLS certificate fingerprint and the
candidates. Everything else is fixed by this binding:

* one ``m=application <port> UDP/DTLS/SCTP webrtc-datachannel`` section,
  ``a=mid:0``, bundled (``a=group:BUNDLE 0``);
* ``a=sctp-port:5000`` on both sides, ``a=max-message-size:65536``;
* DTLS role from the offer/answer direction: the published offer is
  ``a=setup:actpass`` and the answer is ``a=setup:active``, so the
  answerer is the DTLS client and the offerer (ICE controlling) the server;
* candidates are UDP, component 1; non-host candidates carry the RFC 8839
  placeholder related address (``raddr 0.0.0.0 rport 9``), since the offer
  does not reveal bases;
* ``a=end-of-candidates``: an offer is complete (no trickle).

Two directions, different trust:

* :func:`sdp_from_offer` writes SDP from an offer that came over the
  network (via the tracker). It validates every field that ends up in the
  text, so nothing can inject lines; candidates that cannot be written
  (PROXY, no type, bad IP) are left out.
* :func:`offer_from_sdp_untrusted` reads SDP text, which may come from any
  WebRTC stack. Size and line count are capped before any work; the one
  exception it raises is :class:`SdpError`; candidates it cannot use
  (TCP, mDNS names, other components, unknown types) are skipped, not
  errors. Hygiene (loopback etc., PROTOCOL §8) is a separate step:
  :func:`stunlike_tracker.ice.candidates.sanitize_offer`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, Literal

from stunlike_tracker.ice.candidates import (
    MAX_PRIORITY,
    CandidateType,
    candidate_foundation,
    candidate_priority,
    ice_type_for,
    is_valid_foundation,
    peer_address_from_fields,
)
from stunlike_tracker.ppsp.messages import AddrType, IceOffer, PeerAddress

__all__ = [
    "MAX_SDP_CANDIDATES",
    "MAX_SDP_LENGTH",
    "MAX_SDP_LINES",
    "SCTP_PORT",
    "SdpError",
    "canonical_fingerprint",
    "check_offer",
    "offer_from_sdp_untrusted",
    "sdp_from_offer",
]

SCTP_PORT: Final = 5000
MAX_MESSAGE_SIZE: Final = 65536
MAX_SDP_LENGTH: Final = 16 * 1024
MAX_SDP_LINES: Final = 256
# Candidates read from one SDP; the per-offer cap of PROTOCOL §8 is applied later.
MAX_SDP_CANDIDATES: Final = 32

# RFC 8839 §5.4: ice-ufrag = 4*256ice-char, ice-pwd = 22*256ice-char.
_UFRAG_RE: Final = re.compile(r"[A-Za-z0-9+/]{4,256}")
_PWD_RE: Final = re.compile(r"[A-Za-z0-9+/]{22,256}")
# RFC 8122 hash functions that aiortc checks (sha-1 is refused as too weak).
_FINGERPRINT_BYTES: Final[dict[str, int]] = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
_PREFERRED_HASH: Final = "sha-256"
_HEX_PAIRS_RE: Final = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
# PROTOCOL §2.1-style opaque identifier: 1..64 printable ASCII characters.
_OFFER_ID_RE: Final = re.compile(r"[\x20-\x7e]{1,64}")
_UINT_RE: Final = re.compile(r"[0-9]{1,10}")
_SDP_LINE_RE: Final = re.compile(r"([a-z])=(.*)")
_DATACHANNEL_PROFILES: Final = frozenset({"UDP/DTLS/SCTP", "DTLS/SCTP"})


class SdpError(ValueError):
    """The one error of this module: unusable SDP or an offer that cannot be written."""


# --- offer -> SDP -----------------------------------------------------------


def sdp_from_offer(
    offer: IceOffer, *, role: Literal["offer", "answer"], session_id: int = 1
) -> str:
    """Write the WebRTC data-channel SDP that stands for ``offer``.

    ``role="offer"`` for an offer being answered (``a=setup:actpass``; give
    it to ``setRemoteDescription`` as type "offer"), ``role="answer"`` for
    the answer coming back (``a=setup:active``, type "answer").
    Raises :class:`SdpError` if ufrag, pwd or fingerprint are missing or
    malformed.
    """
    if role not in ("offer", "answer"):
        raise SdpError(f"role must be 'offer' or 'answer', not {role!r}")
    if not 0 <= session_id < 2**63:
        raise SdpError("session id out of range")
    check_offer(offer)
    assert offer.fingerprint is not None  # check_offer guarantees it
    algorithm, value = canonical_fingerprint(offer.fingerprint)
    lines = [_candidate_line(c) for c in _writable_candidates(offer.candidates)]
    default = _default_candidate(offer.candidates)
    if default is None:
        m_port, c_line = 9, "IN IP4 0.0.0.0"
    else:
        ip = ipaddress.ip_address(default.ip)
        m_port, c_line = default.port, f"IN IP{ip.version} {ip}"
    out = [
        "v=0",
        f"o=- {session_id} 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        f"m=application {m_port} UDP/DTLS/SCTP webrtc-datachannel",
        f"c={c_line}",
        "a=mid:0",
        f"a=sctp-port:{SCTP_PORT}",
        f"a=max-message-size:{MAX_MESSAGE_SIZE}",
        *lines,
        "a=end-of-candidates",
        f"a=ice-ufrag:{offer.ufrag}",
        f"a=ice-pwd:{offer.pwd}",
        f"a=fingerprint:{algorithm} {value}",
        "a=setup:actpass" if role == "offer" else "a=setup:active",
    ]
    return "\r\n".join(out) + "\r\n"


def check_offer(offer: IceOffer) -> None:
    """Raise :class:`SdpError` unless id, ufrag, pwd and fingerprint are well formed."""
    if not isinstance(offer.id, str) or _OFFER_ID_RE.fullmatch(offer.id) is None:
        raise SdpError("offer id must be 1..64 printable ASCII characters")
    if not isinstance(offer.ufrag, str) or _UFRAG_RE.fullmatch(offer.ufrag) is None:
        raise SdpError("ice-ufrag must be 4..256 ice-chars")
    if not isinstance(offer.pwd, str) or _PWD_RE.fullmatch(offer.pwd) is None:
        raise SdpError("ice-pwd must be 22..256 ice-chars")
    if offer.fingerprint is None:
        raise SdpError("a DTLS fingerprint is required")
    canonical_fingerprint(offer.fingerprint)


def canonical_fingerprint(text: str) -> tuple[str, str]:
    """Split and normalise ``"sha-256 AA:BB:..."`` into (algorithm, UPPER hex).

    Accepts sha-256, sha-384 and sha-512 with the right digest length.
    """
    if not isinstance(text, str) or len(text) > 8 + 3 * 64:
        raise SdpError("malformed fingerprint")
    parts = text.split(" ")
    if len(parts) != 2:
        raise SdpError("fingerprint must be '<hash-func> <hex:pairs>'")
    algorithm, value = parts[0].lower(), parts[1]
    size = _FINGERPRINT_BYTES.get(algorithm)
    if size is None:
        raise SdpError(f"unsupported fingerprint hash {parts[0][:16]!r}")
    if _HEX_PAIRS_RE.fullmatch(value) is None or len(value) != 3 * size - 1:
        raise SdpError(f"malformed {algorithm} fingerprint")
    return algorithm, value.upper()


def _writable_candidates(candidates: tuple[PeerAddress, ...]) -> list[PeerAddress]:
    seen: set[tuple[str, int]] = set()
    out = []
    for c in candidates:
        normal = _normalise_candidate(c)
        if normal is None or (normal.ip, normal.port) in seen:
            continue
        seen.add((normal.ip, normal.port))
        out.append(normal)
    return out


def _normalise_candidate(c: PeerAddress) -> PeerAddress | None:
    """The candidate with canonical IP, priority and foundation, or None if unusable."""
    cand_type = ice_type_for(c.type)
    if cand_type is None or not isinstance(c.port, int) or not 1 <= c.port <= 0xFFFF:
        return None
    if not isinstance(c.ip, str) or "%" in c.ip:
        return None
    try:
        ip = ipaddress.ip_address(c.ip)
    except ValueError:
        return None
    if (ip.version == 4) != (c.addr_type == AddrType.IPV4):
        return None
    priority = c.priority
    if priority is None:
        priority = candidate_priority(cand_type)
    elif not isinstance(priority, int) or not 1 <= priority <= MAX_PRIORITY:
        return None
    foundation = c.foundation
    if not isinstance(foundation, str) or not is_valid_foundation(foundation):
        foundation = candidate_foundation(cand_type, str(ip))
    return PeerAddress(
        addr_type=c.addr_type,
        ip=str(ip),
        port=c.port,
        type=c.type,
        priority=priority,
        foundation=foundation,
    )


def _candidate_line(c: PeerAddress) -> str:
    cand_type = ice_type_for(c.type)
    line = f"a=candidate:{c.foundation} 1 udp {c.priority} {c.ip} {c.port} typ {cand_type}"
    if cand_type != CandidateType.HOST:
        placeholder = "0.0.0.0" if c.addr_type == AddrType.IPV4 else "::"  # noqa: S104 - RFC 8839 placeholder
        line += f" raddr {placeholder} rport 9"
    return line


def _default_candidate(candidates: tuple[PeerAddress, ...]) -> PeerAddress | None:
    """RFC 8445 §5.1.4: the default candidate is the most likely to work (relay first)."""
    usable = _writable_candidates(candidates)
    if not usable:
        return None
    return min(usable, key=lambda c: c.priority or 0)


# --- SDP -> offer -----------------------------------------------------------


def offer_from_sdp_untrusted(sdp: str, offer_id: str) -> IceOffer:
    """Read ufrag, pwd, fingerprint and UDP candidates of the first data-channel section.

    Media-level ``ice-ufrag``/``ice-pwd``/``fingerprint`` override
    session-level ones. With several fingerprints, sha-256 is preferred.
    At most :data:`MAX_SDP_CANDIDATES` candidates are read. Raises
    :class:`SdpError` (only) when the text is not usable.
    """
    if not isinstance(offer_id, str) or _OFFER_ID_RE.fullmatch(offer_id) is None:
        raise SdpError("offer id must be 1..64 printable ASCII characters")
    if not isinstance(sdp, str):
        raise SdpError("SDP must be text")
    if len(sdp) > MAX_SDP_LENGTH:
        raise SdpError("SDP too long")
    raw_lines = sdp.split("\n")
    if len(raw_lines) > MAX_SDP_LINES + 1:
        raise SdpError("too many SDP lines")

    session: dict[str, list[str]] = {}
    media: dict[str, list[str]] | None = None
    # Attributes go to the session until the first m= line, then to the first
    # data-channel section; other sections are skipped; reading stops at the
    # m= line after the data-channel section.
    target: dict[str, list[str]] | None = session
    for raw in raw_lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        match = _SDP_LINE_RE.fullmatch(line)
        if match is None:
            raise SdpError("malformed SDP line")
        kind, value = match.group(1), match.group(2)
        if kind == "m":
            if media is not None:
                break
            if _is_datachannel_m_line(value):
                media = {}
                target = media
            else:
                target = None
            continue
        if kind != "a" or target is None:
            continue
        name, _, attr_value = value.partition(":")
        if name in ("ice-ufrag", "ice-pwd", "fingerprint", "candidate"):
            target.setdefault(name, []).append(attr_value)
    if media is None:
        raise SdpError("no UDP/DTLS/SCTP webrtc-datachannel section")

    ufrag = _pick_single(media, session, "ice-ufrag")
    pwd = _pick_single(media, session, "ice-pwd")
    if _UFRAG_RE.fullmatch(ufrag) is None:
        raise SdpError("ice-ufrag must be 4..256 ice-chars")
    if _PWD_RE.fullmatch(pwd) is None:
        raise SdpError("ice-pwd must be 22..256 ice-chars")
    fingerprint = _pick_fingerprint(media.get("fingerprint") or session.get("fingerprint") or [])

    candidates: list[PeerAddress] = []
    seen: set[tuple[str, int]] = set()
    for text in media.get("candidate", []):
        candidate = _parse_candidate(text)
        if candidate is None or (candidate.ip, candidate.port) in seen:
            continue
        seen.add((candidate.ip, candidate.port))
        candidates.append(candidate)
        if len(candidates) == MAX_SDP_CANDIDATES:
            break
    return IceOffer(
        id=offer_id,
        ufrag=ufrag,
        pwd=pwd,
        fingerprint=fingerprint,
        candidates=tuple(candidates),
    )


def _is_datachannel_m_line(value: str) -> bool:
    fields = value.split(" ")
    return (
        len(fields) >= 4
        and fields[0] == "application"
        and fields[2] in _DATACHANNEL_PROFILES
        and _UINT_RE.fullmatch(fields[1]) is not None
    )


def _pick_single(media: dict[str, list[str]], session: dict[str, list[str]], name: str) -> str:
    values = media.get(name) or session.get(name)
    if not values:
        raise SdpError(f"missing a={name}")
    if len(set(values)) != 1:
        raise SdpError(f"conflicting a={name} values")
    return values[0]


def _pick_fingerprint(values: list[str]) -> str:
    best: tuple[str, str] | None = None
    for value in values:
        try:
            algorithm, digest = canonical_fingerprint(value)
        except SdpError:
            continue  # e.g. sha-1 next to a sha-256: ignore the weak one
        if best is None or algorithm == _PREFERRED_HASH:
            best = (algorithm, digest)
        if algorithm == _PREFERRED_HASH:
            break
    if best is None:
        raise SdpError("no usable a=fingerprint (sha-256/384/512)")
    return f"{best[0]} {best[1]}"


def _parse_candidate(text: str) -> PeerAddress | None:
    """RFC 8839 §5.1 candidate-attribute value, or None if we cannot use it."""
    fields = text.split(" ")
    if len(fields) < 8 or len(fields) > 40 or fields[6] != "typ":
        return None
    foundation, component, transport, priority, host, port, _, cand_type = fields[:8]
    if not is_valid_foundation(foundation) or component != "1" or transport.lower() != "udp":
        return None
    if _UINT_RE.fullmatch(priority) is None or _UINT_RE.fullmatch(port) is None:
        return None
    return peer_address_from_fields(
        transport=transport,
        component=1,
        host=host,
        port=int(port),
        priority=int(priority),
        cand_type=cand_type,
        foundation=foundation,
    )
