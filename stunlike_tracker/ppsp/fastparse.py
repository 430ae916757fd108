"""A fast path for the commonest request shapes, exactly as strict as the full parser.

Most requests a tracker sees are keep-alive STAT_REPORTs, FINDs and
DISCONNECTs written by clients that use this package's encoder: a fixed
root, ``Request``, ``PeerID``, ``TransactionID`` and an optional
``SwarmID``, in that order, with nothing else. For a datagram that is
byte-for-byte of that shape, :func:`parse_request_fast` builds the
:class:`Request` with one regular expression instead of an expat tree.

It returns None for everything else, and the caller then runs the full
parser (:func:`.codec.parse_request_untrusted`), so the set of accepted
documents does not change: the shape is a well-formed document whose
values contain no markup, entities or whitespace, the values are checked by
the same rules (PROTOCOL §2.1), and every case the full parser would answer
with a 400 (a missing or reserved SwarmID) also returns None here, to let
the full parser produce that error. ``tests/property/test_ppsp_fastparse.py``
checks the two parsers against each other.
"""

from __future__ import annotations

import re

from .messages import SWARM_ALL, SWARM_NIL, Method, Request
from .values import MAX_ID_LEN

# PROTOCOL §2.1 opaque IDs: printable ASCII 0x21..0x7E; here also without
# "<", "&" and ">" (markup, entities, "]]>"), which the full parser handles.
_ID = rb"([\x21-\x25\x27-\x3b\x3d\x3f-\x7e]{1,%d})" % MAX_ID_LEN
_SHAPE = re.compile(
    rb'<PPSPTrackerProtocol version="1\.0"><Request>(STAT_REPORT|FIND|DISCONNECT)</Request>'
    rb"<PeerID>" + _ID + rb"</PeerID><TransactionID>" + _ID + rb"</TransactionID>"
    rb"(?:<SwarmID>" + _ID + rb"</SwarmID>)?</PPSPTrackerProtocol>"
)
_METHODS = {
    b"STAT_REPORT": Method.STAT_REPORT,
    b"FIND": Method.FIND,
    b"DISCONNECT": Method.DISCONNECT,
}
_RESERVED = frozenset({SWARM_ALL, SWARM_NIL})


def parse_request_fast(data: bytes) -> Request | None:
    """The request if *data* has one of the fixed shapes, else None (use the full parser)."""
    match = _SHAPE.fullmatch(data)
    if match is None:
        return None
    raw_method, raw_peer, raw_txid, raw_swarm = match.groups()
    method = _METHODS[raw_method]
    if raw_swarm is None:
        if method is not Method.STAT_REPORT:
            return None  # FIND and DISCONNECT need a SwarmID: the full parser says 400
        swarm_id = None
    else:
        swarm_id = raw_swarm.decode("ascii")
        if method is not Method.DISCONNECT and swarm_id in _RESERVED:
            return None  # PROTOCOL §2.1: reserved outside DISCONNECT, a 400
    return Request(
        method,
        raw_peer.decode("ascii"),
        raw_txid.decode("ascii"),
        swarm_id=swarm_id,
    )
