"""verify-change's verdict from its checks (cli/verify_change.py:conclude): breaks >
inconclusive > changes behaviour > no divergence found; the runtime's tests failing without a
crash on a patch the spec accepts pin the old policy; --strict makes a behaviour change break."""

from __future__ import annotations

import dataclasses
import types

import pytest

from palloc.cli.verify_change import EXIT_CHANGES, Check, conclude

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
