"""The digest lockstep (goref/lockstep.py): its digest covers every state component, a digest
with a blind spot is caught by the periodic full comparison, and it finds what the other engines
find, against the real runtime."""

from __future__ import annotations

import copy

import pytest

from palloc.goref import lockstep as L
from palloc.goref import ops as O
from palloc.goref.fuzz import Lockstep, run_campaign
from palloc.goref.model_side import ModelSide
from palloc.spec import platform
from palloc.spec.constants import PAGE_SIZE

P = platform("linux/amd64")


def _heap():
    """Returns a model with two grown chunks, allocations, a scavenge, a filled cache, and the
    chunks an Alloc(3) touched."""
    m = ModelSide(P)
    m.reset(None)
    base = (P.base_chunk_idx * P.palloc_chunk_bytes + P.arena_base_offset) & P.uintptr_mask
    for op in (O.Grow(base, 2 * P.palloc_chunk_bytes), O.Alloc(600), O.Scavenge(1 << 22, True), O.AllocToCache(1), O.NextGen()):
        assert m.apply(op, with_state=False).crash is None
    for c in (m.pa.scav.index.search_addr_bg, m.pa.scav.index.search_addr_force):
        c.a = c.a or 1 << 20  # unmarked and not zero, so that marking it shows
    op = O.Alloc(3)
    r = m.apply(op, with_state=False).result
    touched = L.touched_chunks(P, op, r, 0, ())
    assert touched == [P.base_chunk_idx + 1] or touched == [P.base_chunk_idx]
    return m, op, r, touched


def _digest(m, op, r, touched):
    return L.digest(L.step_words(P, m, op.kind, True, r, touched))


def _mutations():
    """Yields (component, function mutating a model copy) for every component the digest covers."""
    cp = P.palloc_chunk_pages

    def chunk(m, t):
        return m.pa.chunk_of(t[0])

    def leaf_path(level):
        def f(m, t):
            i = t[0] >> (P.level_shift[level] - P.level_shift[-1])
            m.pa.summary[level].vals[i] = m.pa.summary[level].vals.get(i, 0) ^ 1
        return f

    def idx(m):
        return m.pa.scav.index

    from palloc.model.mranges import OffAddr

    yield "alloc bitmap", lambda m, t: setattr(chunk(m, t), "v", chunk(m, t).v ^ (1 << (cp - 1)))
    yield "scavenged bitmap", lambda m, t: setattr(chunk(m, t).scavenged, "v", chunk(m, t).scavenged.v ^ (1 << (cp - 1)))
    for level in range(P.summary_levels):
        yield f"summary level {level} on the path", leaf_path(level)
    yield "searchAddr", lambda m, t: setattr(m.pa, "search_addr", OffAddr(P, m.pa.search_addr.addr() + PAGE_SIZE))
    yield "start", lambda m, t: setattr(m.pa, "start", m.pa.start - 1)
    yield "end", lambda m, t: setattr(m.pa, "end", m.pa.end + 1)
    yield "inUse total bytes", lambda m, t: setattr(m.pa.in_use, "total_bytes", m.pa.in_use.total_bytes + PAGE_SIZE)
    yield "inUse range count", lambda m, t: m.pa.in_use.ranges.append(m.pa.in_use.ranges[-1])
    yield "scavenge index chunk word", lambda m, t: idx(m).chunks.__setitem__(t[0], _bumped(idx(m), t[0]))
    yield "scavenge index gen", lambda m, t: setattr(idx(m), "gen", idx(m).gen + 1)
    yield "freeHWM", lambda m, t: setattr(idx(m), "free_hwm", OffAddr(P, idx(m).free_hwm.addr() + PAGE_SIZE))
    yield "minHeapIdx", lambda m, t: setattr(idx(m), "min_heap_idx", idx(m).min_heap_idx + 1)
    yield "background cursor", lambda m, t: setattr(idx(m).search_addr_bg, "a", idx(m).search_addr_bg.a + PAGE_SIZE)
    yield "background cursor mark", lambda m, t: idx(m).search_addr_bg.store_marked(idx(m).search_addr_bg.load()[0])
    yield "force cursor", lambda m, t: setattr(idx(m).search_addr_force, "a", idx(m).search_addr_force.a + PAGE_SIZE)
    yield "force cursor mark", lambda m, t: idx(m).search_addr_force.store_marked(idx(m).search_addr_force.load()[0])
    yield "page cache bitmap", lambda m, t: setattr(m.caches[1], "cache", m.caches[1].cache ^ 1)
    yield "page cache scav", lambda m, t: setattr(m.caches[1], "scav", m.caches[1].scav ^ 1)
    yield "page cache base", lambda m, t: setattr(m.caches[1], "base", m.caches[1].base + 64 * PAGE_SIZE)
    yield "page cache slots", lambda m, t: m.caches.__setitem__(3, copy.copy(m.caches[1]))


