"""The matrix as an SVG heat map: one grid per relay mode, rows are seeders,
columns leechers, each cell the pair's connect time in ms (or FAIL).

Colour says whether the outcome was the expected one: green/grey =
connected/failed as expected, orange/red = connected/failed against the
expectation; a connected cell's green darkens with its connect time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

from stunlike_tracker.lab.matrix import CaseResult, MatrixReport, abbr

GREY: Final = "#969696"  # failed, as expected
ORANGE: Final = "#eb8c14"  # connected although failure was expected
RED: Final = "#d72828"  # failed although it should connect
CELL_W, CELL_H, LABEL_W, HEAD_H, GAP, MARGIN = 70, 32, 80, 52, 30, 12


def cell_colour(r: CaseResult) -> str:
    """Green (lighter = faster: 0 ms to 1 s and beyond) when connected as
    expected; grey, orange or red otherwise."""
    connected = r.result.outcome == "connected"
    if not r.match:
        return ORANGE if connected else RED
    if not connected:
        return GREY
    ms = r.result.connect_ms if r.result.connect_ms is not None else 1000.0
    shade = min(max(ms, 0.0), 1000.0) / 1000.0  # 0 = fast, 1 = slow
    green = round(190 - 110 * shade)
    return f"#{round(60 - 30 * shade):02x}{green:02x}{round(80 - 40 * shade):02x}"


def cell_label(r: CaseResult) -> str:
    if r.result.outcome == "connected":
        ms = r.result.connect_ms
        return f"{ms:.0f} ms" if ms is not None else "ok"
    return "FAIL"


def _text(
    x: float, y: float, s: str, *, size: int = 12, fill: str = "#141414", anchor: str = "start"
) -> str:
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" fill="{fill}" '
        f'text-anchor="{anchor}">{escape(s)}</text>'
    )


def render_svg(report: MatrixReport) -> str:
    grids = [(relay, *report.grid(relay)) for relay in report.relay_modes()]
    ncols = max((len(g[2]) for g in grids), default=1)
    nrows = max((len(g[1]) for g in grids), default=1)
    grid_w = LABEL_W + ncols * CELL_W
    legend_y = MARGIN + HEAD_H + nrows * CELL_H + 20
    width = max(2 * MARGIN + len(grids) * grid_w + (len(grids) - 1) * GAP, 380)
    height = legend_y + 4 * 18 + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for gi, (relay, rows, cols, cells) in enumerate(grids):
        x0 = MARGIN + gi * (grid_w + GAP)
        out.append(_text(x0, MARGIN + 14, "with TURN relay" if relay else "without relay", size=14))
        out.append(_text(x0, MARGIN + 30, "row: seeder, column: leecher", size=10))
        for ci, col in enumerate(cols):
            cx = x0 + LABEL_W + ci * CELL_W + CELL_W / 2
            out.append(_text(cx, MARGIN + HEAD_H - 6, abbr(col), anchor="middle"))
        for ri, row in enumerate(rows):
            ry = MARGIN + HEAD_H + ri * CELL_H
            out.append(_text(x0, ry + CELL_H / 2 + 4, abbr(row)))
            for ci, col in enumerate(cols):
                r = cells.get((row, col))
                if r is None:
                    continue
                cx = x0 + LABEL_W + ci * CELL_W
                out.append(
                    f'<rect class="cell" data-seeder="{row}" data-leecher="{col}" '
                    f'data-relay="{str(relay).lower()}" x="{cx + 1}" y="{ry + 1}" '
                    f'width="{CELL_W - 2}" height="{CELL_H - 2}" fill="{cell_colour(r)}"/>'
                )
                label = cell_label(r)
                out.append(
                    _text(
                        cx + CELL_W / 2, ry + CELL_H / 2 + 4, label, fill="#ffffff", anchor="middle"
                    )
                )
    legend = [
        ("#3cbe50", "connected as expected (connect time; darker = slower)"),
        (GREY, "failed as expected"),
        (ORANGE, "connected, expected to fail"),
        (RED, "failed, expected to connect"),
    ]
    for i, (fill, label) in enumerate(legend):
        y = legend_y + i * 18
        out.append(f'<rect x="{MARGIN}" y="{y}" width="12" height="12" fill="{fill}"/>')
        out.append(_text(MARGIN + 18, y + 11, label, size=11))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(report: MatrixReport, path: Path) -> None:
    path.write_text(render_svg(report))
