"""Per-source budgets checked before any decryption or parsing (PROTOCOL §8).

Pure: no clock, no socket; ``now`` is passed in and the endpoint acts on
the verdicts. The endpoint asks, cheapest first:

1. :meth:`Budgets.admit_datagram` for every DTLS datagram from an address
   that has an association (its source proved itself in the cookie
   exchange): the ban list, the token bucket of its source (the IP, or the
   /64 of an IPv6 address) and the token bucket of the association. Over
   budget: dropped before decryption.
2. :meth:`Budgets.admit_session` once a ClientHello's cookie has checked out,
   before any per-association memory exists: the ban list, the global
   half-open cap, and the source's caps on half-open handshakes and on
   live associations. Over budget: dropped, no reply.

Datagrams from addresses without an association get no per-address state
at all (a spoofed flood could otherwise fill the tables): their only path
is the stateless cookie exchange, which never answers with more bytes than
it received. For the same reason only sources that proved their address
collect strikes; ``ban_strikes`` strikes within ``ban_window`` put the
source on the ban list for ``ban_duration``.

Every refusal is counted in ``drops`` by reason (plain Counter increments,
exported by the server's metrics).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from stunlike_tracker.core.sybil import source_key

Address = tuple[str, int]


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Caps on what one source may cost the tracker (docs/SECURITY.md)."""

    address_rate: float = field(
        default=400.0,
        metadata=_doc("DTLS datagrams per second one source IP (IPv6: /64) may send"),
    )
    address_burst: float = field(
        default=800.0, metadata=_doc("datagrams a source IP may send at once above its rate")
    )
    session_rate: float = field(
        default=50.0,
        metadata=_doc(
            "datagrams per second one DTLS association may send "
            "(the core answers 503 above peer_rate; this drops before decryption)"
        ),
    )
    session_burst: float = field(
        default=100.0, metadata=_doc("datagrams an association may send at once above its rate")
    )
    address_sessions: int = field(
        default=256,
        metadata=_doc("live DTLS associations per source IP (IPv6: /64), handshakes included"),
    )
    address_half_open: int = field(
        default=16, metadata=_doc("unfinished (cookie-verified) handshakes per source IP")
    )
    global_half_open: int = field(
        default=1024, metadata=_doc("unfinished handshakes across all sources")
    )
    handshake_rate: float = field(
        default=200.0,
        metadata=_doc(
            "new DTLS associations per second across all sources (each costs a key "
            "exchange and a signature); 0: no limit"
        ),
    )
    handshake_burst: float = field(
        default=400.0, metadata=_doc("new associations at once above handshake_rate")
    )
    half_open_timeout: float = field(
        default=10.0, metadata=_doc("seconds an unfinished handshake may hold its memory")
    )
    ban_strikes: int = field(
        default=50, metadata=_doc("over-budget events within ban_window that ban a source")
    )
    ban_window: float = field(default=10.0, metadata=_doc("seconds over which strikes add up"))
    ban_duration: float = field(
        default=60.0, metadata=_doc("seconds a banned source is ignored (DTLS only)")
    )
    overloaded_answers: float = field(
        default=1.0,
        metadata=_doc(
            "503s per second an association over its budget still gets (the rest "
            "of its datagrams are dropped before decryption)"
        ),
    )
    ipv6_prefix: int = field(
        default=64, metadata=_doc("IPv6 sources sharing this prefix length share one budget")
    )


# For capacity measurements on loopback (stunlike-tracker load): no budget binds.
UNLIMITED = BudgetLimits(
    address_rate=1e12,
    address_burst=1e12,
    session_rate=1e12,
    session_burst=1e12,
    address_sessions=10**9,
    address_half_open=10**9,
    global_half_open=10**9,
    handshake_rate=0.0,
    ban_strikes=10**9,
)


class Verdict(StrEnum):
    """Why a datagram or a new association is refused (the drop reason)."""

    BANNED = "budget-banned"
    ADDRESS_RATE = "budget-address-rate"
    SESSION_RATE = "budget-session-rate"
    ADDRESS_SESSIONS = "budget-address-sessions"
    ADDRESS_HALF_OPEN = "budget-address-half-open"
    GLOBAL_HALF_OPEN = "budget-global-half-open"
    HANDSHAKE_RATE = "budget-handshake-rate"


class _Bucket:
    """A token bucket: ``rate`` per second, at most ``burst`` saved."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now

    def take(self, rate: float, burst: float, now: float) -> bool:
        # A clock stepped backwards must not lock anyone out: no negative refill.
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(burst, self.tokens + elapsed * rate)
            self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class _Source:
    """What one source (IP or IPv6 /64) holds: associations and a bucket."""

    __slots__ = ("bucket", "half_open", "sessions", "strike_count", "strike_since")

    def __init__(self, burst: float, now: float) -> None:
        self.bucket = _Bucket(burst, now)
        self.sessions = 0
        self.half_open = 0
        self.strike_count = 0
        self.strike_since = now


class _Held:
    """One association's budget: its bucket and the source it counts against."""

    __slots__ = ("bucket", "half_open", "key", "notices", "source")

    def __init__(self, bucket: _Bucket, key: str, source: _Source) -> None:
        self.bucket = bucket
        self.key = key
        self.source = source
        self.half_open = True
        self.notices = _Bucket(1.0, bucket.stamp)