def _bumped(idx, ci):
    sc = copy.copy(idx.load(ci))
    sc.last_in_use += 1
    return sc


@pytest.mark.parametrize("component,mutate", list(_mutations()), ids=[c for c, _ in _mutations()])
def test_digest_changes_when_any_covered_state_component_changes(component, mutate):
    m, op, r, touched = _heap()
    before = _digest(m, op, r, touched)
    m2 = copy.deepcopy(m)
    assert _digest(m2, op, r, touched) == before  # the copy digests alike
    mutate(m2, touched)
    assert _digest(m2, op, r, touched) != before, f"the digest does not cover {component}"


def test_digest_changes_with_the_result_and_the_touched_set():
    m, op, r, touched = _heap()
    before = _digest(m, op, r, touched)
    assert _digest(m, op, (r[0] + PAGE_SIZE, r[1]), touched) != before
    assert _digest(m, op, r, touched + [touched[0] + 1]) != before


def test_touched_chunks_follow_the_operation_and_its_result():
    cb, base = P.palloc_chunk_bytes, 0xc000000000
    ci = ((base - P.arena_base_offset) & P.uintptr_mask) // cb
    assert L.touched_chunks(P, O.Alloc(514), (base + cb - PAGE_SIZE, 0), 0, ()) == [ci, ci + 1, ci + 2]
    assert L.touched_chunks(P, O.Alloc(5), (0, 0), 0, ()) == []  # failed: nothing changed
    assert L.touched_chunks(P, O.Grow(base, 2 * cb), None, 0, ()) == [ci, ci + 1]
    assert L.touched_chunks(P, O.CacheFlush(0), None, base + 64 * PAGE_SIZE, ()) == [ci]
    assert L.touched_chunks(P, O.Scavenge(1, True), (0,), 0, [ci, ci + 7]) == [ci, ci + 7]
    assert L.touched_chunks(P, O.NextGen(), None, 0, ()) == []


_STEP_WORDS = L.step_words


def _words_without_search_addr(p, model, kind, on_page_alloc, result, touched):
    """A seeded broken variant of step_words: searchAddr is left out of the digest."""
    w = bytearray(_STEP_WORDS(p, model, kind, on_page_alloc, result, touched))
    if on_page_alloc and model is not None:
        at = 8 * (1 + len(result or ()))
        w[at:at + 8] = b"\0" * 8
    return bytes(w)


def _search_addr_campaign(monkeypatch, words, full_every):
    """The model-vs-model lockstep where one side skips alloc's searchAddr update (a bug that
    changes searchAddr and nothing else): returns the campaign result."""
    from palloc.goref.broken import model_variant as variant

    if words is not None:
        monkeypatch.setattr(L, "step_words", words)
    runner = Lockstep(P, None, variant("search-addr-update-skipped").factory(), invariants=False)
    runner.shrink_seconds = 2
    return L.run_lockstep_campaign(runner, seconds=20, seed=0, step_count=40, max_examples=30, full_every=full_every)


def test_per_step_digest_catches_a_search_addr_only_bug_at_its_step(monkeypatch):
    res = _search_addr_campaign(monkeypatch, None, full_every=None)  # no full dumps at all
    assert res.failure is not None and res.failure.divergence.kind == "state"
    assert any("searchAddr" in line for line in res.failure.divergence.lines)


def test_a_digest_blind_to_search_addr_misses_the_bug_without_full_comparisons(monkeypatch):
    res = _search_addr_campaign(monkeypatch, _words_without_search_addr, full_every=None)
    assert res.failure is None  # the blind spot hides the divergence ...


