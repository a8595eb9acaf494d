"""The differential fuzzer: the model and the real runtime in lockstep, as a Hypothesis state machine.

The rules are the allocator's verbs (grow, alloc, free, allocToCache, page-cache alloc and flush,
scavenge forced and not, nextGen, find, allocRange). Every operation is applied to the model at
once (the generator reads the model's state to choose only inputs the runtime defines: pages to
free are pages some earlier operation handed out, allocRange takes free pages, grow takes
unused chunk-aligned ranges) and the model's named invariants are checked after each. The case
goes to the Go helper in one batch per example, with a state dump after every operation, and the
two runs are compared step by step (goref/compare.py). A divergence fails the example, and
Hypothesis shrinks it.

Heaps that matter are generated on purpose: contiguous growth, discontiguous growth (chunks 2
GiB, 16 GiB or a TiB apart on 64-bit), a chunk whose leaf summary is the last entry of a mapped physical page of
summary memory (DiscontiguousMappedSumBoundary), nearly full and exhausted chunks (through
NewPageAlloc), and growth interleaved with allocation.

Mirrors no Go file: it drives the Go 1.27 page allocator (src/runtime/mpagealloc.go and friends).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize, rule

from palloc.goref import ops as O
from palloc.goref.compare import (
    Divergence, HarnessFault, Outcome, check_invariants, compare_runs, invariant_checker, self_check,
)
from palloc.goref.model_side import ModelSide, chunks_of
from palloc.goref.targets import TARGETS
from palloc.spec.constants import PAGE_SIZE

FORMAT = "palloc-fuzz-case/1"
# Every --goarch (goref/targets.py) and the platform of spec/platforms.toml the model takes for it.
GOARCH_PLATFORM = {name: t[2] for name, t in TARGETS.items()}


def goarch_platform(goarch: str, go_version: str = "1.27"):
    """Returns the model's platform for a --goarch from spec/platforms.toml (or its other-endian stand-in's, for a
    platform the table lacks: goref/targets.py STAND_IN_PLATFORMS). A live helper's own constants
    refine it (session)."""
    from palloc.goref.targets import table_platform

    return table_platform(GOARCH_PLATFORM[goarch], ".".join(go_version.removeprefix("go").split(".")[:2]))


def _case_platform(goarch: Any, go_version: Any):
    """Returns the platform a case names; raises ValueError (ConfigError) for an unknown one."""
    from palloc.spec.constants import parse_go_version

    if not isinstance(goarch, str) or goarch not in GOARCH_PLATFORM:
        raise ValueError(f"unsupported goarch {O.short(goarch)}; known: {', '.join(GOARCH_PLATFORM)}")
    parse_go_version(go_version)
    return goarch_platform(goarch, go_version)


def _ops_from_json(ops: list, p) -> list[O.Op]:
    """Returns the operations of a case, each field checked against its Go type on p."""
    out = []
    for i, x in enumerate(ops):
        try:
            out.append(O.from_json(x, p))
        except O.OpFormatError as e:
            raise ValueError(f"ops[{i}]: {e}") from None
    return out


def _init_from_json(init: Any, p) -> dict | None:
    """Returns a case's initial heap ({"chunks": {ci: [[i, n], ...]}, "scav": ...}) with chunk
    indices as ints; raises ValueError unless every range lies inside its chunk."""
    if init is None:
        return None
    if not isinstance(init, dict) or not isinstance(init.get("chunks"), dict) or \
            not isinstance(init.get("scav") or {}, dict) or set(init) - {"chunks", "scav"}:
        raise ValueError("'init' must be null or {\"chunks\": {...}, \"scav\": {...}}")
    n_chunks = 1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes)
    out = {}
    for part in ("chunks", "scav"):
        ranges = {}
        for k, v in (init.get(part) or {}).items():
            try:
                ci = int(k, 0) if isinstance(k, str) else int(k)
            except ValueError:
                raise ValueError(f"init {part}: {k!r} is not a chunk index") from None
            if not 0 <= ci < n_chunks:
                raise ValueError(f"init {part}: chunk {ci:#x} is outside the {p.heap_addr_bits}-bit address space")
            ok = isinstance(v, list) and all(
                isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r)
                and 0 <= r[0] and 0 <= r[1] and r[0] + r[1] <= p.palloc_chunk_pages for r in v)
            if not ok:
                raise ValueError(f"init {part} of chunk {ci:#x}: expected a list of [first page, pages] "
                                 f"inside the chunk's {p.palloc_chunk_pages} pages, not {v!r}"[:300])
            ranges[ci] = v
        out[part] = ranges
    return out


def _check_case_extras(d: dict, p) -> None:
    """Raises ValueError unless a case's model_variant and host are of the form palloc writes."""
    from palloc.spec.constants import ConfigError

    if d.get("model_variant") is not None and not isinstance(d["model_variant"], str):
        raise ValueError(f"'model_variant' must be null or a variant name, not {O.short(d['model_variant'])}")
    host = d.get("host")
    if host is None:
        return
    keys = {"phys_page_size", "phys_huge_page_size"}
    if not isinstance(host, dict) or set(host) - keys:
        raise ValueError(f"'host' must be null or an object with {sorted(keys)}, not {host!r}"[:300])
    try:
        p.replace(**{k: v for k, v in host.items() if v is not None})
    except ConfigError as e:
        raise ValueError(f"host: {e}") from None


@dataclasses.dataclass
class Case:
    """A replayable differential case: the platform, the initial heap and the operations."""

    goarch: str
    go_version: str
    init: dict | None
    ops: list[O.Op]
    model_variant: str | None = None
    divergence: Divergence | None = None
    host: dict | None = None
    # The runtime patch the case was found on (verify-change): {"path", "sha256", "text"}, so
    # that `palloc replay` rebuilds the patched helper from the case alone.
    patch: dict | None = None
    # False when the runtime crashed on this heap only after other heaps ran in the same process
    # (goref/lockstep.py _death): a replay of the heap alone is not expected to crash.
    alone: bool = True

    def to_json(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "goarch": self.goarch,
            "go_version": self.go_version,
            "model_variant": self.model_variant,
            "host": self.host,
            "init": _init_json(self.init),
            "ops": [op.to_json() for op in self.ops],
            "divergence": self.divergence.to_json() if self.divergence else None,
        }
        if self.patch is not None:
            out["patch"] = self.patch
        if not self.alone:
            out["alone"] = False
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Case":
        """Returns the case a failure file holds; raises ValueError saying what is wrong."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a palloc fuzz case (expected \"format\": \"{FORMAT}\")")
        for k in ("goarch", "go_version", "ops"):
            if k not in d:
                raise ValueError(f"missing key {k!r}")
        p = _case_platform(d["goarch"], d["go_version"])
        if not isinstance(d["ops"], list):
            raise ValueError("'ops' must be a list")
        ops = _ops_from_json(d["ops"], p)
        init = _init_from_json(d.get("init"), p)
        _check_case_extras(d, p)
        patch = d.get("patch")
        if patch is not None and not (isinstance(patch, dict) and isinstance(patch.get("text"), str)):
            raise ValueError("'patch' must be null or {\"path\": ..., \"sha256\": ..., \"text\": \"<the diff>\"}")
        return cls(d["goarch"], d["go_version"], init, ops, d.get("model_variant"), None, d.get("host"), patch,
                   d.get("alone") is not False)


def _init_json(init):
    if init is None:
        return None
    return {
        "chunks": {hex(k): [list(r) for r in v] for k, v in init["chunks"].items()},
        "scav": {hex(k): [list(r) for r in v] for k, v in (init.get("scav") or {}).items()},
    }


class CrashNotRecurring(HarnessFault):
    """The runtime crashed (threw, faulted, hung) on a case in one run and not in another: the
    crash is real (a runtime that dies on a defined input is a divergence) but not certain to
    recur on replay."""


class NotReproduced(HarnessFault):
    """A case that diverged once runs on both sides alike when run again, twice."""


class ShrinkBudgetSpent(BaseException):
    """Ends a Hypothesis run whose shrinking has used its time budget (not an Exception, so
    Hypothesis does not take it for a failure of the example)."""


class DivergenceFound(AssertionError):
    """An example's two runs diverged (raised inside Hypothesis, so it shrinks the example)."""

    def __init__(self, d: Divergence):
        super().__init__(d.text())
        self.divergence = d


