"""What a runtime patch changes on real work: a request stream replayed on the model and the runtime.

Mirrors no Go file. A request stream is what a program asks of the page allocator, independent
of the answers, so it replays on an allocator that returns different addresses:

- alloc(npages): the allocs are numbered from 0 in stream order (their ids); when one fails
  the heap grows as `(*mheap).grow` (mheap.go) does, by alignUp(npages, pallocChunkPages)
  pages at its end, and the alloc is retried;
- free(id): frees the pages of alloc `id`, wherever they were put (nothing if it failed);
- scavenge(nbytes): `(*pageAlloc).scavenge(nbytes, nil, false)`, the background scavenger
  (force-scavenge: with force true, as debug.FreeOSMemory and the memory limit do);
- gen: the scavenge index's nextGen, as a GC cycle ends.

A stream is replayed on the model (test mode, a fresh heap at BaseChunkIdx) and on a real
runtime's helper built with goref/search_cost.py's counters (the stream runs natively in one go,
goref/overlay/palloc_stream_test.go). Each run records every alloc's address and scavenged bytes,
the grows, the bytes each scavenge released, the search's work per alloc, each chunk's
occupancy every `every` operations and the final bitmaps; `metrics` sums them up.

`replay_patch` replays a stream on the model, the unpatched runtime and the patched one:
- the unpatched runtime must agree with the model on everything (a disagreement is a palloc bug
  or a finding, and the check is inconclusive);
- the patched runtime's answers must be the spec's (spec/obligations.py alloc_first_fit, checked
  on the stream's own heap: an alloc takes the lowest run of npages free pages, and fails only
  when there is none); a crash or an invalid answer `breaks`;
- everything else that differs (addresses, growth, fragmentation, scavenging, search cost) is a
  behaviour change: reported side by side, not judged.

Stream files (`read_stream`): text, a header line `palloc-stream 1`, then one operation a line
(`alloc N`, `free ID`, `scavenge NBYTES`, `force-scavenge NBYTES`, `gen`; `#` starts a comment). A trace file that
palloc's trace reader (goref/trace.py, when installed) reads is turned into its request stream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from palloc.spec.constants import PAGE_SIZE
from palloc.spec.errors import PallocError

ALLOC, FREE, SCAVENGE, GEN, FORCE_SCAVENGE, CACHE_ALLOC, FLUSH = 1, 2, 3, 4, 5, 6, 7
VERBS = {"alloc": ALLOC, "free": FREE, "scavenge": SCAVENGE, "gen": GEN, "force-scavenge": FORCE_SCAVENGE,
         "cache-alloc": CACHE_ALLOC, "flush": FLUSH}
ALLOCS = (ALLOC, CACHE_ALLOC)
NO_ARG = (GEN, FLUSH)
CACHE_MAX_NPAGES = 15  # mheap.allocSpan uses the P's cache for npages < pageCachePages/4
VERB_NAMES = {v: k for k, v in VERBS.items()}
HEADER = "palloc-stream 1"
MAGIC = 0x314D5254534C4150  # "PALSTRM1", palloc_stream_test.go's pallocStrMagic
# The heap a replay may grow to (address space, bytes): a stream asking more is refused.
HEAP_LIMIT = 64 << 30
MAX_NPAGES = 1 << 20  # 8 GiB in one alloc
DEFAULT_SNAPSHOTS = 200  # heat-map columns
OVERLAY_TESTS = ("palloc_cost_test.go", "palloc_stream_test.go")


@dataclasses.dataclass(frozen=True)
class Stream:
    """A request stream: (verb, argument) pairs, verbs ALLOC, FREE, SCAVENGE, GEN."""

    ops: tuple[tuple[int, int], ...]
    name: str = "stream"

    @property
    def allocs(self) -> int:
        return sum(1 for v, _ in self.ops if v in ALLOCS)

    def text(self) -> str:
        """Returns the stream as a stream file's text (read_stream reads it back)."""
        lines = [HEADER]
        for v, a in self.ops:
            lines.append(VERB_NAMES[v] if v in NO_ARG else f"{VERB_NAMES[v]} {a}")
        return "\n".join(lines) + "\n"