def test_the_periodic_full_comparison_catches_what_a_blind_digest_misses(monkeypatch):
    res = _search_addr_campaign(monkeypatch, _words_without_search_addr, full_every=1000)
    assert res.failure is not None and res.failure.divergence.kind == "state"  # ... the full dump does not
    assert any("searchAddr" in line for line in res.failure.divergence.lines)


def test_model_against_itself_finds_no_divergence_in_the_lockstep():
    runner = Lockstep(P, None)
    res = L.run_lockstep_campaign(runner, seconds=20, seed=5, step_count=60, max_examples=15)
    assert res.failure is None and res.harness_fault is None
    assert runner.stats.ops > 100 and runner.stats.full_compares >= 15


@pytest.mark.parametrize("plat", ["linux/amd64", "linux/386"])
def test_step_words_agree_with_their_readable_twin_at_every_step_of_a_campaign(plat, monkeypatch):
    p = platform(plat)
    seen = []

    def checked(p_, model, kind, on_pa, result, touched):
        got = fast(p_, model, kind, on_pa, result, touched)
        assert got == L.step_words_slow(p_, model, kind, on_pa, result, touched), kind
        seen.append((kind, len(touched)))
        return got

    fast = L.step_words
    monkeypatch.setattr(L, "step_words", checked)
    res = L.run_lockstep_campaign(Lockstep(p, None), seconds=20, seed=11, step_count=60, max_examples=6)
    assert res.failure is None
    # Covered: pure functions, single-chunk steps, many-chunk steps (scavenge, new).
    assert {n for _, n in seen} >= {0, 1} and max(n for _, n in seen) > 1


def test_per_step_screen_agrees_with_the_invariants_at_every_step_of_a_campaign(monkeypatch):
    from palloc.spec import invariants as I

    calls = []

    def checked(pa, touched):
        got = I.holds_per_step(pa, touched)
        assert got == (I.check_all(pa, touched=touched, only=I.PER_STEP) == [])
        calls.append(got)
        return got

    runner = Lockstep(P, None)
    monkeypatch.setattr(L.DigestLockstep, "__init__", _with_screen(L.DigestLockstep.__init__, checked))
    res = L.run_lockstep_campaign(runner, seconds=20, seed=13, step_count=60, max_examples=6)
    assert res.failure is None and len(calls) > 100 and all(calls)


def _with_screen(init, screen):
    def f(self, *a, **k):
        init(self, *a, **k)
        assert self.screen is not None  # the lockstep uses the screen by default
        self.screen = screen
    return f


def _leaf_corrupting_model(at_alloc: int):
    """Returns a factory of a model whose at_alloc-th alloc leaves its chunk's leaf summary with
    start one off (only summaries_consistent, a periodic invariant, sees it)."""
    from palloc.model.mpagealloc import PageAlloc, chunk_index

    class CorruptsOneLeaf(PageAlloc):
        def alloc(self, npages):
            addr, scav = super().alloc(npages)
            self.allocs = getattr(self, "allocs", 0) + 1
            if self.allocs == at_alloc and addr:
                leaf = self.summary[-1]
                ci = chunk_index(self.p, addr)
                leaf[ci] = leaf[ci] ^ 1
            return addr, scav

    return lambda p, **host: CorruptsOneLeaf.make(p, test=True, **host)


def _run_heap_with_a_late_leaf_corruption(monkeypatch, slow_invariants: bool):
    """Runs grow, 3 allocs (the third corrupts a leaf: step 3, between two periodic checks),
    then 5 nextGens that touch no chunk, on the model-vs-model digest lockstep where both sides
    are the broken model (so the digests agree and only the invariants can see it)."""
    factory = _leaf_corrupting_model(3)
    monkeypatch.setattr(L, "ModelSide", lambda p, f=None, host=None: ModelSide(p, factory, host))
    full = Lockstep(P, None, factory)
    d = L.DigestLockstep(full, full_every=None)
    if not slow_invariants:
        monkeypatch.setattr(d, "_slow_invariants", lambda: [])
    assert "summaries_consistent" not in d.fast_names and 3 % d.summaries_every
    base = (P.base_chunk_idx * P.palloc_chunk_bytes + P.arena_base_offset) & P.uintptr_mask
    d.begin(None)
    for op in [O.Grow(base, 4 * P.palloc_chunk_bytes)] + [O.Alloc(1)] * 3 + [O.NextGen()] * 5:
        d.step(op)
    try:
        d.end_seq()
        d.drain()
    except L._Found:
        return full.failures[-1]
    return None