@dataclasses.dataclass
class Stats:
    """What a campaign has checked so far."""

    ops: int = 0
    page_alloc_ops: int = 0  # of ops: those on a page allocator (the rest are bitmap functions)
    examples: int = 0
    by_kind: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    model_s: float = 0.0
    go_s: float = 0.0
    compare_s: float = 0.0
    invariant_s: float = 0.0
    digest_s: float = 0.0  # the digest lockstep: words and SHA-256 of each model step
    go_wait_s: float = 0.0  # the digest lockstep: waiting for the helper's answers
    full_compares: int = 0  # the digest lockstep: full state dumps compared
    # Helper deaths that were not the runtime's doing (an outside signal, a slow answer taken
    # for a hang): each said in one line; their heaps were re-run with full dumps.
    helper_deaths: list = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.monotonic)
    first_divergence_s: float | None = None

    def checked(self, ops) -> None:
        """Counts the operations of one example that was checked to its end."""
        self.ops += len(ops)
        for op in ops:
            self.by_kind[op.kind] += 1
            self.page_alloc_ops += op.on_page_alloc

    def rate(self) -> float:
        el = time.monotonic() - self.started
        return self.ops / el if el > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        el = time.monotonic() - self.started
        return {
            "checked_ops": self.ops,
            "examples": self.examples,
            "seconds": round(el, 2),
            "ops_per_second": round(self.rate(), 1),
            "page_alloc_ops": self.page_alloc_ops,
            "page_alloc_ops_per_second": round(self.page_alloc_ops / el, 1) if el > 0 else 0.0,
            "ops_by_kind": dict(self.by_kind),
            "full_state_compares": self.full_compares,
            "helper_deaths": list(self.helper_deaths),
            "first_divergence_seconds": round(self.first_divergence_s, 2) if self.first_divergence_s is not None else None,
            "time_split_seconds": {
                "model": round(self.model_s, 2),
                "invariants": round(self.invariant_s, 2),
                "go_helper": round(self.go_s, 2),
                "compare": round(self.compare_s, 2),
                "digest": round(self.digest_s, 2),
                "go_wait": round(self.go_wait_s, 2),
            },
        }


