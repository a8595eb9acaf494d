"""Heap occupancy over a replay as an SVG heat map: chunk x time, occupancy as colour.

Mirrors no Go file. One panel per run (the unpatched runtime beside the patched one, or the
model alone), and for two runs a third panel of their difference; written with the standard
library only. Every cell is a <rect> carrying its values as data-* attributes (data-run,
data-op, data-chunk, data-pages), so a test or a script can read the picture back.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

CELL_W = 4  # pixels per snapshot column; a chunk row is 3 to 12 pixels high, the panel about 300
MAX_ROWS = 256  # more chunks than this are merged into bands of consecutive chunks
PAD, TITLE_H, LABEL_W = 10, 28, 8


def _occupancy_colour(frac: float) -> str:
    """White (empty) through yellow and orange to dark red (full)."""
    stops = ((0.0, (255, 255, 255)), (0.25, (255, 237, 160)), (0.5, (254, 178, 76)), (0.75, (240, 59, 32)),
             (1.0, (128, 0, 38)))
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if frac <= b:
            t = 0.0 if b == a else (frac - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#800026"


def _delta_colour(d: float) -> str:
    """Blue (patched emptier) through white to red (patched fuller); d in [-1, 1]."""
    d = max(-1.0, min(1.0, d))
    if d >= 0:
        v = round(255 * (1 - d))
        return f"#ff{v:02x}{v:02x}"
    v = round(255 * (1 + d))
    return f"#{v:02x}{v:02x}ff"


def _bands(nchunks: int) -> int:
    return max(1, -(-nchunks // MAX_ROWS))


def heat_map_svg(runs: list[tuple[str, list[list[int]]]], chunk_pages: int, title: str) -> str:
    """Returns the SVG of the runs' occupancy snapshots ([operation index, allocated pages of each
    chunk...] each, as goref/workload_replay.Run.snaps), one panel per run and, for two runs,
    their difference (second minus first). Chunks a run has not grown yet are blank."""
    nchunks = max((len(s) - 1 for _, snaps in runs for s in snaps), default=0)
    ncols = max((len(snaps) for _, snaps in runs), default=0)
    band = _bands(nchunks)
    rows = -(-nchunks // band) if nchunks else 0
    panels = list(runs)
    if len(runs) == 2:
        panels.append((f"{runs[1][0]} - {runs[0][0]}", None))
    cell_h = max(3, min(12, 300 // max(rows, 1)))
    pw, ph = ncols * CELL_W, rows * cell_h
    width = PAD + len(panels) * (LABEL_W + pw + PAD)
    height = TITLE_H + ph + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" data-chunks="{nchunks}" data-snapshots="{ncols}" '
           f'data-band="{band}" data-chunk-pages="{chunk_pages}">',
           f'<title>{escape(title)}</title>',
           f'<text x="{PAD}" y="16" font-family="sans-serif" font-size="12">{escape(title)}</text>']

    def cell(snaps, c, r):
        s = snaps[c]
        vals = s[1 + r * band:1 + (r + 1) * band]
        return (sum(vals), len(vals)) if vals else (None, 0)

    for k, (label, snaps) in enumerate(panels):
        x0 = PAD + k * (LABEL_W + pw + PAD) + LABEL_W
        out.append(f'<g data-run="{escape(label)}">')
        out.append(f'<text x="{x0}" y="{TITLE_H + ph + 14}" font-family="sans-serif" font-size="11">'
                   f'{escape(label)}</text>')
        out.append(f'<rect x="{x0}" y="{TITLE_H}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for c in range(ncols):
            for r in range(rows):
                if snaps is None:
                    a, na = cell(runs[0][1], c, r) if c < len(runs[0][1]) else (None, 0)
                    b, nb = cell(runs[1][1], c, r) if c < len(runs[1][1]) else (None, 0)
                    if a is None and b is None:
                        continue
                    d = ((b or 0) - (a or 0)) / (chunk_pages * max(na, nb))
                    if d == 0:
                        continue
                    op = (runs[1][1] if c < len(runs[1][1]) else runs[0][1])[c][0]
                    fill, pages = _delta_colour(d), (b or 0) - (a or 0)
                else:
                    if c >= len(snaps):
                        continue
                    a, na = cell(snaps, c, r)
                    if a is None:
                        continue
                    op, fill, pages = snaps[c][0], _occupancy_colour(a / (chunk_pages * na)), a
                out.append(f'<rect x="{x0 + c * CELL_W}" y="{TITLE_H + r * cell_h}" width="{CELL_W}" '
                           f'height="{cell_h}" fill="{fill}" data-op="{op}" data-chunk="{r * band}" '
                           f'data-pages="{pages}"/>')
        out.append("</g>")
    out.append(f'<text x="{PAD}" y="{height - 8}" font-family="sans-serif" font-size="10">rows: chunks in address '
               f'order ({band} per row), columns: time (operations); white empty, dark red full'
               + ("; difference: red fuller, blue emptier" if len(runs) == 2 else "") + "</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
