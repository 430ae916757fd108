"""The connectivity matrix: every ordered (seeder NAT, leecher NAT) pair,
with and without a TURN relay, compared with what RFC 4787/8445 predict.

The peer implementation is injected: a *runner factory* receives the lab and
its coturn and returns (as a context manager, so it can start and stop what
it needs) a ``run_pair`` callable::

    run_pair(lab, seeder_host, leecher_host, relay, timeout) -> PairResult
                                                  (or an awaitable of one)

``relay`` says whether the peers get TURN credentials for the lab's coturn;
``timeout`` bounds the ICE connectivity checks in seconds. The seeder is the
ICE-controlled side, the leecher the controlling one. ``RUNNERS`` maps names
(``lab matrix --runner NAME``) to factories; ``aioice`` (bare aioice peers,
:mod:`interop.lab.aioice_pair`) is built in.

Expected outcomes (see interop/README.md for the reasoning): with a relay
every ordered pair connects; without one, a symmetric NAT against a
symmetric or port-restricted cone NAT fails in either order and everything
else connects. Two hosts behind one NAT (``shared``) connect either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import statistics
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from interop.lab.coturn import Coturn
from interop.lab.topology import ABBREV, NAT_TYPES, LanSpec, Topology

Outcome = Literal["connected", "failed"]
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


@dataclasses.dataclass(frozen=True)
class PairResult:
    """What a ``run_pair`` reports for one attempt."""

    outcome: Outcome
    pair_type: str | None  # e.g. "srflx/prflx" (leecher's local/remote candidate types)
    connect_ms: float | None
    detail: str


RunPair = Callable[[Topology, str, str, bool, float], "PairResult | Awaitable[PairResult]"]
RunnerFactory = Callable[[Topology, Coturn], contextlib.AbstractContextManager[RunPair]]


def expected_outcome(seeder_nat: str, leecher_nat: str, relay: bool) -> Outcome:
    """The outcome RFC 4787 NAT behaviours and RFC 8445 checks predict."""
    for t in (seeder_nat, leecher_nat):
        if t not in MATRIX_TYPES and t != SHARED:
            raise ValueError(f"unknown NAT type {t!r}")
    if relay or SHARED in (seeder_nat, leecher_nat):
        return "connected"
    return "failed" if (seeder_nat, leecher_nat) in _UNPUNCHABLE else "connected"


@dataclasses.dataclass(frozen=True)
class Case:
    seeder_nat: str
    leecher_nat: str
    relay: bool
    seeder_host: str
    leecher_host: str

    @property
    def expected(self) -> Outcome:
        return expected_outcome(self.seeder_nat, self.leecher_nat, self.relay)


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
) -> list[Case]:
    """Cases for a lab built from :func:`matrix_lans` with the same types:
    every ordered pair of ``types`` (or just ``pairs``) per relay mode."""
    wanted = list(pairs) if pairs is not None else [(s, t) for s in types for t in types]
    cases = []
    for relay in relay_modes:
        for s, t in wanted:
            if SHARED in (s, t):
                continue
            cases.append(Case(s, t, relay, _lan_name(s, 1), _lan_name(t, 2)))
        if shared:
            cases.append(Case(SHARED, SHARED, relay, f"{SHARED}-1", f"{SHARED}-2"))
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


@contextlib.contextmanager
def aioice_runner(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
    """Bare aioice peers (no tracker): the reference ICE behaviour."""
    from interop.lab.aioice_pair import AioicePairRunner

    yield AioicePairRunner(coturn)


@contextlib.contextmanager
def tracker_runner(lab: Topology, coturn: Coturn) -> Iterator[RunPair]:
    """Our tracker in ``trk`` and `stunlike-tracker peer` processes in the LANs."""
    from interop.lab.tracker_runner import tracker_runner as start

    with start(lab, coturn) as run_pair:
        yield run_pair


RUNNERS: Final[dict[str, RunnerFactory]] = {
    "tracker": tracker_runner,
    "aioice": aioice_runner,
}


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

    def _grid(self, relay: bool) -> tuple[list[str], list[str], dict[tuple[str, str], CaseResult]]:
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
            rows, cols, cells = self._grid(relay)
            out.append(f"{'with TURN relay' if relay else 'without relay'} (seeder \\ leecher)")
            width = 22
            out.append(" " * width + "".join(f"{_abbr(c):>10}" for c in cols))
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
            )
            res = PairResult(row["outcome"], row["pair_type"], row["connect_ms"], row["detail"])
            results.append(CaseResult(case, res, row["elapsed_s"]))
        return cls(results, timeout=data["timeout_s"], elapsed_s=data["elapsed_s"])

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def write_png(self, path: Path) -> None:
        path.write_bytes(render_png(self))


def _abbr(t: str) -> str:
    return ABBREV.get(t, t)


# ---------------------------------------------------------------------------
# PNG heat map, by hand (zlib + struct), with a 3x5 bitmap font

GREEN: Final = (46, 160, 67)  # connected, as expected
GREY: Final = (150, 150, 150)  # failed, as expected
ORANGE: Final = (235, 140, 20)  # connected although failure was expected
RED: Final = (215, 40, 40)  # failed although it should connect
WHITE: Final = (255, 255, 255)
BLACK: Final = (20, 20, 20)

# Each glyph: five rows of three pixels, top to bottom.
_FONT_SRC: Final = {
    "A": ".#./#.#/###/#.#/#.#",
    "B": "##./#.#/##./#.#/##.",
    "C": ".##/#../#../#../.##",
    "D": "##./#.#/#.#/#.#/##.",
    "E": "###/#../##./#../###",
    "F": "###/#../##./#../#..",
    "G": ".##/#../#.#/#.#/.##",
    "H": "#.#/#.#/###/#.#/#.#",
    "I": "###/.#./.#./.#./###",
    "J": "..#/..#/..#/#.#/.#.",
    "K": "#.#/#.#/##./#.#/#.#",
    "L": "#../#../#../#../###",
    "M": "#.#/###/###/#.#/#.#",
    "N": "##./#.#/#.#/#.#/#.#",
    "O": ".#./#.#/#.#/#.#/.#.",
    "P": "##./#.#/##./#../#..",
    "Q": ".#./#.#/#.#/##./.##",
    "R": "##./#.#/##./#.#/#.#",
    "S": ".##/#../.#./..#/##.",
    "T": "###/.#./.#./.#./.#.",
    "U": "#.#/#.#/#.#/#.#/###",
    "V": "#.#/#.#/#.#/#.#/.#.",
    "W": "#.#/#.#/###/###/#.#",
    "X": "#.#/#.#/.#./#.#/#.#",
    "Y": "#.#/#.#/.#./.#./.#.",
    "Z": "###/..#/.#./#../###",
    "0": "###/#.#/#.#/#.#/###",
    "1": ".#./##./.#./.#./###",
    "2": "##./..#/.#./#../###",
    "3": "##./..#/.#./..#/##.",
    "4": "#.#/#.#/###/..#/..#",
    "5": "###/#../##./..#/##.",
    "6": ".##/#../###/#.#/###",
    "7": "###/..#/..#/.#./.#.",
    "8": "###/#.#/###/#.#/###",
    "9": "###/#.#/###/..#/##.",
    "-": ".../.../###/.../...",
    "/": "..#/..#/.#./#../#..",
    ".": ".../.../.../.../.#.",
    ":": ".../.#./.../.#./...",
    "!": ".#./.#./.#./.../.#.",
    "(": ".#./#../#../#../.#.",
    ")": ".#./..#/..#/..#/.#.",
    " ": ".../.../.../.../...",
}
_FONT: Final = {ch: rows.split("/") for ch, rows in _FONT_SRC.items()}


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.px = bytearray(bytes(WHITE) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
        row = bytes(rgb) * w
        for yy in range(max(0, y), min(self.h, y + h)):
            start = (yy * self.w + x) * 3
            self.px[start : start + 3 * w] = row

    def text(
        self, x: int, y: int, s: str, rgb: tuple[int, int, int] = BLACK, scale: int = 2
    ) -> None:
        for ch in s.upper():
            glyph = _FONT.get(ch, _FONT[" "])
            for gy, bits in enumerate(glyph):
                for gx, bit in enumerate(bits):
                    if bit == "#":
                        self.rect(x + gx * scale, y + gy * scale, scale, scale, rgb)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def text_width(s: str, scale: int = 2) -> int:
    return len(s) * 4 * scale - scale


def cell_colour(r: CaseResult) -> tuple[int, int, int]:
    connected = r.result.outcome == "connected"
    if r.match:
        return GREEN if connected else GREY
    return ORANGE if connected else RED


def render_png(report: MatrixReport) -> bytes:
    """One grid per relay mode, side by side: rows are seeders, columns
    leechers; green/grey = connected/failed as expected, orange/red =
    connected/failed against the expectation; connect time in ms in the cell."""
    cell_w, cell_h, label_w, head_h, gap, margin = 64, 30, 72, 46, 30, 12
    grids = [(relay, *report._grid(relay)) for relay in report.relay_modes()]
    ncols = max((len(g[2]) for g in grids), default=1)
    nrows = max((len(g[1]) for g in grids), default=1)
    grid_w = label_w + ncols * cell_w
    legend_h = 4 * 16 + 10
    width = 2 * margin + len(grids) * grid_w + (len(grids) - 1) * gap
    height = 2 * margin + head_h + nrows * cell_h + 14 + legend_h
    c = _Canvas(max(width, 360), height)
    for gi, (relay, rows, cols, cells) in enumerate(grids):
        x0 = margin + gi * (grid_w + gap)
        y0 = margin
        c.text(x0, y0, "WITH RELAY" if relay else "NO RELAY")
        c.text(x0, y0 + 18, "ROW: SEEDER  COLUMN: LEECHER", scale=1)
        for ci, col in enumerate(cols):
            label = _abbr(col)
            cx = x0 + label_w + ci * cell_w + (cell_w - text_width(label)) // 2
            c.text(cx, y0 + head_h - 14, label)
        for ri, row in enumerate(rows):
            ry = y0 + head_h + ri * cell_h
            c.text(x0, ry + (cell_h - 10) // 2, _abbr(row))
            for ci, col in enumerate(cols):
                r = cells.get((row, col))
                cx = x0 + label_w + ci * cell_w
                if r is None:
                    continue
                c.rect(cx + 1, ry + 1, cell_w - 2, cell_h - 2, cell_colour(r))
                if r.result.outcome == "connected" and r.result.connect_ms is not None:
                    label = f"{r.result.connect_ms:.0f}"
                else:
                    label = "FAIL" if r.result.outcome == "failed" else "OK"
                tx = cx + (cell_w - text_width(label)) // 2
                c.text(tx, ry + (cell_h - 10) // 2, label, WHITE)
    ly = margin + head_h + nrows * cell_h + 14
    legend = [
        (GREEN, "CONNECTED AS EXPECTED (MS)"),
        (GREY, "FAILED AS EXPECTED"),
        (ORANGE, "CONNECTED - EXPECTED FAIL"),
        (RED, "FAILED - EXPECTED CONNECT"),
    ]
    for i, (rgb, label) in enumerate(legend):
        c.rect(margin, ly + i * 16, 12, 12, rgb)
        c.text(margin + 18, ly + i * 16 + 1, label)
    return c.png()
