"""Every reason phrase the tracker puts in a PPSP response (PROTOCOL §2).

One ``Reason`` member is a status code and its fixed phrase. The codec and
the core build every error from a member, so the words the tracker sends
are listed here and nowhere else, and a client can compare a response's
``reason`` with a member (``Reason`` is a ``str``: ``response.reason ==
Reason.NOT_JOINED`` holds for the decoded text).

The codec names the offending element after four of the 400 members
(``MISSING``, ``INVALID``, ``DUPLICATE``, ``NOT_A``): "Missing SwarmID",
"Invalid PeerAddress ip". The element name comes from the codec's own
schema, never from the input (see ``PpspError.phrase``).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A status code (``status``) and the phrase sent with it (the value)."""

    status: int

    def __new__(cls, phrase: str, status: int) -> Reason:
        member = str.__new__(cls, phrase)
        member._value_ = phrase
        member.status = status
        return member

    OK = "OK", 200

    # 400: the codec (PROTOCOL §2, §4)
    INVALID_SYNTAX = "Invalid Syntax", 400
    NOT_BYTES = "Not Bytes", 400
    MALFORMED_MESSAGE = "Malformed Message", 400
    MALFORMED_XML = "Malformed XML", 400
    MESSAGE_TOO_LARGE = "Message Too Large", 400
    NOT_UTF8 = "Not UTF-8", 400
    TOO_MANY_ELEMENTS = "Too Many Elements", 400
    TOO_DEEP = "Too Deep", 400
    DUPLICATE_ATTRIBUTE = "Duplicate Attribute", 400
    DTD_NOT_ALLOWED = "DTD Not Allowed", 400
    ENTITY_NOT_ALLOWED = "Entity Not Allowed", 400
    PI_NOT_ALLOWED = "Processing Instruction Not Allowed", 400
    NOT_A_PPSP_DOCUMENT = "Not A PPSP Document", 400
    VERSION_NOT_SUPPORTED = "Version Not Supported", 400
    AMBIGUOUS_MESSAGE = "Ambiguous Message", 400
    UNKNOWN_MESSAGE = "Unknown Message", 400
    UNKNOWN_REQUEST = "Unknown Request", 400
    UNKNOWN_INDICATION = "Unknown Indication", 400
    UNKNOWN_RESPONSE_STATUS = "Unknown Response Status", 400
    RESERVED_SWARM_ID = "Reserved SwarmID", 400
    NO_RESPONSE_PARTS = "No Response Parts", 400
    INCONSISTENT_RESPONSE_PARTS = "Inconsistent Response Parts", 400
    # followed by the element's name
    MISSING = "Missing", 400
    INVALID = "Invalid", 400
    DUPLICATE = "Duplicate", 400
    NOT_A = "Not A", 400
    NOT_AN = "Not An", 400

    # 400: the core
    TRANSACTION_ID_REUSED = "TransactionID Reused", 400

    # 401 (PROTOCOL §3, §8)
    PEER_ID_NOT_CERTIFIED = "PeerID Not Certified", 401
    PEER_ID_NOT_OWNED = "PeerID Not Owned", 401
    RECONNECT_TOKEN_REQUIRED = "Reconnect Token Required", 401
    BAD_RECONNECT_TOKEN = "Bad Reconnect Token", 401

    # 403: the state machine (PROTOCOL §3) and the per-peer caps
    NOT_CONNECTED = "Not Connected", 403
    ALREADY_CONNECTED = "Already Connected", 403
    NOT_JOINED = "Not Joined", 403
    NOT_TRACKING = "Not Tracking", 403
    TOO_MANY_SWARMS = "Too Many Swarms", 403
    CANNOT_ATTACH_TO_SELF = "Cannot Attach To Self", 403
    TOO_MANY_PEER_IDS_ON_ASSOCIATION = "Too Many PeerIDs On Association", 403
    TOO_MANY_PEER_IDS_FROM_ADDRESS = "Too Many PeerIDs From Address", 403

    # 404
    UNKNOWN_SWARM = "Unknown Swarm", 404
    TARGET_NOT_FOUND = "Target Not Found", 404
    TARGET_GONE = "Target Gone", 404
    OFFER_NOT_FOUND = "Offer Not Found", 404
    INDICATION_NOT_FOUND = "Indication Not Found", 404

    # 500 (PROTOCOL §2: never details)
    INTERNAL_ERROR = "Internal Error", 500

    # 503 (PROTOCOL §6, §8)
    RATE_LIMITED = "Rate Limited", 503
    TARGET_BUSY = "Target Busy", 503
    TARGET_DID_NOT_ACKNOWLEDGE = "Target Did Not Acknowledge", 503
    SHUTTING_DOWN = "Shutting Down", 503


__all__ = ["Reason"]