def validate(ops: list[tuple[int, int]], where: Callable[[int], str] = lambda k: f"operation {k}") -> None:
    """Raises PallocError (naming the operation) unless every alloc asks 1..MAX_NPAGES pages and
    every free names an earlier alloc not freed before."""
    nallocs, freed = 0, set()
    for k, (v, a) in enumerate(ops):
        if v in ALLOCS:
            top = MAX_NPAGES if v == ALLOC else CACHE_MAX_NPAGES
            if not 1 <= a <= top:
                raise PallocError(f"{where(k)}: {VERB_NAMES[v]} of {a} pages (1 to {top})")
            nallocs += 1
        elif v == FREE:
            if not 0 <= a < nallocs:
                raise PallocError(f"{where(k)}: free of alloc {a}, but only {nallocs} allocs came before")
            if a in freed:
                raise PallocError(f"{where(k)}: alloc {a} is freed twice")
            freed.add(a)
        elif v in (SCAVENGE, FORCE_SCAVENGE):
            if not 0 < a < 1 << 62:
                raise PallocError(f"{where(k)}: scavenge of {a} bytes")
        elif v not in NO_ARG:
            raise PallocError(f"{where(k)}: unknown verb {v}")


def parse_stream(text: str, name: str = "stream") -> Stream:
    """Returns the Stream of a stream file's text; raises PallocError naming the bad line."""
    ops: list[tuple[int, int]] = []
    lines: list[int] = []
    seen_header = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not seen_header:
            if line != HEADER:
                raise PallocError(f"{name}:{n}: not a request stream (its first line must be {HEADER!r})")
            seen_header = True
            continue
        words = line.split()
        verb = VERBS.get(words[0])
        want = 1 if verb in NO_ARG else 2
        if verb is None or len(words) != want:
            raise PallocError(f"{name}:{n}: expected 'alloc NPAGES', 'cache-alloc NPAGES', 'free ID', 'scavenge NBYTES', "
                              f"'force-scavenge NBYTES', 'flush' or 'gen', got {line!r}")
        try:
            arg = int(words[1], 0) if want == 2 else 0
        except ValueError:
            raise PallocError(f"{name}:{n}: {words[1]!r} is not an integer") from None
        ops.append((verb, arg))
        lines.append(n)
    if not seen_header:
        raise PallocError(f"{name}: empty; a request stream starts with {HEADER!r}")
    validate(ops, lambda k: f"{name}:{lines[k]}")
    if not any(v in ALLOCS for v, _ in ops):
        raise PallocError(f"{name}: no alloc, nothing to replay")
    return Stream(tuple(ops), name)


def read_stream(path: str | Path) -> Stream:
    """Returns the request stream of a stream file, or of a trace file palloc's trace reader
    (goref/trace.py) reads; raises PallocError (one line) for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PallocError(f"cannot read workload {path}: {e.strerror or e}") from None
    if data.lstrip().startswith(HEADER.encode()) or data.lstrip().startswith(b"#"):
        try:
            return parse_stream(data.decode(), str(path))
        except UnicodeDecodeError:
            raise PallocError(f"{path}: not a request stream (not text)") from None
    return _from_trace(path)


def _from_trace(path: Path) -> Stream:
    """Returns the request stream of a trace `palloc trace record` wrote (goref/trace.py
    request_stream). Allocations a P's page cache served replay through the one P's page cache
    (cache-alloc); the randomized heap base's padding as a plain alloc; the recorded grows are
    left to the replay's growth policy, and the cache is never flushed (the trace's flushes are
    the runtime's own policy, not requests)."""
    from palloc.goref import trace as T

    try:
        tr = T.read_trace(path)
        req = list(T.request_stream(tr))
    except PallocError:
        raise
    except Exception as e:  # noqa: BLE001 - a reader's error on a bad file is the file's
        raise PallocError(f"{path}: not a request stream nor a trace palloc reads ({type(e).__name__}: {e})") from None
    ops: list[tuple[int, int]] = []
    ids: dict[int, int] = {}
    for r in req:
        if r.kind == "alloc":
            ids[r.id] = len(ids)
            ops.append((CACHE_ALLOC if r.cache and r.npages <= CACHE_MAX_NPAGES else ALLOC, r.npages))
        elif r.kind == "free":
            ops.append((FREE, ids[r.id]))
        elif r.kind == "scavenge":
            ops.append((FORCE_SCAVENGE if r.force else SCAVENGE, r.nbytes))
        elif r.kind == "next_gen":
            ops.append((GEN, 0))
    validate(ops, lambda k: f"{path}: request {k}")
    if not ops:
        raise PallocError(f"{path}: the trace holds no request to replay")
    return Stream(tuple(ops), str(path))


