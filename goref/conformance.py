"""The real runtime judged against the spec, step by step, on its own state.

The lockstep (goref/fuzz.py, goref/lockstep.py) compares the runtime with the model, which mirrors
one version's choices. Here the runtime is compared with the *contract* (spec/obligations.py):
after every operation, the step obligations are judged on the runtime's state before it (read from
the Go helper's dump), and the named invariants (spec/invariants.py) on its state after it, read
through `RuntimeView`, a read-only PageAlloc-shaped view of a dump. A policy change (a different
scavenge order, a lazier searchAddr, another page-cache window) keeps every obligation and differs
from the model only where spec/obligations.py:FREEDOMS allows: `changes behaviour`, not `breaks`.

`SpecLockstep` is a runner the fuzzer's Generator can drive: every operation goes to the runtime at
once (one helper round trip), so the generator follows the runtime's answers (the pages it handed
out, its caches), never the model's; the model runs beside it while the two agree, only to count
what the policy changes (`Behaviour`).

Mirrors no Go file: it reads the Go 1.27 page allocator through the helper's overlay.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import Counter
from typing import Any

from palloc.goref import ops as O
from palloc.goref.compare import Divergence, Outcome, State, crashes_agree, format_crash, format_result
from palloc.goref.fuzz import DivergenceFound, Lockstep
from palloc.goref.go_side import _crash_outcome, crash_of, init_request, op_request, result_of, state_from_dump
from palloc.goref.model_side import ModelSide
from palloc.spec import invariants as I
from palloc.spec.abstract import AbstractState
from palloc.spec.constants import PAGE_SIZE
from palloc.spec.obligations import OBLIGATIONS, Violation, check_step

# --- a dump, read as a PageAlloc -----------------------------------------------------------------


class _Addr:
    __slots__ = ("_a", "_o")

    def __init__(self, p, a: int):
        self._a = a
        self._o = (a - p.arena_base_offset) & p.uintptr_mask

    def addr(self) -> int:
        return self._a


class _Range:
    __slots__ = ("base", "limit")

    def __init__(self, p, b: int, l: int):
        self.base, self.limit = _Addr(p, b), _Addr(p, l)

    def size(self) -> int:
        return self.limit._o - self.base._o if self.base._o < self.limit._o else 0


class _Ranges:
    def __init__(self, p, in_use):
        self.p = p
        self.ranges = [_Range(p, b, l) for b, l in in_use]
        # The dump has no totalBytes: the sum of the ranges (so in_use_sorted_coalesced's
        # totalBytes clause is not checked on the runtime).
        self.total_bytes = sum(r.size() for r in self.ranges)

    def contains(self, a: int) -> bool:
        o = (a - self.p.arena_base_offset) & self.p.uintptr_mask
        return any(r.base._o <= o < r.limit._o for r in self.ranges)


class _Bits:
    __slots__ = ("v", "scavenged")

    def __init__(self, alloc: int, scav: int):
        self.v = alloc
        self.scavenged = _Word(scav)


class _Word:
    __slots__ = ("v",)

    def __init__(self, v: int):
        self.v = v


class _Level:
    def __init__(self, vals: dict[int, int], n: int | None, mapped):
        self.vals, self.len, self._mapped = vals, (1 << 62) if n is None else n, mapped

    def is_mapped(self, i: int) -> bool:
        return self._mapped is None or any(a <= i < b for a, b in self._mapped)


class _Cursor:
    def __init__(self, a: int, marked: int = 0):
        self.a, self.marked = a, bool(marked)

    def load(self) -> tuple[int, bool]:
        return self.a, self.marked

    def addr(self) -> int:
        return self.a


class _Index:
    def __init__(self, p, st: State):
        from palloc.model.mgcscavenge import ScavChunkData, unpack_scav_chunk_data

        self._zero = ScavChunkData
        self.chunks = {ci: unpack_scav_chunk_data(p, v) for ci, v in st.scav_chunks.items() if v is not None}
        s = st.scav
        self.search_addr_bg = _Cursor(s["search_addr_bg"], s.get("search_addr_bg_marked", 0))
        self.search_addr_force = _Cursor(s["search_addr_force"], s.get("search_addr_force_marked", 0))
        self.free_hwm = _Cursor(s["free_hwm"])
        self.min_heap_idx = s["min_heap_idx"]
        self.gen = s.get("gen", 0)
        # Without the window in the dump, [start, end) (its covering clause then holds trivially).
        self.min, self.max = st.scav_window if st.scav_window is not None else (st.start, st.end)

    def peek(self, ci: int):
        return self._zero()


class _Scav:
    def __init__(self, index):
        self.index = index


class RuntimeView:
    """The runtime's state, as read from one dump, with the attributes spec/invariants.py reads
    of a PageAlloc (read-only: nothing here writes)."""

    def __init__(self, p, st: State):
        self.p = p
        self.state = st
        self.in_use = _Ranges(p, st.in_use)
        self.start, self.end = st.start, st.end
        self.search_addr = _Cursor(st.search_addr)
        lens = st.summary_len or (None,) * len(st.summary)
        mapped = st.summary_mapped or (None,) * len(st.summary)
        self.summary = [_Level(v, n, m) for v, n, m in zip(st.summary, lens, mapped)]
        self.scav = _Scav(_Index(p, st))

    def try_chunk_of(self, ci: int):
        v = self.state.chunks.get(ci)
        return None if v is None else _Bits(*v)


class _CacheView:
    """A page cache as the generator and page_cache_disjoint read it."""

    def __init__(self, base: int, cache: int, scav: int):
        self.base, self.cache, self.scav = base, cache, scav

    def empty(self) -> bool:
        return self.cache == 0


def abstract_of_state(p, st: State) -> AbstractState:
    """Returns (grown, free, scavenged) of a dumped state, as spec/refinement.py:abstract_of does of
    a PageAlloc: a grown chunk the dump could not read counts as allocated and unscavenged."""
    abo, mask, n = p.arena_base_offset, p.uintptr_mask, p.palloc_chunk_pages
    grown, free, scav = [], [], []
    for b, l in st.in_use:
        lo = ((b - abo) & mask) // PAGE_SIZE
        hi = lo + (((l - abo) & mask) - ((b - abo) & mask)) // PAGE_SIZE
        grown.append((lo, hi))
        for first in range(lo, hi, n):
            bm = st.chunks.get(first // n)
            if bm is None:
                continue
            free.append(_pages_of(first, n, ~bm[0]))
            scav.append(_pages_of(first, n, bm[1]))
    return AbstractState(tuple(sorted(grown)), frozenset().union(*free), frozenset().union(*scav))


@functools.lru_cache(maxsize=8192)
def _pages_of(first: int, n: int, bits: int) -> frozenset[int]:
    """The page numbers first+i of the set bits i < n (a chunk's state changes a few bits a step:
    most chunks' sets come from here unchanged)."""
    return frozenset(first + i for i in range(n) if bits >> i & 1)


# --- judging one step ---------------------------------------------------------------------------


def _args(op: O.Op) -> dict[str, Any]:
    return {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}


def judge_step(p, host: dict, op: O.Op, before: State | None, out: Outcome, model: Outcome | None = None,
               abstract_before: AbstractState | None = None, abstract_after: AbstractState | None = None,
               touched: list[int] | None = None) -> list[Violation]:
    """Returns every obligation the runtime broke in one step: `op` on the state `before`, giving
    `out`. model: the model's outcome of the same step (it gives the pure functions' values and
    says which throws the runtime's own checks must make); None when the model no longer follows.
    touched: the chunks the step may have changed (the per-chunk invariants visit only those, as
    the lockstep's do); None: every grown chunk.
    """
    if out.crash and out.crash[0] != "undefined":
        if model is not None and model.crash and crashes_agree(model, out):
            return []
        said = format_crash(out.crash, out.detail)
        where = [f"at {f}" for f in (out.stack or ())[:4]]
        return [Violation("defined_ops_return", repr(op), f"the runtime {said}"
                          + (f"; the model returned {format_result(p, op, model.result)}" if model is not None and not model.crash else "")
                          + ("; " + ", ".join(where) if where else ""))]
    if not op.on_page_alloc or isinstance(op, O.AddrRangesOp):
        return _judge_pure(p, op, out, model)
    if before is None or out.state is None:
        return []
    pre = abstract_before or abstract_of_state(p, before)
    post = abstract_after or abstract_of_state(p, out.state)
    v = check_step(p, op.kind, _args(op), pre, post, out.result, before.caches, out.state.caches, host,
                   _offered(p, out.state) if isinstance(op, O.Scavenge) else None)
    if op.mutates:
        view = RuntimeView(p, out.state)
        caches = [_CacheView(*c) for c in out.state.caches.values() if c[1]]
        v += I.check_all(view, caches=caches, touched=touched)
    return v


def _offered(p, st: State) -> frozenset[int]:
    """The chunks the dumped scavenge index still offers a scavenger: its HasFree flag set."""
    from palloc.model.mgcscavenge import unpack_scav_chunk_data

    return frozenset(ci for ci, v in st.scav_chunks.items() if v is not None and unpack_scav_chunk_data(p, v).flags & 1)


def _judge_pure(p, op: O.Op, out: Outcome, model: Outcome | None) -> list[Violation]:
    if isinstance(op, O.FindScavengeCandidate):
        base, n = out.result[0], out.result[1]
        if n == 0:
            return []
        bad = []
        m = op.minimum
        if n < m or base % m or n % m:
            bad.append(f"[{base}, {base + n}) is not at least min={m} pages and aligned to it")
        run = ((1 << n) - 1) << base
        if run & (op.alloc | op.scav):
            bad.append(f"[{base}, {base + n}) holds allocated or scavenged pages "
                       f"({I._fmt_runs(run & (op.alloc | op.scav))})")
        if base + n > p.palloc_chunk_pages:
            bad.append(f"[{base}, {base + n}) leaves the chunk")
        return [Violation("scavenge_candidate_free", repr(op), b) for b in bad]
    if model is None or model.crash or model.result == out.result:
        return []
    return [Violation("pure_functions_exact", repr(op), f"returned {format_result(p, op, out.result)}, "
                      f"its definition gives {format_result(p, op, model.result)}")]


def violation_lines(p, vs: list[Violation], before: State | None) -> list[str]:
    """The lines of a spec divergence: the obligation, where it broke, and what it says."""
    first = vs[0]
    ob = OBLIGATIONS.get(first.invariant)
    lines = [f"breaks {first.invariant}: {first.where}: {first.detail}"]
    lines += [f"also breaks {v.invariant}: {v.where}: {v.detail}" for v in vs[1:6]]
    if ob is not None:
        lines.append(f"obligation {ob.name}: {ob.statement} ({ob.source})")
    lines.append("judged on the runtime's own state before the step, not on the model's")
    return lines


# --- what a policy changes ------------------------------------------------------------------------


@dataclasses.dataclass
class Behaviour:
    """What differs between the model and the runtime while they run the same operations (the
    model follows until their pages first differ; then that heap goes on with the runtime alone)."""

    compared: int = 0  # steps run on both sides
    results_differ: Counter = dataclasses.field(default_factory=Counter)  # by op kind
    by_kind: Counter = dataclasses.field(default_factory=Counter)  # steps compared, by op kind
    state_differs: int = 0  # steps whose state differs, results equal
    search_addr_differs: int = 0
    cache_windows_differ: int = 0
    released_model: int = 0
    released_runtime: int = 0
    scav_bytes_model: int = 0  # scavenged bytes alloc and allocRange reported
    scav_bytes_runtime: int = 0
    heaps_parted: int = 0  # heaps whose pages stopped agreeing (the model then stops following)
    first: str | None = None  # the first differing step seen, as a debugger would say it

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["results_differ"], d["by_kind"] = dict(self.results_differ), dict(self.by_kind)
        d["results_differ_total"] = sum(self.results_differ.values())
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Behaviour":
        names = {f.name for f in dataclasses.fields(cls)}
        b = cls(**{k: v for k, v in d.items() if k in names and k not in ("results_differ", "by_kind")})
        b.results_differ, b.by_kind = Counter(d.get("results_differ") or {}), Counter(d.get("by_kind") or {})
        return b

    def summary(self) -> str:
        n = sum(self.results_differ.values())
        kinds = ", ".join(f"{k} {v}/{self.by_kind[k]}" for k, v in self.results_differ.most_common(4))
        return (f"{n:,} of {self.compared:,} results differ" + (f" ({kinds})" if kinds else "")
                + f"; state differs at {self.state_differs:,} more; searchAddr differs {self.search_addr_differs:,}x; "
                f"page-cache windows differ {self.cache_windows_differ:,}x; released model {self.released_model:,} B, "
                f"runtime {self.released_runtime:,} B; {self.heaps_parted:,} heaps parted")

    def add(self, other: "Behaviour") -> None:
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, Counter):
                a.update(b)
            elif isinstance(a, int):
                setattr(self, f.name, a + b)
            elif f.name == "first" and a is None:
                self.first = b


