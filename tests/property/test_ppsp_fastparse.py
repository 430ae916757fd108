"""Differential tests: the request fast path (ppsp/fastparse.py) against the
strict parser. Whatever the fast path accepts, the strict parser accepts with
the same Request; whatever it declines goes to the strict parser, so the
accepted set is the strict parser's."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from stunlike_tracker.ppsp import PpspError, encode_request
from stunlike_tracker.ppsp.codec import _parse_guarded, _request
from stunlike_tracker.ppsp.fastparse import parse_request_fast
from stunlike_tracker.ppsp.messages import SWARM_ALL, SWARM_NIL, Method, Request

from .ppsp_strategies import ids, requests

MAX = 2048


def strict(data: bytes) -> Request | PpspError:
    try:
        return _parse_guarded(data, MAX, _request)
    except PpspError as error:
        return error


def check(data: bytes) -> Request | None:
    fast = parse_request_fast(data)
    if fast is not None:
        assert strict(data) == fast, data
    return fast


@given(requests())
def test_every_encoded_request_agrees(request: Request) -> None:
    data = encode_request(request)
    fast = check(data)
    if fast is not None:
        assert fast == request


@given(
    st.sampled_from([Method.STAT_REPORT, Method.FIND, Method.DISCONNECT, Method.JOIN]),
    ids,
    ids,
    st.one_of(st.none(), ids, st.sampled_from([SWARM_ALL, SWARM_NIL])),
)
def test_the_fast_shapes_themselves(
    method: Method, peer: str, txid: str, swarm: str | None
) -> None:
    data = encode_request(Request(method, peer, txid, swarm_id=swarm))
    strict_result = strict(data)
    fast = check(data)
    printable = all(c not in "<>&" for c in peer + txid + (swarm or ""))
    if isinstance(strict_result, Request) and method is not Method.JOIN and printable:
        assert fast == strict_result  # the shapes this path exists for are taken
    if isinstance(strict_result, PpspError):
        assert fast is None  # and every 400 is left to the strict parser


FIND_HEAD = (
    b'<PPSPTrackerProtocol version="1.0"><Request>FIND</Request><PeerID>p</PeerID>'
    b"<TransactionID>t</TransactionID>"
)


@example(FIND_HEAD + b"</PPSPTrackerProtocol>")
@example(FIND_HEAD + b"<SwarmID>ALL</SwarmID></PPSPTrackerProtocol>")
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@given(requests(), st.data())
def test_mutated_documents(request: Request, data: st.DataObject) -> None:
    simple = Request(
        request.method, request.peer_id, request.transaction_id, swarm_id=request.swarm_id
    )
    doc = bytearray(encode_request(simple))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(doc) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            doc[position] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del doc[position]
        else:
            doc.insert(position, data.draw(st.sampled_from(b" <>&\"'\t\x00\xffa;")))
    check(bytes(doc))
