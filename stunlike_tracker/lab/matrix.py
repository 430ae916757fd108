"""The connectivity matrix: every ordered (seeder NAT, leecher NAT) pair,
with and without a TURN relay, compared with what RFC 4787/8445 predict.

The peer implementation is injected: a *runner factory* receives the lab and
its coturn and returns (as a context manager, so it can start and stop what
it needs) a ``run_pair`` callable::

    run_pair(lab, seeder_host, leecher_host, relay, timeout) -> PairResult
                                                  (or an awaitable of one)

``relay`` says whether the peers get TURN credentials for the lab's coturn;
``timeout`` bounds the ICE connectivity checks in seconds. The seeder is the
ICE-controlled side, the leecher the controlling one. The seam's types live
in :mod:`stunlike_tracker.lab.pairs`; :mod:`stunlike_tracker.lab.runners`
maps names (``lab matrix --runner NAME``) to factories.

Expected outcomes (see interop/README.md for the reasoning): with a relay
every ordered pair connects; without one, a symmetric NAT against a
symmetric or port-restricted cone NAT fails in either order and everything
else connects. Two hosts behind one NAT (``shared``) connect either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from stunlike_tracker.lab.coturn import Coturn
from stunlike_tracker.lab.pairs import Outcome, PairResult, RunnerFactory, RunPair
from stunlike_tracker.lab.topology import ABBREV, NAT_TYPES, LanSpec, Topology

SHARED: Final = "shared"
"""Row/column name for two hosts behind one (port-restricted cone) NAT."""
SHARED_NAT: Final = "port-restricted-cone"
MATRIX_TYPES: Final = NAT_TYPES
"""NAT types of the matrix, in display order."""

# Pairs plain ICE cannot punch (no relay): both directions listed.
_UNPUNCHABLE: Final = frozenset(
    {
        ("symmetric", "symmetric"),
        ("symmetric", "port-restricted-cone"),
        ("port-restricted-cone", "symmetric"),
    }
)


def expected_outcome(seeder_nat: str, leecher_nat: str, relay: bool, ipv6: bool = False) -> Outcome:
    """The outcome RFC 4787 NAT behaviours and RFC 8445 checks predict.
    In a dual-stack lab (``ipv6``) every pair connects: IPv6 has no NAT, and
    two stateful firewalls open for each other's checks."""
    for t in (seeder_nat, leecher_nat):
        if t not in MATRIX_TYPES and t != SHARED:
            raise ValueError(f"unknown NAT type {t!r}")
    if relay or ipv6 or SHARED in (seeder_nat, leecher_nat):
        return "connected"
    return "failed" if (seeder_nat, leecher_nat) in _UNPUNCHABLE else "connected"


@dataclasses.dataclass(frozen=True)
class Case:
    seeder_nat: str
    leecher_nat: str
    relay: bool
    seeder_host: str
    leecher_host: str
    ipv6: bool = False

    @property
    def expected(self) -> Outcome:
        return expected_outcome(self.seeder_nat, self.leecher_nat, self.relay, self.ipv6)


@dataclasses.dataclass(frozen=True)
class CaseResult:
    case: Case
    result: PairResult
    elapsed_s: float

    @property
    def match(self) -> bool:
        return self.result.outcome == self.case.expected


def _lan_name(nat_type: str, side: int) -> str:
    return f"{ABBREV[nat_type]}{side}"


def matrix_lans(
    types: Sequence[str] = MATRIX_TYPES, *, shared: bool = True, loss_pct: int = 0
) -> list[LanSpec]:
    """Two LANs per NAT type (seeders in ``<abbr>1``, leechers in ``<abbr>2``,
    so a type meets itself across two NATs) plus the ``shared`` LAN."""
    lans = [LanSpec(_lan_name(t, side), t, loss_pct=loss_pct) for t in types for side in (1, 2)]
    if shared:
        lans.append(LanSpec(SHARED, SHARED_NAT, hosts=2, loss_pct=loss_pct))
    return lans


def plan_cases(
    types: Sequence[str] = MATRIX_TYPES,
    *,
    relay_modes: Sequence[bool] = (False, True),
    shared: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
    ipv6: bool = False,
) -> list[Case]:
    """Cases for a lab built from :func:`matrix_lans` with the same types:
    every ordered pair of ``types`` (or just ``pairs``) per relay mode."""
    wanted = list(pairs) if pairs is not None else [(s, t) for s in types for t in types]
    cases = []
    for relay in relay_modes:
        for s, t in wanted:
            if SHARED in (s, t):
                continue
            cases.append(Case(s, t, relay, _lan_name(s, 1), _lan_name(t, 2), ipv6))
        if shared:
            cases.append(Case(SHARED, SHARED, relay, f"{SHARED}-1", f"{SHARED}-2", ipv6))
    return cases


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects too
    )


async def _call(run_pair: RunPair, lab: Topology, case: Case, ice_timeout: float) -> PairResult:
    args = (lab, case.seeder_host, case.leecher_host, case.relay, ice_timeout)
    if _is_async(run_pair):
        res = run_pair(*args)
    else:
        # A blocking run_pair (which may run its own event loop) gets a thread.
        res = await asyncio.to_thread(run_pair, *args)
    if inspect.isawaitable(res):
        res = await res
    if not isinstance(res, PairResult):
        raise TypeError(f"run_pair returned {res!r}, not a PairResult")
    return res