class Budgets:
    def __init__(
        self, limits: BudgetLimits | None = None, drops: Counter[str] | None = None
    ) -> None:
        self.limits = limits or BudgetLimits()
        # The endpoint passes its own drop counter, so one Counter has them all.
        self.drops: Counter[str] = drops if drops is not None else Counter()
        self.half_open = 0
        self._sources: dict[str, _Source] = {}
        self._sessions: dict[Address, _Held] = {}
        self._banned: dict[str, float] = {}
        self._handshakes = _Bucket(self.limits.handshake_burst, float("-inf"))

    # ------------------------------------------------------------------
    # verdicts
    # ------------------------------------------------------------------
    def admit_datagram(self, address: Address, now: float) -> Verdict | None:
        """A datagram for an existing association: None to process it."""
        held = self._sessions.get(address)
        if held is None:
            return None  # not an association this table knows: nothing to spend
        key, source = held.key, held.source
        limits = self.limits
        if self._banned and self._is_banned(key, now):
            return self._refuse(Verdict.BANNED)
        if not source.bucket.take(limits.address_rate, limits.address_burst, now):
            return self._strike(source, key, Verdict.ADDRESS_RATE, now)
        if not held.bucket.take(limits.session_rate, limits.session_burst, now):
            return self._strike(source, key, Verdict.SESSION_RATE, now)
        return None

    def may_answer_overloaded(self, address: Address, now: float) -> bool:
        """After ``SESSION_RATE``: may this association still get a 503 for
        the refused datagram (at most ``overloaded_answers`` per second)?"""
        held = self._sessions.get(address)
        rate = self.limits.overloaded_answers
        return held is not None and rate > 0 and held.notices.take(rate, 1.0, now)

    def admit_session(self, address: Address, now: float) -> Verdict | None:
        """A new association whose cookie checked out: None to allocate it
        (and then :meth:`session_opened` must follow)."""
        key = self._key(address[0])
        limits = self.limits
        if self._banned and self._is_banned(key, now):
            return self._refuse(Verdict.BANNED)
        if self.half_open >= limits.global_half_open:
            return self._refuse(Verdict.GLOBAL_HALF_OPEN)
        source = self._sources.get(key)
        if source is not None:
            if source.sessions >= limits.address_sessions:
                return self._strike(source, key, Verdict.ADDRESS_SESSIONS, now)
            if source.half_open >= limits.address_half_open:
                return self._strike(source, key, Verdict.ADDRESS_HALF_OPEN, now)
        # Last: only a handshake that will go ahead spends the global budget.
        rate = limits.handshake_rate
        if rate > 0 and not self._handshakes.take(rate, limits.handshake_burst, now):
            return self._refuse(Verdict.HANDSHAKE_RATE)
        return None

    # ------------------------------------------------------------------
    # bookkeeping, called by the endpoint as associations come and go
    # ------------------------------------------------------------------
    def session_opened(self, address: Address, now: float) -> None:
        if address in self._sessions:
            self.session_closed(address)  # replaced: never leak a count
        key = self._key(address[0])
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = _Source(self.limits.address_burst, now)
        source.sessions += 1
        source.half_open += 1
        self.half_open += 1
        self._sessions[address] = _Held(_Bucket(self.limits.session_burst, now), key, source)

    def handshake_completed(self, address: Address) -> None:
        held = self._sessions.get(address)
        if held is not None and held.half_open:
            held.half_open = False
            held.source.half_open -= 1
            self.half_open -= 1

    def session_closed(self, address: Address) -> None:
        held = self._sessions.pop(address, None)
        if held is None:
            return
        source = held.source
        source.sessions -= 1
        if held.half_open:
            source.half_open -= 1
            self.half_open -= 1
        if source.sessions <= 0:
            self._sources.pop(held.key, None)

    def prune(self, now: float) -> None:
        """Forget expired bans (call it every few seconds)."""
        for key in [k for k, until in self._banned.items() if until <= now]:
            del self._banned[key]

    @property
    def banned(self) -> int:
        return len(self._banned)

    @property
    def sources(self) -> int:
        return len(self._sources)

    # ------------------------------------------------------------------
    def _key(self, ip: str) -> str:
        return source_key(ip, self.limits.ipv6_prefix)

    def _is_banned(self, key: str, now: float) -> bool:
        until = self._banned.get(key)
        if until is None:
            return False
        if until <= now:
            del self._banned[key]
            return False
        return True

    def _refuse(self, verdict: Verdict) -> Verdict:
        self.drops[verdict.value] += 1
        return verdict

    def _strike(self, source: _Source | None, key: str, verdict: Verdict, now: float) -> Verdict:
        self.drops[verdict.value] += 1
        if source is None:
            return verdict
        limits = self.limits
        if now - source.strike_since > limits.ban_window:
            source.strike_since = now
            source.strike_count = 0
        source.strike_count += 1
        if source.strike_count >= limits.ban_strikes:
            self._banned[key] = now + limits.ban_duration
            source.strike_count = 0
            self.drops["budget-bans"] += 1
        return verdict
