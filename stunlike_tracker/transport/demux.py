"""RFC 7983 first-byte demultiplexing of the tracker's one UDP port (PROTOCOL §1).

RFC 7983 §7 (updating RFC 5764 §5.1.2) assigns the first byte of a datagram:

* ``0..3``     STUN (the STUN layer then checks the magic cookie and
  ``length % 4 == 0``, RFC 8489 §5 -- not done here);
* ``16..19``   ZRTP;
* ``20..63``   DTLS (content types 20..25 today; DTLS 1.3 unified headers,
  ``0b001xxxxx``, RFC 9147 §4, also land here);
* ``64..79``   TURN ChannelData (RFC 8656 §12);
* ``128..191`` RTP/RTCP.

The tracker speaks only STUN and DTLS; everything else is dropped with a
reason the caller can count.  One table lookup per datagram.
"""

from __future__ import annotations

import enum

__all__ = ["Route", "classify"]


class Route(enum.StrEnum):
    """Where a datagram goes; every value other than STUN and DTLS is a drop reason."""

    STUN = "stun"
    DTLS = "dtls"
    EMPTY = "empty"
    ZRTP = "zrtp"
    TURN_CHANNEL = "turn-channel"
    RTP = "rtp-rtcp"
    UNASSIGNED = "unassigned-first-byte"

    @property
    def is_drop(self) -> bool:
        return self is not Route.STUN and self is not Route.DTLS


def _build_table() -> tuple[Route, ...]:
    table = []
    for b in range(256):
        if b <= 3:
            table.append(Route.STUN)
        elif 16 <= b <= 19:
            table.append(Route.ZRTP)
        elif 20 <= b <= 63:
            table.append(Route.DTLS)
        elif 64 <= b <= 79:
            table.append(Route.TURN_CHANNEL)
        elif 128 <= b <= 191:
            table.append(Route.RTP)
        else:
            table.append(Route.UNASSIGNED)
    return tuple(table)


_TABLE = _build_table()


def classify(datagram: bytes) -> Route:
    """Classify one datagram by its first byte (RFC 7983 §7)."""
    if not datagram:
        return Route.EMPTY
    return _TABLE[datagram[0]]
