"""The keep-alive answer's template gives exactly the bytes of the encoder (PROTOCOL §2, §3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stunlike_tracker.ppsp import encode_response
from stunlike_tracker.ppsp.encode import bare_response
from stunlike_tracker.ppsp.messages import Response
from stunlike_tracker.ppsp.reasons import Reason

from .ppsp_strategies import ids


@settings(max_examples=300, deadline=None)
@given(transaction_id=ids, reason=st.sampled_from(list(Reason)))
def test_bare_response_is_encode_response_of_the_same_response(
    transaction_id: str, reason: Reason
) -> None:
    expected = encode_response(Response(reason.status, transaction_id, reason))
    assert bare_response(reason.status, reason, transaction_id) == expected
