"""compare.py: debugger-style reports, crash verdicts, and the self-check of each side."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palloc.goref import ops as O
from palloc.goref.compare import (
    Divergence, Fmt, HarnessFault, Outcome, State, bit_runs, compare_outcomes, compare_runs, diff_states, self_check,
)
from palloc.spec import platform

P = platform("linux/amd64")


def _state(**kw) -> State:
    base = dict(
        search_addr=0xC000000000, start=0x2030000, end=0x2030004, in_use=((0xC000000000, 0xC001000000),),
        chunks={0x200C003: (0, 0)}, summary=({},) * 4 + ({0x200C003: P.free_chunk_sum},), scav_chunks={0x200C003: 0},
        scav={"gen": 0}, caches={},
    )
    base.update(kw)
    return State(**base)


def test_bitmap_difference_is_reported_as_page_ranges_with_each_sides_value():
    model = _state()
    runtime = _state(chunks={0x200C003: (0b111 << 17, 0)})
    lines = diff_states(P, model, runtime)
    assert lines == ["chunk 0x200c003 pages [17, 20): model free, runtime allocated"]


def test_summary_difference_is_reported_as_unpacked_entries_with_the_range_they_cover():
    model = _state()
    runtime = _state(summary=({},) * 4 + ({0x200C003: 509 | 509 << 21},))
    (line,) = diff_states(P, model, runtime)
    assert line.startswith("summary level 4 index 0x200c003 [")
    assert line.endswith("model (512, 512, 512), runtime (509, 509, 0)")


def test_search_addr_difference_names_chunk_and_page_and_the_exhausted_sentinel():
    (line,) = diff_states(P, _state(search_addr=0xC000006000), _state(search_addr=P.max_off_addr))
    assert line == (
        "searchAddr: model 0xc000006000 (chunk 0x2030000 page 3), "
        "runtime 0x7fffffffffff (maxSearchAddr: heap exhausted)"
    )


def test_scavenged_bits_are_reported_separately_from_alloc_bits():
    lines = diff_states(P, _state(chunks={0x200C003: (0, 1 << 5)}), _state())
    assert lines == ["chunk 0x200c003 scavenged bits [5, 6): model scavenged, runtime unscavenged"]


def test_a_runtime_crash_where_the_model_returns_is_a_divergence():
    d = compare_outcomes(P, 3, O.Alloc(1), Outcome(result=(0xC000000000, 0)), Outcome(crash=("fault", "SIGSEGV")))
    assert d is not None and d.kind == "crash"
    assert "runtime faulted (SIGSEGV)" in d.lines[0]


def test_the_same_crash_on_both_sides_agrees():
    c = ("throw", "bad summary data")
    assert compare_outcomes(P, 0, O.Alloc(1), Outcome(crash=c), Outcome(crash=c)) is None


def test_result_difference_prints_addresses_in_the_domains_terms():
    d = compare_outcomes(P, 1, O.Alloc(3), Outcome(result=(0xC000002000, 0)), Outcome(result=(0xC000000000, 24576)))
    assert d.kind == "result"
    assert "model returned (addr 0xc000002000 (chunk 0x2030000 page 1), scav 0x0 bytes)" in d.lines[0]


def test_self_check_reports_a_nondeterministic_side_as_a_harness_fault():
    ops = [None, O.Alloc(1)]
    first = [Outcome(state=_state()), Outcome(result=(0xC000000000, 0), state=_state())]
    second = [Outcome(state=_state()), Outcome(result=(0xC000002000, 0), state=_state())]
    with pytest.raises(HarnessFault) as e:
        self_check(P, "runtime", ops, first, second)
    assert e.value.side == "runtime" and e.value.divergence.kind == "harness"
    self_check(P, "runtime", ops, first, first)  # a deterministic side passes


def test_a_shorter_run_is_a_crash_divergence():
    d = compare_runs(P, [None, O.Alloc(1)], [Outcome(state=_state())], [Outcome(state=_state()), Outcome(result=(1, 0))])
    assert isinstance(d, Divergence) and d.kind == "crash"


def _bit_runs_slow(x: int):
    runs, i = [], 0
    while x >> i:
        if x >> i & 1:
            j = i
            while x >> j & 1:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


@settings(max_examples=200)
@given(st.integers(0, (1 << 512) - 1))
def test_bit_runs_matches_its_readable_twin(x):
    assert list(bit_runs(x)) == _bit_runs_slow(x)


@given(st.sampled_from(sorted(O.OP_TYPES)), st.data())
def test_every_operation_round_trips_through_json(kind, data):
    t = O.OP_TYPES[kind]
    import dataclasses

    args = {}
    for f in dataclasses.fields(t):
        args[f.name] = data.draw(st.booleans() if f.type in ("bool", bool) else st.integers(0, 1 << 70))
    op = t(**args)
    assert O.from_json(op.to_json()) == op


def test_state_round_trips_through_json():
    s = _state(chunks={0x200C003: (5, 7), 0x200C004: None}, caches={1: (0xC000000000, 3, 1)})
    assert State.from_json(s.to_json()) == s


def test_fmt_unpacks_the_all_free_root_sentinel():
    assert Fmt(P).unpack_sum(1 << 63) == (P.max_packed_value,) * 3


def test_lockstep_self_check_blames_a_nondeterministic_side_not_the_model():
    import itertools

    from palloc.goref.fuzz import Case, Lockstep
    from palloc.goref.model_side import ModelSide

    counter = itertools.count()

    class Flaky:  # a "runtime" whose alloc answers change from one run to the next
        def run(self, init, ops):
            outs = ModelSide(P).run(init, ops)
            k = next(counter)
            for o in outs:
                if o.result is not None and len(o.result) == 2:
                    o.result = (o.result[0] + k * 8192, o.result[1])
            return outs

    runner = Lockstep(P, Flaky())
    case = Case("amd64", "1.27.3", None, [O.Grow(0xC000000000, 0x400000), O.Alloc(1)])
    with pytest.raises(HarnessFault) as e:
        runner.self_check_case(case)
    assert e.value.side == "runtime"
    Lockstep(P, None).self_check_case(case)  # the model agrees with itself
