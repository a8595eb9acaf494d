"""Compares the model and the real runtime after every operation, and reports like a debugger.

Both sides of the differential fuzzer reduce the allocator to one normal form, `State`: the
bitmaps of every grown chunk, every summary entry over the grown range (block-aligned, level by
level, as sysGrow maps them), searchAddr, start/end, inUse, the per-chunk scavenge-index words
and the scavenge-index cursors, and the page caches held beside the allocator. An operation's
`Outcome` is its returned value, or the crash it caused (a Go throw, a fault, a hang), plus the
state after it.

A difference is reported in the domain's terms, never as two 512-bit integers:

    chunk 0x200c003 pages [17, 20): model free, runtime allocated
    summary level 4 index 0x200c003 [0xc000c00000, 0xc001000000): model (0, 509, 509), runtime (3, 509, 509)
    searchAddr: model 0xc000006000 (chunk 0x2030000 page 3), runtime 0xc000000000 (chunk 0x2030000 page 0)

Mirrors no Go file: it is the harness's comparison layer (Go 1.27 state as read through the
helper's overlay on src/runtime/mpagealloc.go, mpagecache.go and mgcscavenge.go).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from palloc.goref import ops as O

# --- the normal form ---------------------------------------------------------------------


@dataclasses.dataclass
class State:
    """The allocator's observable state in normal form (equal states compare equal with ==).

    chunks: chunk index -> (alloc bitmap, scavenged bitmap) as ints, bit i = page i.
    summary: per level, summary index -> packed pallocSum, over the block-aligned summary
        ranges of inUse at that level (the entries sysGrow maps).
    scav_chunks: chunk index -> packed scavChunkData (gen<<32 | flags<<(16+logInUseMax) | ...).
    scav: the scavengeIndex scalars: gen, free_hwm, min_heap_idx, and the two cursors as
        loaded (search_addr_bg / search_addr_force, and *_marked 0 or 1).
    caches: cache slot -> (base, cache, scav) for every non-empty page cache.
    summary_len: len(summary[l]) per level, or None if a side does not report it.
    """

    search_addr: int
    start: int
    end: int
    in_use: tuple[tuple[int, int], ...]
    chunks: dict[int, tuple[int, int]]
    summary: tuple[dict[int, int], ...]
    scav_chunks: dict[int, int]
    scav: dict[str, int]
    caches: dict[int, tuple[int, int, int]]
    summary_len: tuple[int, ...] | None = None
    summary_mapped: tuple[tuple[tuple[int, int], ...], ...] | None = None
    # The scavenge index's mapped window [min, max) of chunk indices, when a side reports it. Read
    # by the spec's scav_index_cursors_in_use (goref/conformance.py), not compared: the window is
    # the index's bookkeeping, free within that invariant (spec/obligations.py).
    scav_window: tuple[int, int] | None = dataclasses.field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Returns the state as JSON (ints as hex strings, so files stay readable)."""
        return {
            "search_addr": hex(self.search_addr),
            "start": self.start,
            "end": self.end,
            "in_use": [[hex(b), hex(l)] for b, l in self.in_use],
            "chunks": {hex(ci): [hex(v[0]), hex(v[1])] if v else None for ci, v in sorted(self.chunks.items())},
            "summary": [{hex(i): hex(v) for i, v in sorted(lv.items())} for lv in self.summary],
            "scav_chunks": {hex(ci): hex(v) if v is not None else None for ci, v in sorted(self.scav_chunks.items())},
            "scav": dict(self.scav),
            "caches": {str(k): [hex(x) for x in v] for k, v in sorted(self.caches.items())},
            "summary_len": list(self.summary_len) if self.summary_len is not None else None,
            "summary_mapped": [list(map(list, lv)) for lv in self.summary_mapped] if self.summary_mapped is not None else None,
            **({"scav_window": [hex(x) for x in self.scav_window]} if self.scav_window is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "State":
        """Returns the state to_json wrote."""
        h = lambda x: int(x, 16) if isinstance(x, str) else int(x)  # noqa: E731
        return cls(
            search_addr=h(d["search_addr"]),
            start=int(d["start"]),
            end=int(d["end"]),
            in_use=tuple((h(b), h(l)) for b, l in d["in_use"]),
            chunks={h(ci): (h(v[0]), h(v[1])) if v else None for ci, v in d["chunks"].items()},
            summary=tuple({h(i): h(v) for i, v in lv.items()} for lv in d["summary"]),
            scav_chunks={h(ci): h(v) if v is not None else None for ci, v in d["scav_chunks"].items()},
            scav={k: int(v) for k, v in d["scav"].items()},
            caches={int(k): tuple(h(x) for x in v) for k, v in d["caches"].items()},
            summary_len=tuple(d["summary_len"]) if d.get("summary_len") is not None else None,
            summary_mapped=tuple(tuple(tuple(r) for r in lv) for lv in d["summary_mapped"])
            if d.get("summary_mapped") is not None
            else None,
            scav_window=tuple(h(x) for x in d["scav_window"]) if d.get("scav_window") else None,
        )


@dataclasses.dataclass
class Outcome:
    """What one operation did on one side: a result or a crash, and the state after it.

    result: the returned value(s) as a tuple of ints (None for operations returning nothing).
    crash: None, or (kind, message) with kind "throw", "fault", "hang" or "undefined"
        ("undefined": the model says the runtime defines no behaviour for this input). A throw's
        message is the runtime's string as Go prints it after "fatal error: ", nothing more.
    state: the State after the operation, or None when the side could not report one.
    detail: what the model adds to its crash (the values it complained about); shown, never compared.
    throw: for an input the model calls undefined, the message the runtime's own check throws
        there, when it has one (spec/errors.py UndefinedBehaviour).
    stack: for the runtime's crash, the first frames of its stack ("runtime.throw panic.go:1243";
        for a hang, where it was looping); shown, never compared.
    """

    result: tuple[int, ...] | None = None
    crash: tuple[str, str] | None = None
    state: State | None = None
    detail: str | None = None
    throw: str | None = None
    stack: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "result": [hex(x) for x in self.result] if self.result is not None else None,
            "crash": list(self.crash) if self.crash else None,
            "state": self.state.to_json() if self.state is not None else None,
        }
        out.update({k: v for k, v in (("detail", self.detail), ("throw", self.throw)) if v is not None})
        if self.stack:
            out["stack"] = list(self.stack)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Outcome":
        return cls(
            result=tuple(int(x, 16) for x in d["result"]) if d.get("result") is not None else None,
            crash=tuple(d["crash"]) if d.get("crash") else None,
            state=State.from_json(d["state"]) if d.get("state") else None,
            detail=d.get("detail"),
            throw=d.get("throw"),
            stack=tuple(d["stack"]) if d.get("stack") else None,
        )


@dataclasses.dataclass
class Divergence:
    """The first step at which the two sides disagree, and how, in lines a person can read.

    kind: "result", "crash" (one side crashed, or both differently), "state", "invariant"
    (the model broke one of its own named invariants), or "harness" (a side disagreed with itself).
    """

    step: int
    op: O.Op | None
    kind: str
    lines: list[str]

    def headline(self) -> str:
        where = f"step {self.step} {self.op!r}" if self.op is not None else f"step {self.step}"
        return f"{self.kind} divergence at {where}: {self.lines[0] if self.lines else ''}"

    def text(self) -> str:
        where = f"step {self.step}: {self.op!r}" if self.op is not None else f"step {self.step}"
        return "\n".join([f"{self.kind} divergence at {where}"] + ["  " + l for l in self.lines])

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "op": self.op.to_json() if self.op else None, "kind": self.kind, "lines": self.lines}