# --- the runner ---------------------------------------------------------------------------------


class SpecLockstep(Lockstep):
    """A runner led by the runtime: every step is sent to the helper at once and judged against the
    spec; a broken obligation raises DivergenceFound (kind "spec", or "crash" for a runtime that
    dies on a defined input). The model follows while its pages agree, for `behaviour`.

    go: a GoSide; the helper keeps the allocator between calls (one "new", then a call per step).
    """

    def __init__(self, p, go, host: dict | None = None, goarch: str = "amd64", go_version: str = "",
                 model_factory=None):
        super().__init__(p, go, model_factory, host, invariants=False, goarch=goarch, go_version=go_version)
        self.behaviour = Behaviour()
        self._live = False  # the helper holds an allocator that grew (drop it before the next)
        self.model = None
        self._abs: tuple[State, AbstractState] | None = None  # the last state and its abstraction

    # --- one heap ---------------------------------------------------------------------------

    def _call(self, reqs: list[dict]) -> list[dict]:
        h = self.go.helper
        return h.call(reqs, timeout=self.case_timeout, raw=True) if self.case_timeout else h.call(reqs, raw=True)

    def _drop(self) -> None:
        if self._live and self.go.helper.alive:
            self._call([{"op": "drop"}])
        self._live = False

    def begin(self, init: dict | None = None) -> None:
        self._drop()
        self.init = init
        self.ops: list[O.Op] = []
        self.failed = False
        res = self._call([init_request(init), {"op": "dump"}])
        c = crash_of(res[0]) if res else ("fault", "helper returned nothing")
        if c is None and len(res) > 1:
            c = crash_of(res[1])
        if c is not None:
            self.outs = [Outcome(crash=c)]
            self.ended = True
            self.model = _Led(self, None)
            return
        st = state_from_dump(res[1])
        self._live = bool(init and init.get("chunks"))
        self.outs = [Outcome(state=st)]
        self.ended = False
        self.shadow = ModelSide(self.p, self.model_factory, self.host)
        so = self.shadow.reset(init)
        self.in_sync = not so.crash and so.state is not None and abstract_of_state(self.p, so.state) == abstract_of_state(self.p, st)
        self.model = _Led(self, st)

    def _precondition(self, op: O.Op, pre: AbstractState) -> str | None:
        """Why op is undefined on the runtime's own state (spec/abstract.py's Requires:), or None."""
        p = self.p
        if isinstance(op, O.Free):
            s = ((op.base - p.arena_base_offset) & p.uintptr_mask) // PAGE_SIZE
            grown = lambda q: any(b <= q < l for b, l in pre.grown)  # noqa: E731
            if any(q in pre.free or not grown(q) for q in range(s, s + op.npages)):
                return "free of pages not all grown and allocated"
            for cb, cache, _ in self._last_state().caches.values():  # a page cache owns its pages
                c0 = ((cb - p.arena_base_offset) & p.uintptr_mask) // PAGE_SIZE
                if any(cache >> (q - c0) & 1 for q in range(max(s, c0), min(s + op.npages, c0 + 64))):
                    return "free of pages a page cache owns"
        elif isinstance(op, O.AllocRange):
            s = ((op.base - p.arena_base_offset) & p.uintptr_mask) // PAGE_SIZE
            if any(q not in pre.free for q in range(s, s + op.npages)):
                return "allocRange of pages not all free"
        elif isinstance(op, O.Grow):
            s = ((op.base - p.arena_base_offset) & p.uintptr_mask) // PAGE_SIZE
            e = s + op.size // PAGE_SIZE
            if any(b < e and s < l for b, l in pre.grown):
                return "grow of memory already grown"
        elif isinstance(op, (O.CacheAlloc, O.CacheFlush)):
            if op.slot not in self._last_state().caches:
                return "no cache in that slot"
        elif isinstance(op, O.AllocToCache):
            if op.slot in self._last_state().caches:
                return "cache slot already full"
        return None

    def _last_state(self) -> State | None:
        for o in reversed(self.outs):
            if o.state is not None:
                return o.state
        return None

    def step(self, op: O.Op):
        """Runs op on the runtime and judges it; returns the runtime's result (None when undefined)."""
        if self.ended or O.undefined_reason(op, self.p):
            return None
        before = self._last_state()
        pre = None
        if op.on_page_alloc:
            if self._abs is None or self._abs[0] is not before:
                self._abs = (before, abstract_of_state(self.p, before))
            pre = self._abs[1]
        if op.on_page_alloc and self._precondition(op, pre):
            return None
        model = None
        if self.in_sync or not op.on_page_alloc:
            model = self.shadow.apply(op)
            if model.crash and model.crash[0] == "undefined" and not model.throw:
                return None  # the model, in step with the runtime, calls it undefined: never sent
        t0 = time.perf_counter()
        reqs = [op_request(op)] + ([{"op": "dump"}] if op.on_page_alloc else [])
        res = self._call(reqs)
        self.stats.go_s += time.perf_counter() - t0
        out = self._outcome(op, res)
        self.ops.append(op)
        self.outs.append(out)
        if isinstance(op, O.Grow) and not out.crash:
            self._live = True
        post = abstract_of_state(self.p, out.state) if out.state is not None else None
        touched = self._touched(before, out.state) if op.mutates and before is not None else None
        vs = judge_step(self.p, self.host, op, before, out, model, pre, post, touched)
        self._count(op, model, out, post)
        if post is not None:
            self._abs = (out.state, post)
        if out.crash:
            self.ended = True
            self._live = False  # the helper died with it
        if vs:
            kind = "crash" if vs[0].invariant == "defined_ops_return" else "spec"
            self._fail(Divergence(len(self.ops) - 1, op, kind, violation_lines(self.p, vs, before)))
        if out.state is not None:
            self.model = _Led(self, out.state)
        return out.result

    def _outcome(self, op: O.Op, res: list[dict]) -> Outcome:
        if not res:
            return Outcome(crash=("fault", "helper returned nothing"))
        c = crash_of(res[0])
        if c:
            return _crash_outcome(c, res[0])
        result = result_of(op, res[0])
        if not op.on_page_alloc:
            return Outcome(result=result)
        if len(res) < 2:
            return Outcome(result=result, crash=("fault", "helper died before the state dump"))
        c = crash_of(res[1])
        if c:
            return _crash_outcome(c, res[1], result)
        return Outcome(result=result, state=state_from_dump(res[1]))

    def _count(self, op: O.Op, model: Outcome | None, out: Outcome, post: AbstractState | None) -> None:
        b = self.behaviour
        if isinstance(op, O.Scavenge) and out.result:
            b.released_runtime += out.result[0]
        if isinstance(op, (O.Alloc, O.AllocRange)) and out.result:
            b.scav_bytes_runtime += out.result[-1]
        if model is None or not op.on_page_alloc:
            return
        b.compared += 1
        b.by_kind[op.kind] += 1
        if isinstance(op, O.Scavenge) and model.result:
            b.released_model += model.result[0]
        if isinstance(op, (O.Alloc, O.AllocRange)) and model.result:
            b.scav_bytes_model += model.result[-1]
        differs = model.result != out.result or bool(model.crash) != bool(out.crash)
        if differs:
            b.results_differ[op.kind] += 1
            if isinstance(op, O.AllocToCache):
                b.cache_windows_differ += 1
        ms, rs = model.state, out.state
        if ms is not None and rs is not None:
            if ms.search_addr != rs.search_addr:
                b.search_addr_differs += 1
            if not differs and ms != rs:
                b.state_differs += 1
            if b.first is None and (differs or ms != rs):
                from palloc.goref.compare import compare_outcomes

                d = compare_outcomes(self.p, len(self.ops) - 1, op, model, out)
                if d is not None:
                    b.first = d.text()
            if differs or (ms != rs and abstract_of_state(self.p, ms) != post):
                self.in_sync = False
                b.heaps_parted += 1

    def finish(self) -> None:
        st = self._last_state()
        if self.ops and not self.failed and not self.ended and st is not None:
            # The per-step checks visit the chunks a step touched; the heap's end, every chunk.
            vs = I.check_all(RuntimeView(self.p, st), caches=[_CacheView(*c) for c in st.caches.values() if c[1]])
            if vs:
                self._drop()
                self._fail(Divergence(len(self.ops) - 1, self.ops[-1], "spec", violation_lines(self.p, vs, st)))
        if self.ops and not self.failed:
            self.stats.examples += 1
            self.stats.checked(self.ops)
        if self.on_example:
            self.on_example(self)
        self._drop()

    def run_case(self, case) -> Divergence | None:
        """Runs a saved case on the runtime alone, judged against the spec; the first broken
        obligation, or None when every one held."""
        try:
            self.begin(case.init)
            for op in case.ops:
                self.step(op)
            self.finish()
        except DivergenceFound as e:
            self._drop()
            return e.divergence
        return None

    def self_check_case(self, case, fresh_go=None) -> None:
        """Raises NotReproduced unless the case breaks the same obligation on a fresh helper."""
        from palloc.goref.fuzz import NotReproduced

        d = case.divergence
        again = SpecLockstep(self.p, fresh_go() if fresh_go else self.go, self.host, self.goarch, self.go_version,
                             self.model_factory)
        try:
            d2 = again.run_case(case)
        finally:
            if fresh_go and hasattr(again.go.helper, "close"):
                again.go.helper.close()
        if d2 is None or d is None or d2.lines[:1] != d.lines[:1]:
            raise NotReproduced("runtime", Divergence(d.step if d else 0, d.op if d else None, "harness", [
                f"the case does not break the obligation again (it had: {d.lines[0] if d and d.lines else '?'}; "
                f"now: {d2.lines[0] if d2 and d2.lines else 'every obligation holds'})"]))


