"""Property tests for candidate priorities and PROTOCOL §8 hygiene."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stunlike_tracker.ice.candidates import (
    CandidateType,
    candidate_priority,
    is_acceptable_candidate,
    priority_type_preference,
    sanitize_offer,
)
from stunlike_tracker.ppsp.messages import AddressType, AddrType, IceOffer, PeerAddress

ips = st.one_of(
    st.ip_addresses().map(str),
    st.text(max_size=45),
    st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "::ffff:127.0.0.1", "fe80::1%lo"]),
)
addresses = st.builds(
    PeerAddress,
    addr_type=st.sampled_from(list(AddrType)),
    ip=ips,
    port=st.integers(-1, 70000),
    type=st.one_of(st.none(), st.sampled_from(list(AddressType))),
    priority=st.one_of(st.none(), st.integers(-1, 2**32)),
    foundation=st.one_of(st.none(), st.text(max_size=40)),
)
offers = st.builds(
    IceOffer,
    id=st.just("o"),
    ufrag=st.just("abcd"),
    pwd=st.just("p" * 22),
    fingerprint=st.none(),
    candidates=st.lists(addresses, max_size=20).map(tuple),
)


@given(
    st.sampled_from(list(CandidateType)),
    st.integers(0, 65535),
    st.integers(1, 256),
)
def test_priority_is_a_valid_ice_priority(t: CandidateType, local: int, component: int) -> None:
    p = candidate_priority(t, local_preference=local, component=component)
    # The formula gives 0 only for relay, local preference 0, component 256,
    # which RFC 8445 §5.1.2.1 rules out (priority is at least 1).
    assert 0 < p < 2**31 or (t, local, component) == (CandidateType.RELAY, 0, 256)
    assert priority_type_preference(p) == {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}[t]


@given(addresses, st.booleans())
def test_hygiene_never_crashes_and_lan_mode_only_relaxes(a: PeerAddress, lan: bool) -> None:
    internet = is_acceptable_candidate(a, lan_mode=False)
    assert isinstance(is_acceptable_candidate(a, lan_mode=lan), bool)
    if internet:
        assert is_acceptable_candidate(a, lan_mode=True)


@given(offers, st.booleans(), st.integers(0, 10))
def test_sanitize_invariants(offer: IceOffer, lan: bool, cap: int) -> None:
    clean = sanitize_offer(offer, lan_mode=lan, max_candidates=cap)
    assert (clean.id, clean.ufrag, clean.pwd, clean.fingerprint) == (
        offer.id,
        offer.ufrag,
        offer.pwd,
        offer.fingerprint,
    )
    assert len(clean.candidates) <= cap
    assert all(is_acceptable_candidate(c, lan_mode=lan) for c in clean.candidates)
    # A sub-sequence of the input, in the input's order.
    it = iter(offer.candidates)
    assert all(any(c is d for d in it) for c in clean.candidates)
    # Idempotent.
    assert sanitize_offer(clean, lan_mode=lan, max_candidates=cap) == clean
