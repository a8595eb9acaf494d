"""The digest lockstep: the model and the real runtime compared after every step, in large batches.

The classic lockstep (goref/fuzz.py:Lockstep) asks the helper for a full JSON state dump after
every operation, which costs about a millisecond. Here each side instead reduces the state an
operation touched to one 64-bit digest (`step_digest`; the canonical form is in goref/README.md,
"Digests"), and the helper answers a whole batch of hundreds of operations with one string of
digests (its "steps" operation). Which chunks an operation touched is decided once, on the model
side, from the operation and its result (`touched_chunks`), and sent with the operation.

What is compared:

* after every step: the digest of the result, searchAddr, start/end, inUse's total bytes and
  range count, the alloc and scavenged bitmaps and scavenge-index word of every touched chunk,
  every summary entry on the paths from those chunks to the root, the scavenge index's gen,
  freeHWM, minHeapIdx and both cursors with their marks, and every page cache;
* every `full_every` operations and at the end of every heap: the full state dump, as the
  classic lockstep compares it (goref/compare.py), so a blind spot of the digest cannot hide a
  divergence for long.

The model's named invariants (spec/invariants.py) run after every mutating step on the touched
chunks (screened in one pass by invariants.holds_per_step, and worded by check_all only when the
screen fails), except three
whose cost is several model operations': `summaries_consistent` (the leaf summaries from free
runs and every interior entry above from its 8 children), `summary_reads_mapped` (which walks
every stored interior entry) and `page_cache_disjoint`; and two that read only inUse and
start/end (`in_use_sorted_coalesced`, `bounds_cover_in_use`) run after every grow (the only
operation that changes them) instead. The five run every `summaries_every` (128) mutating steps
and at the end of every heap, on the union of the chunks touched since their last run (a
scavenge is left out of the union: it changes only scavenged bits, which no summary reads). A
violation found late loses nothing: the heap is re-run on the classic lockstep, which checks
every invariant after every step, and the report names the first step that breaks one (not the
step of the periodic check). The summaries themselves are compared with the runtime's at every
step (by digest) regardless.

The helper runs batches k-1 and k while the model generates batch k+1 (`depth` 2): with two
workers on two cores (`palloc fuzz --jobs`), a helper held off its core never stalls a model.

Mirrors no Go file: it drives the Go 1.27 page allocator (src/runtime/mpagealloc.go and friends).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import struct
import time
from typing import Any, Callable

from palloc.goref import ops as O
from palloc.goref.compare import Divergence, HarnessFault, check_invariants
from palloc.goref.go_side import init_request, state_from_dump
from palloc.goref.model_side import ModelSide, chunks_of, new_page_alloc, scav_chunk_word
from palloc.spec.errors import ModelError
from palloc.spec.constants import PAGE_SIZE

_M64 = (1 << 64) - 1
# The named invariants that run only every `summaries_every` mutating steps and at the end of
# every heap, on the chunks touched since (see the module doc); every other one runs every step.
SLOW_INVARIANTS = ("summaries_consistent", "summary_reads_mapped", "page_cache_disjoint")
# Invariants of inUse and start/end alone, which only grow changes: they run after every grow
# (and with the periodic set), not after every step.
GROW_INVARIANTS = ("in_use_sorted_coalesced", "bounds_cover_in_use")
PERIODIC_INVARIANTS = SLOW_INVARIANTS + GROW_INVARIANTS


# --- the digest -----------------------------------------------------------------------------


def chunk_range(p, base: int, nbytes: int) -> list[int]:
    """Returns the chunk indices of [base, base+nbytes), ascending (empty when nbytes is 0)."""
    if nbytes <= 0:
        return []
    abo, mask, cb = p.arena_base_offset, p.uintptr_mask, p.palloc_chunk_bytes
    lo = ((base - abo) & mask) // cb
    hi = ((base + nbytes - 1 - abo) & mask) // cb
    return list(range(lo, hi + 1))


def touched_chunks(p, op: O.Op, result, cache_base: int, grown: list[int]) -> list[int]:
    """Returns the chunks whose state an operation may have changed, ascending, from the
    operation and its result alone (so both sides can agree on it).

    cache_base is the base of op's cache slot before the operation (cache_flush returns its
    pages there); grown is every chunk of inUse (scavenge may touch any of them).
    """
    k = op.kind
    if k == "alloc":
        return chunk_range(p, result[0], op.npages * PAGE_SIZE) if result[0] else []
    if k in ("free", "alloc_range"):
        return chunk_range(p, op.base, op.npages * PAGE_SIZE)
    if k == "grow":
        return chunk_range(p, op.base, op.size)
    if k == "alloc_to_cache":
        return chunk_range(p, result[0], PAGE_SIZE) if result[0] else []
    if k == "cache_flush":
        return chunk_range(p, cache_base, PAGE_SIZE) if cache_base else []
    if k == "scavenge":
        return list(grown)
    return []  # find, next_gen, cache_alloc: no chunk changes


def step_words(p, model: ModelSide | None, op_kind: str, on_page_alloc: bool, result, touched: list[int]) -> bytes:
    """Returns the canonical little-endian 64-bit words of one step (goref/README.md, "Digests").

    model is None for a pure bitmap function (only its result is covered). step_words_slow is
    its readable twin, written as the canonical form reads.
    """
    w = [len(result), *[x & _M64 for x in result]] if result else [0]
    if not on_page_alloc or model is None:
        return _pack(w)
    nbytes, shifts, loaded = _layout(p)
    pa = model.pa
    in_use = pa.in_use
    w += (pa.search_addr.addr(), pa.start, pa.end, in_use.total_bytes, len(in_use.ranges), len(touched))
    idx = pa.scav.index
    lo, hi, words = idx.min, idx.max, idx.chunks
    try_chunk_of = pa.try_chunk_of
    out = bytearray()
    for ci in touched:
        d = try_chunk_of(ci)
        if d is None:
            w += (ci, 0)
        else:  # a bitmap's words are its little-endian bytes
            w += (ci, 1)
            out += _pack(w)
            out += d.v.to_bytes(nbytes, "little")
            out += d.scavenged.v.to_bytes(nbytes, "little")
            w = []
        if lo <= ci < hi:  # model_side.scav_chunk_word, inlined
            sc = words.get(ci)
            w += (1, 0 if sc is None else sc.pack(p))
        else:
            w.append(0)
    summary = pa.summary
    if len(touched) == 1:
        t = touched[0]
        for sh, lv in zip(shifts, summary):
            i = t >> sh
            w += (i, lv.vals.get(i, 0))
    else:
        for sh, lv in zip(shifts, summary):
            get = lv.vals.get
            last = -1
            for ci in touched:
                i = ci >> sh
                if i != last:
                    last = i
                    w += (i, get(i, 0))
    # The cursors' loads, by their stored value (AtomicOffAddr.load is a function of it alone).
    bg, fo = idx.search_addr_bg, idx.search_addr_force
    b = loaded.get(bg.a) or _load(loaded, bg)
    f = loaded.get(fo.a) or _load(loaded, fo)
    w += (idx.gen, idx.free_hwm.addr(), idx.min_heap_idx, b[0], b[1], f[0], f[1])
    caches = model.caches
    w.append(len(caches))
    if caches:
        for slot in sorted(caches):
            c = caches[slot]
            w += (slot, c.base, c.cache, c.scav)
    if not out:
        return _pack(w)
    out += _pack(w)
    return bytes(out)


def _load(loaded: dict, cur) -> tuple[int, int]:
    a, marked = cur.load()
    if len(loaded) >= 4096:
        loaded.clear()
    loaded[cur.a] = out = (a, 1 if marked else 0)
    return out


_LAYOUTS: dict[int, tuple] = {}


def _layout(p) -> tuple[int, tuple[int, ...], dict]:
    """Returns (bytes per chunk bitmap, per level the shift from a chunk index to its entry, the
    cursor loads by stored value) for platform p."""
    got = _LAYOUTS.get(id(p))
    if got is None or got[0] is not p:
        leaf = p.level_shift[-1]
        got = _LAYOUTS[id(p)] = (p, (p.palloc_chunk_pages // 8, tuple(p.level_shift[l] - leaf for l in range(p.summary_levels)), {}))
    return got[1]


_STRUCTS: dict[int, struct.Struct] = {}


def _pack(words: list[int]) -> bytes:
    s = _STRUCTS.get(len(words))
    if s is None:
        s = _STRUCTS[len(words)] = struct.Struct(f"<{len(words)}Q")
    return s.pack(*words)


def step_words_slow(p, model: ModelSide | None, op_kind: str, on_page_alloc: bool, result, touched: list[int]) -> bytes:
    """Returns step_words' bytes, written as the canonical form reads (goref/README.md,
    "Digests"): the readable twin of step_words. Its summary-path loop repeats step_words' on
    purpose: a readable twin shares no code with the function it checks."""
    res = result or ()
    w = [len(res)]
    w += [x & _M64 for x in res]
    if not on_page_alloc or model is None:
        return _pack_slow(w)
    pa = model.pa
    in_use = pa.in_use
    w += (pa.search_addr.addr(), pa.start, pa.end, in_use.total_bytes, len(in_use.ranges), len(touched))
    parts = []
    nbytes = p.palloc_chunk_pages // 8
    idx = pa.scav.index
    try_chunk_of = pa.try_chunk_of
    for ci in touched:
        w.append(ci)
        d = try_chunk_of(ci)
        if d is None:
            w.append(0)
        else:
            w.append(1)
            parts.append(_pack_slow(w))
            parts.append(d.v.to_bytes(nbytes, "little"))
            parts.append(d.scavenged.v.to_bytes(nbytes, "little"))
            w = []
        sc = scav_chunk_word(idx, ci)
        w += (0,) if sc is None else (1, sc)
    leaf_shift = p.level_shift[-1]
    summary = pa.summary
    for level in range(p.summary_levels):
        sh = p.level_shift[level] - leaf_shift
        get = summary[level].vals.get
        last = -1
        for ci in touched:
            i = ci >> sh
            if i != last:
                last = i
                w += (i, get(i, 0))
    bg, bgm = idx.search_addr_bg.load()
    fo, fom = idx.search_addr_force.load()
    w += (idx.gen, idx.free_hwm.addr(), idx.min_heap_idx, bg, 1 if bgm else 0, fo, 1 if fom else 0)
    caches = model.caches
    w.append(len(caches))
    for slot in sorted(caches):
        c = caches[slot]
        w += (slot, c.base, c.cache, c.scav)
    parts.append(_pack_slow(w))
    return b"".join(parts)


def _pack_slow(words: list[int]) -> bytes:
    return struct.pack(f"<{len(words)}Q", *words)


def digest(words: bytes) -> str:
    """Returns the step digest: the first 8 bytes of SHA-256 of the words, as 16 hex digits."""
    return hashlib.sha256(words).hexdigest()[:16]


# --- requests ---------------------------------------------------------------------------------


_FIELDS: dict[type, tuple[str, ...]] = {}


def _step_json(op: O.Op, touched: list[int]) -> str:
    """Returns the helper's JSON for a step: op_request(op) plus "touch", written directly
    (the generic encoder costs as much as the model's own operation)."""
    names = _FIELDS.get(type(op))
    if names is None:
        names = _FIELDS[type(op)] = tuple(f.name for f in dataclasses.fields(op))
    out = ['{"op":"', op.kind, '"']
    for k in names:
        v = getattr(op, k)
        if v is True or v is False:
            out.append(f',"{k}":{"true" if v else "false"}')
        elif v >= 1 << 53 or k in ("bits", "alloc", "scav"):
            out.append(f',"{k}":"{v:#x}"')
        else:
            out.append(f',"{k}":{v}')
    out.append(',"touch":[')
    out.append(",".join(map(str, touched)))
    out.append("]}")
    return "".join(out)


@dataclasses.dataclass
class _Seq:
    """One heap of the campaign: its initial heap and the operations the model ran on it."""

    init: dict | None
    ops: list[O.Op] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Batch:
    """A batch in flight: the helper's sub-operations and what the model expects of each."""

    steps: list[str] = dataclasses.field(default_factory=list)
    # Per digest-carrying step, in order: (seq, op index in seq (-1: the initial heap), digest).
    digests: list[tuple[_Seq, int, str]] = dataclasses.field(default_factory=list)
    # Per sub-operation: (seq, op index, "step" | "dump" | "drop"), for "stop_at".
    where: list[tuple[_Seq, int, str]] = dataclasses.field(default_factory=list)
    # Per "dump" step, in order: (seq, op index, the model's State).
    dumps: list[tuple[_Seq, int, Any]] = dataclasses.field(default_factory=list)
    seqs: list[_Seq] = dataclasses.field(default_factory=list)
    ops: int = 0  # model operations (digest steps that are operations)
    sent: float = 0.0  # time.monotonic() when it was submitted


class _Found(Exception):
    """Ends the campaign: a divergence (or harness fault) was found and explained."""


class DigestLockstep:
    """The runner the Generator drives (p, host, model, begin, step, ended), checking by digest.

    full is the classic Lockstep of the same session: it owns the stats and the failures, and
    explains and shrinks every divergence found here.
    """

    def __init__(self, full, batch_ops: int = 1000, full_every: int | None = 1000, summaries_every: int = 128,
                 depth: int = 2):
        # full_every None: no full state comparison at all (only for showing what they catch).
        self.full = full
        self.p, self.host = full.p, full.host
        self.stats = full.stats
        self.helper = full.go.helper if full.go is not None else None
        self.batch_ops, self.full_every, self.summaries_every = batch_ops, full_every, summaries_every
        self.check_all = full._check_all
        if self.check_all is not None:
            from palloc.spec.invariants import INVARIANTS

            self.fast_names = frozenset(n for n in INVARIANTS if n not in PERIODIC_INVARIANTS)
            self.grow_names = self.fast_names | {n for n in GROW_INVARIANTS if n in INVARIANTS}
        # The one-pass screen of the per-step set, when it is exactly that set of check_all's.
        self.screen = None
        if self.check_all is not None:
            from palloc.spec import invariants as I

            if self.check_all is I.check_all and self.fast_names == frozenset(I.PER_STEP):
                self.screen = I.holds_per_step
        self.batch = _Batch()
        # Batches sent and not yet compared, oldest first: up to `depth` of them, so the model
        # never waits for a helper that the other worker's model holds off its core.
        self.in_flight: list[tuple[Any, _Batch]] = []
        self.depth = depth
        self.model: ModelSide | None = None
        self.seq: _Seq | None = None
        self.ended = True
        self._mirror: dict[int, ModelSide] = {}  # model against model: the second model, per heap

    # --- the Generator's interface ---------------------------------------------------------

    def begin(self, init: dict | None = None) -> None:
        """Starts a new heap (ending the current one)."""
        self.end_seq()
        p = self.p
        self.model = m = ModelSide(p, self.full.model_factory, self.host)
        self.seq = _Seq(init)
        self.since_full = 0
        self.since_summaries = 0
        self.unchecked: set[int] = set()
        self.ended = False
        try:
            m.pa = m.factory(p, **m.host) if init is None else new_page_alloc(p, m.factory, m.host, init)
        except ModelError:  # the model refuses the heap: the runtime must refuse it too
            self.ended = True
            self._explain_now(self.seq, -1, crash=True, started=False)
            return
        grown = self._grown()
        req = init_request(init)
        req["touch"] = grown
        self._add(json.dumps(_json_safe(req), separators=(",", ":")), self.seq, -1,
                  digest(step_words(p, m, "new", True, None, grown)))
        self.unchecked.update(grown)

    def step(self, op: O.Op):
        """Applies op to the model, queues it for the runtime with its digest; returns the
        model's result, or None if undefined (dropped) or after a crash."""
        if self.ended:
            return None
        m = self.model
        cache_base = 0
        if op.kind == "cache_flush":
            c = m.caches.get(op.slot)
            cache_base = c.base if c is not None else 0
        t0 = time.perf_counter()
        o = m.apply(op, with_state=False)
        t1 = time.perf_counter()
        self.stats.model_s += t1 - t0
        if o.crash and o.crash[0] == "undefined":
            return None
        seq = self.seq
        seq.ops.append(op)
        i = len(seq.ops) - 1
        if o.crash:
            # The model throws or faults: the runtime must too. The helper would die mid-batch,
            # so the classic lockstep compares this heap on its own.
            self.ended = True
            self._explain_now(seq, i, crash=True)
            return None
        if op.on_page_alloc:
            touched = touched_chunks(self.p, op, o.result, cache_base, self._grown() if op.kind == "scavenge" else ())
            words = step_words(self.p, m, op.kind, True, o.result, touched)
        else:
            touched = []
            words = step_words(self.p, None, op.kind, False, o.result, touched)
        self._add(_step_json(op, touched), seq, i, digest(words))
        t2 = time.perf_counter()
        self.stats.digest_s += t2 - t1
        self.batch.ops += 1
        if self.check_all is not None and op.mutates:
            self._invariants(op, i, touched)
            self.stats.invariant_s += time.perf_counter() - t2
        self.since_full += 1
        if self.full_every is not None and self.since_full >= self.full_every:
            self._full_dump(seq, i)
        if len(self.batch.steps) >= self.batch_ops:
            self.flush()
        return o.result

    # --- per-step machinery -----------------------------------------------------------------

    def _grew(self) -> bool:
        """Reports whether the model's allocator ever grew. One that never did is not dropped:
        the runtime's FreePageAlloc indexes summary[0][0] and faults on it (FINDINGS.md F26),
        so it is left to the helper (a never-grown allocator holds no chunk memory)."""
        return bool(self.model.pa.in_use.ranges)

    def _grown(self) -> list[int]:
        pa = self.model.pa
        return chunks_of(self.p, [(r.base.addr(), r.limit.addr()) for r in pa.in_use.ranges])

    def _add(self, step_json: str, seq: _Seq, i: int, dig: str | None) -> None:
        b = self.batch
        if not b.seqs or b.seqs[-1] is not seq:
            b.seqs.append(seq)
        b.steps.append(step_json)
        b.where.append((seq, i, "step"))
        if dig is not None:
            b.digests.append((seq, i, dig))

    def _invariants(self, op: O.Op, i: int, touched: list[int]) -> None:
        m = self.model
        if op.kind == "grow":
            vs = self.check_all(m.pa, touched=touched, only=self.grow_names)
        elif self.screen is not None and self.screen(m.pa, touched):
            vs = []  # the per-step set holds (the screen's word for it)
        else:  # page_cache_disjoint is periodic
            vs = self.check_all(m.pa, touched=touched, only=self.fast_names)
        if op.kind != "scavenge":  # scavenge changes scavenged bits only: no summary moves
            self.unchecked.update(touched)
        self.since_summaries += 1
        periodic = False
        if not vs and self.since_summaries >= self.summaries_every:
            vs, periodic = self._slow_invariants(), True
        if vs:
            self.ended = True
            d = check_invariants(lambda *a, **k: vs, m.pa, i, op)
            self._explain_now(self.seq, i, divergence=d, localise=periodic)

    def _slow_invariants(self):
        self.since_summaries = 0
        t = sorted(self.unchecked)
        self.unchecked.clear()
        caches = [c for c in self.model.caches.values() if not c.empty()]
        return self.check_all(self.model.pa, touched=t, caches=caches, only=PERIODIC_INVARIANTS)

    def _full_dump(self, seq: _Seq, i: int) -> None:
        self.since_full = 0
        self.batch.steps.append('{"op":"dump"}')
        self.batch.where.append((seq, i, "dump"))
        self.batch.dumps.append((seq, i, self.model.state()))

    def end_seq(self) -> None:
        """Ends the current heap: the slow invariants, a full state comparison, and a drop."""
        seq = self.seq
        if seq is None or self.ended:
            self.seq = None if self.ended else seq
            return
        self.ended = True
        if self.check_all is not None and seq.ops:
            vs = self._slow_invariants()
            if vs:
                d = check_invariants(lambda *a, **k: vs, self.model.pa, len(seq.ops) - 1, seq.ops[-1])
                self._explain_now(seq, len(seq.ops) - 1, divergence=d, localise=True)
                return
        if self.full_every is not None:
            self._full_dump(seq, len(seq.ops) - 1)
        if self._grew():
            self.batch.steps.append('{"op":"drop"}')
            self.batch.where.append((seq, len(seq.ops) - 1, "drop"))
        self.stats.examples += 1
        self.seq = None

    # --- batches ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Sends the current batch, then compares the oldest in flight while more than `depth` are."""
        b, self.batch = self.batch, _Batch()
        if b.steps:
            if self.helper is None:
                self.in_flight.append((None, b))
            else:
                t0 = time.perf_counter()
                ticket = self.helper.submit('[{"op":"steps","steps":[' + ",".join(b.steps) + "]}]", flush_each=False)
                self.stats.go_wait_s += time.perf_counter() - t0
                b.sent = time.monotonic()
                self.in_flight.append((ticket, b))
        while len(self.in_flight) > self.depth:
            self._collect()

    def drain(self) -> None:
        """Sends and compares everything queued (the campaign's end)."""
        self.flush()
        while self.in_flight:
            self._collect()

    def _collect(self) -> None:
        """Compares the oldest batch in flight with the helper's answer to it."""
        if not self.in_flight:
            return
        ticket, b = self.in_flight.pop(0)
        t0 = time.perf_counter()
        if ticket is None:  # model against model: a second model computes the digests
            r = _model_steps(self, b)
        else:
            r = self.helper.collect(ticket, 1, timeout=self.helper.timeout_for(len(b.steps)), raw=True)[0]
            if r.get("kind") == "ok":  # an upper bound (it includes the batches ahead of it)
                self.helper.calibrate(time.monotonic() - b.sent, len(b.steps))
        t1 = time.perf_counter()
        self.stats.go_wait_s += t1 - t0
        self._compare(b, r)
        self.stats.compare_s += time.perf_counter() - t1

    def _compare(self, b: _Batch, r: dict[str, Any]) -> None:
        kind = r.get("kind")
        if kind != "ok":
            self._death(b, r)
            return
        got, want = r["digests"], "".join(x[2] for x in b.digests)
        stop = r.get("stop_at")
        if got != want:
            k = next((j for j in range(len(b.digests)) if got[16 * j:16 * j + 16] != b.digests[j][2]), None)
            if k is not None and (stop is None or 16 * k < len(got)):
                seq, i, _ = b.digests[k]
                self._explain(seq, i)
        if stop is not None:
            seq, i, _ = b.where[stop]
            self._explain(seq, i)
        dumps = r.get("dumps") or []
        for (seq, i, state), dump in zip(b.dumps, dumps):
            self.stats.full_compares += 1
            other = dump if not isinstance(dump, dict) else state_from_dump(dump)
            if self.full.on_runtime_state is not None and self.helper is not None:
                self.full.on_runtime_state(other)
            if other != state:
                self._explain(seq, i)
        self.stats.ops += b.ops
        for step in b.digests:
            if step[1] >= 0:
                op = step[0].ops[step[1]]
                self.stats.by_kind[op.kind] += 1
                self.stats.page_alloc_ops += op.on_page_alloc

    # --- a helper that died ----------------------------------------------------------------------

    def _death(self, b: _Batch, death: dict[str, Any]) -> None:
        """Handles a helper that died, hung or was killed while running batch b.

        The batches after b were sent to the dead process (or not sent at all) and come back
        "skipped"; the batch being built refers to allocators the dead process held. So every
        heap of those batches is re-run on the classic lockstep (a fresh helper, a full dump per
        step), the heap the runtime was running first (the helper's mark). The first divergence
        is recorded and ends the campaign as any other. When none reproduces:

        * a runtime that printed a crash report (a throw, a fault, a panic) died on input the
          model defines: that is a divergence still, recorded on the heap it was running, and
          said to depend on what ran before it in the process;
        * a hang that no heap reproduces was a slow answer, and an outside signal (SIGKILL from
          the OOM killer or a person) is not the runtime's doing: both are counted in the stats
          (Stats.helper_deaths), the heaps re-run stand checked, and the campaign goes on.
        """
        later = []
        for ticket, lb in self.in_flight:
            if ticket is not None:
                self.helper.collect(ticket, 1, raw=True)  # "skipped": sent to the dead process
            later.append(lb)
        self.in_flight = []
        current, self.batch = self.batch, _Batch()
        live = self.seq
        if live is not None:  # its allocator died with the process: the heap ends here
            self.ended, self.seq = True, None
        heaps: list[_Seq] = []
        step = death.get("heap_step")
        marked = b.where[step][0] if isinstance(step, int) and 0 <= step < len(b.where) else None
        for seq in ([marked] if marked is not None else []) + b.seqs + [s for x in later + [current] for s in x.seqs]:
            if all(seq is not h for h in heaps):
                heaps.append(seq)
        for seq in heaps:
            if seq.ops or seq.init is not None:
                self._explain(seq, len(seq.ops) - 1, quiet=True, drained=True)
        kind = death.get("kind")
        if kind in ("go-throw", "go-fault", "go-panic"):
            seq = marked or (b.seqs[0] if b.seqs else None)
            if seq is not None:
                self._record_context_death(seq, death, len(heaps))
        why = death.get("signal") or kind
        self.stats.helper_deaths.append(
            f"{why}: {death.get('msg', '')}".strip().rstrip(":")
            + f" (batch of {len(b.steps)} steps; {len(heaps)} heaps re-run with full dumps, none diverges)")
        self.stats.ops += sum(x.ops for x in [b, *later, current])  # checked now, by the re-runs

    def _record_context_death(self, seq: _Seq, death: dict[str, Any], nheaps: int) -> None:
        """Records a runtime crash that its heap does not reproduce alone; raises _Found."""
        from palloc.goref.fuzz import Case

        full = self.full
        kinds = {"go-throw": "threw", "go-fault": "faulted", "go-panic": "panicked"}
        lines = [f"runtime {kinds[death['kind']]} {death.get('msg', '')!r} running this heap inside a batch of "
                 f"{nheaps} heaps; run alone on a fresh helper the heap does not crash, so the crash depends on "
                 "what ran before it in the same process"]
        lines += [f"  {l}" for l in death.get("detail") or []]
        lines += [f"  at {f}" for f in (death.get("stack") or [])[:8]]
        i = len(seq.ops) - 1
        d = Divergence(max(i, 0), seq.ops[i] if i >= 0 else None, "crash", lines)
        case = Case(full.goarch, full.go_version, seq.init, list(seq.ops), full.variant, d, full.host or None)
        case.alone = False
        full.failures.append(case)
        if self.stats.first_divergence_s is None:
            self.stats.first_divergence_s = time.monotonic() - self.stats.started
        raise _Found()

    # --- explanation (the classic lockstep) ---------------------------------------------------

    def _drain_helper(self) -> None:
        """Discards the batches in flight and every allocator the helper holds (the campaign ends)."""
        for ticket, _ in self.in_flight:
            if ticket is not None:
                self.helper.collect(ticket, 1, raw=True)  # the helper answers in order
        self.in_flight = []
        if self.helper is not None:
            self.helper.call([{"op": "drop_all"}])

    def _explain_now(self, seq: _Seq, i: int, crash: bool = False, divergence: Divergence | None = None,
                     started: bool = True, localise: bool = False) -> None:
        """Handles a heap that the model alone ended (a crash or a broken invariant): compares
        everything queued first, then re-runs the heap on the classic lockstep. started: the
        helper was sent the heap's "new" (so it is dropped). localise: the divergence was found
        by a periodic check, after the step that caused it (see _explain)."""
        if started and self._grew():
            self.batch.steps.append('{"op":"drop"}')
            self.batch.where.append((seq, i, "drop"))
        self.seq = None
        self.drain()
        if not self._explain(seq, i, divergence=divergence, quiet=crash, localise=localise):
            self.stats.ops += 1  # both sides crash alike: the heap ends there, checked
            self.stats.examples += 1
    def _explain(self, seq: _Seq, i: int, divergence: Divergence | None = None, quiet: bool = False,
                 localise: bool = False, drained: bool = False) -> bool:
        """Re-runs the heap's prefix up to op i on the classic lockstep; records the divergence
        and raises _Found. Returns False (quiet) when the prefix does not diverge there.

        A divergence given is recorded as it is, unless localise: then it was found by a periodic
        invariant check, possibly many steps after the step that broke the invariant, and the
        classic lockstep (every invariant after every step) names that step instead.
        drained: nothing is in flight and the helper holds no allocator (it died)."""
        from palloc.goref.fuzz import Case

        if not drained:
            self._drain_helper()
        full = self.full
        case = Case(full.goarch, full.go_version, seq.init, list(seq.ops[: i + 1]), full.variant, None, full.host or None)
        d = divergence if divergence is not None and not localise else (full.run_case(case) or divergence)
        if d is None:
            if quiet:
                return False
            raise HarnessFault("runtime", Divergence(max(i, 0), seq.ops[i] if i >= 0 else None, "harness", [
                "the step digests differ but the full state dumps of both sides agree: a digest defect"]))
        if d.kind != "invariant" or localise:
            case.ops = case.ops[: d.step + 1] if case.ops else case.ops
        case.divergence = d
        full.failures.append(case)
        if self.stats.first_divergence_s is None:
            self.stats.first_divergence_s = time.monotonic() - self.stats.started
        raise _Found()


def _json_safe(v):
    from palloc.goref.driver import encode

    return encode(v)


def _model_steps(runner: DigestLockstep, b: _Batch) -> dict[str, Any]:
    """Plays the helper's part with a second model (no Go): the model-vs-model self-check.

    The second model replays each heap's operations as they arrive; its dumps are its states.
    """
    p, out, dumps = runner.p, [], []
    mirror = runner._mirror
    for seq, i, what in b.where:
        if what == "dump":
            dumps.append(mirror[id(seq)].state())
            continue
        if what == "drop":
            mirror.pop(id(seq), None)
            continue
        if i < 0:
            m = mirror[id(seq)] = ModelSide(p, None, runner.host)
            m.reset(seq.init)
            out.append(digest(step_words(p, m, "new", True, None, runner_grown(p, m))))
            continue
        m = mirror[id(seq)]
        op = seq.ops[i]
        c = m.caches.get(getattr(op, "slot", -1))
        cache_base = c.base if op.kind == "cache_flush" and c is not None else 0
        o = m.apply(op, with_state=False)
        if op.on_page_alloc:
            t = touched_chunks(p, op, o.result, cache_base, runner_grown(p, m) if op.kind == "scavenge" else ())
            out.append(digest(step_words(p, m, op.kind, True, o.result, t)))
        else:
            out.append(digest(step_words(p, None, op.kind, False, o.result, [])))
    return {"kind": "ok", "digests": "".join(out), "dumps": dumps}


def runner_grown(p, m: ModelSide) -> list[int]:
    return chunks_of(p, [(r.base.addr(), r.limit.addr()) for r in m.pa.in_use.ranges])


# --- the campaign -----------------------------------------------------------------------------


def heap_rng(seed: int, k: int) -> random.Random:
    """Returns the PRNG of heap k of the campaign seeded `seed`: each heap has its own, so a heap
    is the same whichever worker runs it and however many run (`palloc fuzz --jobs`)."""
    return random.Random(f"palloc-lockstep:{seed}:{k}")


def run_lockstep_campaign(full, seconds: float, seed: int = 0, step_count: int = 200,
                          max_examples: int | None = None, batch_ops: int = 1000, full_every: int | None = 1000,
                          first_heap: int = 0, heap_stride: int = 1, should_stop: Callable[[], bool] | None = None,
                          on_found: Callable[[Any], None] | None = None):
    """Fuzzes with the Generator, heap k fed by heap_rng(seed, k), checking every step by digest.

    Runs heaps first_heap, first_heap + heap_stride, ... (one worker's share of a parallel
    campaign) until the budget, max_examples heaps, or should_stop() says so between heaps;
    on_found(case) is called when a divergence is found, with the case before it is shrunk (None
    for a harness fault).
    Returns a goref.fuzz.CampaignResult; a divergence is explained and shrunk by the classic
    lockstep `full` (goref/fuzz.py:shrink_case) within full.shrink_seconds.
    """
    from palloc.goref.fuzz import CampaignResult, Generator, shrink_case

    runner = DigestLockstep(full, batch_ops=batch_ops, full_every=full_every)
    full.digest_runner = runner
    deadline = time.monotonic() + seconds
    done = 0
    k = first_heap
    try:
        while time.monotonic() < deadline and (max_examples is None or done < max_examples):
            if should_stop is not None and should_stop():
                break
            rng = heap_rng(seed, k)
            draw = lambda spec, label=None, rng=rng: spec.sample(rng)  # noqa: E731
            done += 1
            k += heap_stride
            g = Generator(runner, draw)
            g.make_heap()
            for _ in range(rng.randint(1, 2 * step_count)):
                if runner.ended:
                    break
                g.verb()
            runner.end_seq()
            if full.on_example:
                full.on_example(full)
        runner.drain()
    except _Found:
        if on_found is not None:
            on_found(full.failures[-1])
        case = shrink_case(full, full.failures[-1])
        return CampaignResult(full.stats, case, None, "divergence")
    except HarnessFault as e:
        if on_found is not None:
            on_found(None)
        return CampaignResult(full.stats, full.smallest_failure(), e, "divergence")
    return CampaignResult(full.stats, None, None, "budget")