class Lockstep:
    """Runs cases on the model as they are generated and on the runtime in one batch each.

    go: a GoSide (or anything with run(init, ops) -> [Outcome]); None runs the model against a
    second copy of itself (the model-vs-model self-check, no Go needed).
    """

    def __init__(self, p, go, model_factory: Callable | None = None, host: dict | None = None,
                 invariants: bool = True, goarch: str = "amd64", go_version: str = "", variant: str | None = None,
                 on_example: Callable[["Lockstep"], None] | None = None,
                 on_runtime_state: Callable[[Any], None] | None = None):
        self.p = p
        self.go = go
        self.model_factory = model_factory
        self.host = dict(host or {})
        self.invariants = invariants
        self.goarch, self.go_version, self.variant = goarch, go_version, variant
        self.stats = Stats()
        self.failures: list[Case] = []
        self.on_example = on_example
        # Called with every state of the runtime that a campaign compares (per step in the classic
        # lockstep, per full dump in the digest lockstep), for a report of what was exercised.
        self.on_runtime_state = on_runtime_state
        # Shrinking stops after shrink_seconds (ShrinkBudgetSpent ends the Hypothesis run; the
        # smallest failing case recorded so far is the result).
        self.shrink_seconds = 20.0
        self.shrink_deadline: float | None = None
        # Seconds before a case run on the runtime counts as hung; None: the helper's calibrated
        # watchdog. Shrinking a hang sets a short one (each candidate that hangs costs it).
        self.case_timeout: float | None = None
        self._check_all = None
        from palloc.goref.compare import Fmt

        self._fmt = Fmt(p)
        if invariants:
            self._check_all = invariant_checker()

    # --- one example -------------------------------------------------------------------

    def begin(self, init: dict | None = None) -> None:
        self.model = ModelSide(self.p, self.model_factory, self.host)
        o = self.model.reset(init)
        self.init = init
        self.ops: list[O.Op] = []
        self.outs: list[Outcome] = [o]
        self.ended = bool(o.crash)
        self.failed = False

    def step(self, op: O.Op):
        """Applies op to the model; returns its result, or None if undefined or after a crash.

        An operation the model calls undefined is dropped: the runtime never sees it.
        """
        if self.ended:
            return None
        t0 = time.perf_counter()
        o = self.model.apply(op)
        t1 = time.perf_counter()
        self.stats.model_s += t1 - t0
        if o.crash and o.crash[0] == "undefined":
            return None
        self.ops.append(op)
        self.outs.append(o)
        if o.crash:
            self.ended = True
            return None
        if self._check_all is not None and op.mutates:
            caches = [c for c in self.model.caches.values() if not c.empty()]
            d = check_invariants(self._check_all, self.model.pa, len(self.ops) - 1, op, caches,
                                 self._touched(self.outs[-2].state, o.state))
            self.stats.invariant_s += time.perf_counter() - t1
            if d is not None:
                self._fail(d)
        return o.result

    def _touched(self, before, after) -> list[int] | None:
        """Returns the chunks an operation may have changed: bitmaps or leaf summaries that
        differ, newly grown chunks, and every grown chunk searchAddr moved across."""
        if before is None or after is None:
            return None
        ch = after.chunks
        out = {ci for ci, v in ch.items() if before.chunks.get(ci) != v}
        leaf_a, leaf_b = before.summary[-1], after.summary[-1]
        out.update(ci for ci, v in leaf_b.items() if leaf_a.get(ci) != v and ci in ch)
        if before.search_addr != after.search_addr:
            f = self._fmt
            a, b = sorted((f.chunk_index(before.search_addr), f.chunk_index(after.search_addr)))
            out.update(ci for ci in ch if a <= ci <= b)
        return sorted(out)

    def finish(self) -> None:
        """Runs the example on the other side and compares; raises DivergenceFound on a difference."""
        if not self.ops or self.failed:
            return
        if self._shrink_over():
            raise ShrinkBudgetSpent()
        t0 = time.perf_counter()
        if self.go is None:
            other = ModelSide(self.p, self.model_factory, self.host).run(self.init, self.ops)
        else:
            other = self.go_run(self.init, self.ops)
            if self.on_runtime_state is not None:
                for o in other:
                    if o.state is not None:
                        self.on_runtime_state(o.state)
        t1 = time.perf_counter()
        d = compare_runs(self.p, [None] + self.ops, self.outs, other)
        self.stats.go_s += t1 - t0
        self.stats.compare_s += time.perf_counter() - t1
        self.stats.examples += 1
        if d is None:
            self.stats.checked(self.ops)
        if self.on_example:
            self.on_example(self)
        if d is not None:
            if d.step > 0:
                d.step -= 1  # step 0 of the run is the initial heap
            else:
                d.op = None
            self._fail(d)

    def _shrink_over(self) -> bool:
        return self.shrink_deadline is not None and time.monotonic() > self.shrink_deadline

    def _fail(self, d: Divergence) -> None:
        if self.shrink_deadline is None:
            from palloc.goref import progress

            # Within a run's --total-seconds, less a moment to check and write the case.
            self.shrink_deadline = time.monotonic() + max(0.0, progress.left(self.shrink_seconds + 5.0) - 5.0)
        ops = list(self.ops[: d.step + 1]) if d.kind != "invariant" else list(self.ops)  # nothing after matters
        case = Case(self.goarch, self.go_version, self.init, ops, self.variant, d, self.host or None)
        self.failures.append(case)
        self.failed = self.ended = True
        if self.stats.first_divergence_s is None:
            self.stats.first_divergence_s = time.monotonic() - self.stats.started
        raise DivergenceFound(d)

    def smallest_failure(self) -> Case | None:
        """Returns the smallest failing case seen (fewest operations, then the latest)."""
        if not self.failures:
            return None
        best = min(range(len(self.failures)), key=lambda i: (len(self.failures[i].ops), -i))
        return self.failures[best]

    # --- whole cases (replay and self-check) ---------------------------------------------

    def run_case(self, case: Case) -> Divergence | None:
        """Re-runs a saved case on both sides; returns the first divergence, or None."""
        m = ModelSide(self.p, self.model_factory, self.host).run(case.init, case.ops)
        d = self._invariants_on_replay(case)
        if d is not None:
            return d
        g = self.go_run(case.init, case.ops) if self.go is not None else ModelSide(self.p, None, self.host).run(case.init, case.ops)
        d = compare_runs(self.p, [None] + case.ops, m, g)
        if d is not None:
            d.step, d.op = (d.step - 1, d.op) if d.step > 0 else (0, None)
        return d

    def go_run(self, init, ops, go=None):
        """Runs a case on the runtime (go, default self.go), under case_timeout when one is set."""
        go = go or self.go
        return go.run(init, ops) if self.case_timeout is None else go.run(init, ops, timeout=self.case_timeout)

    def _invariants_on_replay(self, case: Case) -> Divergence | None:
        if self._check_all is None:
            return None
        ms = ModelSide(self.p, self.model_factory, self.host)
        if ms.reset(case.init).crash:
            return None
        for i, op in enumerate(case.ops):
            o = ms.apply(op, with_state=False)
            if o.crash:
                return None
            if op.mutates:
                d = check_invariants(self._check_all, ms.pa, i, op, [c for c in ms.caches.values() if not c.empty()])
                if d is not None:
                    return d
        return None

    def self_check_case(self, case: Case, fresh_go: Callable | None = None) -> None:
        """Raises HarnessFault unless each side agrees with itself on the case (run twice).

        fresh_go() returns a GoSide on a new helper process, so the second Go run shares nothing
        with the first.
        """
        ops = [None] + case.ops
        a = ModelSide(self.p, self.model_factory, self.host).run(case.init, case.ops)
        b = ModelSide(self.p, self.model_factory, self.host).run(case.init, case.ops)
        self_check(self.p, "model", ops, a, b)
        if self.go is not None:
            g1 = self.go_run(case.init, case.ops)
            other = fresh_go() if fresh_go else self.go
            try:
                g2 = self.go_run(case.init, case.ops, other)
            finally:
                if other is not self.go and hasattr(other.helper, "close"):
                    other.helper.close()  # the fresh process served its purpose
            try:
                self_check(self.p, "runtime", ops, g1, g2)
            except HarnessFault as e:
                if any(o.crash and o.crash[0] != "undefined" for o in (*g1, *g2)):
                    raise CrashNotRecurring(e.side, e.divergence) from None
                raise
            d = case.divergence
            if d is not None and d.kind != "invariant" and compare_runs(self.p, ops, a, g1) is None:
                # Both runs agree with the model now: what was seen was not the case's doing (a
                # hang that was a slow host, a runtime that diverges only now and then).
                raise NotReproduced("runtime", Divergence(d.step, d.op, "harness", [
                    f"the case does not diverge when run again (it had: {d.lines[0] if d.lines else d.kind})"]))


# --- generation ---------------------------------------------------------------------------


def big_jumps(p) -> tuple[int, ...]:
    """The gaps, in chunks, between discontiguous growths; each heap draws one.

    On 64-bit: 2 GiB (0x200 chunks: the next level-1 summary entry), 16 GiB (0x1000: the next
    root entry) and 1 TiB (0x40000: root entries far apart). On 32-bit: 256 MiB (0x40: the next
    level-1 entry). The real scavenger scans the index from its cursor down through every
    chunk of the gap (scavengeIndex.find), so a TiB-gap heap costs the helper twice the CPU per
    operation of the others; the smaller gaps cross the lower levels' boundaries besides.
    """
    return (0x200, 0x1000, 0x40000) if p.is_64bit_page_alloc else (0x40,)


def sums_per_phys_page(p, host) -> int:
    return (host.get("phys_page_size") or p.phys_page_size) // 8


MAX_CHUNKS = 12

# Verbs with their weights (a verb listed k times is drawn k times as often); shrinking moves
# toward the front of the list.
VERB_WEIGHTS = (
    ["alloc"] * 5 + ["free"] * 4 + ["alloc_range"] * 2 + ["alloc_to_cache"] * 2 + ["cache_alloc"] * 2
    + ["scavenge"] * 2 + ["find", "grow", "cache_flush", "next_gen", "bits", "bits", "carve", "addr_ranges"]
)

# Free-run lengths that sit on the edges of the bit searches: summarize's shortcut (most >= 62),
# findBitRange64's n <= 64, findSmallN/findLargeN's split at 64 pages, word multiples.
RUN_LENGTHS = (1, 2, 3, 31, 32, 33, 60, 61, 62, 63, 64, 65, 66, 127, 128, 129, 192)
WORD_OFFSETS = (0, 1, 2, 31, 32, 33, 62, 63)


