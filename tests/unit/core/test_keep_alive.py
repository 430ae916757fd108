"""A keep-alive STAT_REPORT (no statistics, no offer) takes a short path in the
core: same effects on the peer, same answer bytes, cached for retransmissions."""

from __future__ import annotations

from stunlike_tracker.core.effects import Transmit
from stunlike_tracker.ppsp import encode_request, encode_response
from stunlike_tracker.ppsp.messages import Method, PeerMode, Request, Response
from stunlike_tracker.ppsp.reasons import Reason

from .harness import Harness


def test_keep_alive_renews_the_timer_and_answers_the_bare_200() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x", PeerMode.SEED)
    h.now += 60
    request = encode_request(Request(Method.STAT_REPORT, "A", "ka-1"))
    effects = h.raw(s, request)
    assert effects == [
        Transmit(s.session_id, (encode_response(Response(200, "ka-1", Reason.OK)),), s.node_id)
    ]
    record = h.store.get_peer("A")
    assert record is not None and record.deadline == h.now + h.config.track_timeout
    assert h.tracker.answers["STAT_REPORT", 200] == 1
    # a retransmission is answered from the cache, not executed again
    h.now += 1
    assert h.raw(s, request) == effects
    assert h.tracker.replays == 1
    assert h.store.get_peer("A").deadline == record.deadline  # type: ignore[union-attr]


def test_keep_alive_and_an_empty_statistics_group_answer_alike() -> None:
    h = Harness()
    s, _ = h.connected("A")
    h.join(s, "A", "x")
    bare = h.raw(s, encode_request(Request(Method.STAT_REPORT, "A", "same")))
    h2 = Harness()
    s2, _ = h2.connected("A")
    h2.join(s2, "A", "x")
    empty = h2.raw(s2, encode_request(Request(Method.STAT_REPORT, "A", "same", stats=())))
    assert [e.datagrams for e in bare if isinstance(e, Transmit)] == [
        e.datagrams for e in empty if isinstance(e, Transmit)
    ]


def test_keep_alive_from_a_registered_peer_is_still_403() -> None:
    h = Harness()
    s, _ = h.connected("A")
    r = h.stat(s, "A")
    assert r.status == 403
