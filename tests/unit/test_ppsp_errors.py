"""PpspError: the one exception type that leaves a parser (ARCHITECTURE habit 4)."""

from __future__ import annotations

import pytest

from stunlike_tracker.ppsp import PpspError, Reason
from stunlike_tracker.ppsp.codec import _parse_guarded
from stunlike_tracker.ppsp.messages import Response, Status
from stunlike_tracker.ppsp.xmlsafe import Node


def test_defaults() -> None:
    err = PpspError()
    assert (err.status, err.reason, err.text) == (400, "Invalid Syntax", None)
    assert err.transaction_id is None and err.peer_id is None
    assert not err.answerable
    assert err.to_response() is None
    assert str(err) == "400 Invalid Syntax"


def test_answerable_and_response() -> None:
    err = PpspError(
        Reason.VERSION_NOT_SUPPORTED,
        text=Status.VERSION_NOT_SUPPORTED_TEXT,
        transaction_id="T",
        peer_id="P",
    )
    assert err.answerable
    assert err.to_response() == Response(
        status=400, transaction_id="T", reason="Version Not Supported", text="VERSION NOT SUPPORTED"
    )
    assert "transaction_id='T'" in repr(err)


def test_with_ids_fills_only_missing() -> None:
    err = PpspError(Reason.NOT_JOINED, peer_id="P")
    filled = err.with_ids("T", "Q")
    assert (filled.status, filled.reason, filled.transaction_id, filled.peer_id) == (
        403,
        "Not Joined",
        "T",
        "P",
    )
    assert err.transaction_id is None  # the original is unchanged
    assert filled.with_ids(None, None).transaction_id == "T"


def test_is_an_exception() -> None:
    assert issubclass(PpspError, Exception)


@pytest.mark.parametrize("boom", [ValueError("x"), RecursionError(), KeyError("k"), MemoryError()])
def test_unexpected_exceptions_become_ppsp_errors(boom: Exception) -> None:
    # Defence in depth: even a bug inside a decoder leaves as PpspError, and
    # still carries the IDs read so far (ARCHITECTURE habit 4).
    def decoder(root: Node) -> None:
        raise boom

    data = (
        b'<PPSPTrackerProtocol version="1.0"><PeerID>P</PeerID>'
        b"<TransactionID>T</TransactionID></PPSPTrackerProtocol>"
    )
    with pytest.raises(PpspError) as info:
        _parse_guarded(data, 2048, decoder)
    assert (info.value.status, info.value.reason) == (400, "Malformed Message")
    assert (info.value.transaction_id, info.value.peer_id) == ("T", "P")
    assert info.value.__cause__ is boom


def test_subject_follows_the_reason_phrase() -> None:
    err = PpspError(Reason.MISSING, "SwarmID", transaction_id="T")
    assert (err.status, err.kind, err.reason) == (400, Reason.MISSING, "Missing SwarmID")
    assert err.with_ids(None, "P").reason == "Missing SwarmID"


def test_every_reason_has_a_unique_phrase_and_a_protocol_status() -> None:
    phrases = [str(reason) for reason in Reason]
    assert len(set(phrases)) == len(phrases)
    assert {reason.status for reason in Reason} <= set(Status.TEXT)
    assert str(Reason.NOT_JOINED) == "Not Joined" and Reason.NOT_JOINED.status == 403
    decoded: str = "Target Gone"  # a decoded response's reason compares equal
    assert decoded == Reason.TARGET_GONE