def from_workload(seed: int, nops: int, gen_every: int = 0, scavenge_bytes: int = 0, cache: bool = False) -> Stream:
    """Returns model/workload.py's seeded trace as a request stream (its swap-and-pop handles
    become alloc ids); with gen_every, every gen_every operations a GC cycle ends (gen) and, with
    scavenge_bytes, the background scavenger releases that much; with cache, allocs of fewer than
    16 pages go through the P's page cache (cache-alloc), as mheap.allocSpan's do."""
    from palloc.model import workload

    ops: list[tuple[int, int]] = []
    live: list[int] = []
    nallocs = 0
    for k, (kind, arg) in enumerate(workload.trace(seed, nops)):
        if kind == "alloc":
            ops.append((CACHE_ALLOC if cache and arg <= CACHE_MAX_NPAGES else ALLOC, arg))
            live.append(nallocs)
            nallocs += 1
        else:
            ops.append((FREE, live[arg]))
            live[arg] = live[-1]
            live.pop()
        if gen_every and (k + 1) % gen_every == 0:
            ops.append((GEN, 0))
            if scavenge_bytes:
                ops.append((SCAVENGE, scavenge_bytes))
    return Stream(tuple(ops), f"workload-seed{seed}-{nops}" + ("-cache" if cache else ""))


# --- one replay -----------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What one allocator did with a stream (see the module docstring)."""

    side: str
    addrs: list[int]
    scav: list[int]
    cost_find: list[int]
    cost_words: list[int]
    grows: list[tuple[int, int, int]]  # (operation index, base, size)
    released: list[int]
    snaps: list[list[int]]  # [operation index, allocated pages of each chunk from first_ci]
    first_ci: int
    chunks: list[tuple[int, int]]  # at the end, per chunk from first_ci: (alloc bits, scavenged bits)
    host: tuple[int, int]  # physPageSize, physHugePageSize
    seconds: float = 0.0
    failed_at: int | None = None  # an alloc that failed even after growing
    crash: dict | None = None  # the runtime's death (kind, msg, stack)
    cost_measured: dict[str, int] = dataclasses.field(default_factory=dict)  # function -> loops counted
    refills: list[tuple[int, int, int]] = dataclasses.field(default_factory=list)  # (operation index, base, cache)


def heap_limit(p) -> int:
    """Returns the heap a replay on platform p may grow to: HEAP_LIMIT, or half the address space."""
    return min(HEAP_LIMIT, 1 << (p.heap_addr_bits - 1))