class HarnessFault(Exception):
    """A side disagreed with itself on the same input: the harness, not the model, is at fault."""

    def __init__(self, side: str, divergence: Divergence):
        super().__init__(f"{side} is not deterministic: {divergence.headline()}")
        self.side = side
        self.divergence = divergence


# --- formatting in the domain's terms ---------------------------------------------------------


class Fmt:
    """Formats addresses, chunk pages and summaries of one platform."""

    def __init__(self, p):
        self.p = p
        self.abo = p.arena_base_offset
        self.mask = p.uintptr_mask
        self.chunk_bytes = p.palloc_chunk_bytes
        self.page_size = p.page_size
        self.lmax = p.log_max_packed_value
        self.max_off_addr = p.max_off_addr

    def chunk_index(self, addr: int) -> int:
        return ((addr - self.abo) & self.mask) // self.chunk_bytes

    def chunk_base(self, ci: int) -> int:
        return (ci * self.chunk_bytes + self.abo) & self.mask

    def addr(self, a: int) -> str:
        """Returns a as hex with its chunk and page: 0xc000006000 (chunk 0x2030000 page 3)."""
        if a == self.max_off_addr:
            return f"{a:#x} (maxSearchAddr: heap exhausted)"
        if a == 0:
            return "0"
        ci = self.chunk_index(a)
        page, rem = divmod((a - self.chunk_base(ci)) & self.mask, self.page_size)
        extra = f" +{rem:#x}" if rem else ""
        return f"{a:#x} (chunk {ci:#x} page {page}{extra})"

    def unpack_sum(self, s: int) -> tuple[int, int, int]:
        """pallocSum.unpack: (start, max, end)."""
        if s & (1 << 63):
            m = 1 << self.lmax
            return (m, m, m)
        m = (1 << self.lmax) - 1
        return (s & m, (s >> self.lmax) & m, (s >> (2 * self.lmax)) & m)

    def level_range(self, level: int, idx: int) -> tuple[int, int]:
        """Returns the address range [base, limit) summarised by entry idx of a level."""
        shift = self.p.level_shift[level]
        base = ((idx << shift) + self.abo) & self.mask
        return base, (base + (1 << shift)) & self.mask

    def scav_chunk(self, v: int) -> str:
        """Unpacks a scavChunkData word: inUse, lastInUse, gen and flags."""
        lim = self.p.log_scav_chunk_in_use_max
        in_use = v & 0xFFFF
        last = (v >> 16) & ((1 << lim) - 1)
        flags = (v >> (16 + lim)) & 0x3F
        gen = v >> 32
        names = ["hasFree"] if flags & 1 else ["empty"]
        if flags & 2:
            names.append("noHugePage")
        return f"inUse={in_use} lastInUse={last} gen={gen} flags={'|'.join(names)}"


