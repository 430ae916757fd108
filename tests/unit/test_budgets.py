"""Per-source budgets (server/budgets.py): pure, ``now`` passed in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stunlike_tracker.core.sybil import source_key
from stunlike_tracker.server.budgets import BudgetLimits, Budgets, Verdict


def test_source_key_groups_ipv6_by_64_and_maps_ipv4_mapped_addresses() -> None:
    assert source_key("198.51.100.7") == "198.51.100.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert source_key("2001:db8:1:2::1", 48) == source_key("2001:db8:1:ff::1", 48)


def test_sessions_per_source_are_capped_and_released() -> None:
    b = Budgets(BudgetLimits(address_sessions=3, address_half_open=10, ban_strikes=1000))
    for port in range(3):
        assert b.admit_session(("198.51.100.7", port), 0.0) is None
        b.session_opened(("198.51.100.7", port), 0.0)
    assert b.admit_session(("198.51.100.7", 99), 0.0) is Verdict.ADDRESS_SESSIONS
    # Another source is not affected.
    assert b.admit_session(("198.51.100.8", 1), 0.0) is None
    # IPv6: the whole /64 is one source.
    for n in range(3):
        b.session_opened((f"2001:db8::{n + 1}", 5), 0.0)
    assert b.admit_session(("2001:db8::ffff", 5), 0.0) is Verdict.ADDRESS_SESSIONS
    b.session_closed(("198.51.100.7", 0))
    assert b.admit_session(("198.51.100.7", 99), 0.0) is None
    assert b.drops[Verdict.ADDRESS_SESSIONS.value] == 2


def test_half_open_caps_per_source_and_global() -> None:
    b = Budgets(BudgetLimits(address_half_open=2, global_half_open=3, ban_strikes=1000))
    b.session_opened(("198.51.100.7", 1), 0.0)
    b.session_opened(("198.51.100.7", 2), 0.0)
    assert b.admit_session(("198.51.100.7", 3), 0.0) is Verdict.ADDRESS_HALF_OPEN
    b.handshake_completed(("198.51.100.7", 1))
    assert b.admit_session(("198.51.100.7", 3), 0.0) is None
    b.session_opened(("198.51.100.7", 3), 0.0)
    b.session_opened(("198.51.100.9", 3), 0.0)
    assert b.half_open == 3
    assert b.admit_session(("203.0.113.1", 3), 0.0) is Verdict.GLOBAL_HALF_OPEN
    b.session_closed(("198.51.100.9", 3))
    assert b.half_open == 2
    assert b.admit_session(("203.0.113.1", 3), 0.0) is None


def test_new_associations_are_rate_limited_globally() -> None:
    b = Budgets(BudgetLimits(handshake_rate=10, handshake_burst=20, address_half_open=1000))
    admitted = 0
    for n in range(100):
        address = (f"198.51.100.{n % 50}", n)
        if b.admit_session(address, 0.0) is None:
            b.session_opened(address, 0.0)
            admitted += 1
    assert admitted == 20
    assert b.drops[Verdict.HANDSHAKE_RATE.value] == 80
    assert b.admit_session(("203.0.113.1", 1), 1.0) is None  # 10 back after 1 s
    assert Budgets(BudgetLimits(handshake_rate=0)).admit_session(("203.0.113.1", 1), 0.0) is None


def test_session_bucket_drops_a_flood_and_refills() -> None:
    b = Budgets(BudgetLimits(session_rate=10, session_burst=20, ban_strikes=1000))
    a = ("198.51.100.7", 1)
    b.session_opened(a, 0.0)
    verdicts = [b.admit_datagram(a, 0.0) for _ in range(100)]
    assert verdicts.count(None) == 20
    assert verdicts[20:] == [Verdict.SESSION_RATE] * 80
    assert b.admit_datagram(a, 1.0) is None  # 10 tokens back after 1 s
    # Another association of the same source has its own bucket.
    b.session_opened(("198.51.100.7", 2), 0.0)
    assert b.admit_datagram(("198.51.100.7", 2), 0.0) is None


def test_an_association_over_budget_hears_503_once_a_second() -> None:
    b = Budgets(BudgetLimits(session_rate=1, session_burst=1, ban_strikes=1000))
    a = ("198.51.100.7", 1)
    b.session_opened(a, 0.0)
    assert b.admit_datagram(a, 0.0) is None
    assert b.admit_datagram(a, 0.0) is Verdict.SESSION_RATE
    answered = [b.may_answer_overloaded(a, 0.0) for _ in range(10)]
    assert answered == [True] + [False] * 9
    assert b.may_answer_overloaded(a, 1.0)
    assert not b.may_answer_overloaded(("198.51.100.9", 1), 1.0)  # no association
    quiet = Budgets(BudgetLimits(overloaded_answers=0))
    quiet.session_opened(a, 0.0)
    assert not quiet.may_answer_overloaded(a, 0.0)


def test_source_bucket_spans_its_associations() -> None:
    limits = BudgetLimits(address_rate=10, address_burst=30, session_burst=1000, ban_strikes=1000)
    b = Budgets(limits)
    for port in range(3):
        b.session_opened(("198.51.100.7", port), 0.0)
    admitted = sum(
        b.admit_datagram(("198.51.100.7", port), 0.0) is None
        for _ in range(20)
        for port in range(3)
    )
    assert admitted == 30


def test_repeat_offenders_are_banned_then_forgiven() -> None:
    limits = BudgetLimits(session_rate=1, session_burst=1, ban_strikes=5, ban_duration=60)
    b = Budgets(limits)
    a = ("198.51.100.7", 1)
    b.session_opened(a, 0.0)
    assert b.admit_datagram(a, 0.0) is None
    for _ in range(5):
        assert b.admit_datagram(a, 0.0) is Verdict.SESSION_RATE
    assert b.banned == 1
    assert b.admit_datagram(a, 30.0) is Verdict.BANNED
    assert b.admit_session(("198.51.100.7", 2), 30.0) is Verdict.BANNED
    assert b.admit_session(("198.51.100.8", 2), 30.0) is None
    b.prune(61.0)
    assert b.banned == 0
    assert b.admit_datagram(a, 61.0) is None


def test_unknown_addresses_spend_nothing_and_leave_no_state() -> None:
    b = Budgets()
    for n in range(1000):
        assert b.admit_datagram((f"10.0.{n // 256}.{n % 256}", 1), 0.0) is None
    assert b.sources == 0


def test_a_clock_stepping_back_locks_nobody_out() -> None:
    b = Budgets(BudgetLimits(session_rate=10, session_burst=2, ban_strikes=1000))
    a = ("198.51.100.7", 1)
    b.session_opened(a, 100.0)
    assert b.admit_datagram(a, 100.0) is None
    assert b.admit_datagram(a, 50.0) is None
    assert b.admit_datagram(a, 50.0) is Verdict.SESSION_RATE
    assert b.admit_datagram(a, 100.2) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["open", "complete", "close"]),
            st.sampled_from(["198.51.100.7", "198.51.100.8", "2001:db8::1", "2001:db8::2"]),
            st.integers(1, 4),
        ),
        max_size=60,
    )
)
def test_counts_never_drift(ops: list[tuple[str, str, int]]) -> None:
    """Whatever order associations open, finish and close in, the counts
    match the associations open, and nothing is left once all are closed."""
    b = Budgets()
    live: dict[tuple[str, int], bool] = {}  # address -> half-open
    for op, ip, port in ops:
        address = (ip, port)
        if op == "open":
            b.session_opened(address, 0.0)
            live[address] = True
        elif op == "complete":
            b.handshake_completed(address)
            if address in live:
                live[address] = False
        else:
            b.session_closed(address)
            live.pop(address, None)
        assert b.half_open == sum(live.values())
    for address in list(live):
        b.session_closed(address)
    assert b.half_open == 0 and b.sources == 0