class _Led:
    """What the generator reads of `runner.model`: the runtime's state as a PageAlloc, its caches."""

    def __init__(self, runner: SpecLockstep, st: State | None):
        self.pa = RuntimeView(runner.p, st) if st is not None else None
        self.caches = {k: _CacheView(*v) for k, v in (st.caches.items() if st is not None else ())}



# --- the verdict on a divergence from the model ---------------------------------------------------


def obligation_of(d: Divergence | None) -> str | None:
    """The obligation a spec divergence names ("breaks NAME: ..."), or defined_ops_return for a
    runtime that died; None for anything else."""
    if d is None:
        return None
    if d.lines and d.lines[0].startswith("breaks "):
        return d.lines[0][len("breaks "):].split(":", 1)[0]
    if d.kind == "crash" and d.lines and "runtime returned" not in d.lines[0]:
        return "defined_ops_return"
    return None


@dataclasses.dataclass
class Judgement:
    """What the spec says of a patched runtime whose lockstep with the model diverged.

    verdict: "breaks" (an obligation failed: `obligation`, with the shrunk case written as
    `failure`) or "changes behaviour" (every obligation held on the case and through the
    spec-only campaign that followed: `behaviour` says what differs).
    """

    verdict: str
    obligation: str | None = None
    failure: dict | None = None  # the written case's entry (goref/campaign.py:_written)
    behaviour: dict | None = None
    stats: dict | None = None  # the spec-only campaign's coverage
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def judge(conf, case, go_factory, seconds: float, seed: int = 0) -> Judgement:
    """Judges the patched runtime against the spec after its lockstep with the model diverged on
    `case`: re-runs the case on the runtime alone, judged step by step; when every obligation
    holds there, runs a spec-only campaign of `seconds` (the generator led by the runtime), so a
    later real break of the same patch is still found. A broken obligation is self-checked on a
    fresh helper, shrunk, and written to conf.failures.

    conf: the campaign's goref.campaign.Config (platform, host, goarch, patch); go_factory() returns
    a GoSide on a fresh helper of the patched runtime.
    """
    from palloc.goref import campaign
    from palloc.goref.fuzz import HarnessFault, run_random_campaign, shrink_case

    t0 = time.monotonic()
    runner = SpecLockstep(conf.platform, go_factory(), conf.host or {}, conf.goarch, conf.go_version)
    found = None
    try:
        if runner.run_case(case) is not None:
            found = shrink_case(runner, runner.failures[-1])
        if found is None:
            res = run_random_campaign(runner, max(seconds, 1.0), seed)
            found = res.failure
        if found is None:
            return Judgement("changes behaviour", behaviour=runner.behaviour.to_json(), stats=runner.stats.to_json(),
                             seconds=time.monotonic() - t0)
        note = None
        try:
            runner.self_check_case(found, fresh_go=go_factory)
        except HarnessFault as e:
            note = f"not confirmed on a fresh helper: {e}"
        if conf.patch is not None:
            found.patch = conf.patch
        # The runtime's outcomes too, so the case's picture draws both sides.
        entry = campaign._written(found, conf.failures, True, note, campaign._runtime_outcomes(runner, found))
        return Judgement("breaks", obligation_of(found.divergence), entry, runner.behaviour.to_json(),
                         runner.stats.to_json(), time.monotonic() - t0)
    finally:
        runner._drop()
        if hasattr(runner.go.helper, "close"):
            runner.go.helper.close()