async def run_cases(
    lab: Topology,
    cases: Sequence[Case],
    run_pair: RunPair,
    *,
    ice_timeout: float = 5.0,
    on_result: Callable[[CaseResult], None] | None = None,
) -> MatrixReport:
    """Run the cases one after another (NAT state is reset between them, so
    a restricted cone opened by one case does not help the next). A
    synchronous ``run_pair`` runs in a worker thread; an ``async`` one (or
    one returning an awaitable) is awaited."""
    results = []
    t0 = time.monotonic()
    for case in cases:
        lab.reset_nat_state()
        start = time.monotonic()
        res = await _call(run_pair, lab, case, ice_timeout)
        cr = CaseResult(case, res, time.monotonic() - start)
        results.append(cr)
        if on_result is not None:
            on_result(cr)
    return MatrixReport(results, timeout=ice_timeout, elapsed_s=time.monotonic() - t0)


def run_matrix(
    lab: Topology,
    coturn: Coturn,
    runner: RunnerFactory,
    cases: Sequence[Case],
    *,
    timeout: float = 5.0,
    on_result: Callable[[CaseResult], None] | None = None,
) -> MatrixReport:
    """The entry point: set the runner up, run every case, return the report."""

    async def go() -> MatrixReport:
        with runner(lab, coturn) as run_pair:
            return await run_cases(lab, cases, run_pair, ice_timeout=timeout, on_result=on_result)

    return asyncio.run(go())


# ---------------------------------------------------------------------------
# the report


@dataclasses.dataclass
class MatrixReport:
    results: list[CaseResult]
    timeout: float
    elapsed_s: float = 0.0

    @property
    def all_match(self) -> bool:
        return all(r.match for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 exactly when every outcome is the expected one."""
        return 0 if self.results and self.all_match else 1

    def median_connect_ms_by_pair_type(self) -> dict[str, float]:
        by_type: dict[str, list[float]] = {}
        for r in self.results:
            res = r.result
            if res.outcome == "connected" and res.connect_ms is not None:
                by_type.setdefault(res.pair_type or "unknown", []).append(res.connect_ms)
        return {k: statistics.median(v) for k, v in sorted(by_type.items())}

    def grid(self, relay: bool) -> tuple[list[str], list[str], dict[tuple[str, str], CaseResult]]:
        cells = {
            (r.case.seeder_nat, r.case.leecher_nat): r
            for r in self.results
            if r.case.relay == relay
        }
        rows = [t for t in (*MATRIX_TYPES, SHARED) if any(k[0] == t for k in cells)]
        cols = [t for t in (*MATRIX_TYPES, SHARED) if any(k[1] == t for k in cells)]
        return rows, cols, cells

    def relay_modes(self) -> list[bool]:
        return sorted({r.case.relay for r in self.results})

    def format_table(self) -> str:
        """One grid per relay mode: rows are seeders, columns leechers; a cell
        is the connect time in ms or FAIL, with ``!`` when unexpected."""
        out = []
        for relay in self.relay_modes():
            rows, cols, cells = self.grid(relay)
            out.append(f"{'with TURN relay' if relay else 'without relay'} (seeder \\ leecher)")
            width = 22
            out.append(" " * width + "".join(f"{abbr(c):>10}" for c in cols))
            for row in rows:
                line = f"{row:<{width}}"
                for col in cols:
                    r = cells.get((row, col))
                    if r is None:
                        text = "."
                    elif r.result.outcome == "connected":
                        ms = r.result.connect_ms
                        text = f"{ms:.0f}ms" if ms is not None else "ok"
                    else:
                        text = "FAIL"
                    if r is not None and not r.match:
                        text = "!" + text
                    line += f"{text:>10}"
                out.append(line)
            out.append("")
        med = self.median_connect_ms_by_pair_type()
        if med:
            out.append("median connect time by nominated pair (leecher local/remote):")
            counts: dict[str, int] = {}
            for r in self.results:
                if r.result.outcome == "connected":
                    counts[r.result.pair_type or "unknown"] = (
                        counts.get(r.result.pair_type or "unknown", 0) + 1
                    )
            out += [f"  {k:<14} {v:8.1f} ms  (n={counts.get(k, 0)})" for k, v in med.items()]
        bad = [r for r in self.results if not r.match]
        out.append(
            f"{len(self.results) - len(bad)}/{len(self.results)} as expected"
            f" in {self.elapsed_s:.1f}s (ICE timeout {self.timeout:g}s)"
        )
        for r in bad:
            c = r.case
            out.append(
                f"  UNEXPECTED {c.seeder_nat} -> {c.leecher_nat} relay={c.relay}: "
                f"{r.result.outcome} (expected {c.expected}): {r.result.detail}"
            )
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "timeout_s": self.timeout,
            "elapsed_s": self.elapsed_s,
            "all_match": self.all_match,
            "median_connect_ms_by_pair_type": self.median_connect_ms_by_pair_type(),
            "results": [
                {
                    "seeder_nat": r.case.seeder_nat,
                    "leecher_nat": r.case.leecher_nat,
                    "seeder_host": r.case.seeder_host,
                    "leecher_host": r.case.leecher_host,
                    "relay": r.case.relay,
                    "ipv6": r.case.ipv6,
                    "expected": r.case.expected,
                    "match": r.match,
                    "elapsed_s": r.elapsed_s,
                    **dataclasses.asdict(r.result),
                }
                for r in self.results
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatrixReport:
        """Rebuild a report from :meth:`to_json` output (to re-render it)."""
        results = []
        for row in data["results"]:
            case = Case(
                row["seeder_nat"],
                row["leecher_nat"],
                row["relay"],
                row["seeder_host"],
                row["leecher_host"],
                row.get("ipv6", False),
            )
            res = PairResult(row["outcome"], row["pair_type"], row["connect_ms"], row["detail"])
            results.append(CaseResult(case, res, row["elapsed_s"]))
        return cls(results, timeout=data["timeout_s"], elapsed_s=data["elapsed_s"])

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def abbr(t: str) -> str:
    return ABBREV.get(t, t)
