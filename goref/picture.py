"""Draws the allocator's state at one step of a case, as a runtime developer pictures it.

A Picture holds the model's and the runtime's State (goref/compare.py) after one operation of a
case. It is drawn two ways from the same data:

- text for the terminal: each chunk as 8 rows of 64 pages (`#` allocated, `.` free, `s`
  scavenged, `S` allocated yet scavenged), row addresses on the left, model and runtime side
  by side, and under a row the pages that differ (`^`) and searchAddr's page (`@`);
- one self-contained HTML file (inline SVG and CSS, no script, nothing fetched): the same grids
  with the differing pages in red, searchAddr ringed in blue and each page cache's 64-page
  window (one grid row, since a cache's base is 64-page aligned) framed in orange; the summary
  tree around the differing entry, every level, each entry's (start, max, end) on both sides;
  and the operations with the step that diverged highlighted.

Pure functions of States; `palloc show` and the failures folder's <id>.html use them.

Mirrors no Go file; the state drawn is Go 1.27's pageAlloc (src/runtime/mpagealloc.go,
mpallocbits.go, mpagecache.go) as goref/compare.py's normal form holds it.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from palloc.goref import ops as O
from palloc.goref.compare import Divergence, Fmt, Outcome, State, bit_runs, format_crash, format_result

ROW_PAGES = 64  # one grid row: a page cache's window (pageCachePages)
MAX_CHUNKS = 8  # chunks drawn; the rest are named
ROOT_NEIGHBOURS = 4  # root-level entries shown either side of the one on the path

# Page characters of the text picture.
ALLOCATED, FREE, SCAVENGED, ALLOCATED_SCAVENGED = "#", ".", "s", "S"
DIFFERS, SEARCH_ADDR = "^", "@"

# The HTML layout, fixed so that a page's place on screen follows from the case alone
# (page_xy; the slow Chromium test samples the screenshot there).
HEADER_H = 64  # the header bar: title and headline, clipped to this height
CELL = 10  # a page's square, 1 px of it the gap
LABEL_W = 130  # row addresses
SIDE_GAP = 24  # between the model's grid and the runtime's
CHUNK_TITLE_H = 22  # a chunk figure's title line above its grids
CHUNK_PAD = 10  # below a chunk figure
COLOURS = {"allocated": "#34466b", "free": "#dadada", "scavenged": "#7cc98f", "allocated+scavenged": "#a24bbd",
           "differs": "#e8112d", "search_addr": "#0a64ff", "cache": "#ff9900", "absent": "#ffffff"}


@dataclasses.dataclass
class Side:
    """One side's state at the picture's step: the State after operation `after` (-1: the
    initial heap; earlier than the step when the step's operation reports no state), and what
    the side did there (its result or crash, in the domain's terms)."""

    name: str
    state: State | None
    after: int
    did: str | None = None


@dataclasses.dataclass
class Picture:
    """What a picture shows: the platform, the case's operations, the step drawn (-1: the
    initial heap), the step that diverged, the divergence, and each side."""

    p: Any
    title: str
    ops: list[O.Op]
    step: int
    diverged: int | None
    divergence: Divergence | None
    model: Side
    runtime: Side | None
    note: str | None = None  # why the runtime side is missing, when it is
    before: State | None = None  # the model's state before the step (what its operation changed)


# --- making a picture --------------------------------------------------------------------


def divergence_step(d: Divergence | None, nops: int) -> int | None:
    """Returns the operation index a divergence names (-1 for the initial heap), or None."""
    if d is None:
        return None
    return -1 if d.op is None and d.step == 0 else min(d.step, nops - 1)


def _side(p, name: str, outs: list[Outcome], step: int, op: O.Op | None) -> Side:
    """Returns a side at operation `step` of its outcomes (outs[0] is the initial heap)."""
    k = step + 1
    did = None
    if k < len(outs):
        o = outs[k]
        if o.crash:
            did = format_crash(o.crash, o.detail)
        elif op is not None:
            did = "returned " + format_result(p, op, o.result)
    elif outs and outs[-1].crash:
        did = f"stopped at step {len(outs) - 2}: {format_crash(outs[-1].crash, outs[-1].detail)}"
    else:
        did = "did not reach this step"
    j = min(k, len(outs) - 1)
    while j >= 0 and outs[j].state is None:
        j -= 1
    return Side(name, outs[j].state if j >= 0 else None, j - 1, did)


def make_picture(p, title: str, ops: list[O.Op], model_outs: list[Outcome], runtime_outs: list[Outcome] | None,
                 divergence: Divergence | None = None, step: int | None = None, note: str | None = None) -> Picture:
    """Returns the picture of a case at operation `step` (default: the step that diverged, else
    the last), from each side's outcomes (one for the initial heap, then one per operation).

    Raises ValueError when step is not an operation of the case (-1, the initial heap, is).
    """
    diverged = divergence_step(divergence, len(ops))
    if step is None:
        step = diverged if diverged is not None else len(ops) - 1
    if not -1 <= step < len(ops):
        raise ValueError(f"step {step} is not in the case: it has operations 0 to {len(ops) - 1} (-1 is the initial heap)")
    op = ops[step] if step >= 0 else None
    model = _side(p, "model", model_outs, step, op)
    runtime = _side(p, "runtime", runtime_outs, step, op) if runtime_outs is not None else None
    before = _side(p, "model", model_outs, step - 1, None).state if step >= 0 else None
    return Picture(p, title, list(ops), step, diverged, divergence, model, runtime, note, before)


# --- what differs -------------------------------------------------------------------------


def _bits(st: State | None, ci: int) -> tuple[int, int] | None:
    return st.chunks.get(ci) if st is not None else None


def differing_pages(pic: Picture, ci: int) -> int:
    """Returns the pages of chunk ci whose allocated or scavenged bit differs between the sides,
    as a bitmap (bit i = page i); 0 without a runtime side."""
    if pic.runtime is None or pic.runtime.state is None or pic.model.state is None:
        return 0
    m, r = _bits(pic.model.state, ci), _bits(pic.runtime.state, ci)
    if m is None or r is None:
        return 0 if m == r else (1 << pic.p.palloc_chunk_pages) - 1
    return (m[0] ^ r[0]) | (m[1] ^ r[1])


def _states(pic: Picture) -> list[State]:
    return [s.state for s in (pic.model, pic.runtime) if s is not None and s.state is not None]


def _leaf_shift(p, level: int) -> int:
    return p.level_shift[level] - p.level_shift[-1]


def differing_summaries(pic: Picture) -> list[tuple[int, int]]:
    """Returns (level, index) of every summary entry that differs between the sides."""
    if pic.runtime is None or pic.runtime.state is None or pic.model.state is None:
        return []
    out = []
    for lvl, (a, b) in enumerate(zip(pic.model.state.summary, pic.runtime.state.summary)):
        out += [(lvl, i) for i in sorted(set(a) | set(b)) if a.get(i) != b.get(i)]
    return out


def chunks_to_draw(pic: Picture) -> tuple[list[int], int]:
    """Returns the chunks the picture draws (at most MAX_CHUNKS), and how many more it would.

    Those whose pages differ first, then those whose leaf summary differs, those the step's
    operation changed, and those holding searchAddr or a page cache; else the first grown.
    """
    sts = _states(pic)
    if not sts:
        return [], 0
    f = Fmt(pic.p)
    have = set().union(*(s.chunks for s in sts))
    want: list[int] = []
    add = lambda ci: want.append(ci) if ci in have and ci not in want else None  # noqa: E731
    for ci in sorted(have):
        if differing_pages(pic, ci):
            add(ci)
    for lvl, i in differing_summaries(pic):
        if lvl == pic.p.summary_levels - 1:
            add(i)
    m, before = pic.model.state, pic.before
    if before is not None and m is not None:
        for ci in sorted(m.chunks):
            if before.chunks.get(ci) != m.chunks.get(ci):
                add(ci)
    for s in sts:
        add(f.chunk_index(s.search_addr))
        for base, _, _ in s.caches.values():
            add(f.chunk_index(base))
    if not want and have:
        want.append(min(have))
    return want[:MAX_CHUNKS], max(0, len(want) - MAX_CHUNKS)


def summary_focus(pic: Picture) -> int | None:
    """Returns the chunk whose path through the summary tree the picture shows: the first
    differing summary entry's (deepest level first), else the first chunk drawn."""
    diffs = differing_summaries(pic)
    if diffs:
        lvl, i = max(diffs, key=lambda d: (d[0], -d[1]))
        return i << _leaf_shift(pic.p, lvl)
    chunks, _ = chunks_to_draw(pic)
    return chunks[0] if chunks else None


@dataclasses.dataclass
class SummaryEntry:
    level: int
    index: int
    base: int
    limit: int
    model: tuple[int, int, int] | None  # (start, max, end); None: not mapped
    runtime: tuple[int, int, int] | None
    differs: bool
    on_path: bool


def summary_tree(pic: Picture) -> list[list[SummaryEntry]]:
    """Returns, per level, the entries around the focus chunk's path: its ancestor's block of
    siblings (the root: ROOT_NEIGHBOURS either side), those mapped on either side."""
    ci = summary_focus(pic)
    if ci is None:
        return []
    p, f = pic.p, Fmt(pic.p)
    rs = pic.runtime.state if pic.runtime is not None else None
    out = []
    for lvl in range(p.summary_levels):
        idx = ci >> _leaf_shift(p, lvl)
        if lvl == 0:
            lo, hi = max(0, idx - ROOT_NEIGHBOURS), idx + ROOT_NEIGHBOURS + 1
        else:
            lo = idx >> p.level_bits[lvl] << p.level_bits[lvl]
            hi = lo + (1 << p.level_bits[lvl])
        row = []
        for i in range(lo, hi):
            m = pic.model.state.summary[lvl].get(i) if pic.model.state is not None else None
            r = rs.summary[lvl].get(i) if rs is not None else None
            if m is None and r is None and i != idx:
                continue
            b, l = f.level_range(lvl, i)
            row.append(SummaryEntry(lvl, i, b, l, f.unpack_sum(m) if m is not None else None,
                                    f.unpack_sum(r) if r is not None else None,
                                    rs is not None and m != r, i == idx))
        out.append(row)
    return out


# --- text ---------------------------------------------------------------------------------


def page_char(alloc: int, scav: int) -> str:
    """Returns one page's character: # allocated, . free, s scavenged, S allocated yet scavenged."""
    if alloc:
        return ALLOCATED_SCAVENGED if scav else ALLOCATED
    return SCAVENGED if scav else FREE


def row_text(bits: tuple[int, int] | None, row: int) -> str:
    """Returns the 64 characters of pages [64*row, 64*row+64) of a chunk (blank: no bitmap)."""
    if bits is None:
        return " " * ROW_PAGES
    a, s = bits
    lo = row * ROW_PAGES
    return "".join(page_char(a >> i & 1, s >> i & 1) for i in range(lo, lo + ROW_PAGES))


def _page_of(f: Fmt, addr: int, ci: int) -> int | None:
    if addr in (0, f.max_off_addr) or f.chunk_index(addr) != ci:
        return None
    return ((addr - f.chunk_base(ci)) & f.mask) // f.page_size


def _marks(pic: Picture, side: Side | None, ci: int, row: int, diff: int) -> str:
    """The marker line under a row: ^ where the sides differ, @ at this side's searchAddr."""
    f = Fmt(pic.p)
    sa = _page_of(f, side.state.search_addr, ci) if side is not None and side.state is not None else None
    out = []
    for i in range(row * ROW_PAGES, (row + 1) * ROW_PAGES):
        out.append(DIFFERS if diff >> i & 1 else SEARCH_ADDR if sa == i else " ")
    return "".join(out)


def _sum_text(s: tuple[int, int, int] | None) -> str:
    return "not mapped" if s is None else f"({s[0]}, {s[1]}, {s[2]})"


def _step_name(pic: Picture, k: int) -> str:
    return "the initial heap" if k < 0 else f"step {k}: {pic.ops[k]!r}"


def _addr_width(pic: Picture, chunks: list[int]) -> int:
    return 2 + len(f"{Fmt(pic.p).chunk_base(max(chunks)) if chunks else 0:#x}")


def _chunk_lines(pic: Picture, ci: int, w: int, differing_rows_only: bool = False) -> list[str]:
    """One chunk's text: its title, the sides' names, then each row of 64 pages per side with
    its address and, under it, the marks (all rows, or only those where the sides differ)."""
    p, f = pic.p, Fmt(pic.p)
    sides = [s for s in (pic.model, pic.runtime) if s is not None]
    base = f.chunk_base(ci)
    diff = differing_pages(pic, ci)
    head = " ".join(s.name.ljust(ROW_PAGES) for s in sides)
    lines = [f"chunk {ci:#x} [{base:#x}, {base + p.palloc_chunk_bytes:#x})" + (f": pages differ at {_runs(diff)}" if diff else ""),
             " " * w + "  " + head.rstrip()]
    row_mask = (1 << ROW_PAGES) - 1
    for row in range(p.palloc_chunk_pages // ROW_PAGES):
        if differing_rows_only and not diff >> (row * ROW_PAGES) & row_mask:
            continue
        addr = base + row * ROW_PAGES * p.page_size
        cells = [row_text(_bits(s.state, ci), row) for s in sides]
        caches = [f"cache {slot} ({s.name})" for s in sides if s.state is not None
                  for slot, (cb, _, _) in sorted(s.state.caches.items())
                  if f.chunk_index(cb) == ci and _page_of(f, cb, ci) // ROW_PAGES == row]
        lines.append(f"{addr:#{w}x}  " + " ".join(cells) + (f"  <- {', '.join(caches)}" if caches else ""))
        marks = [_marks(pic, s, ci, row, diff) for s in sides]
        if any(m.strip() for m in marks):
            lines.append(" " * w + "  " + " ".join(marks).rstrip())
    return lines


def differing_rows(pic: Picture) -> str:
    """Returns only the rows of pages where the sides differ, each chunk's under its title (""
    when no page differs): the part of the picture a report in the terminal shows."""
    chunks = [ci for ci in chunks_to_draw(pic)[0] if differing_pages(pic, ci)]
    if not chunks:
        return ""
    w = _addr_width(pic, chunks)
    lines = [f"the pages that differ ({ALLOCATED} allocated, {FREE} free, {SCAVENGED} scavenged, {DIFFERS} differs; "
             "every row: palloc show):"]
    for ci in chunks:
        lines += _chunk_lines(pic, ci, w, differing_rows_only=True)
    return "\n".join(lines) + "\n"


def text(pic: Picture) -> str:
    """Returns the picture as text for a terminal (the module docstring says how it reads)."""
    f = Fmt(pic.p)
    lines = [f"palloc show: {pic.title}"]
    if pic.divergence is not None:
        lines += pic.divergence.text().splitlines()
    lines.append("operations:")
    for i, op in enumerate(pic.ops):
        tags = [t for t, on in (("diverged here", i == pic.diverged), ("shown", i == pic.step)) if on]
        lines.append(f"  {'>' if i == pic.step else ' '}{i:3}  {op!r}" + (f"   <- {', '.join(tags)}" if tags else ""))
    lines.append(f"state after {_step_name(pic, pic.step)}")
    sides = [s for s in (pic.model, pic.runtime) if s is not None]
    for s in sides:
        if s.did:
            lines.append(f"  {s.name} {s.did}")
        if s.after != pic.step:
            lines.append(f"  {s.name}: the state drawn is after {_step_name(pic, s.after)} (none reported at the step)")
    if pic.note:
        lines.append(f"  note: {pic.note}")
    for s in sides:
        if s.state is not None:
            lines.append(f"  searchAddr ({s.name}): {f.addr(s.state.search_addr)}")
            for slot, (base, cache, scav) in sorted(s.state.caches.items()):
                lines.append(f"  page cache {slot} ({s.name}): base {f.addr(base)}, free bits {cache:#018x}, "
                             f"scavenged {scav:#018x}")
    chunks, more = chunks_to_draw(pic)
    lines.append(f"legend: {ALLOCATED} allocated, {FREE} free, {SCAVENGED} scavenged, {ALLOCATED_SCAVENGED} allocated yet "
                 f"scavenged; under a row: {DIFFERS} the sides differ, {SEARCH_ADDR} searchAddr")
    w = _addr_width(pic, chunks)
    for ci in chunks:
        lines += _chunk_lines(pic, ci, w)
    if more:
        lines.append(f"({more} more chunks not drawn)")
    tree = summary_tree(pic)
    if tree:
        lines.append("summary tree around chunk " + f"{summary_focus(pic):#x}" + " (start, max, end); * differs, "
                     "> on the chunk's path")
        for row in tree:
            for e in row:
                mark = ("*" if e.differs else " ") + (">" if e.on_path else " ")
                val = f"model {_sum_text(e.model)}" + (f", runtime {_sum_text(e.runtime)}" if pic.runtime else "")
                lines.append(f"  {mark} level {e.level} index {e.index:#x} [{e.base:#x}, {e.limit:#x}): {val}")
    return "\n".join(lines) + "\n"


def _runs(x: int) -> str:
    return ", ".join(f"[{lo}, {hi})" for lo, hi in bit_runs(x))


# --- HTML and SVG -------------------------------------------------------------------------


def grid_width(nsides: int) -> int:
    return LABEL_W + nsides * ROW_PAGES * CELL + (nsides - 1) * SIDE_GAP


def chunk_height(p) -> int:
    return CHUNK_TITLE_H + (p.palloc_chunk_pages // ROW_PAGES) * CELL + CHUNK_PAD


def page_xy(pic: Picture, chunk_pos: int, side: int, page: int) -> tuple[int, int]:
    """Returns the document coordinates (CSS px) of page's square's top-left corner, in the
    chunk figure at chunk_pos (0: the first drawn) and side (0 model, 1 runtime)."""
    x = LABEL_W + side * (ROW_PAGES * CELL + SIDE_GAP) + (page % ROW_PAGES) * CELL
    y = HEADER_H + chunk_pos * chunk_height(pic.p) + CHUNK_TITLE_H + (page // ROW_PAGES) * CELL
    return x, y


def _page_colour(a: int, s: int) -> str:
    return COLOURS["allocated+scavenged" if a and s else "allocated" if a else "scavenged" if s else "free"]


def chunk_svg(pic: Picture, ci: int, pos: int) -> str:
    """Returns one chunk's figure: its pages on each side, the differing ones in red with their
    own colour in a small square inside, searchAddr ringed, each page cache's row framed."""
    p, f = pic.p, Fmt(pic.p)
    sides = [s for s in (pic.model, pic.runtime) if s is not None]
    w, h = grid_width(len(sides)), chunk_height(p)
    diff = differing_pages(pic, ci)
    base = f.chunk_base(ci)
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chunk" data-chunk="{ci:#x}" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}">']
    title = f"chunk {ci:#x} [{base:#x}, {base + p.palloc_chunk_bytes:#x})"
    if diff:
        title += f": pages differ at {_runs(diff)}"
    out.append(f'<text x="2" y="15" class="ctitle">{e(title)}</text>')
    for k, s in enumerate(sides):
        x0, _ = page_xy(pic, pos, k, 0)
        out.append(f'<text x="{x0 + ROW_PAGES * CELL - 2}" y="15" class="side" text-anchor="end">{s.name}</text>')
    y_top = CHUNK_TITLE_H
    for row in range(p.palloc_chunk_pages // ROW_PAGES):
        out.append(f'<text x="{LABEL_W - 6}" y="{y_top + row * CELL + CELL - 2}" class="addr" text-anchor="end">'
                   f'{base + row * ROW_PAGES * p.page_size:#x}</text>')
    for k, s in enumerate(sides):
        bits = _bits(s.state, ci)
        for i in range(p.palloc_chunk_pages):
            x, y = page_xy(pic, pos, k, i)
            y -= HEADER_H + pos * h
            a, sc = (bits[0] >> i & 1, bits[1] >> i & 1) if bits is not None else (0, 0)
            col = _page_colour(a, sc) if bits is not None else COLOURS["absent"]
            what = "absent" if bits is None else "allocated" if a else "free"
            if sc:
                what += "+scavenged" if a else " scavenged"
            attrs = f'data-side="{s.name}" data-page="{i}" data-state="{what}"'
            if diff >> i & 1:
                out.append(f'<rect class="page diff" {attrs} x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" '
                           f'fill="{COLOURS["differs"]}"/>')
                out.append(f'<rect class="inner" x="{x + 3}" y="{y + 3}" width="{CELL - 7}" height="{CELL - 7}" fill="{col}"/>')
            else:
                out.append(f'<rect class="page" {attrs} x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" fill="{col}"/>')
        if s.state is None:
            continue
        sa = _page_of(f, s.state.search_addr, ci)
        if sa is not None:
            x, y = page_xy(pic, pos, k, sa)
            y -= HEADER_H + pos * h
            out.append(f'<rect class="search-addr" data-side="{s.name}" data-page="{sa}" x="{x - 1}" y="{y - 1}" '
                       f'width="{CELL + 1}" height="{CELL + 1}" fill="none" stroke="{COLOURS["search_addr"]}" '
                       f'stroke-width="2"><title>searchAddr ({s.name})</title></rect>')
        for slot, (cb, _, _) in sorted(s.state.caches.items()):
            first = _page_of(f, cb, ci)
            if first is None:
                continue
            x, y = page_xy(pic, pos, k, first)
            y -= HEADER_H + pos * h
            out.append(f'<rect class="cache" data-side="{s.name}" data-slot="{slot}" data-page="{first}" x="{x - 1}" '
                       f'y="{y - 1}" width="{ROW_PAGES * CELL + 1}" height="{CELL + 1}" fill="none" '
                       f'stroke="{COLOURS["cache"]}" stroke-width="2" stroke-dasharray="4 2">'
                       f'<title>page cache {slot} ({s.name})</title></rect>')
    out.append("</svg>")
    return "\n".join(out)


_CSS = f"""
body {{ margin: 0; font: 13px/1.35 monospace; color: #111; background: #fff; }}
header {{ height: {HEADER_H}px; overflow: hidden; box-sizing: border-box; padding: 6px 8px; background: #f3f5f9;
  white-space: nowrap; text-overflow: ellipsis; }}
header h1 {{ font-size: 15px; margin: 0 0 4px 0; overflow: hidden; text-overflow: ellipsis; }}
header p {{ margin: 0; overflow: hidden; text-overflow: ellipsis; }}
svg.chunk {{ display: block; margin: 0; }}
svg text {{ font: 11px monospace; }}
svg text.addr {{ font-size: 9px; }}
svg text.ctitle {{ font-weight: bold; }}
section {{ padding: 4px 8px; }}
h2 {{ font-size: 14px; margin: 10px 0 4px 0; }}
.legend span {{ display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; vertical-align: middle; }}
table.tree td {{ border: 1px solid #ccc; padding: 2px 4px; vertical-align: top; }}
table.tree td.diff {{ background: #ffd6db; border-color: {COLOURS["differs"]}; }}
table.tree td.path {{ font-weight: bold; }}
ol.ops li.diverged {{ background: #ffd6db; font-weight: bold; }}
ol.ops li.shown {{ outline: 2px solid {COLOURS["search_addr"]}; }}
pre {{ margin: 0; }}
"""


def html_page(pic: Picture) -> str:
    """Returns the picture as one self-contained HTML file (well-formed XML as well, so that
    xml.etree reads it)."""
    e = html.escape
    f = Fmt(pic.p)
    d = pic.divergence
    head = d.headline() if d is not None else f"state after {_step_name(pic, pic.step)}"
    body = [f'<header><h1>{e("palloc: " + pic.title)}</h1><p class="headline">{e(head)}</p></header>']
    chunks, more = chunks_to_draw(pic)
    for pos, ci in enumerate(chunks):
        body.append(chunk_svg(pic, ci, pos))
    sec = ['<section class="legend">']
    for name, label in (("allocated", "allocated"), ("free", "free"), ("scavenged", "scavenged (free)"),
                        ("allocated+scavenged", "allocated yet scavenged"), ("differs", "differs (own state inside)")):
        sec.append(f'<span style="background: {COLOURS[name]}"></span>{e(label)}')
    sec.append(f'<span style="border: 2px solid {COLOURS["search_addr"]}; background: none"></span>searchAddr')
    sec.append(f'<span style="border: 2px dashed {COLOURS["cache"]}; background: none"></span>page cache window')
    sec.append("</section>")
    body.append("".join(sec))
    if more:
        body.append(f"<section><p>{more} more chunks not drawn (see <code>palloc show --json</code>)</p></section>")
    info = [f"<h2>{e('state after ' + _step_name(pic, pic.step))}</h2>", "<ul>"]
    for s in (pic.model, pic.runtime):
        if s is None:
            continue
        if s.did:
            info.append(f"<li>{e(s.name)} {e(s.did)}</li>")
        if s.after != pic.step:
            info.append(f"<li>{e(s.name)}: the state drawn is after {e(_step_name(pic, s.after))}</li>")
        if s.state is not None:
            info.append(f'<li class="search-addr">searchAddr ({e(s.name)}): {e(f.addr(s.state.search_addr))}</li>')
            for slot, (cb, cache, scav) in sorted(s.state.caches.items()):
                info.append(f"<li>page cache {slot} ({e(s.name)}): base {e(f.addr(cb))}, free bits {cache:#018x}, "
                            f"scavenged {scav:#018x}</li>")
    if pic.note:
        info.append(f'<li class="note">{e(pic.note)}</li>')
    info.append("</ul>")
    if d is not None:
        info.append(f"<h2>divergence</h2><pre>{e(d.text())}</pre>")
    body.append("<section>" + "".join(info) + "</section>")
    tree = summary_tree(pic)
    if tree:
        t = [f"<section><h2>summary tree around chunk {summary_focus(pic):#x}: (start, max, end) per entry</h2>",
             '<table class="tree">']
        for row in tree:
            t.append(f"<tr><td>level {row[0].level if row else ''}</td>")
            for en in row:
                cls = " ".join(c for c, on in (("sum", True), ("diff", en.differs), ("path", en.on_path)) if on)
                val = f"model {_sum_text(en.model)}" + (f"<br/>runtime {_sum_text(en.runtime)}" if pic.runtime else "")
                t.append(f'<td class="{cls}" data-level="{en.level}" data-index="{en.index:#x}" '
                         f'title="[{en.base:#x}, {en.limit:#x})">{en.index:#x}<br/>{val}</td>')
            t.append("</tr>")
        t.append("</table></section>")
        body.append("".join(t))
    ops = ['<section><h2>operations</h2><ol class="ops" start="0">']
    for i, op in enumerate(pic.ops):
        cls = " ".join(c for c, on in (("op", True), ("diverged", i == pic.diverged), ("shown", i == pic.step)) if on)
        tag = "  &#8592; diverged here" if i == pic.diverged else ""
        ops.append(f'<li class="{cls}" data-step="{i}">{e(repr(op))}{tag}</li>')
    ops.append("</ol></section>")
    body.append("".join(ops))
    return ("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{e('palloc: ' + head)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# --- JSON ---------------------------------------------------------------------------------


def to_json(pic: Picture) -> dict[str, Any]:
    """Returns the picture's content as JSON: each drawn chunk's rows as text on each side and
    its differing pages as runs, the summary entries shown, each side's result and searchAddr."""
    p, f = pic.p, Fmt(pic.p)
    sides = [s for s in (pic.model, pic.runtime) if s is not None]
    chunks, more = chunks_to_draw(pic)
    out_chunks = []
    for ci in chunks:
        base = f.chunk_base(ci)
        diff = differing_pages(pic, ci)
        out_chunks.append({
            "chunk": hex(ci), "base": hex(base), "differing_pages": [[lo, hi] for lo, hi in bit_runs(diff)],
            "rows": [{"addr": hex(base + r * ROW_PAGES * p.page_size),
                      **{s.name: row_text(_bits(s.state, ci), r) for s in sides}}
                     for r in range(p.palloc_chunk_pages // ROW_PAGES)],
        })
    return {
        "title": pic.title,
        "step": pic.step,
        "op": repr(pic.ops[pic.step]) if pic.step >= 0 else None,
        "diverged": pic.diverged,
        "divergence": pic.divergence.to_json() if pic.divergence is not None else None,
        "sides": {s.name: {"did": s.did, "state_after": s.after,
                           "search_addr": hex(s.state.search_addr) if s.state is not None else None,
                           "caches": {str(k): [hex(x) for x in v] for k, v in sorted(s.state.caches.items())}
                           if s.state is not None else {}} for s in sides},
        "note": pic.note,
        "chunks": out_chunks,
        "more_chunks": more,
        "summary": [{"level": e.level, "index": hex(e.index), "model": e.model, "runtime": e.runtime,
                     "differs": e.differs, "on_path": e.on_path} for row in summary_tree(pic) for e in row],
    }


def case_picture(case, model_outs: list[Outcome], runtime_outs: list[Outcome] | None, step: int | None = None,
                 note: str | None = None) -> Picture:
    """Returns the picture of a saved case (goref/fuzz.py Case) at `step` (default: where it
    diverged), titled with its platform, Go version, model variant and patch."""
    from palloc.goref.fuzz import goarch_platform

    title = f"{case.goarch}, Go {case.go_version.removeprefix('go')}"
    if case.model_variant:
        title += f", model variant {case.model_variant}"
    if case.patch is not None:
        title += f", runtime patched by {case.patch.get('path') or 'the patch the case records'}"
    return make_picture(goarch_platform(case.goarch), title, case.ops, model_outs, runtime_outs, case.divergence, step,
                        note)
