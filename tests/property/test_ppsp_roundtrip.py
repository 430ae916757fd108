"""Round-trips: encode -> parse gives the same object (PROTOCOL §2, §4, §6)."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import (
    encode_indication,
    encode_request,
    encode_response,
    encode_response_datagrams,
    merge_response_parts,
    parse_indication_untrusted,
    parse_message_untrusted,
    parse_request_untrusted,
    parse_response_untrusted,
)
from stunlike_tracker.ppsp.messages import Indication, Method, Request, Response

from .ppsp_strategies import indications, requests, responses

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 65536


@SETTINGS
@given(requests())
def test_request_round_trip(r: Request) -> None:
    data = encode_request(r)
    assert parse_request_untrusted(data, max_size=BIG) == r
    assert parse_message_untrusted(data) == r


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_every_method_round_trips(data: st.DataObject) -> None:
    for method in Method:
        r = data.draw(requests(method))
        assert parse_request_untrusted(encode_request(r), max_size=BIG) == r


@SETTINGS
@given(responses())
def test_response_round_trip(r: Response) -> None:
    data = encode_response(r)
    assert parse_response_untrusted(data) == r
    assert parse_message_untrusted(data) == r


@SETTINGS
@given(indications)
def test_indication_round_trip(i: Indication) -> None:
    data = encode_indication(i)
    assert parse_indication_untrusted(data) == i
    assert parse_message_untrusted(data) == i


@SETTINGS
@given(responses(with_part=False), st.integers(300, 2500))
def test_datagrams_parse_and_merge_back(r: Response, budget: int) -> None:
    datagrams = encode_response_datagrams(r, budget)
    assert datagrams == encode_response_datagrams(r, budget)  # deterministic
    parts = [parse_response_untrusted(d) for d in datagrams]
    assert merge_response_parts(parts) == r
    for data, part in zip(datagrams, parts, strict=True):
        # PROTOCOL §4: each part within the budget whenever its peers fit.
        assert len(data) <= budget or len(part.peers) <= 1
        assert dataclasses.replace(part, peers=(), part=None) == dataclasses.replace(r, peers=())
    if len(datagrams) > 1:
        assert [p.part.index for p in parts if p.part] == list(range(len(parts)))
        assert all(p.part is not None and p.part.count == len(parts) for p in parts)
        assert all(p.peers for p in parts)
    else:
        assert parts[0].part is None