def _snapshot_every(stream: Stream, snapshots: int) -> int:
    return max(1, -(-len(stream.ops) // max(1, snapshots)))


def run_model(p, stream: Stream, host: tuple[int, int] | None = None, snapshots: int = DEFAULT_SNAPSHOTS,
              cost: Callable | None = None, factory: Callable | None = None, limit: int = HEAP_LIMIT) -> Run:
    """Replays stream on a fresh test-mode model allocator of platform p (host: the runtime's
    physPageSize and physHugePageSize); cost: the search-cost counter (search_cost.alloc_cost,
    or a broken variant); factory(p, **host): the allocator (a broken model, for its tests)."""
    from palloc.goref.search_cost import alloc_cost, alloc_to_cache_cost
    from palloc.model.mpagealloc import PageAlloc, chunk_base, chunk_index
    from palloc.model.mpagecache import PageCache

    cost = cost or alloc_cost
    kw = {} if host is None else {"phys_page_size": host[0], "phys_huge_page_size": host[1]}
    pa = (factory or PageAlloc.make)(p, test=True, **kw) if factory is None else factory(p, **kw)
    base = chunk_base(p, p.base_chunk_idx)
    first_ci = chunk_index(p, base)
    end = base
    every = _snapshot_every(stream, snapshots)
    cp = p.palloc_chunk_pages
    r = Run("model", [], [], [], [], [], [], [], first_ci, [], (pa.phys_page_size, pa.phys_huge_page_size))
    npages_of: list[int] = []

    def snap(k: int) -> None:
        nchunks = (end - base) // p.palloc_chunk_bytes
        r.snaps.append([k] + [pa.chunk_of(first_ci + c).v.bit_count() for c in range(nchunks)])

    pc = PageCache()
    t0 = time.monotonic()
    for k, (v, a) in enumerate(stream.ops):
        if v in ALLOCS:
            f = w = addr = sc = 0
            if v == CACHE_ALLOC:
                if pc.empty():
                    f, w = alloc_to_cache_cost(pa)
                    pc = pa.alloc_to_cache()
                    if not pc.empty():
                        r.refills.append((k, pc.base, pc.cache))
                addr, sc = pc.alloc(a)
            if addr == 0:
                f2, w2 = cost(pa, a)
                f, w = f + f2, w + w2
                addr, sc = pa.alloc(a)
            if addr == 0:
                ask = -(-a // cp) * cp * PAGE_SIZE
                if end - base + ask > limit:
                    raise PallocError(f"{stream.name}: operation {k}: the heap would grow past {limit} bytes")
                pa.grow(end, ask)
                r.grows.append((k, end, ask))
                end += ask
                f2, w2 = cost(pa, a)
                f, w = f + f2, w + w2
                addr, sc = pa.alloc(a)
                if addr == 0 and r.failed_at is None:
                    r.failed_at = k
            r.addrs.append(addr)
            r.scav.append(sc)
            r.cost_find.append(f)
            r.cost_words.append(w)
            npages_of.append(a)
        elif v == FREE:
            if r.addrs[a]:
                pa.free(r.addrs[a], npages_of[a])
        elif v in (SCAVENGE, FORCE_SCAVENGE):
            r.released.append(pa.scavenge(a, None, v == FORCE_SCAVENGE))
        elif v == FLUSH:
            pc.flush(pa)
        elif v == GEN:
            pa.scav.index.next_gen()
        if (k + 1) % every == 0:
            snap(k + 1)
    if len(stream.ops) % every:
        snap(len(stream.ops))
    r.seconds = time.monotonic() - t0
    for c in range((end - base) // p.palloc_chunk_bytes):
        ch = pa.chunk_of(first_ci + c)
        r.chunks.append((ch.v, ch.scavenged.v))
    return r


def encode_stream(stream: Stream, every: int, limit: int = HEAP_LIMIT) -> bytes:
    """Returns the stream as palloc_stream_test.go reads it on stdin."""
    head = struct.pack("<5Q", MAGIC, 1, len(stream.ops), every, limit)
    return head + b"".join(struct.pack("<2Q", v, a) for v, a in stream.ops)


def run_runtime(binary: Path, goarch: str, stream: Stream, snapshots: int = DEFAULT_SNAPSHOTS,
                side: str = "runtime", limit: int = HEAP_LIMIT, timeout: float = 1800,
                cost_measured: dict | None = None) -> Run:
    """Replays stream natively in the runtime helper `binary` (built by build_stream_helper).

    A runtime that throws, faults or hangs gives a Run with `crash` set (and no answers);
    raises PallocError when the helper itself refuses the stream (a palloc bug).
    """
    from palloc.goref import procs
    from palloc.goref.driver import hang_stack, parse_crash
    from palloc.goref.targets import target

    every = _snapshot_every(stream, snapshots)
    cmd = [*target(goarch).command(binary), "-test.run=^TestPallocStream$", "-test.v=false", "-test.count=1",
           "-test.timeout=0"]
    env = {**_base_env(), "PALLOC_STREAM": "1", "GOTRACEBACK": "crash"}
    t0 = time.monotonic()
    try:
        out = procs.run(cmd, input=encode_stream(stream, every, limit), env=env, timeout=timeout, cwd=binary.parent)
        stdout, stderr, code = out.stdout, out.stderr, out.returncode
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        empty = Run(side, [], [], [], [], [], [], [], 0, [], (0, 0), time.monotonic() - t0)
        empty.crash = {"kind": "go-hang", "msg": f"no answer within {timeout:.0f} s", "stack": hang_stack(err)}
        return empty
    secs = time.monotonic() - t0
    stdout = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    line = next((l for l in stdout.splitlines() if l.startswith("palloc-stream ")), None)
    if line is None:
        said = stdout + stderr
        if "palloc stream: " in said and "fatal error:" not in said:  # the helper refused the stream (t.Fatalf)
            raise PallocError(f"{stream.name} on {goarch}: {said.split('palloc stream: ', 1)[1].splitlines()[0].strip()}")
        if code != 0 and ("fatal error:" in said or "panic:" in said or "SIG" in said):
            empty = Run(side, [], [], [], [], [], [], [], 0, [], (0, 0), secs)
            empty.crash = parse_crash(said)
            return empty
        tail = (stdout + stderr).strip().splitlines()[-1:] or ["no output"]
        raise PallocError(f"the stream helper for {goarch} gave no result (exit {code}: {tail[0][:200]}); "
                          "rebuild it with `palloc goref cache --prune` and try again")
    d = json.loads(line[len("palloc-stream "):])
    nw = len(d["chunks"][0]) // 2 if d.get("chunks") else 0

    def bits(ws):
        return sum(w << (64 * i) for i, w in enumerate(ws))

    return Run(side, d["addrs"], d["scav"], d["cost_find"], d["cost_words"], [tuple(g) for g in d["grows"]],
               d["released"], d["snaps"], d["first_ci"],
               [(bits(c[:nw]), bits(c[nw:])) for c in d.get("chunks") or []], tuple(d["host"]),
               d["elapsed"] / 1e9, d["failed"] - 1 if d["failed"] else None, None, dict(cost_measured or {}),
               [tuple(x) for x in d.get("refills") or []])


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PALLOC_")}


def build_stream_helper(tc, goarch: str, patch_files: dict[str, str] | None = None) -> tuple[Path, dict[str, int]]:
    """Returns (helper binary, loops counted per function) for the runtime with patch_files
    (GOROOT-relative path -> patched copy; none: unpatched), with the search-cost counters and
    the stream test added. The instrumented copies are kept by content in palloc's cache."""
    from palloc.goref.build import OVERLAY_DIR, build_helper, cache_dir
    from palloc.goref.files import write_atomic
    from palloc.goref.search_cost import COUNTED, instrument

    files = dict(patch_files or {})
    measured: dict[str, int] = {}
    folder = cache_dir() / "search-cost"
    folder.mkdir(parents=True, exist_ok=True)
    for rel in dict.fromkeys(f for f, _, _ in COUNTED):
        src = Path(files[rel]) if files.get(rel) else Path(tc.goroot) / rel
        text, found = instrument(rel, src.read_text())
        measured.update(found)
        out = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}-{Path(rel).name}"
        if not out.exists():
            write_atomic(out, text)
        files[rel] = str(out)
    for name in OVERLAY_TESTS:
        files[f"src/runtime/{name}"] = str(OVERLAY_DIR / name)
    return build_helper(tc, goarch, files), measured


# --- what a run says ------------------------------------------------------------------------


def free_runs(chunks: list[tuple[int, int]], chunk_pages: int) -> tuple[int, int, int]:
    """Returns (free pages, number of maximal free runs, largest free run) of a heap given as its
    chunks' allocation bitmaps in address order (runs continue across chunk boundaries)."""
    pages = "".join(format(a, f"0{chunk_pages}b")[::-1] for a, _ in chunks)  # page i is bit i
    runs = [len(z) for z in pages.split("1") if z]
    return sum(runs), len(runs), max(runs, default=0)


def metrics(run: Run, chunk_pages: int) -> dict[str, Any]:
    """Returns a run's figures: allocs, failures, growth, fragmentation at the end, scavenging, cost."""
    free, runs, largest = free_runs(run.chunks, chunk_pages)
    occ = [(a.bit_count() / chunk_pages) for a, _ in run.chunks]
    return {
        "allocs": len(run.addrs),
        "failed_allocs": sum(1 for a in run.addrs if a == 0),
        "grows": len(run.grows),
        "grown_bytes": sum(g[2] for g in run.grows),
        "heap_chunks": len(run.chunks),
        "free_pages": free,
        "free_runs": runs,
        "largest_free_run": largest,
        "chunk_occupancy": {"min": round(min(occ), 4) if occ else 0, "mean": round(sum(occ) / len(occ), 4) if occ else 0,
                            "max": round(max(occ), 4) if occ else 0, "empty_chunks": sum(1 for o in occ if o == 0)},
        "scavenged_bytes": sum(run.scav),  # reused scavenged memory (each alloc's scav)
        "released_bytes": sum(run.released),
        "scavenged_pages_at_end": sum(s.bit_count() for _, s in run.chunks),
        "search_find_steps": sum(run.cost_find),
        "search_words": sum(run.cost_words),
        "seconds": round(run.seconds, 3),
    }


def format_metrics(names: list[str], ms: list[dict]) -> list[str]:
    """Returns the rows of a side-by-side table of metrics (goref/workload_replay.metrics)."""
    rows = [("allocs", "allocs"), ("grows", "grows"), ("grown bytes", "grown_bytes"),
            ("heap chunks", "heap_chunks"), ("free pages at end", "free_pages"), ("free runs", "free_runs"),
            ("largest free run", "largest_free_run"), ("mean chunk occupancy", None),
            ("empty chunks", None), ("scavenged bytes reused", "scavenged_bytes"),
            ("bytes released", "released_bytes"), ("search: find steps", "search_find_steps"),
            ("search: bitmap words", "search_words"), ("replay seconds", "seconds")]
    out = ["  " + f"{'':24}" + "".join(f"{n:>16}" for n in names)]
    for label, key in rows:
        if key is None:
            k = "mean" if label.startswith("mean") else "empty_chunks"
            vals = [m["chunk_occupancy"][k] for m in ms]
        else:
            vals = [m[key] for m in ms]
        out.append("  " + f"{label:24}" + "".join(f"{v:>16,}" if isinstance(v, int) else f"{v:>16}" for v in vals))
    return out


def first_difference(a: Run, b: Run) -> str | None:
    """Returns where two runs of the same stream first differ, as a sentence, or None."""
    for what, x, y in (("alloc", a.addrs, b.addrs), ("scavenged bytes of alloc", a.scav, b.scav),
                       ("scavenge", a.released, b.released), ("grow", a.grows, b.grows),
                       ("page cache refill", a.refills, b.refills),
                       ("find steps of alloc", a.cost_find, b.cost_find),
                       ("bitmap words of alloc", a.cost_words, b.cost_words)):
        for i, (u, v) in enumerate(zip(x, y)):
            if u != v:
                fmt = (lambda t: hex(t) if isinstance(t, int) and t > 4096 else str(t))  # noqa: E731
                return f"{what} {i}: {a.side} {fmt(u)}, {b.side} {fmt(v)}"
        if len(x) != len(y):
            return f"{what}s: {a.side} has {len(x)}, {b.side} {len(y)}"
    if a.chunks != b.chunks:
        for c, (u, v) in enumerate(zip(a.chunks, b.chunks)):
            if u != v:
                return f"chunk {a.first_ci + c:#x} at the end: {a.side} and {b.side} differ"
        return f"heap at the end: {a.side} has {len(a.chunks)} chunks, {b.side} {len(b.chunks)}"
    return None


def validity(p, stream: Stream, run: Run) -> str | None:
    """Returns the first answer of run that the spec does not allow, or None.

    In the offset address space, pages of the grown heap (spec/obligations.py): an alloc returns
    the lowest run of npages free pages (alloc_first_fit: "find searches for the first
    (address-ordered) contiguous free region of npages in size"), with at most npages pages'
    scavenged bytes, and fails (the heap then grows) only when there is none. The P's page cache
    takes free pages of one 64-page-aligned block (which ones is its freedom, cache_window) and
    serves a cache-alloc from the lowest run of pages it owns (cache_alloc_first_fit), leaving it
    to alloc only when it owns no such run; a flush gives its pages back.
    """
    from palloc.model.mpagealloc import chunk_base

    abo, mask = p.arena_base_offset, p.uintptr_mask
    base_off = (chunk_base(p, p.base_chunk_idx) - abo) & mask
    heap = bytearray()  # a byte per page of the grown heap: 0 free, 1 allocated, 2 the cache's (free there)
    grows, refills = iter(run.grows), iter(run.refills)
    nxt, nref = next(grows, None), next(refills, None)
    npages_of: list[int] = []
    cpn = -1  # the page cache's block, as a page of the heap
    ai = 0

    def page(addr: int) -> int:
        return (((addr - abo) & mask) - base_off) // PAGE_SIZE

    for k, (v, a) in enumerate(stream.ops):
        if v in ALLOCS:
            what = f"{VERB_NAMES[v]} {ai} ({a} pages, operation {k})"
            if nref is not None and nref[0] == k:
                cbase, bits = nref[1], nref[2]
                cpn, nref = page(cbase), next(refills, None)
                if cpn % 64 or not 0 <= cpn <= len(heap) - 64:
                    return f"{what}: the page cache took the block at {cbase:#x}, not a 64-page block of the heap"
                for i in range(64):
                    if bits >> i & 1:
                        if heap[cpn + i]:
                            return f"{what}: the page cache took page {cpn + i} of the heap, which is not free"
                        heap[cpn + i] = 2
            addr = run.addrs[ai]
            pn = page(addr) if addr else -1
            in_cache = heap[cpn:cpn + 64].find(bytes([2]) * a) if v == CACHE_ALLOC and cpn >= 0 else -1
            if addr and 0 <= pn - cpn < 64 and cpn >= 0 and heap[pn] == 2:
                if pn - cpn != in_cache:
                    return (f"cache_alloc_first_fit: {what} returned page {pn - cpn} of the cache's block, its lowest "
                            f"run of {a} is at {in_cache}")
            else:
                if in_cache >= 0:
                    return f"cache_alloc_first_fit: {what} was not served by the page cache, which held a run of {a}"
                if nxt is not None and nxt[0] == k:
                    if heap.find(bytes(a)) >= 0:
                        return (f"alloc_first_fit: {what} failed and the heap grew, but a run of {a} free pages was "
                                f"free at page {heap.find(bytes(a))} of the heap")
                    heap += bytes(nxt[2] // PAGE_SIZE)
                    nxt = next(grows, None)
                if addr == 0:
                    return f"{what} failed after the heap grew by enough"
                if (addr - abo) % PAGE_SIZE or not 0 <= pn <= len(heap) - a:
                    return f"{what} returned {addr:#x}, outside the heap"
                if any(heap[pn:pn + a]):
                    return f"{what} returned {addr:#x}, whose pages are not all free"
                first = heap.find(bytes(a))
                if first != pn:
                    return (f"alloc_first_fit: {what} returned {addr:#x}, the first fit is page {first} of the heap, "
                            f"{addr - (pn - first) * PAGE_SIZE:#x}")
            if run.scav[ai] > a * PAGE_SIZE:
                return f"{what} reported {run.scav[ai]} scavenged bytes"
            heap[pn:pn + a] = b"\x01" * a
            npages_of.append(a)
            ai += 1
        elif v == FREE:
            if run.addrs[a]:
                pn = page(run.addrs[a])
                heap[pn:pn + npages_of[a]] = bytes(npages_of[a])
        elif v == FLUSH and cpn >= 0:
            heap[cpn:cpn + 64] = bytes(0 if x == 2 else x for x in heap[cpn:cpn + 64])
            cpn = -1
    return None


def _fmt_bytes(n: int) -> str:
    sign = "+" if n > 0 else "-" if n < 0 else "+"
    n = abs(n)
    for unit, s in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << s and n % (1 << (s - 4)) == 0:
            return f"{sign}{n / (1 << s):g} {unit}"
    return f"{sign}{n:,} B"


def summary_line(before: dict, after: dict, differing: int) -> str:
    """Returns the one-line summary of a behaviour change ("0 of 1,204 addresses differ; ...")."""
    def pct(a, b):
        return f" ({(b - a) / a:+.1%})" if a else ""
    return (f"{differing:,} of {after['allocs']:,} addresses differ; grown {_fmt_bytes(after['grown_bytes'] - before['grown_bytes'])}"
            f" ({after['grows'] - before['grows']:+d} grows); largest free run {after['largest_free_run'] - before['largest_free_run']:+,} pages"
            f", free runs {after['free_runs'] - before['free_runs']:+,}; scavenged {_fmt_bytes(after['scavenged_bytes'] - before['scavenged_bytes'])}"
            f", released {_fmt_bytes(after['released_bytes'] - before['released_bytes'])}"
            f"; search: find steps {after['search_find_steps'] - before['search_find_steps']:+,}{pct(before['search_find_steps'], after['search_find_steps'])}"
            f", bitmap words {after['search_words'] - before['search_words']:+,}{pct(before['search_words'], after['search_words'])}")


def replay_patch(tc, goarch: str, stream: Stream, patch_files: dict[str, str] | None,
                 snapshots: int = DEFAULT_SNAPSHOTS, svg_dir: Path | None = None, name: str = "patch",
                 progress: Callable[[str], None] | None = None, model_cost: Callable | None = None) -> dict[str, Any]:
    """Replays stream on the model, the unpatched runtime and the patched one (patch_files; None:
    only the model and the unpatched runtime); returns the report (see the module docstring):
    verdict "breaks", "holds" or None (inconclusive), detail, summary, metrics per side, and
    the picture's path when svg_dir is given."""
    from palloc.goref.fuzz import goarch_platform

    say = progress or (lambda s: None)
    p = goarch_platform(goarch, tc.version)
    say(f"{goarch}: building the stream helper on the unpatched runtime")
    base_bin, base_measured = build_stream_helper(tc, goarch, None)
    key = (str(base_bin), stream, snapshots, model_cost)
    if key in _BASELINES:  # the unpatched runtime and the model on this stream, replayed already
        unpatched, model = _BASELINES[key]
        return _with_patch(tc, goarch, stream, patch_files, snapshots, svg_dir, name, say, p, unpatched, model)
    say(f"{goarch}: replaying {stream.name} ({len(stream.ops):,} operations) on the unpatched runtime")
    unpatched = run_runtime(base_bin, goarch, stream, snapshots, "unpatched", limit=heap_limit(p),
                            cost_measured=base_measured)
    if unpatched.crash:
        return {"verdict": None, "goarch": goarch, "stream": stream.name,
                "detail": f"the unpatched runtime crashed on the stream ({unpatched.crash.get('kind')}: "
                          f"{unpatched.crash.get('msg')}): a palloc bug or a finding"}
    say(f"{goarch}: replaying it on the model")
    model = run_model(p, stream, unpatched.host, snapshots, cost=model_cost, limit=heap_limit(p))
    _BASELINES.clear()  # one stream's runs kept at a time: a corpus replays it on patch after patch
    _BASELINES[key] = (unpatched, model)
    return _with_patch(tc, goarch, stream, patch_files, snapshots, svg_dir, name, say, p, unpatched, model)


_BASELINES: dict = {}


def _with_patch(tc, goarch, stream, patch_files, snapshots, svg_dir, name, say, p, unpatched, model) -> dict[str, Any]:
    """replay_patch once the unpatched runtime and the model have replayed the stream."""
    cp = p.palloc_chunk_pages
    rep: dict[str, Any] = {"goarch": goarch, "stream": stream.name, "operations": len(stream.ops),
                           "metrics": {"model": metrics(model, cp), "unpatched": metrics(unpatched, cp)}}
    disagree = first_difference(model, unpatched)
    if disagree:
        rep.update(verdict=None, detail=f"the model and the unpatched runtime disagree on {stream.name}: {disagree} "
                                        "(a palloc bug or a finding; nothing is judged)")
        return rep
    if patch_files is None:
        rep.update(verdict="holds", detail=f"the model and the runtime agree on all {len(model.addrs):,} allocs of "
                                           f"{stream.name}, their scavenging and search cost")
        if svg_dir is not None:
            rep["svg"] = str(_write_svg(svg_dir, stream, name, [model], p))
        return rep
    say(f"{goarch}: building the stream helper on the patched runtime")
    try:
        pbin, measured = build_stream_helper(tc, goarch, patch_files)
    except PallocError as e:
        raise PallocError(f"{name}: the patched runtime does not build for {goarch} with palloc's counters: {e}") from None
    say(f"{goarch}: replaying {stream.name} on the patched runtime")
    patched = run_runtime(pbin, goarch, stream, snapshots, "patched", limit=heap_limit(p), cost_measured=measured)
    unmeasured = sorted(f for f, n in measured.items() if n == 0)
    rep["cost_not_measured"] = unmeasured
    if patched.crash:
        c = patched.crash
        rep.update(verdict="breaks", detail=f"the patched runtime {'hangs' if c.get('kind') == 'go-hang' else 'crashes'} on "
                   f"{stream.name}: {c.get('kind')}: {c.get('msg')}", crash=c)
        return rep
    bad = validity(p, stream, patched)
    rep["metrics"]["patched"] = after = metrics(patched, cp)
    before = rep["metrics"]["unpatched"]
    differing = sum(1 for x, y in zip(unpatched.addrs, patched.addrs) if x != y)
    rep["addresses_differ"] = differing
    rep["summary"] = summary_line(before, after, differing)
    if unmeasured:
        rep["summary"] += f" (search cost not measured in {', '.join(unmeasured)}: the patch leaves no loop palloc counts)"
    rep["changes_behaviour"] = first_difference(unpatched, patched)
    if svg_dir is not None:
        rep["svg"] = str(_write_svg(svg_dir, stream, name, [unpatched, patched], p))
    if bad:
        rep.update(verdict="breaks", detail=f"the patched runtime's answer is invalid on {stream.name}: {bad}")
        return rep
    rep.update(verdict="holds", detail=(f"behaviour changes on {stream.name}: " if rep["changes_behaviour"] else
                                        f"no behaviour change on {stream.name}: ") + rep["summary"])
    return rep


def _write_svg(folder: Path, stream: Stream, name: str, runs: list[Run], p) -> Path:
    from palloc.goref.files import require_writable_dir, write_atomic
    from palloc.goref.occupancy_svg import heat_map_svg

    folder = require_writable_dir(folder, "give --svg-dir a folder you can write to")
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(stream.name).name.replace("/", "_")
    out = folder / f"{name}-{stem}-occupancy.svg"
    write_atomic(out, heat_map_svg([(r.side, r.snaps) for r in runs], p.palloc_chunk_pages,
                                   f"{name} on {stem}: heap occupancy (chunk x time)"))
    return out


def workload_check(tc, goarch: str, stream: Stream, patch_files: dict[str, str], svg_dir: Path | None,
                   name: str, progress: Callable[[str], None] | None = None, strict: bool = False) -> dict[str, Any]:
    """Returns verify-change's "workload" check of a patch on one stream (the fields of
    goref/verdict.Check): breaks (a crash or an answer the spec does not allow), changes
    (valid answers, but something differs from the unpatched runtime: with strict, breaks),
    holds (nothing differs), or no verdict (model and unpatched runtime disagree); the deltas and
    a side-by-side table are in evidence."""
    t0 = time.monotonic()
    rep = replay_patch(tc, goarch, stream, patch_files, svg_dir=svg_dir, name=name, progress=progress)
    ms = rep.get("metrics") or {}
    rep["table"] = format_metrics(list(ms), list(ms.values())) if ms else []
    if rep.get("svg"):
        rep["table"].append(f"  occupancy before/after: {rep['svg']}")
    verdict = rep["verdict"]
    if verdict == "holds" and rep.get("changes_behaviour"):
        verdict = "breaks" if strict else "changes"
    return {"name": "workload", "goarch": goarch, "status": "ran", "verdict": verdict,
            "seconds": round(time.monotonic() - t0, 2), "detail": rep["detail"], "evidence": rep}