def test_a_violation_between_periodic_invariant_checks_is_caught_and_localised(monkeypatch):
    case = _run_heap_with_a_late_leaf_corruption(monkeypatch, slow_invariants=True)
    assert case is not None and case.divergence.kind == "invariant"
    assert case.divergence.step == 3  # the classic re-run names the step that broke it
    assert any("summaries_consistent" in line for line in case.divergence.lines)


def test_the_per_step_invariants_alone_do_not_see_that_corruption(monkeypatch):
    # So the test above shows the periodic check at work, not a per-step one.
    assert _run_heap_with_a_late_leaf_corruption(monkeypatch, slow_invariants=False) is None


# --- against the real runtime ------------------------------------------------------------------


def go_session(goarch: str = "amd64", **kw):
    from palloc.goref.fuzz import session
    from palloc.spec.errors import PallocError

    try:
        return session(goarch, **kw)
    except PallocError as e:
        pytest.skip(f"no Go helper ({e}); install one with `pip install 'palloc[go]'`")


@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_short_lockstep_campaign_agrees_with_the_runtime_step_by_step(goarch):
    runner = go_session(goarch)
    res = run_campaign(runner, seconds=20, seed=7, max_examples=15, step_count=100, engine="lockstep")
    assert res.failure is None and res.harness_fault is None, res.failure and res.failure.divergence.text()
    assert runner.stats.ops > 500 and runner.stats.full_compares >= 15


@pytest.mark.go
def test_a_runtime_crash_in_a_batch_that_no_heap_reproduces_alone_is_still_a_divergence():
    # A step smuggled into the batch (freeing a free page) makes the runtime throw; re-run with
    # full dumps the heap does not crash. A runtime that printed a crash report died all the
    # same: the campaign records a crash divergence on the heap it was running (the helper's
    # mark), says it does not reproduce alone, and never calls it a harness fault.
    runner = go_session("amd64")
    d = L.DigestLockstep(runner)
    d.begin(None)
    base = 0x3000000000
    d.step(O.Grow(base, 0x400000))
    d.batch.steps.append('{"op":"free","base":"0x3000002000","npages":1}')
    d.batch.where.append((d.seq, 0, "step"))
    with pytest.raises(L._Found):
        d.drain()
    case = runner.failures[-1]
    assert case.alone is False and case.divergence.kind == "crash"
    assert "runtime threw" in case.divergence.lines[0] and "does not crash" in case.divergence.lines[0]
    # The helper is restarted for the next batch.
    assert runner.go.run(None, [O.Grow(base, 0x400000)])[-1].crash is None


@pytest.mark.go
@pytest.mark.parametrize("goarch", ["amd64", "386"])
def test_per_step_digest_alone_catches_a_search_addr_bug_against_the_runtime(goarch):
    # No full dumps and no invariants: the runtime's digest and the model's must disagree at
    # the step where the broken model leaves searchAddr behind.
    runner = go_session(goarch, variant="search-addr-update-skipped", invariants=False)
    runner.shrink_seconds = 3
    res = L.run_lockstep_campaign(runner, seconds=30, seed=0, full_every=None)
    assert res.failure is not None and res.failure.divergence.kind == "state"
    assert res.failure.divergence.step == len(res.failure.ops) - 1
    assert any("searchAddr" in line for line in res.failure.divergence.lines)


@pytest.mark.go
def test_the_digest_lockstep_shows_every_runtime_state_it_compares(need_helper):
    # `palloc versions` counts the scavenge-index flags of the states it compares through this
    # hook (goref/versions.py:FlagCounter); a campaign that compared dumps and showed none would
    # report the flags word as never exercised.
    runner = need_helper("amd64")
    seen = []
    runner.on_runtime_state = seen.append
    res = L.run_lockstep_campaign(runner, seconds=20, seed=0, step_count=40, max_examples=5)
    assert res.failure is None
    assert len(seen) == runner.stats.full_compares > 0