def bit_runs(x: int) -> Iterable[tuple[int, int]]:
    """Yields the maximal runs [lo, hi) of one bits in x, lowest first."""
    while x:
        lo = (x & -x).bit_length() - 1
        y = x >> lo
        n = (~y & (y + 1)).bit_length() - 1  # length of the run of ones at the bottom of y
        yield lo, lo + n
        x &= ~(((1 << n) - 1) << lo)


def diff_bitmaps(ci: int, model: int, runtime: int, one: str, zero: str, what: str = "pages") -> list[str]:
    """Returns one line per run of pages where the bitmaps differ, naming each side's value."""
    out = []
    d = model ^ runtime
    for lo, hi in bit_runs(d & model):
        out.append(f"chunk {ci:#x} {what} [{lo}, {hi}): model {one}, runtime {zero}")
    for lo, hi in bit_runs(d & runtime):
        out.append(f"chunk {ci:#x} {what} [{lo}, {hi}): model {zero}, runtime {one}")
    out.sort(key=lambda s: int(s.split("[")[1].split(",")[0]))
    return out


def diff_states(p, model: State, runtime: State, limit: int = 40) -> list[str]:
    """Returns the differences between two states as debugger lines (empty when equal)."""
    f = Fmt(p)
    out: list[str] = []
    if model.search_addr != runtime.search_addr:
        out.append(f"searchAddr: model {f.addr(model.search_addr)}, runtime {f.addr(runtime.search_addr)}")
    if (model.start, model.end) != (runtime.start, runtime.end):
        out.append(
            f"chunk bounds [start, end): model [{model.start:#x}, {model.end:#x}), "
            f"runtime [{runtime.start:#x}, {runtime.end:#x})"
        )
    if model.in_use != runtime.in_use:
        fr = lambda rs: "[" + ", ".join(f"[{b:#x}, {l:#x})" for b, l in rs) + "]"  # noqa: E731
        out.append(f"inUse: model {fr(model.in_use)}, runtime {fr(runtime.in_use)}")
    for ci in sorted(set(model.chunks) | set(runtime.chunks)):
        m, r = model.chunks.get(ci), runtime.chunks.get(ci)
        if m == r:
            continue
        if m is None or r is None:
            out.append(f"chunk {ci:#x}: {'model' if m is None else 'runtime'} has no bitmap (nil L2 block)")
            continue
        out += diff_bitmaps(ci, m[0], r[0], "allocated", "free")
        out += diff_bitmaps(ci, m[1], r[1], "scavenged", "unscavenged", what="scavenged bits")
    for lvl, (ms, rs) in enumerate(zip(model.summary, runtime.summary)):
        if ms == rs:
            continue
        for idx in sorted(set(ms) | set(rs)):
            a, b = ms.get(idx), rs.get(idx)
            if a == b:
                continue
            lo, hi = f.level_range(lvl, idx)
            show = lambda v: "not mapped" if v is None else str(f.unpack_sum(v))  # noqa: E731
            out.append(f"summary level {lvl} index {idx:#x} [{lo:#x}, {hi:#x}): model {show(a)}, runtime {show(b)}")
    if model.summary_len is not None and runtime.summary_len is not None and model.summary_len != runtime.summary_len:
        out.append(f"summary lens: model {list(model.summary_len)}, runtime {list(runtime.summary_len)}")
    if model.summary_mapped is not None and runtime.summary_mapped is not None:
        for lvl, (a, b) in enumerate(zip(model.summary_mapped, runtime.summary_mapped)):
            if a != b:
                fr = lambda rs: "[" + ", ".join(f"[{x:#x}, {y:#x})" for x, y in rs) + "]"  # noqa: E731
                out.append(f"summary level {lvl} mapped entries: model {fr(a)}, runtime {fr(b)}")
    for ci in sorted(set(model.scav_chunks) | set(runtime.scav_chunks)):
        a, b = model.scav_chunks.get(ci), runtime.scav_chunks.get(ci)
        if a != b:
            show = lambda v: "absent" if v is None else f.scav_chunk(v)  # noqa: E731
            out.append(f"scavenge index chunk {ci:#x}: model {show(a)}, runtime {show(b)}")
    for k in sorted(set(model.scav) | set(runtime.scav)):
        a, b = model.scav.get(k), runtime.scav.get(k)
        if a == b:
            continue
        name = {"free_hwm": "freeHWM", "search_addr_bg": "searchAddrBg", "search_addr_force": "searchAddrForce",
                "min_heap_idx": "minHeapIdx"}.get(k, k)
        if k in ("free_hwm", "search_addr_bg", "search_addr_force") and a is not None and b is not None:
            out.append(f"scavenge index {name}: model {f.addr(a)}, runtime {f.addr(b)}")
        elif k in ("min_heap_idx",) and a is not None and b is not None:
            out.append(f"scavenge index {name}: model {a:#x}, runtime {b:#x}")
        else:
            out.append(f"scavenge index {k}: model {a}, runtime {b}")
    for slot in sorted(set(model.caches) | set(runtime.caches)):
        a, b = model.caches.get(slot), runtime.caches.get(slot)
        if a != b:
            show = lambda c: "empty" if c is None else f"base {f.addr(c[0])} cache {c[1]:#018x} scav {c[2]:#018x}"  # noqa: E731
            out.append(f"page cache {slot}: model {show(a)}, runtime {show(b)}")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more differences"]
    return out


