"""The proof suite on every platform gives the manifest's verdicts within its budgets.

One run of every obligation and broken variant over all platforms (shared runs, 2 processes),
then: every theorem obligation proved, every broken variant a counterexample where the manifest
says, no budget exceeded, and manifest and code list the same obligations.
"""

from __future__ import annotations

import pytest

from palloc.proofs import runner
from palloc.spec import platform_names


@pytest.fixture(scope="module")
def manifest():
    return runner.load_manifest()


@pytest.fixture(scope="module")
def results():
    specs = [runner.PlatformSpec(n) for n in platform_names()]
    tasks = runner.plan(specs, broken=True)
    return runner.rerun_over_budget(runner.load_manifest(), tasks, runner.run(tasks, timeout_s=120, jobs=2), 120)


def test_manifest_lists_exactly_the_obligations_in_code(manifest):
    in_code = {ob.qualname for ob in runner.obligations(broken=True)}
    assert set(manifest["obligation"]) == in_code


def test_every_result_matches_its_manifest_verdict_and_budget(manifest, results):
    assert runner.check_manifest(manifest, results) == []


def test_every_theorem_obligation_is_proved_on_every_platform(results):
    bad = [(r["obligation"], r["platform"], r["verdict"]) for r in results
           if not runner._find(r["obligation"]).is_variant and r["verdict"] != "proved"]
    assert bad == []


def test_every_theorem_has_a_broken_variant_that_is_caught(results):
    caught = {r["obligation"].split(".")[0] for r in results
              if runner._find(r["obligation"]).is_variant and r["verdict"] == "counterexample"}
    assert caught == {"packing", "merge", "no_double_alloc", "addresses"}


@pytest.mark.parametrize("variant,platforms", [
    ("addresses.broken_chunk_index_wrong_sign", {"linux/amd64", "windows/amd64", "aix/ppc64"}),
    ("addresses.broken_off_addr_raw_compare", {"linux/amd64", "windows/amd64"}),
    ("no_double_alloc.broken_alloc_to_cache_one_past", set(platform_names())),
    ("no_double_alloc.broken_free_without_search_addr_update", set(platform_names())),
    ("merge.broken_merge_forgets_free_child", set(platform_names())),
    ("packing.broken_pack_without_special_case", set(platform_names())),
])
def test_broken_variant_gives_counterexample_exactly_where_expected(results, variant, platforms):
    got = {r["platform"] for r in results if r["obligation"] == variant and r["verdict"] == "counterexample"}
    assert got == platforms


def test_counterexamples_are_printed_in_domain_terms(results):
    by = {(r["obligation"], r["platform"]): r for r in results}
    assert "chunk" in by[("no_double_alloc.broken_alloc_to_cache_one_past", "linux/amd64")]["counterexample"]
    assert "0x" in by[("addresses.broken_summary_range_exclusive_limit", "linux/amd64")]["counterexample"]
    assert "(start,max,end)" in by[("packing.broken_pack_without_special_case", "linux/amd64")]["counterexample"]


@pytest.mark.slow
def test_slow_obligations_are_proved_within_budget(manifest):
    specs = [runner.PlatformSpec("linux/amd64")]
    slow = [t for t in runner.plan(specs, broken=True, slow=True)
            if runner._find(t.qualname).slow]
    res = runner.run(slow, timeout_s=300, jobs=2)
    assert res and runner.check_manifest(manifest, res) == []


def test_hypothetical_configurations_give_their_recorded_verdicts(manifest):
    for name, cfg in manifest["config"].items():
        spec = runner.PlatformSpec(cfg["base"], tuple(sorted(cfg["changes"].items())))
        res = runner.run(runner.plan([spec], only="packing."), timeout_s=60, jobs=1)
        ce = sorted(r["obligation"] for r in res if r["verdict"] == "counterexample")
        assert ce == sorted(cfg["counterexample"]), name
        assert all(r["verdict"] in ("proved", "counterexample") for r in res)


def test_budget_overrun_is_rerun_once_and_still_flagged_when_it_repeats():
    """A run over budget is re-run alone: a one-off stall is forgiven, a slow solver is still flagged."""
    q = "addresses.chunk_map_l1_l2_covers_indices"
    tasks = runner.plan([runner.PlatformSpec("linux/amd64")], broken=False)
    tasks = [t for t in tasks if t.qualname == q]
    stalled = [{"obligation": q, "platform": "linux/amd64", "ran_on": "linux/amd64", "verdict": "proved",
                "cpu_seconds": 99.0}]
    roomy = {"obligation": {q: {"budget_seconds": 30}}}
    tight = {"obligation": {q: {"budget_seconds": 0}}}  # no run fits: a solver that is always too slow
    assert runner.check_manifest(roomy, runner.rerun_over_budget(roomy, tasks, stalled)) == []
    flagged = runner.check_manifest(tight, runner.rerun_over_budget(tight, tasks, stalled))
    assert len(flagged) == 1 and "exceeds its budget" in flagged[0]
