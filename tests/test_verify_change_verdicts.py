"""verify-change's verdict from its checks (goref/verdict.py:conclude): breaks >
inconclusive > changes behaviour > no divergence found; the runtime's tests failing without a
crash on a patch the spec accepts pin the old policy; --strict makes a behaviour change break."""

from __future__ import annotations

import dataclasses
import types

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from palloc.cli.verify_change import EXIT_CHANGES
from palloc.goref.verdict import Check, conclude, strongest, verdict_of

TC = types.SimpleNamespace(version="go1.27.3", goroot="/go")


def verdict(*checks: Check, strict: bool = False) -> dict:
    return conclude([dataclasses.asdict(c) for c in checks], {}, ["amd64"], TC, {}, "p", 1.0, strict)


CHANGES = Check("differential", "amd64", "ran", "changes", evidence={"behaviour": {"compared": 9}})
HOLDS = Check("differential", "amd64", "ran", "holds")
TESTS_FAIL = Check("runtime-tests", "amd64", "ran", "breaks", evidence={"failed": ["TestPageAllocScavenge"], "crash": None})
TESTS_CRASH = Check("runtime-tests", "amd64", "ran", "breaks", evidence={"failed": ["TestX"], "crash": "fatal error: x"})


def test_a_behaviour_change_alone_is_changes_behaviour_with_exit_3():
    rep = verdict(CHANGES)
    assert rep["verdict"] == "changes behaviour" and EXIT_CHANGES == 3
    assert rep["behaviour"] == [{"compared": 9, "goarch": "amd64"}]


def test_the_runtimes_tests_failing_on_an_accepted_patch_pin_the_old_policy():
    rep = verdict(CHANGES, TESTS_FAIL)
    assert rep["verdict"] == "changes behaviour"
    assert rep["policy_pinned_by_tests"] == ["the runtime's tests pin the old policy (amd64): TestPageAllocScavenge"]
    assert [c["verdict"] for c in rep["checks"]] == ["changes", "pins policy"]


@pytest.mark.parametrize("other", [TESTS_CRASH, dataclasses.replace(HOLDS, name="translation", verdict="breaks")])
def test_a_crash_in_the_runtimes_tests_or_another_break_still_breaks(other):
    assert verdict(CHANGES, other)["verdict"] == "breaks"


def test_an_open_check_outranks_a_behaviour_change_and_strict_never_pins():
    assert verdict(CHANGES, dataclasses.replace(HOLDS, name="constants", verdict=None))["verdict"] == "changes behaviour"
    assert verdict(CHANGES, dataclasses.replace(HOLDS, verdict=None))["verdict"] == "inconclusive"
    rep = verdict(CHANGES, TESTS_FAIL, strict=True)
    assert rep["verdict"] == "breaks" and rep["policy_pinned_by_tests"] == []


def test_no_divergence_stays_exit_0():
    assert verdict(HOLDS)["verdict"] == "no divergence found"


NAMES = ("translation", "start-up", "constants", "differential", "runtime-tests", "workload")
a_check = st.builds(lambda name, goarch, status, v: Check(name, goarch, status, v if status == "ran" else None),
                    st.sampled_from(NAMES), st.sampled_from(("amd64", "386")), st.sampled_from(("ran", "skipped", "unavailable")),
                    st.sampled_from(("breaks", "holds", "changes", None)))


def _joins_as_verdict_of(join):
    """The property, for a join of per-GOARCH verdicts: it agrees with verdict_of over every check."""

    @settings(max_examples=1000)  # microseconds each; the rare mixes are what matter
    @given(st.lists(a_check, max_size=8))
    def prop(checks):
        per = {g: [c for c in checks if c.goarch == g] for g in dict.fromkeys(c.goarch for c in checks)}
        # --prove-only runs translation alone on every GOARCH, never on some of them
        assume(len({all(c.name == "translation" for c in cs) for cs in per.values()}) <= 1)
        assert join([verdict_of(cs) for cs in per.values()]) == verdict_of(checks)

    return prop


def test_joining_goarches_verdicts_is_the_verdict_of_all_their_checks():
    """strongest (how `palloc mutants` joins its GOARCH cells) against its slow twin, verdict_of over
    every check at once (how verify-change concludes several GOARCHes)."""
    _joins_as_verdict_of(strongest)()


def test_a_join_that_ranks_a_behaviour_change_over_an_open_check_is_caught():
    order = ("breaks", "changes behaviour", "inconclusive", "undecided", "no divergence found", "proved equivalent",
             "nothing checked")
    with pytest.raises(AssertionError):
        _joins_as_verdict_of(lambda vs: min(vs, key=order.index, default="nothing checked"))()
