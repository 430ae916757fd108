"""Peer lists for JOIN/FIND (PROTOCOL §3 "Peer lists").

Cost is O(peers returned): we sample a bounded number of members from the
swarm's SEED and LEECH sets (the store samples in O(k)), drop the requester
and stale entries, and rank the sample by the requester's preferences. Ties
keep the sample's random order, so repeated FINDs spread the load.
"""

from __future__ import annotations

from dataclasses import dataclass

from stunlike_tracker.core.sybil import source_key, spread_by_source
from stunlike_tracker.ppsp.chunkmap import segment_covers
from stunlike_tracker.ppsp.messages import NatAbility, PeerMode, Representation
from stunlike_tracker.store.contract import TrackerStore
from stunlike_tracker.store.records import Membership, PeerRecord

# How many members to sample per wanted peer when preferences need ranking.
_OVERSAMPLE = 3
# ... and when one source crowds the first sample (PROTOCOL §8 Sybil limit).
_CROWDED_OVERSAMPLE = 9
# Chunk ranges of one request that rank peers (bounds the ranking work).
MAX_CHUNK_RANGES = 16


@dataclass(frozen=True, slots=True)
class ChunkRange:
    representation: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Preferences:
    requester_mode: PeerMode
    chunk_ranges: tuple[ChunkRange, ...] = ()
    nat: NatAbility | None = None


def chunk_ranges_of(content: tuple[Representation, ...]) -> tuple[ChunkRange, ...]:
    """Every chunk scope in a ContentGroup (JOIN start point, FIND range),
    at most ``MAX_CHUNK_RANGES`` of them."""
    ranges: list[ChunkRange] = []
    for rep in content:
        for seg in rep.segments:
            if seg.start is not None:
                end = seg.end if seg.end is not None and seg.end >= seg.start else seg.start
                ranges.append(ChunkRange(rep.id, seg.start, end))
                if len(ranges) >= MAX_CHUNK_RANGES:
                    return tuple(ranges)
    return tuple(ranges)


def covers(record: PeerRecord, membership: Membership, wanted: ChunkRange) -> bool:
    """Does the peer have (or, by its start point, will it have) the range?"""
    reported = False
    for swarm_id, rep in record.content_maps:
        if swarm_id != membership.swarm_id or rep.id != wanted.representation:
            continue
        reported = True
        if any(segment_covers(seg, wanted.start, wanted.end) for seg in rep.segments):
            return True
    if reported:
        return False
    if membership.mode is PeerMode.SEED:
        return True
    for rep in membership.content:
        if rep.id == wanted.representation:
            return any(seg.start is not None and seg.start <= wanted.start for seg in rep.segments)
    return False


def select_peers(
    store: TrackerStore,
    swarm_id: str,
    requester_id: str,
    want: int,
    prefs: Preferences,
    now: float,
    per_source: int | None = None,
) -> list[tuple[PeerRecord, Membership]]:
    """Up to ``want`` live members of the swarm, best first. A member whose
    timer has run out (``deadline <= now``) is never listed, even before
    the timer tick has retired it (PROTOCOL §3). With ``per_source``, one source
    address (IP, IPv6 /64) fills at most that many places while the sample
    holds peers of other sources (PROTOCOL §8 Sybil limit); a sample crowded by
    one source is drawn once more, larger, to find the others."""
    if want <= 0:
        return []
    ranked = bool(prefs.chunk_ranges) or prefs.nat is not None
    k = (want * _OVERSAMPLE if ranked else want) + 1  # +1: the requester may be drawn
    found = _live_sample(store, swarm_id, requester_id, k, ranked, prefs, now, want)
    if per_source is not None and per_source < want:
        taken, held = spread_by_source(found, _source_of, want, per_source)
        if held and len(taken) < want:
            # One source crowds the sample: look wider (still O(want), and
            # only then) so that peers of other sources are found unless
            # they are a very small minority of the swarm.
            k = want * _CROWDED_OVERSAMPLE + 1
            found = _live_sample(store, swarm_id, requester_id, k, True, prefs, now, want)
            taken, held = spread_by_source(found, _source_of, want, per_source)
        if len({_source_of(item) for item in found}) > 1:
            return taken
    return found[:want]


def _source_of(item: tuple[PeerRecord, Membership]) -> str:
    return source_key(item[0].reflexive.ip)


def _live_sample(
    store: TrackerStore,
    swarm_id: str,
    requester_id: str,
    k: int,
    both_modes: bool,
    prefs: Preferences,
    now: float,
    want: int,
) -> list[tuple[PeerRecord, Membership]]:
    """Up to ``k`` members from each mode set, live ones only, ranked."""
    sampled = store.sample_members(swarm_id, PeerMode.SEED, k)
    if both_modes or len(sampled) <= want or prefs.requester_mode is PeerMode.SEED:
        sampled += store.sample_members(swarm_id, PeerMode.LEECH, k)

    found: list[tuple[PeerRecord, Membership]] = []
    for peer_id in dict.fromkeys(sampled):
        if peer_id == requester_id:
            continue
        record = store.get_peer(peer_id)
        membership = record.membership(swarm_id) if record is not None else None
        if record is not None and membership is not None and record.deadline > now:
            found.append((record, membership))

    def score(item: tuple[PeerRecord, Membership]) -> tuple[int, bool, bool]:
        record, membership = item
        # Every range of the request counts: more covered ranges rank higher.
        in_range = sum(covers(record, membership, wanted) for wanted in prefs.chunk_ranges)
        seed_first = prefs.requester_mode is PeerMode.LEECH and membership.mode is PeerMode.SEED
        nat_match = prefs.nat is None or record.nat_ability is prefs.nat
        return (in_range, seed_first, nat_match)

    # Stable sort: equal scores keep the random sample order.
    if prefs.chunk_ranges or prefs.nat is not None:
        found.sort(key=score, reverse=True)
    elif prefs.requester_mode is PeerMode.LEECH:
        # The score's only varying part is then "a SEED, for a LEECH".
        found.sort(key=_is_seed, reverse=True)
    return found


def _is_seed(item: tuple[PeerRecord, Membership]) -> bool:
    return item[1].mode is PeerMode.SEED