def free_runs(alloc: int, n: int) -> list[tuple[int, int]]:
    """Returns the maximal runs of zero bits of an n-bit bitmap as (start, length), ascending."""
    free = ~alloc & ((1 << n) - 1)
    out = []
    while free:
        lo = (free & -free).bit_length() - 1
        x = free >> lo
        ln = (~x & (x + 1)).bit_length() - 1
        out.append((lo, ln))
        free &= ~(((1 << ln) - 1) << lo)
    return out


def runs_of_ones(v: int, n: int) -> list[list[int]]:
    """Returns the maximal runs of one bits of an n-bit bitmap as [start, length] (NewPageAlloc's form)."""
    return [[i, k] for i, k in free_runs(~v & ((1 << n) - 1), n)]


class Spec:
    """A value to draw: as a Hypothesis strategy (hyp) and as a plain seeded sample (sample(rng)).

    The generator draws through one function, so the same verbs feed the Hypothesis state machine
    (which shrinks) and the seeded engines (which are fast). The strategy is built only when
    Hypothesis asks for it: building one costs more than a model operation.
    """

    __slots__ = ("_hyp", "_make", "sample")

    def __init__(self, make_hyp, sample):
        self._hyp, self._make, self.sample = None, make_hyp, sample

    @property
    def hyp(self):
        if self._hyp is None:
            self._hyp = self._make()
        return self._hyp


# The seeded samples take one rng.random() each where that is exact: randint and choice cost
# three Python calls a draw, and a heap makes thousands of draws.
_EXACT = 1 << 32  # int(random() * n) reaches every value below n, and only those, for n <= 2**32


def ints(lo: int, hi: int) -> Spec:
    n = hi - lo + 1
    if 0 < n <= _EXACT:
        return Spec(lambda: st.integers(lo, hi), lambda r: lo + int(r.random() * n))
    return Spec(lambda: st.integers(lo, hi), lambda r: r.randint(lo, hi))


def choice(xs) -> Spec:
    xs = list(xs)
    n = len(xs)
    return Spec(lambda: st.sampled_from(xs), lambda r: xs[int(r.random() * n)])


def bools() -> Spec:
    return _BOOLS


_BOOLS = Spec(st.booleans, lambda r: r.random() < 0.5)


def one_of(*specs: Spec) -> Spec:
    n = len(specs)
    return Spec(lambda: st.one_of(*[x.hyp for x in specs]), lambda r: specs[int(r.random() * n)].sample(r))


