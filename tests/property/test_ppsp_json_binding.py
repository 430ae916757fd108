"""The JSON binding (PROTOCOL §14): exact round-trips of everything the
parser can produce, and never-crash on any input (ARCHITECTURE habits 4, 9)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import PpspError
from stunlike_tracker.ppsp.json_binding import (
    ActionResult,
    JsonRequest,
    JsonResponse,
    SwarmAction,
    encode_indication_json,
    encode_request_json,
    encode_response_json,
    error_response_json,
    expand_swarm_actions,
    parse_json_indication_untrusted,
    parse_json_request_untrusted,
    parse_json_response_untrusted,
)
from stunlike_tracker.ppsp.messages import Indication, Method, PeerMode, Request, Status

from .ppsp_strategies import (
    PRINTABLE,
    indications,
    optional,
    peer_infos,
    requests,
    responses,
    swarm_ids,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 20

swarm_actions = st.builds(
    SwarmAction,
    swarm_id=swarm_ids,
    action=st.sampled_from(["JOIN", "LEAVE"]),
    peer_mode=optional(st.sampled_from(list(PeerMode))),
)


@st.composite
def json_requests(draw: st.DrawFn) -> JsonRequest:
    request = draw(requests())
    actions: tuple[SwarmAction, ...] = ()
    if request.method is Method.CONNECT:
        actions = tuple(draw(st.lists(swarm_actions, max_size=3)))
    return JsonRequest(request, actions)


action_results = st.builds(
    ActionResult,
    swarm_id=swarm_ids,
    action=st.sampled_from(["JOIN", "LEAVE"]),
    status=st.sampled_from(sorted(Status.TEXT)),
    reason=st.sampled_from(["", "OK", "Not Joined"]),
    peers=st.lists(peer_infos, max_size=2).map(tuple),
)


@SETTINGS
@given(json_requests())
def test_requests_round_trip(json_request: JsonRequest) -> None:
    data = encode_request_json(json_request)
    assert parse_json_request_untrusted(data, max_size=BIG, max_depth=32) == json_request


@SETTINGS
@given(responses(), st.lists(action_results, max_size=2))
def test_responses_round_trip(response: Any, actions: list[ActionResult]) -> None:
    data = encode_response_json(response, actions)
    assert parse_json_response_untrusted(data, max_size=BIG) == JsonResponse(
        response, tuple(actions)
    )


@SETTINGS
@given(indications)
def test_indications_round_trip(indication: Indication) -> None:
    data = encode_indication_json(indication)
    assert parse_json_indication_untrusted(data) == indication


@SETTINGS
@given(json_requests())
def test_swarm_actions_expand_into_valid_requests(json_request: JsonRequest) -> None:
    """Every derived request is one the XML binding could carry too: its
    transaction id is a valid, distinct id (PROTOCOL §14.2)."""
    expanded = expand_swarm_actions(json_request)
    assert expanded[0] == json_request.request
    assert len(expanded) == 1 + len(json_request.swarm_actions)
    ids = [r.transaction_id for r in expanded]
    assert len(set(ids)) == len(ids)
    for request, action in zip(expanded[1:], json_request.swarm_actions, strict=True):
        assert 1 <= len(request.transaction_id) <= 64
        assert request.swarm_id == action.swarm_id
        assert request.method is (Method.JOIN if action.action == "JOIN" else Method.DISCONNECT)


PARSERS = (
    parse_json_request_untrusted,
    parse_json_response_untrusted,
    parse_json_indication_untrusted,
)


def _check(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except PpspError as exc:
            assert exc.status == 400
            body = json.loads(error_response_json(exc))
            assert (body["error_code"], body["status"]) in ((1, 400), (2, 400))
            assert body["transaction_id"] == exc.transaction_id


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_never_crash(data: bytes) -> None:
    _check(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(alphabet=PRINTABLE, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "request_type",
                    "transaction_id",
                    "peer_id",
                    "request_data",
                    "swarm_id",
                    "peer_addr",
                    "ip_address",
                    "address",
                    "port",
                    "ice_offer",
                    "candidates",
                    "stat",
                    "swarm_action",
                    "action",
                    "peer_num",
                    "response_data",
                    "error_code",
                    "peer_group",
                    "indication_data",
                    "peer_info",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@SETTINGS
@given(json_values)
def test_any_json_never_crashes(value: Any) -> None:
    _check(json.dumps(value).encode())
    if isinstance(value, dict):
        _check(json.dumps({"version": 1, **value}).encode())


@SETTINGS
@given(json_requests(), st.data())
def test_mutated_requests_never_crash(json_request: JsonRequest, data: st.DataObject) -> None:
    raw = bytearray(encode_request_json(json_request))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    _check(bytes(raw))


@SETTINGS
@given(st.integers(1, 3000))
def test_deep_nesting_is_refused_before_parsing(depth: int) -> None:
    data = b"[" * depth + b"]" * depth
    try:
        parse_json_request_untrusted(data)
    except PpspError as exc:
        assert exc.status == 400
    else:
        raise AssertionError("a bare array is not a request")


def test_request_type_is_required_to_be_known() -> None:
    request = Request(Method.FIND, "p", "t", swarm_id="s")
    data = encode_request_json(request).replace(b'"FIND"', b'"find"')
    try:
        parse_json_request_untrusted(data)
    except PpspError as exc:
        assert (exc.status, exc.reason, exc.transaction_id) == (400, "Unknown Request", "t")
    else:
        raise AssertionError("request_type is case-sensitive")
