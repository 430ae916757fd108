"""PPSP tracker protocol: messages and their XML codec (PROTOCOL §2, §4, §6).

The public API; see ``codec`` (parsing and encoding), ``multipart``
(datagram budget) and ``chunkmap`` (Base64 chunk maps).
"""

from .chunkmap import decode_chunk_map, encode_chunk_map, segment_covers
from .codec import (
    encode_indication,
    encode_request,
    encode_response,
    parse_indication_untrusted,
    parse_message_untrusted,
    parse_request_untrusted,
    parse_response_untrusted,
)
from .errors import PpspError
from .multipart import encode_response_datagrams, merge_response_parts
from .reasons import Reason

__all__ = [
    "PpspError",
    "Reason",
    "decode_chunk_map",
    "encode_chunk_map",
    "encode_indication",
    "encode_request",
    "encode_response",
    "encode_response_datagrams",
    "merge_response_parts",
    "parse_indication_untrusted",
    "parse_message_untrusted",
    "parse_request_untrusted",
    "parse_response_untrusted",
    "segment_covers",
]