def format_result(p, op: O.Op, result: tuple[int, ...] | None) -> str:
    """Formats an operation's returned value in the domain's terms."""
    if result is None:
        return "nothing"
    f = Fmt(p)
    if isinstance(op, (O.Alloc, O.CacheAlloc)):
        return f"(addr {f.addr(result[0])}, scav {result[1]:#x} bytes)"
    if isinstance(op, O.Find):
        return f"(addr {f.addr(result[0])}, searchAddr candidate {f.addr(result[1])})"
    if isinstance(op, O.AllocToCache):
        return f"(base {f.addr(result[0])}, cache {result[1]:#018x}, scav {result[2]:#018x})"
    if isinstance(op, O.BitsSummarize):
        return f"{f.unpack_sum(result[0])}"
    if isinstance(op, (O.Scavenge, O.AllocRange)):
        return f"{result[0]:#x} bytes"
    return "(" + ", ".join(f"{x:#x}" if x > 9 else str(x) for x in result) + ")"


def format_crash(c: tuple[str, str], detail: str | None = None) -> str:
    kind, msg = c
    text = {"throw": f"threw {msg!r}", "fault": f"faulted ({msg})", "hang": "hung", "undefined": f"called it undefined ({msg})"}.get(
        kind, f"{kind} ({msg})"
    )
    return f"{text} ({detail})" if detail else text