def npages_spec(p) -> Spec:
    """Page counts that matter: small, word and chunk edges, multi-chunk."""
    cp = p.palloc_chunk_pages
    edges = sorted({1, 2, 3, 63, 64, 65, 127, 128, 129, cp // 2, cp - 1, cp, cp + 1, 2 * cp - 1, 2 * cp, 2 * cp + 1, 3 * cp})
    return one_of(ints(1, 16), choice(edges), ints(1, 3 * cp))


class Generator:
    """Chooses the next operation from the model's state, so that only defined inputs are sent.

    draw(spec, label) returns a value of a Spec; it is Hypothesis's data.draw in the state
    machine and a seeded random sample in the random engine.
    """

    def __init__(self, runner: "Lockstep", draw=None):
        self.runner = runner
        self.draw = draw
        self.spans: list[tuple[int, int]] = []  # page runs handed out and not yet freed
        p = self.p = runner.p
        self.cp, self.cb = p.palloc_chunk_pages, p.palloc_chunk_bytes
        self.base_ci = p.base_chunk_idx
        self.max_ci = (1 << (p.heap_addr_bits - p.log_palloc_chunk_bytes)) - 1
        self.spp = sums_per_phys_page(p, runner.host)
        self.jumps = big_jumps(p)
        self.jump = self.jumps[-1]  # drawn again for every heap
        self.npages = npages_spec(p)
        # A campaign steered toward a patch's changed functions lists their verbs more often
        # (runner.verbs: goref/coverage.py steer_verbs).
        steered = getattr(runner, "verbs", None)
        self.verbs = choice(steered) if steered else VERBS

    def chunk_addr(self, ci: int) -> int:
        p = self.p
        return (ci * self.cb + p.arena_base_offset) & p.uintptr_mask

    # --- the heap -------------------------------------------------------------------------

    def make_heap(self):
        runner, draw = self.runner, self.draw
        self.jump = draw(choice(self.jumps), "jump")
        shape = draw(choice(["grow", "grow", "new_page_alloc"]), "shape")
        if shape == "new_page_alloc":
            init = self.new_page_alloc_init()
            runner.begin(init)
            for ci, rs in sorted(init["chunks"].items()):
                for i, n in rs:
                    if n:
                        self.spans.append((self.chunk_addr(ci) + i * PAGE_SIZE, n))
            return
        runner.begin(None)
        for _ in range(draw(ints(1, 3), "growths")):
            self._grow(draw(choice(["above", "above", "far", "sum_boundary", "below"]), "where"), draw(ints(1, 3), "nchunks"))

    def new_page_alloc_init(self) -> dict:
        """NewPageAlloc heaps: chunk layouts x fill patterns (free, nearly full, exhausted, scattered)."""
        draw, cp, base_ci, jump = self.draw, self.cp, self.base_ci, self.jump
        layout = draw(choice(["contiguous", "discontiguous", "sum_boundary"]), "layout")
        k = draw(ints(1, 4), "nchunks")
        if layout == "contiguous":
            cis = [base_ci + i for i in range(k)]
        elif layout == "discontiguous":
            cis = [base_ci + i * jump for i in range(k)]
        else:
            cis = [base_ci + self.spp - 1, base_ci + jump]
        cis = [c for c in cis if 0 < c <= self.max_ci]
        chunks, scav = {}, {}
        for ci in cis:
            fill = draw(choice(["free", "full", "nearly_full", "scattered", "scattered", "pattern"]), "fill")
            if fill == "pattern":
                rs = runs_of_ones(self.adversarial_bits(), cp)
            elif fill == "free":
                rs = []
            elif fill == "full":
                rs = [[0, cp]]
            elif fill == "nearly_full":
                holes = sorted({draw(ints(0, cp - 1), "hole") for _ in range(draw(ints(1, 3), "holes"))})
                rs, at = [], 0
                for h in holes:
                    if h > at:
                        rs.append([at, h - at])
                    at = h + 1
                if at < cp:
                    rs.append([at, cp - at])
            else:
                rs = self._disjoint_ranges()
            chunks[ci] = rs
            if draw(bools(), "scavenged"):
                scav[ci] = self._disjoint_ranges()
        return {"chunks": chunks, "scav": scav}

    def _disjoint_ranges(self) -> list[list[int]]:
        cuts = sorted({self.draw(ints(0, self.cp), "cut") for _ in range(self.draw(ints(0, 6), "cuts"))})
        return [[a, b - a] for a, b in zip(cuts[0::2], cuts[1::2]) if b > a]

    def _grown_chunks(self) -> list[int]:
        pa = self.runner.model.pa
        return chunks_of(self.p, tuple((r.base.addr(), r.limit.addr()) for r in pa.in_use.ranges))

    def _grow(self, where: str, k: int):
        pa = self.runner.model.pa
        grown = self._grown_chunks()
        if len(grown) + k > MAX_CHUNKS:
            return
        spp, jump = self.spp, self.jump
        if not grown:
            start = self.base_ci + (spp - 1 if where == "sum_boundary" else 0)
        elif where == "above":
            start = pa.end
        elif where == "below":
            start = pa.start - k
        elif where == "far":
            start = pa.end + jump
        else:  # sum_boundary: the next chunk whose leaf summary ends a physical page
            start = ((pa.end + spp) // spp) * spp - 1 + (jump if pa.end % spp == 0 else 0)
            start = max(start, pa.end)
        gs = set(grown)
        if start <= 0 or start + k > self.max_ci or any(c in gs for c in range(start, start + k)):
            return
        self.runner.step(O.Grow(self.chunk_addr(start), k * self.cb))

    # --- the verbs ----------------------------------------------------------------------------

    def verb(self):
        """One operation: the verb is drawn with weights (heavier on alloc and free)."""
        getattr(self, self.draw(self.verbs, "verb"))()

    def grow(self):
        self._grow(self.draw(choice(["above", "below", "far", "sum_boundary"]), "where"), self.draw(ints(1, 2), "nchunks"))

    def alloc(self):
        n = self.draw(self.npages, "npages")
        if self.draw(ints(0, 3), "exact") == 0:
            n = self.exact_fit() or n
        r = self.runner.step(O.Alloc(n))
        if r and r[0]:
            self.spans.append((r[0], n))

    def find(self):
        n = self.draw(self.npages, "npages")
        if self.draw(ints(0, 3), "exact") == 0:
            n = self.exact_fit() or n
        self.runner.step(O.Find(n))

    def heap_free_runs(self) -> list[tuple[int, int, bool]]:
        """Returns the heap's free runs as (first page address, npages, touches a chunk end),
        runs of adjacent grown chunks joined across the chunk boundary."""
        pa, cp = self.runner.model.pa, self.cp
        out = []
        grown = self._grown_chunks()
        i = 0
        while i < len(grown):
            j = i
            while j + 1 < len(grown) and grown[j + 1] == grown[j] + 1:
                j += 1
            v = 0
            for k, ci in enumerate(grown[i:j + 1]):
                d = pa.try_chunk_of(ci)
                v |= (d.v if d is not None else 0) << (k * cp)
            base = self.chunk_addr(grown[i])
            for lo, ln in free_runs(v, (j - i + 1) * cp):
                edge = (lo + ln) % cp == 0 or lo // cp != (lo + ln - 1) // cp
                out.append((base + lo * PAGE_SIZE, ln, edge))
            i = j + 1
        return out

    def exact_fit(self) -> int | None:
        """Returns a page count equal (or one off) to the length of a free run of the heap, most
        often one ending at a chunk's end or straddling chunks; None if the heap has no free page.

        An exact fit is where >= becomes > and where a search's last word decides (findLargeN's
        loop exit, find's straddling runs), and a uniform npages rarely hits one.
        """
        runs = self.heap_free_runs()
        if not runs:
            return None
        edge = [r for r in runs if r[2]]
        pool = edge if edge and self.draw(bools(), "at_edge") else runs
        _, ln, _ = pool[self.draw(ints(0, len(pool) - 1), "run")]
        return max(1, ln + self.draw(choice([0, 0, 0, -1, 1]), "delta"))

    def free(self):
        if not self.spans:
            return
        draw = self.draw
        i = draw(ints(0, len(self.spans) - 1), "span")
        base, n = self.spans[i]
        lo, k = 0, n
        if not draw(bools(), "whole") and n > 1:
            lo = draw(ints(0, n - 1), "from")
            k = draw(ints(1, n - lo), "npages")
        self.runner.step(O.Free(base + lo * PAGE_SIZE, k))
        if self.runner.ended:
            return
        del self.spans[i]
        if lo:
            self.spans.append((base, lo))
        if lo + k < n:
            self.spans.append((base + (lo + k) * PAGE_SIZE, n - lo - k))

    def _drawn_chunk(self):
        """Returns (chunk index, its pallocData) of a drawn grown chunk, or None (none grown, or
        the chunk's data was never made)."""
        grown = self._grown_chunks()
        if not grown:
            return None
        ci = self.draw(choice(grown), "chunk")
        d = self.runner.model.pa.try_chunk_of(ci)
        return None if d is None else (ci, d)

    def alloc_range(self):
        got = self._drawn_chunk()
        if got is None:
            return
        ci, d = got
        cp = self.cp
        free = ~d.v & ((1 << cp) - 1)
        if not free:
            return
        at = self.draw(ints(0, cp - 1), "page")
        above = free >> at
        if not above:
            above, at = free, 0
        lo = at + ((above & -above).bit_length() - 1)
        run = free >> lo
        runlen = (~run & (run + 1)).bit_length() - 1
        k = self.draw(ints(1, min(runlen, 80)), "npages")
        base = self.chunk_addr(ci) + lo * PAGE_SIZE
        if self.runner.step(O.AllocRange(base, k)) is not None:
            self.spans.append((base, k))

    def alloc_to_cache(self):
        slot = self.draw(SLOTS, "slot")
        c = self.runner.model.caches.get(slot)
        if c is not None and not c.empty():
            return
        self.runner.step(O.AllocToCache(slot))

    def cache_alloc(self):
        slot = self.draw(SLOTS, "slot")
        n = self.draw(CACHE_NPAGES, "npages")
        if slot not in self.runner.model.caches:
            return
        r = self.runner.step(O.CacheAlloc(slot, n))
        if r and r[0]:
            self.spans.append((r[0], n))

    def cache_flush(self):
        slot = self.draw(SLOTS, "slot")
        c = self.runner.model.caches.get(slot)
        if c is None or c.empty():
            return
        self.runner.step(O.CacheFlush(slot))

    def scavenge(self):
        p, cb = self.p, self.cb
        nbytes = self.draw(one_of(ints(1, 4 * cb), choice([PAGE_SIZE, 64 * PAGE_SIZE, cb, p.uintptr_mask])), "nbytes")
        self.runner.step(O.Scavenge(nbytes, self.draw(bools(), "force")))

    def next_gen(self):
        self.runner.step(O.NextGen())

    def bits(self):
        """A bitmap-level function (mpallocbits.go, mgcscavenge.go) on a grown chunk's real
        bitmaps or on an adversarial bitmap (adversarial_bits)."""
        draw, cp = self.draw, self.cp
        which = draw(choice(["find", "find", "summarize", "range64", "scav_candidate", "scav_candidate", "fill"]), "function")
        grown = self._grown_chunks()
        if not grown or draw(ints(0, 3), "adversarial") > 0:
            alloc = self.adversarial_bits()
            full = (1 << cp) - 1
            scav = draw(choice([0, ~alloc & full, ~alloc & self.adversarial_bits()]), "scav")
        else:
            d = self.runner.model.pa.try_chunk_of(draw(choice(grown), "chunk"))
            alloc = d.v if d is not None else 0
            scav = d.scavenged.v if d is not None else 0
        if which == "find":
            n = draw(self.npages, "npages")
            runs = free_runs(alloc, cp)
            if runs and draw(bools(), "exact"):  # an exact fit (or one off) of one of its runs
                n = max(1, runs[draw(ints(0, len(runs) - 1), "run")][1] + draw(choice([0, 0, -1, 1]), "delta"))
            op = O.BitsFind(alloc, n, draw(choice([0, 0, draw(ints(0, cp - 1), "search_idx")]), "search_idx"))
        elif which == "summarize":
            op = O.BitsSummarize(alloc)
        elif which == "range64":
            w = draw(ints(0, cp // 64 - 1), "word")
            op = O.FindBitRange64(~(alloc >> (64 * w)) & ((1 << 64) - 1), draw(ints(1, 64), "n"))
        elif which == "scav_candidate":
            m = draw(choice([1, 2, 4, 8, 16, 32, 64]), "minimum")
            op = O.FindScavengeCandidate(alloc, scav, draw(ints(0, cp - 1), "search_idx"), m, draw(ints(0, 2 * cp), "max"))
        else:
            w = draw(ints(0, cp // 64 - 1), "word")
            op = O.FillAligned((alloc >> (64 * w)) & ((1 << 64) - 1), draw(choice([1, 2, 4, 8, 16, 32, 64]), "m"))
        self.runner.step(op)


    # --- adversarial bitmaps and heap shaping ------------------------------------------------

    def adversarial_bits(self) -> int:
        """Returns a chunk bitmap (1 = allocated) built to sit on the bit searches' edges.

        "runs": allocated but for 1-5 free runs of edge lengths (later runs the first's length
        or one off) at word-relative offsets 0, 1, 2, 31..33, 62, 63, ending at a word's end,
        crossing one by a page, or at the chunk's ends. "inner": every word holds an allocated
        page, one free run of 60-63 pages touches a word boundary and another, one page shorter,
        equal or one page longer, lies strictly inside a word (summarize's shortcut when most >=
        62, its inner-run search otherwise). "words": each word drawn from 0, ^0, single pages
        at either end, 1 0^k 1 patterns and random words.
        """
        draw, cp = self.draw, self.cp
        nw = cp // 64
        full = (1 << cp) - 1
        recipe = draw(choice(["runs", "runs", "inner", "inner", "words"]), "recipe")
        if recipe == "inner" and nw < 2:  # wasm's 64-page chunk has no second word for the inner run
            recipe = "runs"
        if recipe == "words":
            v = 0
            for w in range(nw):
                k = draw(choice(["zero", "ones", "low", "high", "inner", "inner", "random"]), "word")
                if k == "ones":
                    x = (1 << 64) - 1
                elif k == "low":
                    x = 1
                elif k == "high":
                    x = 1 << 63
                elif k == "inner":  # 1 0^j 1 at offset o, ones elsewhere
                    j = draw(choice([1, 2, 31, 32, 60, 61, 62]), "inner_len")
                    o = draw(ints(0, 62 - j), "inner_at")
                    x = ((1 << 64) - 1) & ~(((1 << j) - 1) << (o + 1))
                elif k == "random":
                    x = draw(ints(0, (1 << 64) - 1), "random_word")
                else:
                    x = 0
                v |= x << (64 * w)
            return v
        v = full
        if recipe == "inner":
            m = draw(choice([60, 61, 62, 63]), "boundary_run")
            w = draw(ints(0, nw - 1), "boundary_word")
            lo = 64 * w + (64 - m if draw(bools(), "at_word_end") else 0)  # touches a word boundary
            v &= ~(((1 << m) - 1) << lo)
            j = min(62, max(1, m + draw(choice([-1, 0, 1]), "inner_delta")))
            w2 = (w + draw(ints(1, nw - 1), "inner_word")) % nw
            o = draw(choice([1, 62 - j + 1, 1 + (62 - j) // 2]), "inner_at")
            v &= ~(((1 << j) - 1) << (64 * w2 + o))
            return v
        first = None
        for _ in range(draw(ints(1, 5), "runs")):
            if first is None:
                ln = first = draw(one_of(choice(RUN_LENGTHS), ints(1, 3 * 64)), "run_len")
            else:
                ln = max(1, draw(one_of(choice([first - 1, first, first + 1]), choice(RUN_LENGTHS)), "run_len"))
            ln = min(ln, cp)
            w = draw(ints(0, nw - 1), "run_word")
            where = draw(choice(["offset", "word_end", "cross_by_one", "chunk_start", "chunk_end"]), "run_where")
            if where == "offset":
                lo = 64 * w + draw(choice(WORD_OFFSETS), "run_offset")
            elif where == "word_end":
                lo = 64 * (w + 1) - ln
            elif where == "cross_by_one":
                lo = 64 * (w + 1) - ln + 1
            elif where == "chunk_start":
                lo = 0
            else:
                lo = cp - ln
            lo = min(max(lo, 0), cp - ln)
            v &= ~(((1 << ln) - 1) << lo)
        return v

    def _free_pages(self, runs: list[tuple[int, int]]) -> None:
        """Frees every page of the runs [base, base+npages) (ascending, in one chunk) that a
        tracked span holds, run by run, span by span."""
        if not runs:
            return
        lo_all, hi_all = runs[0][0], max(b + n * PAGE_SIZE for b, n in runs)
        # Only spans near the runs can change: the rest keep their order, untouched.
        near, far = [], []
        for sp in self.spans:
            (far if sp[0] >= hi_all or sp[0] + sp[1] * PAGE_SIZE <= lo_all else near).append(sp)
        for base, npages in runs:
            near = self._free_in(near, base, npages)
            if self.runner.ended:
                break
        self.spans = far + near

    def _free_in(self, spans: list[tuple[int, int]], base: int, npages: int) -> list[tuple[int, int]]:
        """Frees [base, base+npages)'s pages held by spans; returns the spans left: the untouched
        in their order, then what is left of the freed ones."""
        lim = base + npages * PAGE_SIZE
        keep, rest = [], []
        step = self.runner.step
        for x, (b, n) in enumerate(spans):
            e = b + n * PAGE_SIZE
            if b >= lim or e <= base:
                keep.append((b, n))
                continue
            lo, hi = max(b, base), min(e, lim)
            if step(O.Free(lo, (hi - lo) // PAGE_SIZE)) is None and self.runner.ended:
                keep.extend(spans[x:])
                break
            if b < lo:
                rest.append((b, (lo - b) // PAGE_SIZE))
            if hi < e:
                rest.append((hi, (e - hi) // PAGE_SIZE))
        return keep + rest

    def carve(self):
        """Shapes a grown chunk toward an adversarial bitmap with allocRange and free: allocates
        its free pages the target has allocated, then frees the target's free runs (only pages
        an earlier operation handed out; page caches keep theirs). At most 16 allocRanges."""
        got = self._drawn_chunk()
        if got is None:
            return
        ci, d = got
        cp = self.cp
        target = self.adversarial_bits()
        base = self.chunk_addr(ci)
        for lo, ln in free_runs(~(~d.v & target) & ((1 << cp) - 1), cp)[:16]:
            a = base + lo * PAGE_SIZE
            if self.runner.step(O.AllocRange(a, ln)) is not None:
                self.spans.append((a, ln))
            if self.runner.ended:
                return
        self._free_pages([(base + lo * PAGE_SIZE, ln) for lo, ln in free_runs(target, cp)])

    # --- addrRanges ------------------------------------------------------------------------------

    def addr_ranges(self):
        """An addrRanges verb on the heap's set of ranges (the first call makes the set and adds
        1-16 ranges; later calls run 1-4 verbs): adds beside, between and away from existing ranges, and queries at their
        edges (base, limit, base-1, limit-1), so findSucc's binary search (more than 8 ranges)
        and its linear scan both meet every boundary."""
        m, draw = self.runner.model, self.draw
        a = getattr(m, "addr_ranges", None)
        if a is None:
            if self.runner.step(O.AddrRangesNew()) is None and getattr(m, "addr_ranges", None) is None:
                return
            for _ in range(draw(ints(1, 16), "initial_ranges")):
                self._ranges_add()
            return
        for _ in range(draw(ints(1, 4), "ranges_ops")):
            self._ranges_verb(m.addr_ranges)

    def _ranges_verb(self, a):
        draw = self.draw
        n = len(a.ranges)
        add = "add" if n < 24 else "contains"
        which = draw(choice([add, add, add, add, "contains", "contains", "contains", "find_succ", "find_succ",
                             "find_addr_greater_equal", "remove_last", "remove_greater_equal", "clone"]), "ranges_verb")
        if which == "add":
            self._ranges_add()
        elif which == "remove_last":
            last = a.ranges[-1].size() if n else PAGE_SIZE
            nb = draw(choice([0, 1, PAGE_SIZE, last - 1, last, last + 1, self.p.uintptr_mask]), "nbytes")
            self.runner.step(O.AddrRangesRemoveLast(max(0, nb)))
        elif which == "clone":
            self.runner.step(O.AddrRangesClone())
        else:
            addr = self._ranges_query(a)
            op = {"contains": O.AddrRangesContains, "find_succ": O.AddrRangesFindSucc,
                  "find_addr_greater_equal": O.AddrRangesFindAddrGreaterEqual,
                  "remove_greater_equal": O.AddrRangesRemoveGreaterEqual}[which](addr)
            self.runner.step(op)

    def _ranges_origin(self) -> int:
        return self.chunk_addr(self.base_ci)

    def _ranges_query(self, a) -> int:
        """Returns an address at an edge of a range of the set (or near the set's ends)."""
        draw = self.draw
        if not a.ranges:
            return self._ranges_origin() + draw(ints(0, 64), "page") * PAGE_SIZE
        r = a.ranges[draw(ints(0, len(a.ranges) - 1), "range")]
        b, l = r.base.addr(), r.limit.addr()
        return draw(choice([b, b, l, l - 1, b - 1, l + 1, b + (l - b) // 2]), "edge")

    def _ranges_add(self) -> None:
        """Adds a range of 1-8 pages: just below or above a range, filling a gap exactly, 1-3
        pages above a range, or anywhere free (the generator never adds an overlapping range: add leaves that undefined)."""
        m, draw = self.runner.model, self.draw
        a = m.addr_ranges
        org = self._ranges_origin()
        size = draw(ints(1, 8), "range_pages") * PAGE_SIZE
        rs = [(r.base.addr(), r.limit.addr()) for r in a.ranges]
        where = draw(choice(["anywhere", "anywhere", "near", "near", "above", "below", "gap"]), "range_where") if rs else "anywhere"
        if where == "anywhere":
            base = org + draw(ints(0, 4096), "range_page") * PAGE_SIZE
            limit = base + size
        else:
            k = draw(ints(0, len(rs) - 1), "range")
            if where == "near":  # a page or a few above range k: a new range, not a coalesced one
                base = rs[k][1] + draw(ints(1, 3), "range_gap") * PAGE_SIZE
                limit = base + size
            elif where == "above":
                base, limit = rs[k][1], rs[k][1] + size
            elif where == "below":
                base, limit = rs[k][0] - size, rs[k][0]
            else:  # the whole gap above range k, coalescing both neighbours
                base = rs[k][1]
                limit = rs[k + 1][0] if k + 1 < len(rs) else base + size
        if base < org or any(b < limit and base < l for b, l in rs):
            return
        self.runner.step(O.AddrRangesAdd(base, limit))


VERBS = choice(VERB_WEIGHTS)
SLOTS = ints(0, O.CACHE_SLOTS - 1)
CACHE_NPAGES = one_of(ints(1, 15), choice([16, 32, 63, 64]))


def _hyp_draw(data):
    return lambda spec, label=None: data.draw(spec.hyp, label=label)


def make_machine(runner: Lockstep, step_count: int = 40):
    """Returns the RuleBasedStateMachine class driving `runner` (one example = one fresh heap)."""

    class PageAllocMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.g = Generator(runner)

        @initialize(data=st.data())
        def make_heap(self, data):
            self.g.draw = _hyp_draw(data)
            self.g.make_heap()

        @rule(data=st.data())
        def verb(self, data):
            self.g.draw = _hyp_draw(data)
            self.g.verb()

        def teardown(self):
            runner.finish()

    PageAllocMachine.TestCase.settings = settings(
        max_examples=10**9, stateful_step_count=step_count, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False,
    )
    return PageAllocMachine


# --- campaigns ----------------------------------------------------------------------------


@dataclasses.dataclass
class CampaignResult:
    stats: Stats
    failure: Case | None
    harness_fault: HarnessFault | None = None
    stopped: str = "budget"  # "budget", "divergence", "interrupted", "helper"


# The engine campaigns use unless told otherwise (the digest lockstep is the fastest and catches
# every broken model at least as fast as the others), and each engine's heap length.
DEFAULT_ENGINE = "lockstep"
DEFAULT_STEPS = {"lockstep": 200, "hypothesis": 40, "random": 40}


def run_campaign(runner: Lockstep, seconds: float, seed: int = 0, examples_per_batch: int = 10,
                 step_count: int = 40, max_examples: int | None = None, engine: str = "hypothesis") -> CampaignResult:
    """Fuzzes until `seconds` pass or a divergence is found (then shrunk by Hypothesis, then ddmin).

    Runs batches of Hypothesis examples, each batch seeded from (seed, batch number), so a
    campaign is reproducible from its seed. Returns the shrunk failing case, if any.
    """
    import hypothesis

    if engine == "random":
        return run_random_campaign(runner, seconds, seed, step_count, max_examples)
    if engine == "lockstep":
        from palloc.goref.lockstep import run_lockstep_campaign

        return run_lockstep_campaign(runner, seconds, seed, step_count, max_examples)
    deadline = time.monotonic() + seconds
    batch = 0
    done = 0
    machine = make_machine(runner, step_count)  # one class: Hypothesis describes its strategies once
    while time.monotonic() < deadline and (max_examples is None or done < max_examples):
        n = examples_per_batch if max_examples is None else min(examples_per_batch, max_examples - done)
        machine.TestCase.settings = settings(machine.TestCase.settings, max_examples=n)
        test = get_state_machine_test(machine, settings=machine.TestCase.settings)
        hypothesis.seed(seed * 1_000_003 + batch)(test)
        batch += 1
        done += n
        before = len(runner.failures)
        try:
            test()
        except ShrinkBudgetSpent:
            pass
        except DivergenceFound:
            pass
        except hypothesis.errors.FlakyFailure as e:
            d = runner.failures[-1].divergence if runner.failures else None
            fault = HarnessFault("runtime", d or Divergence(0, None, "harness", [str(e)]))
            return CampaignResult(runner.stats, runner.smallest_failure(), fault, "divergence")
        except BaseException as e:  # noqa: BLE001 - Hypothesis wraps divergences in groups
            if len(runner.failures) == before or isinstance(e, KeyboardInterrupt):
                raise
        if len(runner.failures) > before:
            # Hypothesis's shrink stops at its time budget; delta debugging then finishes the job
            # on whole operations, cheaply (no Hypothesis per step).
            return CampaignResult(runner.stats, shrink_case(runner, runner.smallest_failure()), None, "divergence")
    return CampaignResult(runner.stats, None, None, "budget")


_HELPERS: dict = {}


def session(goarch: str = "amd64", goroot: str | None = None, variant: str | None = None, go_version: str | None = None,
            invariants: bool = True, fresh: bool = False) -> Lockstep:
    """Returns a Lockstep of the model (or a broken variant) against the helper for goarch.

    The helper is built once (cached on disk by goref/build.py) and its process is shared by the
    sessions of one Python process unless fresh. Raises PallocError when no helper can be made.
    """
    from palloc.goref.broken import model_variant as get_variant
    from palloc.goref.go_side import GoSide, open_helper
    from palloc.goref.targets import helper_platform
    from palloc.spec.errors import PallocError

    if goarch not in GOARCH_PLATFORM:
        raise PallocError(f"unsupported --goarch {goarch!r}; use one of {', '.join(GOARCH_PLATFORM)} or all")
    key = (goarch, goroot)
    if fresh or key not in _HELPERS:
        helper, tc = open_helper(goarch, goroot)
        c = helper.call([{"op": "constants"}])[0]
        if c.get("kind") != "ok":
            raise PallocError(f"the Go helper for {goarch} did not start: {c.get('msg', c)}; try `palloc fuzz --goroot DIR`")
        h = lambda x: int(x, 16) if isinstance(x, str) else int(x)  # noqa: E731
        host = {"phys_page_size": h(c["physPageSize"]), "phys_huge_page_size": h(c["physHugePageSize"])}
        version = c["version"].removeprefix("go")
        # The model's platform is the runtime's own constants; where they differ from the table
        # the difference is kept (platform_diffs) and said, never silently followed.
        hp, diffs = helper_platform(c, GOARCH_PLATFORM[goarch], version)
        entry = (helper, tc, host, version, hp, diffs)
        if not fresh:
            _HELPERS[key] = entry
    else:
        entry = _HELPERS[key]
    helper, tc, host, version, hp, diffs = entry
    # The model takes the Go version of the runtime it is compared with (1.21 has NoHugePage);
    # asked for another one, the table's platform at that version.
    if go_version and go_version.split(".")[:2] != version.split(".")[:2]:
        p = goarch_platform(goarch, go_version)
    else:
        p = hp
    try:
        fac = get_variant(variant).factory() if variant else None
    except KeyError as e:
        raise PallocError(str(e.args[0])) from None
    runner = Lockstep(p, GoSide(p, helper), fac, host, invariants=invariants, goarch=goarch,
                      go_version=version, variant=variant)
    runner.platform_diffs = diffs
    return runner


# --- the random engine: no Hypothesis per step, delta-debugging shrink ------------------------


def run_random_campaign(runner: Lockstep, seconds: float, seed: int = 0, step_count: int = 40,
                        max_examples: int | None = None) -> CampaignResult:
    """Fuzzes with the same generator fed by random.Random(seed): faster, no Hypothesis shrinking.

    A divergence is shrunk by delta debugging over the operations (shrink_case), within
    runner.shrink_seconds.
    """
    import random

    rng = random.Random(seed)
    draw = lambda spec, label=None: spec.sample(rng)  # noqa: E731
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline and (max_examples is None or done < max_examples):
        done += 1
        g = Generator(runner, draw)
        try:
            g.make_heap()
            for _ in range(rng.randint(1, 2 * step_count)):
                g.verb()
                if runner.ended:
                    break
            runner.finish()
        except DivergenceFound:
            case = shrink_case(runner, runner.failures[-1])
            return CampaignResult(runner.stats, case, None, "divergence")
    return CampaignResult(runner.stats, None, None, "budget")


def _fails(runner: Lockstep, init, ops: list[O.Op]) -> Divergence | None:
    """Runs a candidate case through the lockstep; returns its divergence, or None."""
    try:
        runner.begin(init)
        for op in ops:
            runner.step(op)
        runner.finish()
    except DivergenceFound as e:
        return e.divergence
    return None


def shrink_case(runner: Lockstep, case: Case) -> Case:
    """Returns a smaller case failing with the same kind of divergence (ddmin over operations).

    Operations that a removal leaves undefined (freeing pages no longer allocated, a cache slot
    never filled) are dropped by the model side, so every candidate sent to the runtime is defined.
    """
    from palloc.goref import progress

    kind = case.divergence.kind if case.divergence else None
    stop = time.monotonic() + max(0.0, progress.left(runner.shrink_seconds + 5.0) - 5.0)  # within --total-seconds
    saved_deadline, runner.shrink_deadline = runner.shrink_deadline, None
    saved_timeout = runner.case_timeout
    if _hangs(case) and runner.go is not None and hasattr(runner.go, "helper"):
        # Every candidate that still hangs costs the watchdog: a short one here (a case of a few
        # hundred operations answers in milliseconds); the self-check that follows runs the
        # result twice under the full watchdog, so a slow answer is never taken for a hang.
        h = runner.go.helper
        runner.case_timeout = max(QUICK_HANG_SECONDS, h.timeout_for(2 * len(case.ops) + 3) / 5)
    best = case
    try:
        ops, n = list(case.ops), 2
        while len(ops) >= 2 and time.monotonic() < stop:
            size = max(1, len(ops) // n)
            chunks = [ops[i:i + size] for i in range(0, len(ops), size)]
            reduced = False
            for i in range(len(chunks)):
                if time.monotonic() >= stop:
                    break
                cand = [op for j, c in enumerate(chunks) if j != i for op in c]
                d = _fails(runner, case.init, cand)
                if d is not None and d.kind == kind:
                    best = runner.failures[-1]
                    ops, n, reduced = list(best.ops), max(n - 1, 2), True
                    break
            if not reduced:
                if size == 1:
                    break
                n = min(len(ops), 2 * n)
    finally:
        runner.shrink_deadline = saved_deadline
        runner.case_timeout = saved_timeout
    return best


# How long a case run may take while a hang is shrunk before it counts as hung.
QUICK_HANG_SECONDS = 2.0


def _hangs(case: Case) -> bool:
    d = case.divergence
    return d is not None and d.kind == "crash" and any("hung" in l for l in d.lines[:1])