def crashes_agree(model: Outcome, runtime: Outcome) -> bool:
    """Reports whether two crashes are the same: the same kind and, for a throw, the same message as
    Go prints it (the model's detail aside); or an input the model calls undefined where it
    predicted the very throw of the runtime's own check."""
    mk, mm = model.crash
    rk, rm = runtime.crash
    if (mk, mm) == (rk, rm):  # a self-check compares a side, the model included, with itself
        return True
    if mk == "undefined":
        return model.throw is not None and (rk, rm) == ("throw", model.throw)
    return mk == rk and mk != "throw"


def compare_outcomes(p, step: int, op: O.Op, model: Outcome, runtime: Outcome) -> Divergence | None:
    """Returns the divergence between the two sides' outcomes of one operation, or None.

    A crash on one side only is a divergence (a Go crash where the model says the op is fine is
    how several real bugs showed); two crashes agree as crashes_agree says.
    """
    if model.crash or runtime.crash:
        if model.crash and runtime.crash and crashes_agree(model, runtime):
            return None
        m = format_crash(model.crash, model.detail) if model.crash else f"returned {format_result(p, op, model.result)}"
        r = format_crash(runtime.crash, runtime.detail) if runtime.crash else f"returned {format_result(p, op, runtime.result)}"
        # Where the runtime died (or looped), as its traceback says: a debugger's first look.
        where = [f"  at {f}" for f in (runtime.stack or ())[:8]] if runtime.crash else []
        return Divergence(step, op, "crash", [f"model {m}, runtime {r}", *where])
    if model.result != runtime.result:
        lines = [f"model returned {format_result(p, op, model.result)}, runtime returned {format_result(p, op, runtime.result)}"]
        if model.state is not None and runtime.state is not None:
            lines += diff_states(p, model.state, runtime.state)
        return Divergence(step, op, "result", lines)
    if model.state is not None and runtime.state is not None and model.state != runtime.state:
        lines = diff_states(p, model.state, runtime.state)
        if lines:
            return Divergence(step, op, "state", lines)
    return None


def compare_runs(p, ops: Sequence[O.Op], model: Sequence[Outcome], runtime: Sequence[Outcome]) -> Divergence | None:
    """Returns the first divergence between two runs of the same operations, or None.

    A run may be shorter than ops when its side stopped at a crash; the shorter side's end is
    compared like any crash.
    """
    for i, op in enumerate(ops):
        if i >= len(model) or i >= len(runtime):
            if len(model) != len(runtime):
                short = "model" if len(model) < len(runtime) else "runtime"
                return Divergence(i, op, "crash", [f"{short} stopped before this operation"])
            return None
        d = compare_outcomes(p, i, op, model[i], runtime[i])
        if d is not None:
            return d
        if model[i].crash:
            return None  # both crashed the same way: nothing after is defined
    return None


def self_check(p, side: str, ops: Sequence[O.Op], first: Sequence[Outcome], second: Sequence[Outcome]) -> None:
    """Raises HarnessFault if two runs of the same operations on one side disagree.

    Each side is checked against itself before the two are compared (Alive2's habit): a side
    that is not deterministic would otherwise be blamed on the model.
    """
    d = compare_runs(p, ops, first, second)
    if d is not None:
        d.kind = "harness"
        d.lines = [l.replace("model", "run 1").replace("runtime", "run 2") for l in d.lines]
        raise HarnessFault(side, d)


def invariant_checker():
    """Returns spec/invariants.py's check_all, or None when the invariants are not available."""
    try:
        from palloc.spec.invariants import check_all
    except ImportError:
        return None
    return check_all


def check_invariants(check_all, pa, step: int, op: O.Op | None, caches=(), touched=None) -> Divergence | None:
    """Runs the model's named invariants on its state after an operation; a violation is a
    divergence of kind "invariant" (the model disagrees with the runtime's own comments)."""
    vs = check_all(pa, caches=caches, touched=touched)
    if not vs:
        return None
    return Divergence(step, op, "invariant", ["the model broke its own named invariants:"] + [str(v) for v in vs[:20]])
